"""Interconnect publisher: sends the smoke rule's queued commands to the
smoke sensors in scope, on `anju/<site>/<device>/cmd`, QoS 1.

Each command is a hub -> device frame (docs/protocol.md, "Hub commands"),
signed with the device's frame_key and stamped with a hub counter that is
stored (strictly increasing per device) before the frame leaves. A command
row is deleted only after the broker's PUBACK; devices keep a persistent
session, so the broker holds the command for a device that is away.

It never decides who sounds (hub/rules/smoke.py does) and never logs keys.
"""
import asyncio
import hashlib
import hmac
import logging
import struct
import threading

import paho.mqtt.client as paho

from hub import HubError
from hub.verify import frames
from hub.rules import smoke as smoke_rule

log = logging.getLogger("anju.hub.interconnect")

PUBACK_TIMEOUT_S = 5.0
RETRY_S = 1.0


class InterconnectError(HubError):
    pass


T_INTERCONNECT = 0x38
MP_EPOCH_OFFSET = 946684800
COUNTER_EPOCH = 1704067200  # 2024-01-01 UTC
COUNTER_PER_S = 4


def next_counter(stored, now):
    """The hub's next command counter for a device: above the stored one, and
    never below a clock-derived floor (4 per second since 2024), so a hub whose
    database was lost does not restart at 1 below what devices already saw.
    Good until 2057 in 32 bits."""
    floor = max(0, int(now) - COUNTER_EPOCH) * COUNTER_PER_S
    return min(max(stored + 1, floor), 0xFFFFFFFF)


def encode_command(frame_key, device_id, mtype, counter, device_time, body):
    """A hub -> device frame; the tag covers "cmd" 0x00 device_id 0x00 header+body."""
    header = struct.pack(">BBIIB", frames.VERSION, mtype, counter, device_time & 0xFFFFFFFF,
                         len(body)) + bytes(body)
    tag = hmac.new(frame_key, b"cmd\x00" + device_id.encode() + b"\x00" + header,
                   hashlib.sha256).digest()[:frames.TAG_LEN]
    return header + tag


class Interconnect:
    def __init__(self, hub):
        self.hub = hub
        self.site = hub.site
        self.store = hub.store
        self.rule = next((r for r in hub.pipeline.engine.rules if r.name == smoke_rule.NAME), None)
        self._wakeup = asyncio.Event()
        self._task = None
        self._busy = False
        self.sent = []  # (clock time, device, sound, counter)
        self.connected = threading.Event()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                   client_id="anju-hub-%s-cmd" % self.site.site_id)
        if hub.mqtt.login is not None:
            hub.mqtt.login.apply(self._client)  # hub/ingest/login.py
        self._client.reconnect_delay_set(min_delay=0.2, max_delay=5)
        self._client.on_connect = lambda c, u, f, rc, p: self.connected.set()
        self._client.on_disconnect = lambda c, u, f, rc, p: self.connected.clear()

    async def start(self):
        if self.rule is not None:
            self.rule.wake = self._wakeup.set
            self.rule.alarm_topic = self.hub.pipeline.alarm_topic
        host, port = self.hub._mqtt_address  # set once the service is built
        self._client.connect_async(host, port, keepalive=30)
        self._client.loop_start()
        self._task = asyncio.create_task(self._run(), name="interconnect")
        self._wakeup.set()  # commands left from before a restart

    async def stop(self):
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._client.disconnect()
        self._client.loop_stop()

    def pending(self):
        return {k[4:]: v for k, v in self.store.rule_items(smoke_rule.NAME).items()
                if k.startswith("cmd:")}

    def idle(self):
        if self._busy or self._wakeup.is_set():
            return False
        return not self.pending() or not self.connected.is_set()

    async def _run(self):
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            self._busy = True
            try:
                for did, cmd in sorted(self.pending().items()):
                    try:
                        await self._send(did, cmd)
                    except InterconnectError as exc:
                        log.warning("interconnect command not delivered",
                                    extra={"device": did, "error": str(exc)})
                        asyncio.get_running_loop().call_later(RETRY_S, self._wakeup.set)
                        break
            finally:
                self._busy = False

    async def _send(self, did, cmd):
        dev = self.site.devices.get(did)
        if dev is None or dev.frame_key is None:
            with self.store.transaction() as tx:
                tx.rule_delete(smoke_rule.NAME, "cmd:" + did)
            return
        with self.store.transaction() as tx:
            counter = next_counter(tx.rule_get(smoke_rule.NAME, "hubctr:" + did, 0),
                                   self.hub.clock.now())
            tx.rule_set(smoke_rule.NAME, "hubctr:" + did, counter)  # before it is used
        now = self.hub.clock.now()
        payload = encode_command(dev.frame_key, did, T_INTERCONNECT, counter,
                                 int(now) - MP_EPOCH_OFFSET, bytes((1 if cmd["sound"] else 0, 0)))
        topic = "anju/%s/%s/cmd" % (self.site.site_id, did)
        if not self.connected.is_set():
            raise InterconnectError("site broker not connected")
        info = self._client.publish(topic, payload, qos=1)
        try:
            await asyncio.wait_for(asyncio.to_thread(info.wait_for_publish, PUBACK_TIMEOUT_S),
                                   PUBACK_TIMEOUT_S + 1)
        except (RuntimeError, ValueError, asyncio.TimeoutError) as exc:
            raise InterconnectError("no PUBACK for %s" % topic) from exc
        if not info.is_published():
            raise InterconnectError("no PUBACK for %s" % topic)
        with self.store.transaction() as tx:
            if tx.rule_get(smoke_rule.NAME, "cmd:" + did) == cmd:
                tx.rule_delete(smoke_rule.NAME, "cmd:" + did)
        self.sent.append((now, did, cmd["sound"], counter))
        self.hub.command_sent(did)
        log.info("interconnect command sent", extra={"device": did, "sound": cmd["sound"],
                                                     "source": cmd["source"]})
