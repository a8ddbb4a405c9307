"""Home Assistant MQTT discovery with a real hub and a real site broker: a
subscriber on `homeassistant/#` (what Home Assistant does) gets one retained,
valid config per entity, the hub's availability, and a door event changes the
door's retained state and brings the device online; a lock's LOCK_STATE is
its lock entity's state."""
import asyncio
import json
import threading
import uuid

import paho.mqtt.client as paho
import pytest

from anju import frame
from host_tools.broker import HOME_ASSISTANT_USER
from hub.forward import discovery
from hub.verify import frames_lock
from tests.integration import hubkit

EXTRA = """\
  - {id: smoke-101, kind: smoke_sensor, board: esp32c3, flat: b1-101, transport: mqtt, frame_key: %s}
  - {id: lock-101, kind: smart_lock, board: esp32c3, flat: b1-101, transport: mqtt, frame_key: %s}
hub:
  home_assistant: {enabled: true}
""" % (hubkit.KEY.hex(), hubkit.KEY.hex())

EXPECTED = {  # (component, object) per device
    "door-101": {("binary_sensor", "door"), ("binary_sensor", "tamper"), ("sensor", "battery"),
                 ("binary_sensor", "problem")},
    "smoke-101": {("binary_sensor", "smoke"), ("binary_sensor", "problem"), ("sensor", "battery")},
    "lock-101": {("lock", "lock"), ("sensor", "battery"), ("binary_sensor", "door"),
                 ("binary_sensor", "tamper")},
}


class HomeAssistant:
    """Subscribes like Home Assistant: discovery prefix and the anju state topics."""

    def __init__(self, broker):
        """On `broker` with Home Assistant's own account (`anju broker config`
        makes one when hub.home_assistant is enabled)."""
        self.retained = {}
        self.live = []
        self.lock = threading.Lock()
        ready = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id="ha-" + uuid.uuid4().hex[:6], protocol=paho.MQTTv5)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            [("homeassistant/#", 1), ("anju/sunrise/+/ha_state", 1),
             ("anju/sunrise/+/availability", 1), ("anju/sunrise/+/ha_availability", 1)])
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on_message
        login = broker.login(HOME_ASSISTANT_USER)
        self.client.username_pw_set(login["username"], login["password"])
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert ready.wait(5)

    def _on_message(self, client, userdata, msg):
        with self.lock:
            if msg.retain:
                self.retained[msg.topic] = msg.payload.decode()
            self.live.append((msg.topic, msg.payload.decode()))

    def latest(self, topic):
        with self.lock:
            for t, p in reversed(self.live):
                if t == topic:
                    return p
        return self.retained.get(topic)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


async def test_discovery_configs_availability_and_state(tmp_path, make_site_broker,
                                                        upstream_broker):
    site = hubkit.site(extra=EXTRA)
    broker = make_site_broker(site)
    hub = await hubkit.start_hub(tmp_path / "hub.db", broker, upstream_broker, site_cfg=site,
                                 http=False)
    try:
        (component,) = [c for c in hub.components
                        if isinstance(c, discovery.HomeAssistantDiscovery)]
        component.poll_s = 0.05
        n_configs = sum(len(v) for v in EXPECTED.values()) + 2  # door-102 too
        await asyncio.sleep(0.3)
        ha = HomeAssistant(broker)  # joins late: everything it needs is retained
        try:
            await hubkit.wait_for(lambda: len([t for t in ha.retained if t.endswith("/config")])
                                  >= n_configs + 1, what="retained discovery configs")
            await hubkit.wait_for(lambda: all(t in ha.retained for t in (
                "anju/sunrise/hub/availability", "anju/sunrise/door-101/ha_availability",
                "anju/sunrise/door-101/ha_state")), what="retained availability and state")
            configs = {t: json.loads(p) for t, p in ha.retained.items()
                       if t.startswith("homeassistant/")}
            for device, entities in EXPECTED.items():
                uid = "anju_sunrise_%s" % device
                for comp, obj in entities:
                    cfg = configs["homeassistant/%s/%s/%s/config" % (comp, uid, obj)]
                    assert cfg["unique_id"] == "%s_%s" % (uid, obj)
                    assert cfg["state_topic"] == "anju/sunrise/%s/ha_state" % device
                    assert [a["topic"] for a in cfg["availability"]] == [
                        "anju/sunrise/hub/availability", "anju/sunrise/%s/ha_availability" % device]
                    assert cfg["device"]["identifiers"] == [uid]
                    assert cfg["device"]["manufacturer"] == "anju"
                    assert cfg["device"]["model"] == "esp32c3"
                    assert cfg["device"]["via_device"] == "anju_sunrise_hub"
                    assert "command_topic" not in cfg  # locks: state only for now
                    if (comp, obj) != ("sensor", "battery") and comp != "lock":
                        assert cfg["device_class"] == obj
            assert configs["homeassistant/binary_sensor/anju_sunrise_door-101/door/config"][
                "device_class"] == "door"
            assert ha.retained["anju/sunrise/hub/availability"] == "online"
            assert ha.retained["anju/sunrise/door-101/ha_availability"] == "offline"  # never heard
            assert json.loads(ha.retained["anju/sunrise/door-101/ha_state"])["door"] is None

            await asyncio.to_thread(hubkit.publish_frame, broker, "door-101",
                                    hubkit.door_frame(1, is_open=True))
            await hubkit.wait_for(lambda: (ha.latest("anju/sunrise/door-101/ha_state") or "{}")
                                  .find('"door": "ON"') >= 0, what="door state ON")
            await hubkit.wait_for(lambda: ha.latest("anju/sunrise/door-101/ha_availability")
                                  == "online", what="door-101 online")
            assert ha.latest("anju/sunrise/door-102/ha_availability") == "offline"
            await asyncio.to_thread(hubkit.publish_frame, broker, "door-101",
                                    hubkit.door_frame(2, is_open=False))
            await hubkit.wait_for(lambda: '"door": "OFF"' in
                                  (ha.latest("anju/sunrise/door-101/ha_state") or ""),
                                  what="door state OFF")
            # a lock: what its LOCK_STATE said, never what the hub asked for
            assert json.loads(ha.latest("anju/sunrise/lock-101/ha_state"))["lock"] is None
            await asyncio.to_thread(hubkit.publish_frame, broker, "lock-101", frame.encode(
                hubkit.KEY, b"lock-101", frames_lock.T_LOCK_STATE, 1, 0,
                frames_lock.lock_state_body("jammed", "open", percent=33)))
            await hubkit.wait_for(lambda: '"lock": "JAMMED"' in
                                  (ha.latest("anju/sunrise/lock-101/ha_state") or ""),
                                  what="lock state JAMMED")
            lock_state = json.loads(ha.latest("anju/sunrise/lock-101/ha_state"))
            assert (lock_state["door"], lock_state["battery"]) == ("ON", 33)
        finally:
            ha.close()
    finally:
        await hub.stop()
    # a clean stop says so
    late = HomeAssistant(broker)
    try:
        await hubkit.wait_for(lambda: "anju/sunrise/hub/availability" in late.retained)
        assert late.retained["anju/sunrise/hub/availability"] == "offline"
    finally:
        late.close()


def test_state_is_pure_and_unknown_stays_none():
    s = discovery.initial_state(None)
    assert s["door"] is None and s["lock"] is None and s["battery"] is None
    s = discovery.apply_event(s, "door", {"open": True}, 10.0)
    assert (s["door"], s["last_seen"]) == ("ON", 10.0)
    s = discovery.apply_event(s, "smoke", {"level": "alarm", "smoke": 900}, 11.0)
    assert s["smoke"] == "ON" and s["door"] == "ON"
    s = discovery.apply_event(s, "access", {"credential": "x"}, 12.0)
    assert s["lock"] is None  # an access event is not a lock state


@pytest.mark.parametrize(("bolt", "state"), [
    ("locked", "LOCKED"), ("unlocked", "UNLOCKED"), ("locking", "LOCKING"),
    ("unlocking", "UNLOCKING"), ("jammed", "JAMMED"), ("unknown", None)])
def test_lock_state_from_lock_state_frames(bolt, state):
    values = frames_lock.decode_lock_state(frames_lock.lock_state_body(bolt, "open", percent=40))
    s = discovery.apply_event(discovery.initial_state(None, {"bolt": "locked"}), "lock_state",
                              values, 5.0)
    assert (s["lock"], s["door"], s["battery"]) == (state, "ON", 40)


def test_lock_entity_config():
    cfgs = dict(discovery.entity_configs(hubkit.site(extra=EXTRA)))
    cfg = cfgs["homeassistant/lock/anju_sunrise_lock-101/lock/config"]
    assert (cfg["state_locked"], cfg["state_unlocked"], cfg["state_locking"],
            cfg["state_unlocking"], cfg["state_jammed"]) == (
        "LOCKED", "UNLOCKED", "LOCKING", "UNLOCKING", "JAMMED")
    assert "command_topic" not in cfg
