"""Home Assistant MQTT discovery on the SITE broker (docs/forwarding.md).

Enabled with `hub.home_assistant: {enabled: true}`. For every configured
device it publishes retained discovery configs under
`<prefix>/<component>/anju_<site>_<device>/<object>/config`, a retained JSON
state per device on `anju/<site>/<device>/ha_state` after accepted events, and
availability: the hub's own `anju/<site>/hub/availability` (online while it is
connected, "offline" as its MQTT will) plus a per-device
`anju/<site>/<device>/ha_availability` — online while the device was heard
within its supervision interval (2 × heartbeat + 60 s). The device's own
`availability` topic is the device's alone (the broker's ACL, docs/broker.md):
every retained topic has one writer.

It follows the store's accepted events from its own task, so ingest never
waits for it. It never publishes commands, never reports a lock state the
lock did not report in LOCK_STATE (unknown stays null; a command the hub
sent is not a state), and never publishes keys.
"""
import asyncio
import json
import logging

import paho.mqtt.client as paho

from hub.alarms import documents as alarms
from hub.config.values import flag, section, topic
from hub.locks import book as lock_book

log = logging.getLogger("anju.hub.discovery")

POLL_S = 0.5
GRACE_S = 60.0
CONFIG_KEYS = ("enabled", "discovery_prefix")
DEFAULT_PREFIX = "homeassistant"


def parse_config(node, where="hub.home_assistant"):
    """The site file's `hub.home_assistant` mapping, checked:
    {enabled, discovery_prefix}. Pure; `anju config check` calls it too."""
    node = section(node, CONFIG_KEYS, where, "like {enabled: true}")
    return {"enabled": flag(node, "enabled", where, False),
            "discovery_prefix": topic(node, "discovery_prefix", where, DEFAULT_PREFIX,
                                      "homeassistant")}


def device_topics(site_id, device_id):
    base = "anju/%s/%s" % (site_id, device_id)
    return {"state": base + "/ha_state", "availability": base + "/ha_availability"}


def hub_availability_topic(site_id):
    return "anju/%s/hub/availability" % site_id


# (component, object, config without topics): what each device kind shows
_ENTITIES = {
    "door_sensor": [
        ("binary_sensor", "door", {"device_class": "door", "value_template":
                                   "{{ value_json.door }}"}),
        ("binary_sensor", "tamper", {"device_class": "tamper", "value_template":
                                     "{{ value_json.tamper }}", "entity_category": "diagnostic"}),
        ("sensor", "battery", {"device_class": "battery", "unit_of_measurement": "%",
                               "state_class": "measurement", "entity_category": "diagnostic",
                               "value_template": "{{ value_json.battery }}"}),
        ("binary_sensor", "problem", {"device_class": "problem", "entity_category": "diagnostic",
                                      "value_template": "{{ value_json.problem }}"}),
    ],
    "smoke_sensor": [
        ("binary_sensor", "smoke", {"device_class": "smoke", "value_template":
                                    "{{ value_json.smoke }}"}),
        ("binary_sensor", "problem", {"device_class": "problem", "entity_category": "diagnostic",
                                      "value_template": "{{ value_json.problem }}"}),
        ("sensor", "battery", {"device_class": "battery", "unit_of_measurement": "%",
                               "state_class": "measurement", "entity_category": "diagnostic",
                               "value_template": "{{ value_json.battery }}"}),
    ],
    "smart_lock": [
        # state only, as the lock reported it in LOCK_STATE: Home Assistant does
        # not command the lock (operators use the hub's API, docs/http_api.md)
        ("lock", "lock", {"value_template": "{{ value_json.lock }}"}),
        ("binary_sensor", "door", {"device_class": "door", "value_template":
                                   "{{ value_json.door }}"}),
        ("sensor", "battery", {"device_class": "battery", "unit_of_measurement": "%",
                               "state_class": "measurement", "entity_category": "diagnostic",
                               "value_template": "{{ value_json.battery }}"}),
        ("binary_sensor", "tamper", {"device_class": "tamper", "value_template":
                                     "{{ value_json.tamper }}", "entity_category": "diagnostic"}),
    ],
}


def entity_configs(site, prefix="homeassistant"):
    """[(topic, config dict)] for every device of the site. Pure."""
    out = []
    hub_ident = "anju_%s_hub" % site.site_id
    for dev in site.devices.values():
        topics = device_topics(site.site_id, dev.id)
        uid = "anju_%s_%s" % (site.site_id, dev.id)
        device_block = {"identifiers": [uid], "name": dev.id, "manufacturer": "anju",
                        "model": dev.board, "via_device": hub_ident}
        for component, obj, extra in _ENTITIES.get(dev.kind, []):
            cfg = {"name": obj.replace("_", " ").capitalize(), "unique_id": "%s_%s" % (uid, obj),
                   "object_id": "%s_%s" % (uid, obj), "state_topic": topics["state"],
                   "availability": [{"topic": hub_availability_topic(site.site_id)},
                                    {"topic": topics["availability"]}],
                   "availability_mode": "all", "device": device_block}
            if component == "binary_sensor":
                cfg.update({"payload_on": "ON", "payload_off": "OFF"})
            if component == "lock":
                cfg.update({"state_locked": "LOCKED", "state_unlocked": "UNLOCKED",
                            "state_locking": "LOCKING", "state_unlocking": "UNLOCKING",
                            "state_jammed": "JAMMED"})
            cfg.update(extra)
            out.append(("%s/%s/%s/%s/config" % (prefix, component, uid, obj), cfg))
    return out


def _onoff(value):
    return None if value is None else ("ON" if value else "OFF")


# LOCK_STATE bolt -> the lock entity's state; "unknown" (and no report) is None
LOCK_STATES = {"locked": "LOCKED", "unlocked": "UNLOCKED", "locking": "LOCKING",
               "unlocking": "UNLOCKING", "jammed": "JAMMED"}


def initial_state(stored, lock=None):
    """The HA state of a device from its stored projection (Store.device_state)
    and, for a lock, its last LOCK_STATE (hub/locks/book.py)."""
    stored = stored or {}
    return {"door": _onoff(stored.get("door_open")), "tamper": _onoff(stored.get("case_open")),
            "battery": stored.get("battery_percent"),
            "problem": _onoff(stored.get("battery_low")), "smoke": None,
            "lock": LOCK_STATES.get((lock or {}).get("bolt")),
            "last_seen": stored.get("last_seen")}


def apply_event(state, event_type, values, at):
    """The next HA state after an accepted event. Pure; unknown stays None."""
    new = dict(state)
    new["last_seen"] = at
    if "open" in values:
        new["door"] = _onoff(values["open"])
    if "case_open" in values:
        new["tamper"] = _onoff(values["case_open"])
    if "percent" in values:
        new["battery"] = values["percent"]
    problems = ("battery_low", "fault", "end_of_service")
    if any(k in values for k in problems):
        new["problem"] = _onoff(any(values.get(k) for k in problems))
    if event_type == "smoke" and "level" in values:
        new["smoke"] = _onoff(values["level"] == "alarm")
    elif event_type == "smoke_status" and "alarm" in values:
        new["smoke"] = _onoff(values["alarm"])
    if event_type == "lock_state":  # only what the lock itself reported
        new["lock"] = LOCK_STATES.get(values["bolt"])
    return new


def state_payload(state):
    out = dict(state)
    out["last_seen"] = alarms.iso(state["last_seen"]) if state.get("last_seen") else None
    return json.dumps(out, sort_keys=True)


def offline_after(device):
    return 2 * device.heartbeat_s + GRACE_S


class HomeAssistantDiscovery:
    """The component (hub/components.py)."""

    def __init__(self, hub, prefix="homeassistant", poll_s=POLL_S):
        self.hub = hub
        self.site = hub.site
        self.prefix = prefix
        self.poll_s = poll_s
        self._address = (hub.mqtt.host, hub.mqtt.port)  # the site broker
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                   client_id="anju-hub-%s-ha" % self.site.site_id,
                                   protocol=paho.MQTTv5)
        self._client.will_set(hub_availability_topic(self.site.site_id), "offline", qos=1,
                              retain=True)
        if hub.mqtt.login is not None:
            hub.mqtt.login.apply(self._client)  # hub/ingest/login.py
        self._client.reconnect_delay_set(0.2, 10)
        self._client.on_connect = self._on_connect
        self._states = {}
        self._published = {}  # topic -> payload last handed to paho
        self._cursor = 0
        self._task = None

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("site broker refused the discovery client",
                      extra={"reason": str(reason_code)})
            return
        # (re)announce everything: a broker without persistence forgot it
        client.publish(hub_availability_topic(self.site.site_id), "online", qos=1, retain=True)
        for topic, cfg in entity_configs(self.site, self.prefix):
            client.publish(topic, json.dumps(cfg, sort_keys=True), qos=1, retain=True)
        for topic, payload in list(self._published.items()):
            client.publish(topic, payload, qos=1, retain=True)

    async def start(self):
        store = self.hub.store
        self._cursor = store.last_event_id()
        for dev in self.site.devices.values():
            lock = lock_book.lock_state(store, dev.id) if dev.kind == "smart_lock" else None
            self._states[dev.id] = initial_state(store.device_state(dev.id), lock)
        self._publish_all()
        self._client.connect_async(*self._address, keepalive=30)
        self._client.loop_start()
        self._task = asyncio.create_task(self._run(), name="ha-discovery")

    async def stop(self):
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        info = self._client.publish(hub_availability_topic(self.site.site_id), "offline", qos=1,
                                    retain=True)
        if self._client.is_connected():
            await asyncio.to_thread(_wait, info, 2.0)
        self._client.disconnect()
        self._client.loop_stop()

    def idle(self):
        return True  # it raises nothing and changes no alarm

    async def _run(self):
        while True:
            await asyncio.sleep(self.poll_s)
            self.step(self.hub.clock.now())

    def step(self, now):
        """Follow new events and the supervision clock; publish what changed."""
        for event_id, device_id, event_type, values, at in self.hub.store.events_after(
                self._cursor):
            self._cursor = event_id
            if device_id in self._states:
                self._states[device_id] = apply_event(self._states[device_id], event_type,
                                                      values, at)
        self._publish_all(now)

    def _publish_all(self, now=None):
        now = self.hub.clock.now() if now is None else now
        for dev in self.site.devices.values():
            topics = device_topics(self.site.site_id, dev.id)
            state = self._states[dev.id]
            seen = state.get("last_seen")
            online = seen is not None and now - seen <= offline_after(dev)
            self._publish(topics["state"], state_payload(state))
            self._publish(topics["availability"], "online" if online else "offline")

    def _publish(self, topic, payload):
        if self._published.get(topic) == payload:
            return
        self._published[topic] = payload
        # paho queues while disconnected; _on_connect re-sends the latest anyway
        self._client.publish(topic, payload, qos=1, retain=True)


def _wait(info, timeout):
    try:
        info.wait_for_publish(timeout)
    except (RuntimeError, ValueError):
        pass
