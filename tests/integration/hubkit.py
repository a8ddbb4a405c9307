"""Helpers for the alarm-lifecycle tests: a real HubService on two private
brokers and the HTTP API, a "platform" MQTT 5 client on the upstream broker,
and door frames. Nothing here is a stand-in: the hub, brokers, store and HTTP
server are the real ones."""
import asyncio
import json
import threading
import uuid

import paho.mqtt.client as paho

from anju import frame
from hub.config import site as config
from hub.config import yamlfile
from hub.clock import SystemClock
from hub.ingest.login import hub_username
from hub.service import HubService

SITE_ID = "sunrise"
KEY = bytes(range(32))
PREFIX = "anju/upstream/%s" % SITE_ID

SITE_YAML = """
site: {id: sunrise, name: Sunrise Gardens}
buildings:
  - id: b1
    flats:
      - id: b1-101
        inactivity: %(inactivity)s
        residents: [{id: r-101, name: Wang Lan, lives_alone: true}]
      - id: b1-102
        residents: [{id: r-102, name: Li Wei, lives_alone: true}]
devices:
  - {id: door-101, kind: door_sensor, board: esp32c3, flat: b1-101, transport: mqtt, frame_key: %(key)s}
  - {id: door-102, kind: door_sensor, board: esp32c3, flat: b1-102, transport: mqtt, frame_key: %(key)s}
%(extra)s
"""


def site(inactivity="12h", extra=""):
    text = SITE_YAML % {"inactivity": inactivity, "key": KEY.hex(), "extra": extra}
    return config.parse_site(yamlfile.loads(text, "site.yaml"))


async def start_hub(db, site_broker, upstream, site_cfg=None, http=True):
    """The hub on `site_broker` (with its own login when the broker runs the
    generated configuration: `make_site_broker`) and `upstream`."""
    site_cfg = site_cfg or site()
    hub = HubService(site_cfg, db, SystemClock(),
                     {"host": site_broker.host, "port": site_broker.port,
                      **site_broker.login(hub_username(site_cfg.site_id))},
                     {"host": upstream.host, "port": upstream.port},
                     http={"port": 0} if http else None)
    await hub.start(connect_timeout=10)
    hub.site_broker = site_broker  # for publish_frame(hub.site_broker, ...)
    commands = commands_component(hub)
    await commands.wait_ready(10)
    await wait_for(lambda: hub.links()["upstream"])
    return hub


def commands_component(hub):
    from hub.alarms.commands import UpstreamCommands
    (found,) = [c for c in hub.components if isinstance(c, UpstreamCommands)]
    return found


async def wait_for(pred, timeout=10.0, what="condition"):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        assert loop.time() < end, "timed out waiting for %s" % what
        await asyncio.sleep(0.02)
    return True


def raise_alarm(hub, cause, type_="tamper", severity="medium"):
    """An alarm raised through the hub's alarm book, as a rule would (loop thread)."""
    from hub.alarms import documents as alarms
    now = hub.clock.now()
    doc = alarms.generic(hub.site, type_, severity, {"building": "b1", "flat": "b1-101",
                                                     "device": "door-101"}, {"cause": cause}, now)
    with hub.store.transaction() as tx:
        raised = hub.pipeline.book.raise_alarm(tx, cause, doc, now)
    hub.notify_outbox()
    hub._rules_changed.set()  # as the ingest task does after a commit: escalation timers
    assert raised is not None
    return raised


def door_frame(counter, is_open=True, key=KEY, device="door-101"):
    return frame.encode(key, device.encode(), frame.T_DOOR, counter, 0, frame.door_body(is_open))


def publish_frame(broker, device, data):
    """`data` on `device`'s event topic, published as that device (its own
    login on a broker with the generated configuration)."""
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="dev-" + uuid.uuid4().hex[:8])
    login = broker.login(device)
    if login:
        c.username_pw_set(login["username"], login["password"])
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        c.publish("anju/%s/%s/event" % (SITE_ID, device), data, qos=1).wait_for_publish(5)
    finally:
        c.disconnect()
        c.loop_stop()


class Platform:
    """The upstream platform: sees everything under `<prefix>/<site>/` and sends commands."""

    def __init__(self, broker):
        self.messages = []  # (topic, parsed JSON or raw bytes)
        self._lock = threading.Lock()
        ready = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id="platform-" + uuid.uuid4().hex[:8], protocol=paho.MQTTv5)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(PREFIX + "/#", qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        if not ready.wait(5):
            raise TimeoutError("platform not subscribed")

    def _on_message(self, client, userdata, msg):
        try:
            body = json.loads(msg.payload)
        except ValueError:
            body = bytes(msg.payload)
        with self._lock:
            self.messages.append((msg.topic, body))

    def on(self, leaf):
        with self._lock:
            return [m for t, m in self.messages if t == "%s/%s" % (PREFIX, leaf)]

    def alarm_versions(self, alarm_id, leaf="alarms"):
        return [(m["seq"], m["state"]) for m in self.on(leaf) if m["id"] == alarm_id]

    def result(self, command_id):
        found = [m for m in self.on("command_results") if m.get("command_id") == command_id]
        return found[-1] if found else None

    def send(self, payload):
        data = payload if isinstance(payload, (bytes, bytearray)) else json.dumps(payload).encode()
        self.client.publish(PREFIX + "/commands", data, qos=1).wait_for_publish(5)

    def command(self, alarm_id, action, command_id=None, actor="police-desk-7", note=None):
        cid = command_id or "cmd-" + uuid.uuid4().hex[:10]
        self.send({"schema": "anju.command/1", "command_id": cid, "alarm_id": alarm_id,
                   "action": action, "actor": actor, "note": note,
                   "at": "2026-11-24T19:05:00+00:00"})
        return cid

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()
