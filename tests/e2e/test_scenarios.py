"""Every shipped scenario runs end to end: real brokers, the unmodified
firmware in the simulator, the hub on the virtual clock, alarms read back from
the upstream broker."""
import json
from pathlib import Path

import pytest

from simulator.runner import run_scenario

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_shipped_scenario_passes(path, tmp_path):
    lines = []
    ok, run = await run_scenario(path, out=lines.append, workdir=tmp_path)
    assert ok, "\n".join(lines[-40:])
    assert any(line.startswith("PASS") for line in lines)


async def test_a_wrong_expectation_fails_the_run(tmp_path):
    text = (Path(SCENARIOS[0]).parent / "inactivity_basic.yaml").read_text()
    # the alarm comes at 12h11m; claim it must come an hour earlier
    bad = text.replace("between: [12h11m, 12h12m]", "between: [11h11m, 11h12m]")
    assert bad != text
    path = tmp_path / "wrong.yaml"
    path.write_text(bad)
    lines = []
    ok, run = await run_scenario(path, out=lines.append, workdir=tmp_path / "run")
    assert not ok
    assert any(line.startswith("FAIL  alarm inactivity") for line in lines)
    assert len(run.failures) == 1


async def test_inactivity_alarm_document(tmp_path):
    path = Path(SCENARIOS[0]).parent / "inactivity_basic.yaml"
    ok, run = await run_scenario(path, out=lambda line: None, workdir=tmp_path)
    assert ok
    alarms = run.upstream_alarms()
    assert len(alarms) == 1
    t, doc = alarms[0]
    assert doc["schema"] == "anju.alarm/1"
    assert doc["type"] == "inactivity" and doc["state"] == "raised" and doc["seq"] == 1
    assert (doc["site"], doc["building"], doc["flat"]) == ("sunrise", "b1", "b1-101")
    assert doc["resident"] == {"id": "r-101", "name": "Wang Lan"}
    assert doc["device"] == "door-101"
    assert doc["last_event"]["type"] == "door" and doc["last_event"]["state"] == "closed"
    assert doc["detail"]["threshold_s"] == 12 * 3600
    assert doc["detail"]["silent_for_s"] == 12 * 3600
    # raised 12 h after the door closed at 00:11
    assert abs(t - (11 * 60 + 12 * 3600)) < 5


async def test_devices_and_hub_log_in_with_their_own_accounts(tmp_path):
    """The site broker runs the generated configuration (no anonymous clients,
    the ACL): the firmware on MicroPython logs in as itself with the password
    from its config.json, receives the hub's interconnect commands on its own
    `cmd` topic, and nothing anyone publishes is denied."""
    import re
    path = Path(SCENARIOS[0]).parent / "smoke_interconnect.yaml"
    lines = []
    ok, run = await run_scenario(path, out=lines.append, workdir=tmp_path)
    assert ok, "\n".join(lines[-40:])
    assert run.hub.components and any(getattr(c, "sent", None) for c in run.hub.components)
    log = (tmp_path / "broker-site" / "mosquitto.log").read_text()
    logins = re.findall(r"New client connected from \S+ as (\S+) \(p\d, c\d, k\d+(?:, u'([^']*)')?\)",
                        log)
    assert logins and all(user for _, user in logins), "an anonymous client got in"
    devices = {"smoke-101a", "smoke-101b", "smoke-102"}
    assert {client for client, user in logins if client == user} >= devices
    assert {user for client, user in logins if client.startswith("anju-hub-")} == {"hub-smoke-demo"}
    assert "Denied" not in log
    # what the device read: its password, the one the broker's account has
    config = json.loads((tmp_path / "devices" / "smoke-102" / "stage" / "config.json").read_text())
    generated = json.loads((tmp_path / "broker-site" / "config" / "passwords.json").read_text())
    assert config["mqtt"]["password"] == generated["passwords"]["smoke-102"]
