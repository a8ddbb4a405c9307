"""The lock-command sender (component, hub/components.py): publishes the
commands queued in `lock_commands` (hub/locks/book.py) to each lock's
`anju/<site>/<device>/cmd`, QoS 1, over the hub's shared command link.

Each command is signed when it is published, with the lock's frame_key, its
stored counter and the hub's clock as the header's device_time (the lock
measures valid_s from it). A command is marked `sent` (and its body dropped)
only after the broker's PUBACK; one that could not be published within its
valid_s is marked failed `not_sent`, never sent late. Commands of one lock go
out in counter order, and a lock's later commands wait while an earlier one
is not delivered (the lock refuses a counter below one it already took).

It never decides what to send, and never logs a key or a command body.
"""
import asyncio
import logging

from hub.forward import device_commands
from hub.locks import book

log = logging.getLogger("anju.hub.locks")

POLL_S = 1.0   # the queue is looked at this often even without a wake-up
RETRY_S = 1.0


class LockCommandSender(device_commands.CommandTask):
    def __init__(self, hub, poll_s=POLL_S):
        self.hub = hub
        self.store = hub.store
        self.poll_s = poll_s
        self.link = device_commands.shared_link(hub)
        self.connected = self.link.connected
        self._wakeup = asyncio.Event()
        self._busy = False
        self.sent = []  # (clock time, device, command name, counter)

    def wake(self):
        """Call after a commit that queued commands (loop thread)."""
        self._wakeup.set()

    async def start(self):
        self.hub.lock_sender = self
        self._begin("lock-commands")

    def idle(self):
        if self._busy or self._wakeup.is_set():
            return False
        return not book.queued(self.store) or not self.connected.is_set()

    async def _run(self):
        while True:
            try:
                await asyncio.wait_for(self._wakeup.wait(), self.poll_s)
            except asyncio.TimeoutError:
                pass
            self._wakeup.clear()
            self._busy = True
            try:
                await self.send_queued()
            finally:
                self._busy = False

    async def send_queued(self):
        blocked = set()  # locks whose earlier command is not delivered yet
        for device_id, counter, mtype, body, requested_at, valid_s in book.queued(self.store):
            if device_id in blocked:
                continue
            try:
                await self._send(device_id, counter, mtype, body, requested_at, valid_s)
            except device_commands.CommandError as exc:
                log.warning("lock command not delivered", extra={"device": device_id,
                                                                 "counter": counter,
                                                                 "error": str(exc)})
                blocked.add(device_id)
                asyncio.get_running_loop().call_later(RETRY_S, self._wakeup.set)

    async def _send(self, device_id, counter, mtype, body, requested_at, valid_s):
        now = self.hub.clock.now()
        dev = self.hub.site.devices.get(device_id)
        if dev is None or dev.frame_key is None:
            with self.store.transaction() as tx:
                book.mark_not_sent(tx, device_id, counter, now, "unknown_device")
            return
        if valid_s is not None and now > requested_at + valid_s:
            with self.store.transaction() as tx:
                book.mark_not_sent(tx, device_id, counter, now)
            log.warning("lock command expired before it could be sent",
                        extra={"device": device_id, "counter": counter})
            return
        payload = device_commands.encode_command(dev.frame_key, device_id, mtype, counter,
                                                 device_commands.device_time(now), body)
        await self.link.publish(device_commands.cmd_topic(self.hub.site.site_id, device_id),
                                payload)
        with self.store.transaction() as tx:
            book.mark_sent(tx, device_id, counter, self.hub.clock.now())
        name = book.wire.NAMES.get(mtype, "0x%02x" % mtype)
        self.sent.append((now, device_id, name, counter))
        self.hub.command_sent(device_id)
        log.info("lock command sent", extra={"device": device_id, "command": name,
                                             "counter": counter})
