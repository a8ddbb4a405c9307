"""`anju alarms ...` (host_tools/alarms_cli.py) against a real hub: HubService
with its HTTP API on private brokers. The CLI runs in a worker thread, as it
would in its own process, while the hub's loop keeps serving."""
import asyncio
import csv
import io
import json

import pytest

from host_tools import cli, mosquitto
from tests.authkit import bearer
from tests.integration.hubkit import raise_alarm, site, start_hub

pytestmark = pytest.mark.broker


@pytest.fixture
async def hub(tmp_path, make_broker, make_site_broker, monkeypatch):
    h = await start_hub(tmp_path / "hub.db", make_site_broker(site()), make_broker("upstream"))
    monkeypatch.setenv("ANJU_TOKEN", bearer(h, "police_liaison")["Authorization"].split()[1])
    yield h
    await h.stop()


async def anju(capsys, *argv):
    code = await asyncio.to_thread(cli.main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def url(hub):
    return "http://127.0.0.1:%d" % hub.http.port


async def test_list_show_act_and_audit(hub, capsys, tmp_path):
    a = raise_alarm(hub, "tamper:door-101")
    b = raise_alarm(hub, "tamper:door-102")
    code, out, _ = await anju(capsys, "alarms", "act", a["id"], "acknowledge", "--note", "on my way",
                              "--actor", "guard-zhao", "--hub", url(hub))
    assert code == 0 and json.loads(out)["outcome"] == "applied"
    assert hub.store.alarm(a["id"])["state"] == "acknowledged"
    code, out, _ = await anju(capsys, "alarms", "list", "--state", "raised", "--hub", url(hub))
    assert code == 0 and b["id"] in out and a["id"] not in out
    code, out, _ = await anju(capsys, "alarms", "show", a["id"], "--hub", url(hub))
    doc = json.loads(out)
    assert code == 0 and [t["actor"] for t in doc["transitions"]] == ["rules", "test-police_liaison/guard-zhao"]
    assert doc["transitions"][1]["note"] == "on my way"
    target = tmp_path / "audit.csv"
    code, _, err = await anju(capsys, "alarms", "audit", "--output", str(target), "--hub", url(hub))
    assert code == 0 and str(target) in err
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [(r["alarm_id"], r["state"], r["actor"]) for r in rows if r["alarm_id"] == a["id"]] == [
        (a["id"], "raised", "rules"), (a["id"], "acknowledged", "test-police_liaison/guard-zhao")]
    code, out, _ = await anju(capsys, "alarms", "audit", "--format", "json", "--hub", url(hub))
    assert code == 0 and json.loads(out)["total"] == 3


async def test_retry_with_the_same_command_id_is_safe(hub, capsys):
    a = raise_alarm(hub, "tamper:door-101")
    argv = ("alarms", "act", a["id"], "dispatch", "--command-id", "retry-1", "--hub", url(hub))
    assert (await anju(capsys, *argv))[0] == 0
    code, out, _ = await anju(capsys, *argv)
    assert code == 0 and json.loads(out)["outcome"] == "duplicate"
    assert hub.store.alarm(a["id"])["seq"] == 2


@pytest.mark.parametrize(("argv", "expected", "message"), [
    (("act", "ALARM", "dispatch"), 1, "out_of_order"),    # after the acknowledgement below
    (("act", "no-such", "resolve"), 1, "unknown_alarm"),
    (("show", "no-such"), 1, "unknown_alarm"),
])
async def test_refusals_exit_1_with_the_reason(hub, capsys, argv, expected, message):
    a = raise_alarm(hub, "tamper:door-101")
    await anju(capsys, "alarms", "act", a["id"], "acknowledge", "--hub", url(hub))
    argv = [x.replace("ALARM", a["id"]) for x in argv]
    code, _, err = await anju(capsys, "alarms", *argv, "--hub", url(hub))
    assert code == expected and message in err
    assert hub.store.alarm(a["id"])["state"] == "acknowledged"


@pytest.mark.parametrize("argv", [("list",), ("show", "x"), ("act", "x", "resolve"), ("audit",)])
async def test_unreachable_hub_exits_2_with_a_clear_error(capsys, argv):
    dead = "http://127.0.0.1:%d" % mosquitto.free_port()
    code, out, err = await anju(capsys, "alarms", *argv, "--hub", dead, "--timeout", "2")
    assert code == 2 and out == ""
    assert "cannot reach the hub at %s" % dead in err and "Traceback" not in err
