"""Small test helpers: ``RecordingEvents`` keeps events in a list (for tests of
the face package alone; the hub's real sink is ``hub.face.sinks.HubEventSink``) and
``Subscriber`` collects the JSON messages a broker delivers on a topic filter.
"""

import json
import threading
import uuid

import paho.mqtt.client as mqtt


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
