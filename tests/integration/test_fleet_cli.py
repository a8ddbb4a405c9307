"""`anju fleet update|status` (host_tools/fleet_cli.py) against a real hub:
HubService with `hub.ota`, its HTTP API and its OTA component on a private
broker running the site's generated configuration (logins and ACL). A device's
report is published as that device, on its own `ota/up` topic; the hub's
acknowledgement comes back on its `ota/down`."""
import asyncio
import json
import queue

import paho.mqtt.client as paho
import pytest

from host_tools import cli, release as host_release
from hub.ota import wire
from simulator import loader
from simulator.forge import make_frame
from tests.authkit import bearer
from tests.integration.hubkit import KEY, SITE_ID, publish_frame, site, start_hub, wait_for

pytestmark = pytest.mark.broker
tx = loader.core("anju.ota.transfer")


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    work = tmp_path_factory.mktemp("rel")
    pub = host_release.keygen(work / "key")
    host_release.keygen(work / "other")
    host_release.build("door_sensor", "1.1.0", work / "key" / host_release.KEY_FILE, work / "good")
    host_release.build("door_sensor", "1.1.0", work / "other" / host_release.KEY_FILE,
                       work / "foreign")
    return pub, work / "good", work / "foreign"


@pytest.fixture
async def hub(tmp_path, releases, make_broker, make_site_broker, monkeypatch):
    cfg = site(extra="hub: {ota: {release_pubkey: %s}}" % releases[0])
    h = await start_hub(tmp_path / "hub.db", make_site_broker(cfg), make_broker("upstream"),
                        site_cfg=cfg)
    yield h
    await h.stop()


async def anju(capsys, *argv):
    code = await asyncio.to_thread(cli.main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _as(monkeypatch, hub, role):
    monkeypatch.setenv("ANJU_TOKEN", bearer(hub, role)["Authorization"].split()[1])


def report_as_device(broker, device, counter, body, mtype=None, answers=2):
    """Publish a FW_REPORT (or `mtype`) as `device`; the messages the hub answers with."""
    got = queue.Queue()
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="dev-" + device)
    login = broker.login(device)
    c.username_pw_set(login["username"], login["password"])
    c.on_message = lambda cl, u, m: got.put(bytes(m.payload))
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        c.subscribe("anju/%s/%s/ota/down" % (SITE_ID, device), qos=1)[1]
        c.publish("anju/%s/%s/ota/up" % (SITE_ID, device),
                  make_frame(KEY, device, mtype or tx.T_FW_REPORT, counter, body),
                  qos=1).wait_for_publish(5)
        return [got.get(timeout=10) for _ in range(answers)]
    finally:
        c.disconnect()
        c.loop_stop()


async def test_update_publishes_a_checked_release_and_status_shows_who_is_behind(
        hub, releases, capsys, monkeypatch):
    _pub, good, foreign = releases
    url = "http://127.0.0.1:%d" % hub.http.port
    _as(monkeypatch, hub, "read_only")
    code, _, err = await anju(capsys, "fleet", "update", "--release", str(good), "--devices",
                              "door-101", "--window", "02:00-05:00", "--hub", url)
    assert code == 1 and "403" in err
    _as(monkeypatch, hub, "installer")
    code, _, err = await anju(capsys, "fleet", "update", "--release", str(foreign), "--devices",
                              "door-101", "--window", "02:00-05:00", "--hub", url)
    assert code == 1 and "signature" in err and hub.ota.book.releases() == []
    code, _, err = await anju(capsys, "fleet", "update", "--release", str(good), "--devices",
                              "door-101", "--window", "2-5", "--hub", url)
    assert code == 1 and "window" in err and hub.ota.book.target("door-101") is None
    code, _, err = await anju(capsys, "fleet", "update", "--release", str(good), "--devices",
                              "door-101,door-999", "--window", "02:00-05:00", "--hub", url)
    assert code == 1 and "door-999" in err and hub.ota.book.target("door-101") is None
    code, out, err = await anju(capsys, "fleet", "update", "--release", str(good), "--devices",
                                "door-101", "--window", "02:00-05:00", "--hub", url)
    assert code == 0, err
    (rel,) = hub.ota.book.releases()
    assert "1.1.0" in out and rel["id"] in out
    assert hub.ota.book.target("door-101")["state"] == "waiting"
    # the device says what it runs; the hub stores it, then acknowledges
    body = tx.report_body((1, 0, 0), "a", False, tx.IDLE, 0, [((1, 0, 5), tx.FAIL_CRASHED)])
    answers = await asyncio.to_thread(report_as_device, hub.site_broker, "door-101", 9, body)
    assert answers[0] == wire.ack(KEY, "door-101", 9)
    assert answers[1][:1] in (b"O", b"N")  # an offer only inside 02:00-05:00 UTC
    code, out, _ = await anju(capsys, "fleet", "status", "--release", rel["id"], "--json",
                              "--hub", url)
    doc = json.loads(out)
    dev = {d["device"]: d for d in doc["devices"]}
    assert code == 0 and dev["door-101"]["behind"] is True and dev["door-102"]["behind"] is None
    assert dev["door-101"]["firmware"]["version"] == "1.0.0"
    assert dev["door-101"]["firmware"]["failed_updates"][0]["version"] == "1.0.5"
    code, out, _ = await anju(capsys, "fleet", "status", "--hub", url)
    assert code == 0 and "door-101" in out and "1.0.5 crashed" in out
    # the device API shows it beside the state the device reported
    import struct
    import urllib.request
    publish_frame(hub.site_broker, "door-101",
                  make_frame(KEY, "door-101", 0x13, 10, struct.pack(">BBHH", 0, 90, 2900, 0)))
    await wait_for(lambda: hub.store.device_state("door-101") is not None)
    req = urllib.request.Request(url + "/api/devices/door-101", headers=bearer(hub, "read_only"))
    doc = json.loads(await asyncio.to_thread(lambda: urllib.request.urlopen(req).read()))
    assert doc["firmware"]["version"] == "1.0.0" and doc["firmware"]["slot"] == "a"


async def test_withdraw_stops_an_update_under_way_and_status_shows_a_stall(
        hub, releases, capsys, monkeypatch):
    import datetime
    import time
    _pub, good, _foreign = releases
    url = "http://127.0.0.1:%d" % hub.http.port
    _as(monkeypatch, hub, "installer")
    local = datetime.datetime.now(hub.ota.tz)
    window = "%s-%s" % ((local - datetime.timedelta(hours=1)).strftime("%H:%M"),
                        (local + datetime.timedelta(hours=2)).strftime("%H:%M"))
    code, _, err = await anju(capsys, "fleet", "update", "--release", str(good), "--devices",
                              "door-101", "--window", window, "--hub", url)
    assert code == 0, err
    (rel,) = hub.ota.book.releases()
    idle = tx.report_body((1, 0, 0), "a", False, tx.IDLE, 0, [])
    answers = await asyncio.to_thread(report_as_device, hub.site_broker, "door-101", 5, idle)
    assert answers[1][:1] == b"O" and hub.ota.book.target("door-101")["state"] == "offered"
    code, out, _ = await anju(capsys, "fleet", "status", "--json", "--hub", url)
    dev = {d["device"]: d for d in json.loads(out)["devices"]}
    assert dev["door-101"]["target"]["stalled_s"] is None
    # silent for five hours in the middle of its update (door-101's heartbeat is
    # at most an hour here): stalled, the state kept for when it comes back
    five_h_ago = time.time() - 5 * 3600
    hub.ota._last_word["door-101"] = five_h_ago
    hub.ota.book.set_target_state("door-101", "fetching", at=five_h_ago)
    code, out, _ = await anju(capsys, "fleet", "status", "--json", "--hub", url)
    target = {d["device"]: d for d in json.loads(out)["devices"]}["door-101"]["target"]
    assert target["state"] == "fetching" and 5 * 3600 <= target["stalled_s"] < 5 * 3600 + 60
    code, out, _ = await anju(capsys, "fleet", "status", "--hub", url)
    assert code == 0 and "fetching (0%), stalled 5h00m" in out
    # refused: a read-only account, an unknown device, a device with nothing under way
    _as(monkeypatch, hub, "read_only")
    code, _, err = await anju(capsys, "fleet", "withdraw", "--devices", "door-101", "--hub", url)
    assert code == 1 and "403" in err
    _as(monkeypatch, hub, "installer")
    code, _, err = await anju(capsys, "fleet", "withdraw", "--devices", "door-101,door-999",
                              "--hub", url)
    assert code == 1 and "door-999" in err
    code, _, err = await anju(capsys, "fleet", "withdraw", "--devices", "door-102", "--hub", url)
    assert code == 1 and "door-102 has no update under way" in err
    assert hub.ota.book.target("door-101")["state"] == "fetching"
    code, out, err = await anju(capsys, "fleet", "withdraw", "--devices", "door-101",
                                "--hub", url)
    assert code == 0 and "door-101" in out, err
    target = hub.ota.book.target("door-101")
    assert target["state"] == "withdrawn" and target["detail"].startswith("withdrawn by ")
    # the device asks for its next chunk: an error, so it drops its copy
    req = tx.chunk_request_body(bytes.fromhex(rel["id"]), 0, 0, 512)
    (answer,) = await asyncio.to_thread(report_as_device, hub.site_broker, "door-101", 6, req,
                                        tx.T_CHUNK_REQ, 1)
    assert tx.parse_down(answer)[0] == "error"
    # and its next report is acknowledged with nothing offered
    answers = await asyncio.to_thread(report_as_device, hub.site_broker, "door-101", 7, idle)
    assert answers == [wire.ack(KEY, "door-101", 7), wire.NONE]
    assert hub.ota.book.target("door-101")["state"] == "withdrawn"
    code, _, err = await anju(capsys, "fleet", "withdraw", "--devices", "door-101", "--hub", url)
    assert code == 1 and "its target is withdrawn" in err
