"""A fleet of door sensors updated over the air through the hub (docs/ota.md):
the scenario that tests/e2e/test_ota.py and bench/ota_bench.py
(`ota_100_devices_s`) run with 100 sensors, 5 of them losing power.

Two signed releases: 1.1.0 (good) for two thirds of the sensors, 1.2.0 (its
app raises at import) for the rest. The window opens 10 minutes after the
start; sensors wake every 15 minutes. `cuts` sensors of the good group get a
power cut armed at a flash write of the wake that fetches, are powered on
again at 40 minutes and resume. The run ends at 1 h 10 min.
"""
import shutil
import textwrap
import time
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parents[1] / "firmware"
FLEET_DEVICES = 100
FLEET_CUTS = 5
CUT_AT_FLASH_OP = 40  # past the boot's own writes, inside the chunks (measured: docs/ota.md)


class FleetResult:
    pass


def make_releases(work):
    """(public key hex, good release dir, crashing release dir)."""
    from host_tools import release
    pub = release.keygen(work / "key")
    key = work / "key" / release.KEY_FILE
    good = work / "rel-1.1.0"
    release.build("door_sensor", "1.1.0", key, good)
    crash_fw = work / "fw-crash"
    shutil.copytree(FIRMWARE, crash_fw, ignore=shutil.ignore_patterns("__pycache__"))
    app = crash_fw / "door_sensor" / "main.py"
    app.write_text('raise RuntimeError("this release fails at boot")\n' + app.read_text())
    crash = work / "rel-1.2.0"
    release.build("door_sensor", "1.2.0", key, crash, firmware=crash_fw)
    return pub, good, crash


def scenario_text(n, pub, cut_ids):
    flats = "\n".join("      - {id: f-%03d}" % i for i in range(n))
    devices = "\n".join("  - {id: door-%03d, kind: door_sensor, board: esp32, flat: f-%03d, "
                        "transport: mqtt, heartbeat: 15m}" % (i, i) for i in range(n))
    steps = ["  - {at: 12m, device: %s, action: flash_cut, value: %d}" % (d, CUT_AT_FLASH_OP)
             for d in cut_ids]
    steps += ["  - {at: 40m, device: %s, action: insert}" % d for d in cut_ids]
    steps.append("  - {at: 1h10m}")
    return textwrap.dedent("""\
        name: OTA of %(n)d door sensors, power cuts mid-transfer, a release that crashes
        site: {id: ota-fleet, name: OTA fleet}
        hub: {ota: {release_pubkey: %(pub)s}}
        buildings:
          - id: b1
            flats:
        %(flats)s
        devices:
        %(devices)s
        timeline:
        %(steps)s
        expect:
          - {no_alarm: inactivity}
        """) % {"n": n, "pub": pub, "flats": flats, "devices": devices,
                "steps": "\n".join(steps)}


async def run(work, devices=FLEET_DEVICES, cuts=FLEET_CUTS):
    from hub.ota import book as ota_book, release as ota_release
    from simulator.runner import run_scenario
    work = Path(work)
    pub, good_dir, crash_dir = make_releases(work)
    ids = ["door-%03d" % i for i in range(devices)]
    crashing = ids[2::3]
    good = [d for d in ids if d not in crashing]
    cut = good[:cuts]
    path = work / "ota.yaml"
    path.write_text(scenario_text(devices, pub, cut))
    res = FleetResult()
    res.good, res.crashing, res.cut = good, crashing, cut
    sizes = {}

    def on_start(run, sim):
        import datetime
        ota = run.hub.ota
        t0 = sim.clock.now()
        utc = datetime.timezone.utc
        start = datetime.datetime.fromtimestamp(t0 + 600, utc).strftime("%H:%M")
        end = datetime.datetime.fromtimestamp(t0 + 3 * 3600, utc).strftime("%H:%M")
        for rel_dir, group in ((good_dir, good), (crash_dir, crashing)):
            if not group:
                continue
            info = ota.publish_release(ota_release.to_upload(rel_dir))
            ota.update(info["id"], group, "%s-%s" % (start, end))
            for did in group:
                sizes[did] = info["bytes"]

    lines = []
    t = time.monotonic()
    ok, scenario = await run_scenario(path, out=lines.append, workdir=work / "run",
                                      on_start=on_start)
    res.wall_s = time.monotonic() - t
    res.ok, res.lines, res.sim = ok, lines, scenario.sim
    res.served = dict(scenario.hub.ota.served_to)
    res.release_bytes = sizes
    book = ota_book.OtaBook(ota_book.path_for(work / "run" / "hub.db"))
    try:
        res.hub_status = {did: {"firmware": book.firmware(did), "target": book.target(did)}
                          for did in ids}
    finally:
        book.close()
    res.peak_heap = max(d.peak_heap for d in scenario.sim.devices.values())
    return res
