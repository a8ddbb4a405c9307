"""The visitor service in a running hub: a resident token bound to one flat
registers a visit over HTTP, the property office approves it, the pass comes
back to the resident, the police platform's broker (a real Mosquitto)
receives the visit record once with the ID number masked; a gate reader and
a vehicle barrier, logged in to the site broker under the generated ACL,
report signed scans and get signed open / refuse commands; forged and
replayed reports change nothing; revoking stops the QR at once. Roles: a
read-only account sees no visit, staff sees them masked, the police liaison
in full."""
import asyncio
import hashlib
import hmac
import http.client
import json
import queue
import time
import uuid

import paho.mqtt.client as paho
import pytest

from hub.config import site as config
from hub.config import yamlfile
from hub.registry import kek
from hub.visitors import passcode, readers
from tests.authkit import bearer
from tests.integration import hubkit

pytestmark = pytest.mark.broker

GOOD_ID = "11010519491231002X"
QR_KEY = bytes(range(100, 132))
BAR_KEY = bytes(range(140, 172))
GATE_LOCK_KEY = bytes(range(60, 92))


def site_cfg(kek_file):
    extra = ("  - {id: lock-gate, kind: smart_lock, board: esp32c3, entrance: gate-north, "
             "transport: mqtt, frame_key: %s}\n" % GATE_LOCK_KEY.hex())
    text = hubkit.SITE_YAML % {"inactivity": "12h", "key": hubkit.KEY.hex(), "extra": extra}
    text += """
hub: {kek_file: %s}
visitors:
  retention_days: 30
  readers:
    - {id: gate-north-qr, kind: qr_reader, entrance: gate-north, key: %s}
    - {id: barrier-east, kind: barrier, entrance: car-east, key: %s}
""" % (kek_file, QR_KEY.hex(), BAR_KEY.hex())
    return config.parse_site(yamlfile.loads(text, "site.yaml"))


def call(hub, method, path, body=None, role="staff", headers=None):
    data = None if body is None else json.dumps(body).encode()
    h = dict(headers if headers is not None else bearer(hub, role))
    if data is not None:
        h["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", hub.http.port, timeout=10)
    try:
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


class ReaderPeer:
    """A gate reader's MQTT bridge: its own login, its cmd topic, signed reports."""

    def __init__(self, broker, reader_id, key):
        self.id, self.key = reader_id, key
        self.got = got = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id="%s-%s" % (reader_id, uuid.uuid4().hex[:6]))
        login = broker.login(reader_id)
        assert login, "the generated broker configuration has an account for the reader"
        self.client.username_pw_set(login["username"], login["password"])
        ready = []
        self.client.on_subscribe = lambda *a: ready.append(1)
        self.client.on_message = lambda c, u, m: got.put(json.loads(m.payload))
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe("anju/%s/%s/cmd" % (hubkit.SITE_ID, reader_id), qos=1)
        end = time.monotonic() + 5
        while not ready and time.monotonic() < end:
            time.sleep(0.02)
        assert ready
        self.counter = 0

    def report(self, kind, value, direction="in", counter=None, forge=False):
        self.counter = self.counter + 1 if counter is None else counter
        doc = {"reader": self.id, "counter": self.counter, "at": int(time.time()), "kind": kind,
               "value": value, "direction": direction}
        doc["mac"] = readers.sign(bytes(32) if forge else self.key, readers.REPORT_LABEL, doc)
        self.client.publish("anju/%s/%s/visitor" % (hubkit.SITE_ID, self.id),
                            json.dumps(doc).encode(), qos=1).wait_for_publish(5)

    def answer(self, timeout=10.0):
        doc = self.got.get(timeout=timeout)
        body = {k: v for k, v in doc.items() if k != "mac"}
        want = hmac.new(self.key, b"anju-visitor-cmd\x00" + json.dumps(
            body, sort_keys=True, separators=(",", ":")).encode(), hashlib.sha256).digest()[:16]
        assert hmac.compare_digest(bytes.fromhex(doc["mac"]), want)
        return doc

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


async def test_visit_from_resident_to_gate(tmp_path, make_site_broker, upstream_broker):
    cfg = site_cfg(kek.create(tmp_path / "kek"))
    broker = make_site_broker(cfg)
    hub = await hubkit.start_hub(tmp_path / "hub.db", broker, upstream_broker, site_cfg=cfg)
    platform = await asyncio.to_thread(hubkit.Platform, upstream_broker)
    gate = await asyncio.to_thread(ReaderPeer, broker, "gate-north-qr", QR_KEY)
    barrier = await asyncio.to_thread(ReaderPeer, broker, "barrier-east", BAR_KEY)
    try:
        await hub.visitors.readers.wait_ready(10)
        # the office issues a token for flat b1-101
        status, doc = await asyncio.to_thread(call, hub, "POST", "/api/visitors/resident-tokens",
                                              {"flat": "b1-101"})
        assert status == 201 and doc["token"].startswith("avr_")
        resident = {"Authorization": "Bearer " + doc["token"]}
        now = time.time()
        body = {"flat": "b1-101", "name": "张伟", "phone": "13812345678", "id_number": GOOD_ID,
                "plate": "粤BD12345", "purpose": "探亲", "valid_from": now,
                "valid_until": now + 4 * 3600, "entry": "single",
                "entrances": ["gate-north", "car-east"]}
        status, err = await asyncio.to_thread(call, hub, "POST", "/api/resident/visits",
                                              dict(body, flat="b1-102"), headers=resident)
        assert status == 403
        status, err = await asyncio.to_thread(call, hub, "POST", "/api/resident/visits",
                                              dict(body, id_number=GOOD_ID[:-1] + "1"),
                                              headers=resident)
        assert status == 400 and err["error"] == "invalid" and "id_number" in err["detail"]
        assert err["field"] == "id_number"
        status, err = await asyncio.to_thread(call, hub, "POST", "/api/resident/visits",
                                              dict(body, entrances=["gate-north", "gate-x"]),
                                              headers=resident)
        assert (status, err["field"]) == (400, "entrances[1]")
        status, err = await asyncio.to_thread(call, hub, "GET", "/api/resident/visits",
                                              headers={"Authorization": "Bearer avr_nope"})
        assert status == 401
        status, visit = await asyncio.to_thread(call, hub, "POST", "/api/resident/visits", body,
                                                headers=resident)
        assert status == 201 and visit["state"] == "requested"
        assert visit["id_number"] == "110***********002X"
        vid = visit["id"]
        # roles: read-only sees nothing, staff masked, the police liaison in full
        assert (await asyncio.to_thread(call, hub, "GET", "/api/visitors/visits",
                                        role="read_only"))[0] == 403
        status, listed = await asyncio.to_thread(call, hub, "GET", "/api/visitors/visits")
        assert status == 200 and [v["id"] for v in listed["visits"]] == [vid]
        assert listed["visits"][0]["phone"] == "138****5678"
        assert (await asyncio.to_thread(call, hub, "GET", "/api/visitors/visits/%s?personal=1"
                                        % vid))[0] == 403
        status, full = await asyncio.to_thread(call, hub, "GET", "/api/visitors/visits/%s"
                                               "?personal=1" % vid, role="police_liaison")
        assert status == 200 and full["id_number"] == GOOD_ID
        assert full["history"][-1]["action"] == "personal_data_read"
        # a resident cannot approve; the office does
        assert (await asyncio.to_thread(call, hub, "POST", "/api/visitors/visits/%s/approve"
                                        % vid, {}, headers=resident))[0] == 401
        status, visit = await asyncio.to_thread(call, hub, "POST",
                                                "/api/visitors/visits/%s/approve" % vid, {})
        assert status == 200 and visit["state"] == "approved"
        status, p = await asyncio.to_thread(call, hub, "GET", "/api/resident/visits/%s/pass"
                                            % vid, headers=resident)
        assert status == 200 and [c["device"] for c in p["codes"]] == ["lock-gate"]
        assert len(p["codes"][0]["digits"]) == 10 and p["qr"].startswith("AV1")
        # the platform gets the visit record once, the ID number masked
        await hubkit.wait_for(lambda: platform.on("visits"), what="visit record upstream")
        (record,) = platform.on("visits")
        assert record["id"] == "visit-" + vid and record["visitor"]["id_number"] == \
            "110***********002X" and record["flat"] == "b1-101"
        # the gate: open once (one-time), then refused; forged and replayed change nothing
        await asyncio.to_thread(gate.report, "qr", p["qr"])
        ans = await asyncio.to_thread(gate.answer)
        assert ans["open"] is True and ans["ref"] == gate.counter and ans["reason"] == "ok"
        await asyncio.to_thread(gate.report, "qr", p["qr"], "in", None, True)   # forged
        await asyncio.to_thread(gate.report, "qr", p["qr"], "in", 1)            # replayed
        await hubkit.wait_for(lambda: hub.visitors.readers.rejected.get("replayed"))
        assert hub.visitors.readers.rejected.get("forged") == 1
        assert gate.got.empty()
        await asyncio.to_thread(gate.report, "qr", p["qr"], "in", 10)
        ans = await asyncio.to_thread(gate.answer)
        assert ans["open"] is False and ans["reason"] == "spent"
        # the barrier: the plate opens; an unknown plate is a logged visitor attempt
        await asyncio.to_thread(barrier.report, "plate", "粤BD12345")
        assert (await asyncio.to_thread(barrier.answer))["open"] is True
        await asyncio.to_thread(barrier.report, "plate", "粤B99999")
        assert (await asyncio.to_thread(barrier.answer))["reason"] == "unknown"
        assert hub.store.access_log("visitor_plate_unknown")
        # revoking stops the plate at once; the lock's code goes as its VISITOR_REVOKE
        status, visit = await asyncio.to_thread(call, hub, "POST",
                                                "/api/resident/visits/%s/revoke" % vid, {},
                                                headers=resident)
        assert status == 200 and visit["state"] == "revoked"
        await asyncio.to_thread(barrier.report, "plate", "粤BD12345", "in")
        assert (await asyncio.to_thread(barrier.answer))["reason"] == "revoked"
        assert hub.visitors.book.pending_code_revocations() == []
        revokes = hub.store.query("SELECT credential, requested_by FROM lock_commands WHERE "
                                  "device_id='lock-gate' AND name='visitor_revoke'")
        code = next(c for c in p["codes"] if c["device"] == "lock-gate")
        slot = (code["valid_from"] - passcode.MP_EPOCH_OFFSET) // passcode.SLOT_S
        assert len(revokes) == 1 and revokes[0][0] == passcode.ident(
            slot, int(code["digits"]) // passcode.PAYLOAD_MOD)
        assert len(platform.on("visits")) == 1
    finally:
        for peer in (gate, barrier):
            await asyncio.to_thread(peer.close)
        await asyncio.to_thread(platform.close)
        await hub.stop()
