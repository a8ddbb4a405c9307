"""Alarm actions, audit export and metrics over the hub's HTTP API
(docs/alarms.md) against a running HubService on real brokers.

Requests run in a worker thread: the handlers reach the store through the
hub's loop, which must keep running meanwhile.
"""
import asyncio
import csv
import http.client
import io
import json

import pytest

from tests.authkit import bearer
from tests.integration.hubkit import (Platform, door_frame, publish_frame, raise_alarm, site,
                                      start_hub, wait_for)

pytestmark = pytest.mark.broker


def _request(port, method, path, body=None, auth=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        conn.request(method, path, body=data, headers={"Content-Type": "application/json",
                                                       **(auth or {})})
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.getheader("Content-Type")
    finally:
        conn.close()


async def call(hub, method, path, body=None):
    status, data, ctype = await asyncio.to_thread(_request, hub.http.port, method, path, body,
                                                  bearer(hub))
    return status, (json.loads(data) if ctype == "application/json" else data.decode()), ctype


@pytest.fixture
async def hub_rig(tmp_path, make_broker, make_site_broker):
    made = []

    async def start(site_cfg=None):
        site_broker, upstream = make_site_broker(site_cfg or site()), make_broker("upstream")
        platform = Platform(upstream)
        hub = await start_hub(tmp_path / "hub.db", site_broker, upstream, site_cfg)
        made.append((hub, platform))
        return hub, platform

    yield start
    for hub, platform in made:
        platform.close()
        await hub.stop()


def metric(text, name, **labels):
    """The value of one sample in a Prometheus exposition, or None."""
    want = ",".join('%s="%s"' % kv for kv in labels.items())
    key = "%s{%s}" % (name, want) if labels else name
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        sample, _, value = line.rpartition(" ")
        if sample == key:
            return float(value)
    return None


async def test_actions_apply_once_and_go_upstream(hub_rig):
    hub, platform = await hub_rig()
    alarm = raise_alarm(hub, "tamper:door-101")
    path = "/api/alarms/%s/actions" % alarm["id"]
    status, body, _ = await call(hub, "POST", path, {"action": "dispatch", "actor": "office-li",
                                                     "note": "guard sent", "command_id": "h1"})
    assert (status, body["outcome"], body["state"], body["seq"]) == (200, "applied", "dispatched", 2)
    # a retry of the same command changes nothing
    status, body, _ = await call(hub, "POST", path, {"action": "dispatch", "command_id": "h1"})
    assert (status, body["outcome"], body["seq"]) == (200, "duplicate", 2)
    status, body, _ = await call(hub, "POST", path, {"action": "resolve", "actor": "office-li",
                                                     "command_id": "h2"})
    assert (status, body["outcome"], body["seq"]) == (200, "applied", 3)
    status, body, _ = await call(hub, "POST", path, {"action": "acknowledge", "command_id": "h3"})
    assert (status, body["outcome"], body["state"]) == (409, "closed", "resolved")
    await wait_for(lambda: len(platform.alarm_versions(alarm["id"])) == 3, what="3 versions")
    assert platform.alarm_versions(alarm["id"]) == [(1, "raised"), (2, "dispatched"),
                                                    (3, "resolved")]
    status, body, _ = await call(hub, "GET", "/api/alarms/" + alarm["id"])
    assert status == 200 and body["alarm"]["state"] == "resolved"
    assert [(t["seq"], t["state"], t["actor"], t["note"]) for t in body["transitions"]] == [
        (1, "raised", "rules", None), (2, "dispatched", "test-admin/office-li", "guard sent"),
        (3, "resolved", "test-admin/office-li", None)]


@pytest.mark.parametrize(("path", "body", "status", "error"), [
    ("/api/alarms/nope/actions", {"action": "resolve", "command_id": "u1"}, 404, "unknown_alarm"),
    ("/api/alarms/ALARM/actions", {"action": "explode", "command_id": "u2"}, 400, "unknown_action"),
    ("/api/alarms/ALARM/actions", {"action": "resolve", "alarm_id": "other"}, 400, "bad_request"),
    ("/api/alarms/ALARM/actions", b"not json", 400, "bad_json"),
    ("/api/alarms/ALARM/actions", {"action": "resolve", "note": "x" * 17000}, 413,
     "payload_too_large"),
    ("/api/alarms/nope", None, 404, "unknown_alarm"),
    ("/api/audit?format=xml", None, 400, "bad_request"),
    ("/api/audit?since=yesterday", None, 400, "bad_request"),
    ("/api/audit?until=nan", None, 400, "bad_request"),
])
async def test_bad_requests_are_refused_and_change_nothing(hub_rig, path, body, status, error):
    hub, _ = await hub_rig()
    alarm = raise_alarm(hub, "tamper:door-101")
    method = "GET" if body is None else "POST"
    got, doc, _ = await call(hub, method, path.replace("ALARM", alarm["id"]), body)
    assert got == status
    assert doc.get("error", doc.get("reason", doc.get("outcome"))) == error
    assert hub.store.alarm(alarm["id"])["seq"] == 1


async def test_audit_exports_every_transition_as_json_and_csv(hub_rig):
    hub, _ = await hub_rig()
    a = raise_alarm(hub, "tamper:door-101")
    b = raise_alarm(hub, "tamper:door-102")
    for alarm_id, action, note in ((a["id"], "acknowledge", "=HYPERLINK(\"x\")"),
                                   (b["id"], "false_alarm", "cat, on the sensor"),
                                   (a["id"], "resolve", None)):
        status, _, _ = await call(hub, "POST", "/api/alarms/%s/actions" % alarm_id,
                                  {"action": action, "actor": "office-li", "note": note})
        assert status == 200
    status, doc, _ = await call(hub, "GET", "/api/audit?format=json")
    assert status == 200 and doc["total"] == 5
    rows = [(t["alarm_id"], t["seq"], t["state"], t["actor"]) for t in doc["transitions"]]
    assert sorted(rows) == sorted([(a["id"], 1, "raised", "rules"), (b["id"], 1, "raised", "rules"),
                                   (a["id"], 2, "acknowledged", "test-admin/office-li"),
                                   (b["id"], 2, "false_alarm", "test-admin/office-li"),
                                   (a["id"], 3, "resolved", "test-admin/office-li")])
    assert [t["at"] for t in doc["transitions"]] == sorted(t["at"] for t in doc["transitions"])
    status, text, ctype = await call(hub, "GET", "/api/audit?format=csv")
    assert status == 200 and ctype.startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(text)))
    assert [(r["alarm_id"], r["seq"], r["state"]) for r in table] == [
        (t["alarm_id"], str(t["seq"]), t["state"]) for t in doc["transitions"]]
    notes = {r["note"] for r in table}
    assert "cat, on the sensor" in notes  # quoted, not split
    assert "'=HYPERLINK(\"x\")" in notes  # never a live formula in a spreadsheet
    # time window: only what happened at or after the third transition
    cut = doc["transitions"][2]["at"]
    status, part, _ = await call(hub, "GET", "/api/audit?since=%r" % cut)
    assert [t["at"] >= cut for t in part["transitions"]] == [True] * part["total"]
    assert part["total"] == sum(1 for t in doc["transitions"] if t["at"] >= cut)
    status, none, _ = await call(hub, "GET", "/api/audit?until=2000-01-01T00:00:00")
    assert (status, none["total"]) == (200, 0)


async def test_metrics_follow_frames_alarms_commands_and_links(hub_rig):
    hub, platform = await hub_rig(site(inactivity="1s"))
    status, text, ctype = await call(hub, "GET", "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    assert metric(text, "anju_frames_accepted_total") == 0
    assert metric(text, "anju_upstream_connected") == 1
    assert metric(text, "anju_device_broker_connected") == 1
    assert metric(text, "anju_outbox_depth") == 0
    assert metric(text, "anju_frames_rejected_total", reason="bad_tag") is None
    broker = hub.site_broker
    await asyncio.to_thread(publish_frame, broker, "door-101", door_frame(1))
    await asyncio.to_thread(publish_frame, broker, "door-101",
                            door_frame(2, key=bytes(32)))  # forged
    await asyncio.to_thread(publish_frame, broker, "door-101", door_frame(1))  # repeated
    await wait_for(lambda: hub.mqtt_frames_seen == 3, what="three frames")
    status, text, _ = await call(hub, "GET", "/metrics")
    assert metric(text, "anju_frames_accepted_total") == 1
    assert metric(text, "anju_frames_rejected_total", reason="bad_tag") == 1
    assert metric(text, "anju_frames_rejected_total", reason="duplicate") == 1
    assert -1.0 < metric(text, "anju_rule_next_deadline_seconds", rule="inactivity") <= 1.0
    await wait_for(lambda: platform.on("alarms"), 8, "the inactivity alarm")
    alarm_id = platform.on("alarms")[0]["id"]
    status, text, _ = await call(hub, "GET", "/metrics")
    assert metric(text, "anju_alarms", state="raised", type="inactivity") == 1
    assert metric(text, "anju_rule_next_deadline_seconds", rule="inactivity") is None
    assert 0 < metric(text, "anju_rule_next_deadline_seconds", rule="escalation") <= 300
    for action in ("acknowledge", "acknowledge"):
        await call(hub, "POST", "/api/alarms/%s/actions" % alarm_id,
                   {"action": action, "command_id": "m1"})
    await call(hub, "POST", "/api/alarms/%s/actions" % alarm_id, {"action": "bogus"})
    status, text, _ = await call(hub, "GET", "/metrics")
    assert metric(text, "anju_alarms", state="raised", type="inactivity") is None
    assert metric(text, "anju_alarms", state="acknowledged", type="inactivity") == 1
    assert metric(text, "anju_commands_total", outcome="applied") == 1
    assert metric(text, "anju_commands_total", outcome="duplicate") == 1
    assert metric(text, "anju_commands_total", outcome="invalid") == 1
    assert metric(text, "anju_escalations_total") == 0
    # every sample line is well-formed exposition: name{labels} value
    for line in text.splitlines():
        if not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            assert name.startswith("anju_") and float(line.rpartition(" ")[2]) is not None


async def test_health_names_each_link(hub_rig):
    hub, _ = await hub_rig()
    status, body, _ = await call(hub, "GET", "/health")
    assert status == 200 and body["status"] == "ok"
    assert body["mqtt"] == {"connected": True} and body["upstream"] == {"connected": True}
    assert body["commands"] == {"connected": True, "subscribed": True}


async def test_a_webhook_only_hub_still_takes_actions_over_http(tmp_path, make_broker):
    # no MQTT upstream, so no command topic; the HTTP routes work all the same
    (tmp_path / "secret").write_bytes(b"0123456789abcdef0123")
    site_broker = make_broker("site")
    from hub.clock import SystemClock
    from hub.service import HubService
    hub = HubService(site(), tmp_path / "hub.db", SystemClock(),
                     {"host": site_broker.host, "port": site_broker.port}, {"enabled": False},
                     http={"port": 0},
                     webhook={"url": "https://127.0.0.1:9/alarms",
                              "secret_file": str(tmp_path / "secret")})
    await hub.start(connect_timeout=10)
    try:
        alarm = raise_alarm(hub, "tamper:door-101")
        status, body, _ = await call(hub, "POST", "/api/alarms/%s/actions" % alarm["id"],
                                     {"action": "acknowledge", "command_id": "w1"})
        assert (status, body["outcome"], body["seq"]) == (200, "applied", 2)
        status, text, _ = await call(hub, "GET", "/metrics")
        assert status == 200 and metric(text, "anju_commands_total", outcome="applied") == 1
        status, body, _ = await call(hub, "GET", "/health")
        assert status == 200 and "commands" not in body
    finally:
        await hub.stop()
