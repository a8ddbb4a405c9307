"""Lock commands end to end through a running hub: the HTTP API queues them,
the hub signs and publishes them on the lock's `cmd` topic (QoS 1) of a real
Mosquitto with the generated ACL, a paho client logged in as the lock receives
them and checks the tag independently; the lock's CMD_RESULT, published as a
real signed frame, confirms the credential. Role checks: a read-only account
is refused every change and the users list. A PIN never appears in an answer
or a log line."""
import asyncio
import hashlib
import hmac
import http.client
import json
import logging
import queue
import struct
import time
import uuid

import paho.mqtt.client as paho
import pytest

from anju import frame
from hub.verify import frames_lock as fl
from tests.authkit import bearer
from tests.integration import hubkit

pytestmark = pytest.mark.broker

LOCK = "lock-101"
LOCK_KEY = bytes(range(50, 82))
LOCKS = ("  - {id: lock-101, kind: smart_lock, board: esp32c3, flat: b1-101, transport: mqtt,"
         " frame_key: %s}" % LOCK_KEY.hex())
PIN = "918273"


def call(hub, method, path, body=None, role="admin"):
    data = None if body is None else json.dumps(body).encode()
    headers = dict(bearer(hub, role))
    if data is not None:
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", hub.http.port, timeout=10)
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


class LockPeer:
    """The lock's side of the broker: its own login, a subscription on its cmd
    topic, and the frames it publishes."""

    def __init__(self, broker):
        self.got = got = queue.Queue()  # the callbacks hold no reference to this object
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id="lock-" + uuid.uuid4().hex[:6])
        login = broker.login(LOCK)
        if login:
            self.client.username_pw_set(login["username"], login["password"])
        ready = []
        self.client.on_subscribe = lambda *a: ready.append(1)
        self.client.on_message = lambda c, u, m: got.put((m.topic, m.qos, m.payload))
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe("anju/%s/%s/cmd" % (hubkit.SITE_ID, LOCK), qos=1)
        end = time.monotonic() + 5
        while not ready and time.monotonic() < end:
            time.sleep(0.02)
        assert ready, "lock peer not subscribed"
        self.counter = 0

    def next_command(self, timeout=10.0):
        topic, qos, data = self.got.get(timeout=timeout)
        assert topic == "anju/%s/%s/cmd" % (hubkit.SITE_ID, LOCK) and qos == 1
        n = data[10]
        signed, tag = data[:11 + n], data[11 + n:]
        expect = hmac.new(LOCK_KEY, b"cmd\x00" + LOCK.encode() + b"\x00" + signed,
                          hashlib.sha256).digest()[:16]
        assert hmac.compare_digest(tag, expect)
        version, mtype, counter, device_time, length = struct.unpack_from(">BBIIB", data, 0)
        assert version == 0xA1 and length == len(data) - 27
        return mtype, counter, device_time, data[11:11 + n]

    def publish(self, mtype, body, clock=True):
        self.counter += 1
        now = int(time.time()) - 946684800 if clock else 0
        data = frame.encode(LOCK_KEY, LOCK.encode(), mtype, self.counter, now, body)
        self.client.publish("anju/%s/%s/event" % (hubkit.SITE_ID, LOCK), data,
                            qos=1).wait_for_publish(5)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


async def test_lock_commands_over_http_and_mqtt(tmp_path, make_site_broker, upstream_broker,
                                                caplog):
    caplog.set_level(logging.DEBUG, logger="anju")
    site_cfg = hubkit.site(extra=LOCKS)
    broker = make_site_broker(site_cfg)
    hub = await hubkit.start_hub(tmp_path / "hub.db", broker, upstream_broker, site_cfg=site_cfg)
    peer = await asyncio.to_thread(LockPeer, broker)
    try:
        # unlock: a signed LOCK_CTL reaches the lock
        before = int(time.time()) - 946684800
        status, body = await asyncio.to_thread(call, hub, "POST", "/api/locks/%s/actions" % LOCK,
                                               {"action": "unlock"})
        assert status == 202 and body["command"]["command"] == "lock_ctl"
        assert body["command"]["state"] == "queued"
        mtype, counter, device_time, cmd_body = await asyncio.to_thread(peer.next_command)
        assert (mtype, counter) == (0x28, body["command"]["counter"])
        assert abs(device_time - before) <= 5
        assert cmd_body[:4] == struct.pack(">HBB", 60, 2, 8)
        await hubkit.wait_for(lambda: hub.store.query(
            "SELECT state FROM lock_commands WHERE counter=?", (counter,))[0][0] == "sent")

        # a PIN for Wang Lan: USER_SET then CRED_SET, pending until confirmed
        status, body = await asyncio.to_thread(
            call, hub, "POST", "/api/locks/%s/credentials" % LOCK,
            {"resident": "r-101", "kind": "pin", "pin": PIN})
        assert status == 202, body
        cred = body["credential"]["credential"]
        assert body["credential"]["state"] == "pending"
        assert [c["command"] for c in body["commands"]] == ["user_set", "cred_set"]
        user_set = await asyncio.to_thread(peer.next_command)
        cred_set = await asyncio.to_thread(peer.next_command)
        assert (user_set[0], cred_set[0]) == (0x29, 0x2B) and cred_set[1] > user_set[1] > counter
        cred_key = hmac.new(LOCK_KEY, b"anju-lock-cred", hashlib.sha256).digest()
        assert cred_set[3][-16:] == hmac.new(cred_key, b"pin\x00" + PIN.encode(),
                                             hashlib.sha256).digest()[:16]
        status, listed = await asyncio.to_thread(call, hub, "GET",
                                                 "/api/locks/%s/credentials" % LOCK)
        assert [(c["credential"], c["state"]) for c in listed["credentials"]] == [
            (cred, "pending")]

        # the lock confirms both
        user = struct.unpack_from(">H", user_set[3], 2)[0]
        await asyncio.to_thread(peer.publish, fl.T_CMD_RESULT,
                                fl.cmd_result_body(user_set[1], "user_set", "ok", user))
        await asyncio.to_thread(peer.publish, fl.T_CMD_RESULT,
                                fl.cmd_result_body(cred_set[1], "cred_set", "ok", user, cred))

        async def state():
            _, doc = await asyncio.to_thread(call, hub, "GET", "/api/locks/%s/users" % LOCK)
            return doc
        end = time.monotonic() + 10
        while True:
            doc = await state()
            creds = doc["users"][0]["credentials"] if doc["users"] else []
            if creds and creds[0]["state"] == "active":
                break
            assert time.monotonic() < end, doc
            await asyncio.sleep(0.05)
        assert doc["users"][0]["resident"] == "r-101" and doc["users"][0]["state"] == "active"

        # the lock's state and log
        await asyncio.to_thread(peer.publish, fl.T_LOCK_STATE, fl.lock_state_body("unlocked"))
        await asyncio.to_thread(peer.publish, fl.T_ACCESS,
                                fl.access_body("pin", "unlocked", cred, user=user, seq=1))
        await hubkit.wait_for(lambda: len(hub.store.events(LOCK)) == 4)
        status, st = await asyncio.to_thread(call, hub, "GET", "/api/locks/%s" % LOCK,
                                             role="read_only")
        assert status == 200 and st["state"]["bolt"] == "unlocked"
        status, log_doc = await asyncio.to_thread(call, hub, "GET", "/api/locks/%s/log" % LOCK)
        assert status == 200 and log_doc["entries"][0]["values"]["credential"] == cred
        assert hub.store.alarms() == []  # her confirmed credential: no unregistered occupant

        # remove it
        status, body = await asyncio.to_thread(
            call, hub, "DELETE", "/api/locks/%s/credentials/%s" % (LOCK, cred))
        assert status == 202 and body["credential"]["state"] == "removing"
        assert (await asyncio.to_thread(peer.next_command))[0] == 0x2C

        # a read-only account may not act, nor see who holds what
        for method, path, payload in (
                ("POST", "/api/locks/%s/actions" % LOCK, {"action": "unlock"}),
                ("POST", "/api/locks/%s/credentials" % LOCK,
                 {"resident": "r-101", "kind": "pin", "pin": "1234"}),
                ("DELETE", "/api/locks/%s/credentials/%s" % (LOCK, cred), None),
                ("GET", "/api/locks/%s/users" % LOCK, None),
                ("GET", "/api/locks/%s/credentials" % LOCK, None)):
            status, doc = await asyncio.to_thread(call, hub, method, path, payload, "read_only")
            assert status == 403 and doc["error"] == "forbidden", (method, path)
        status, _ = await asyncio.to_thread(call, hub, "POST", "/api/locks/%s/actions" % LOCK,
                                            {"action": "unlock"}, "installer")
        assert status == 403
        # bad input is refused without echoing the secret
        status, doc = await asyncio.to_thread(
            call, hub, "POST", "/api/locks/%s/credentials" % LOCK,
            {"resident": "r-101", "kind": "pin", "pin": "12ab34"})
        assert status == 400 and "12ab34" not in json.dumps(doc)
        status, doc = await asyncio.to_thread(call, hub, "POST", "/api/locks/door-101/actions",
                                              {"action": "unlock"})
        assert status == 404
    finally:
        peer.close()
        await hub.stop()
    text = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert PIN not in text and "12ab34" not in text
    for path in tmp_path.glob("hub.db*"):
        assert PIN.encode() not in path.read_bytes(), path


async def test_a_lock_without_a_clock_is_sent_the_time(tmp_path, make_site_broker,
                                                       upstream_broker):
    site_cfg = hubkit.site(extra=LOCKS)
    broker = make_site_broker(site_cfg)
    hub = await hubkit.start_hub(tmp_path / "hub.db", broker, upstream_broker, site_cfg=site_cfg)
    peer = await asyncio.to_thread(LockPeer, broker)
    try:
        await asyncio.to_thread(peer.publish, fl.T_LOCK_STATE,
                                fl.lock_state_body(clock_set=False), False)
        mtype, counter, device_time, body = await asyncio.to_thread(peer.next_command)
        # the site runs on UTC; the command answers the lock's frame
        assert mtype == 0x2D and body == struct.pack(">hI", 0, peer.counter)
        assert abs(device_time - (int(time.time()) - 946684800)) <= 5
        await asyncio.to_thread(peer.publish, fl.T_CMD_RESULT,
                                fl.cmd_result_body(counter, "set_time"))
        await hubkit.wait_for(lambda: hub.store.query(
            "SELECT state FROM lock_commands WHERE counter=?", (counter,))[0][0] == "ok")
    finally:
        peer.close()
        await hub.stop()
