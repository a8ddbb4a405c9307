"""The hub's one path for commands to devices (docs/protocol.md "Hub commands"),
shared by the smoke interconnect (hub/forward/interconnect.py) and the lock
commands (hub/locks/sender.py).

* `encode_command` — a hub → device frame: the device frame's layout, its tag
  HMAC-SHA256(frame_key, "cmd" 0x00 device_id 0x00 header+body)[:16];
* `allocate_counter` — the hub's next counter for a device, stored in the
  caller's transaction before the command is published (strictly increasing
  per device, whatever kind of command; never below a clock-derived floor);
* `CommandLink` — the hub's MQTT client for `anju/<site>/<device>/cmd` on the
  site broker: `await publish(topic, payload)` returns after the broker's
  PUBACK or raises `CommandError`, so a caller deletes (or marks sent) its
  stored command only once the broker holds it.

Never logs keys or command bodies.
"""
import asyncio
import hashlib
import hmac
import struct
import threading

import paho.mqtt.client as paho

from hub import HubError
from hub.verify import frames

PUBACK_TIMEOUT_S = 5.0
MP_EPOCH_OFFSET = 946684800
COUNTER_EPOCH = 1704067200  # 2024-01-01 UTC
COUNTER_PER_S = 4
COUNTER_RULE = "hub_commands"  # rule_state namespace of the counters
LEGACY_COUNTER = ("smoke", "hubctr:")  # where the interconnect kept them before


class CommandError(HubError):
    """A command could not be handed to the site broker (not connected, no PUBACK)."""


def next_counter(stored, now):
    """The hub's next command counter for a device: above the stored one, and
    never below a clock-derived floor (4 per second since 2024), so a hub whose
    database was lost does not restart at 1 below what devices already saw.
    Good until 2057 in 32 bits."""
    floor = max(0, int(now) - COUNTER_EPOCH) * COUNTER_PER_S
    return min(max(stored + 1, floor), 0xFFFFFFFF)


def allocate_counter(tx, device_id, now):
    """The next counter for `device_id`, stored in `tx` before it is used."""
    stored = max(tx.rule_get(COUNTER_RULE, "ctr:" + device_id, 0),
                 tx.rule_get(LEGACY_COUNTER[0], LEGACY_COUNTER[1] + device_id, 0))
    counter = next_counter(stored, now)
    tx.rule_set(COUNTER_RULE, "ctr:" + device_id, counter)
    return counter


def device_time(now):
    """The hub's clock as a header's device_time (MicroPython epoch, 2000-01-01)."""
    return max(0, int(now) - MP_EPOCH_OFFSET)


def encode_command(frame_key, device_id, mtype, counter, device_time, body):
    """A hub -> device frame; the tag covers "cmd" 0x00 device_id 0x00 header+body."""
    header = struct.pack(">BBIIB", frames.VERSION, mtype, counter, device_time & 0xFFFFFFFF,
                         len(body)) + bytes(body)
    tag = hmac.new(frame_key, b"cmd\x00" + device_id.encode() + b"\x00" + header,
                   hashlib.sha256).digest()[:frames.TAG_LEN]
    return header + tag


def cmd_topic(site_id, device_id):
    return "anju/%s/%s/cmd" % (site_id, device_id)


class CommandLink:
    """One MQTT client of the hub for device commands (client id
    `anju-hub-<site>-cmd`), shared by every component that sends them."""

    def __init__(self, hub):
        self.hub = hub
        self.connected = threading.Event()
        self._users = 0
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                   client_id="anju-hub-%s-cmd" % hub.site.site_id)
        if hub.mqtt.login is not None:
            hub.mqtt.login.apply(self._client)  # hub/ingest/login.py
        self._client.reconnect_delay_set(min_delay=0.2, max_delay=5)
        # the callbacks hold the event, not this object: no cycle through the
        # client, so it is freed (and its socket pair closed) with its owner
        connected = self.connected
        self._client.on_connect = lambda c, u, f, rc, p: connected.set()
        self._client.on_disconnect = lambda c, u, f, rc, p: connected.clear()

    def start(self):
        """Connect on the first user's start; returns the matching stop."""
        self._users += 1
        if self._users == 1:
            host, port = self.hub._mqtt_address  # set once the service is built
            self._client.connect_async(host, port, keepalive=30)
            self._client.loop_start()
        return self._stop

    def _stop(self):
        self._users -= 1
        if self._users == 0:
            self._client.disconnect()
            self._client.loop_stop()
            # paho 2.2 keeps the wake-up socket pair of loop_start() open until the
            # client is garbage collected; close it now (the link is not reused)
            reset = getattr(self._client, "_reset_sockets", None)
            if reset is not None:
                reset()

    async def publish(self, topic, payload, timeout=PUBACK_TIMEOUT_S):
        """QoS 1, not retained; returns after the broker's PUBACK."""
        if not self.connected.is_set():
            raise CommandError("site broker not connected")
        info = self._client.publish(topic, payload, qos=1)
        try:
            await asyncio.wait_for(asyncio.to_thread(info.wait_for_publish, timeout),
                                   timeout + 1)
        except (RuntimeError, ValueError, asyncio.TimeoutError) as exc:
            raise CommandError("no PUBACK for %s" % topic) from exc
        if not info.is_published():
            raise CommandError("no PUBACK for %s" % topic)


def shared_link(hub):
    """The hub's CommandLink, made on first use."""
    link = getattr(hub, "command_link", None)
    if link is None:
        link = hub.command_link = CommandLink(hub)
    return link


class CommandTask:
    """What the hub's command senders share (the smoke interconnect, the lock
    commands): the shared link started with them and one task that sends,
    woken by `_wakeup` (set at start for what a restart left queued)."""

    _task = None
    _stop_link = None

    def _begin(self, name):
        self._stop_link = self.link.start()
        self._task = asyncio.create_task(self._run(), name=name)
        self._wakeup.set()  # commands left from before a restart

    async def stop(self):
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._stop_link is not None:
            self._stop_link()
            self._stop_link = None
