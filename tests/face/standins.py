"""The test's stand-ins for the hub's sinks (the hub provides the real ones).

``UpstreamAlarmStandIn`` plays the hub's alarm forwarder: it publishes each
alarm as JSON with QoS 1 to a second ("upstream") broker. ``RecordingEvents``
keeps events in a list. Both are deliberately tiny.
"""

import json
import threading
import uuid

import paho.mqtt.client as mqtt


class UpstreamAlarmStandIn:
    def __init__(self, host: str, port: int, site: str):
        self.topic = f"anju-upstream/{site}/alarm"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="face-test-upstream")
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()

    def raise_alarm(self, type: str, severity: str, location: dict, detail: dict) -> str:
        alarm_id = uuid.uuid4().hex
        doc = {"id": alarm_id, "type": type, "severity": severity, "location": location, "detail": detail}
        self.client.publish(self.topic, json.dumps(doc, default=str), qos=1).wait_for_publish(5)
        return alarm_id

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class RecordingEvents:
    def __init__(self):
        self.events: list[tuple[str, dict]] = []
        self._lock = threading.Lock()

    def record(self, kind: str, payload: dict) -> None:
        with self._lock:
            self.events.append((kind, payload))

    def of(self, kind: str) -> list[dict]:
        with self._lock:
            return [p for k, p in self.events if k == kind]


class Subscriber:
    """Collects JSON messages on a topic filter."""

    def __init__(self, host: str, port: int, topic: str):
        self.messages: list[tuple[str, dict]] = []
        self._ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"face-test-sub-{uuid.uuid4().hex[:6]}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, json.loads(m.payload)))
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self._ready.wait(5):
            raise TimeoutError(f"not subscribed to {topic}")

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()
