"""`make run` serves the console: the demo's hub has the HTTP API and the
console with a demo-only account printed once; its sessions run on real time
while the community runs on the fast virtual clock (a session opened in the
demo still works after an hour of simulated time)."""
import asyncio
import re

import aiohttp

from simulator.runner import run_scenario

SCENARIO = """name: a short demo
site: {id: sunrise, name: Sunrise}
buildings:
  - id: b1
    flats:
      - id: b1-101
        residents: [{id: r-101, name: Wang Lan}]
devices:
  - {id: door-101, kind: door_sensor, board: esp32c3, flat: b1-101, transport: mqtt, heartbeat: 1h}
timeline:
  - {at: 5m, device: door-101, action: case_open}
  - {at: 3h}
expect:
  - {alarm: tamper, flat: b1-101, count: 1}
"""


async def test_the_demo_serves_the_console_and_its_session_lasts(tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_text(SCENARIO)
    lines = []
    run = asyncio.ensure_future(run_scenario(path, out=lines.append, workdir=tmp_path / "run",
                                             pace=4.0, console={"host": "127.0.0.1", "port": 0}))
    for _ in range(500):
        found = [m for m in (re.search(r"console: (http://\S+)  log in as (\S+) / (\S+)", line)
                             for line in lines) if m]
        if found or run.done():
            break
        await asyncio.sleep(0.02)
    assert found, lines[:5]
    base, account, password = found[0].group(1).rstrip("/"), found[0].group(2), found[0].group(3)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(base + "/") as r:
            assert r.status == 200 and "text/html" in r.headers["Content-Type"]
        async with session.post(base + "/api/login", json={"account": account,
                                                           "password": password}) as r:
            assert r.status == 200, await r.text()
        # more than the 30 min a session may stay idle passes on the community's
        # clock (4 s of wall time an hour)...
        while not any(line.startswith("+01:") for line in lines) and not run.done():
            await asyncio.sleep(0.05)
        assert not run.done()
        # ...and the session still holds: it runs on the wall clock
        async with session.get(base + "/api/alarms") as r:
            assert r.status == 200, await r.text()
            alarms = (await r.json())["alarms"]
        assert [a["type"] for a in alarms] == ["tamper"]
    ok, _ = await run
    assert ok
