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
import logging

from hub.forward import device_commands
from hub.forward.device_commands import (CommandError, MP_EPOCH_OFFSET,  # noqa: F401
                                         encode_command, next_counter)
from hub.rules import smoke as smoke_rule

log = logging.getLogger("anju.hub.interconnect")

RETRY_S = 1.0
InterconnectError = CommandError  # the shared link's failure (hub/forward/device_commands.py)
T_INTERCONNECT = 0x38


class Interconnect(device_commands.CommandTask):
    def __init__(self, hub):
        self.hub = hub
        self.site = hub.site
        self.store = hub.store
        self.rule = next((r for r in hub.pipeline.engine.rules if r.name == smoke_rule.NAME), None)
        self._wakeup = asyncio.Event()
        self._busy = False
        self.sent = []  # (clock time, device, sound, counter)
        self.link = device_commands.shared_link(hub)
        self.connected = self.link.connected

    async def start(self):
        if self.rule is not None:
            self.rule.wake = self._wakeup.set
            self.rule.alarm_topic = self.hub.pipeline.alarm_topic
        self._begin("interconnect")

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
            counter = device_commands.allocate_counter(tx, did, self.hub.clock.now())
        now = self.hub.clock.now()
        payload = encode_command(dev.frame_key, did, T_INTERCONNECT, counter,
                                 device_commands.device_time(now),
                                 bytes((1 if cmd["sound"] else 0, 0)))
        await self.link.publish(device_commands.cmd_topic(self.site.site_id, did), payload)
        with self.store.transaction() as tx:
            if tx.rule_get(smoke_rule.NAME, "cmd:" + did) == cmd:
                tx.rule_delete(smoke_rule.NAME, "cmd:" + did)
        self.sent.append((now, did, cmd["sound"], counter))
        self.hub.command_sent(did)
        log.info("interconnect command sent", extra={"device": did, "sound": cmd["sound"],
                                                     "source": cmd["source"]})
