"""The private-broker fixtures work: QoS 1 round trip, outages, persistence.

These are the ground the other integration tests stand on, so they check the
broker with a real MQTT client (paho-mqtt, callback API v2).
"""

from __future__ import annotations

import queue
import socket
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from host_tools.mosquitto import BrokerError, Mosquitto

TIMEOUT_S = 5.0


class Peer:
    """A paho client with its network loop in a thread and an inbox queue."""

    def __init__(self, broker: Mosquitto, client_id: str, *, clean_session: bool = True) -> None:
        self.inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda client, userdata, message: self.inbox.put(message)
        self.session_present: bool | None = None
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(TIMEOUT_S), f"{client_id} did not connect to {broker!r}"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.session_present = flags.session_present
        if not reason_code.is_failure:
            self.connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self.subscribed.set()

    def subscribe(self, topic: str, qos: int = 1) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=qos)
        assert self.subscribed.wait(TIMEOUT_S), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(timeout=TIMEOUT_S)
        assert info.is_published(), f"no PUBACK for {topic}"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_qos1_round_trip(broker: Mosquitto) -> None:
    subscriber = Peer(broker, "sub-roundtrip")
    publisher = Peer(broker, "pub-roundtrip")
    try:
        subscriber.subscribe("anju/test/door/event", qos=1)
        publisher.publish("anju/test/door/event", b"\x01open", qos=1)
        message = subscriber.inbox.get(timeout=TIMEOUT_S)
        assert message.topic == "anju/test/door/event"
        assert message.payload == b"\x01open"
        assert message.qos == 1
    finally:
        publisher.close()
        subscriber.close()


def test_brokers_are_separate(broker: Mosquitto, upstream_broker: Mosquitto) -> None:
    assert broker.port != upstream_broker.port
    on_site = Peer(broker, "sub-site")
    upstream = Peer(upstream_broker, "pub-upstream")
    try:
        on_site.subscribe("#", qos=1)
        upstream.publish("anju/up/alarm", b"{}", qos=1)
        with pytest.raises(queue.Empty):
            on_site.inbox.get(timeout=0.5)
    finally:
        upstream.close()
        on_site.close()


def test_stop_refuses_connections_and_restart_uses_same_port(broker: Mosquitto) -> None:
    port = broker.port
    broker.stop()
    assert not broker.running
    with pytest.raises(OSError):
        socket.create_connection(broker.address, timeout=1).close()
    broker.restart()
    assert broker.running and broker.port == port
    socket.create_connection(broker.address, timeout=1).close()


@pytest.mark.parametrize(
    ("persistence", "crash", "survives"),
    [
        pytest.param(True, False, True, id="persistent-clean-restart"),
        pytest.param(False, False, False, id="memory-only-clean-restart"),
        pytest.param(True, True, False, id="persistent-crash-before-autosave"),
    ],
)
def test_queued_message_across_restart(make_broker, persistence: bool, crash: bool, survives: bool) -> None:
    """A QoS 1 message queued for an offline persistent session survives a
    clean broker restart only when persistence is on (and not a crash)."""
    broker = make_broker("persist" if persistence else "memory", persistence=persistence)
    offline = Peer(broker, "hub-persistent", clean_session=False)
    offline.subscribe("anju/test/+/alarm", qos=1)
    offline.close()

    publisher = Peer(broker, "smoke-sensor")
    publisher.publish("anju/test/smoke/alarm", b"smoke", qos=1)
    publisher.close()

    broker.restart(crash=crash)

    back = Peer(broker, "hub-persistent", clean_session=False)
    try:
        if survives:
            assert back.session_present is True
            message = back.inbox.get(timeout=TIMEOUT_S)
            assert (message.topic, message.payload, message.qos) == ("anju/test/smoke/alarm", b"smoke", 1)
        else:
            assert back.session_present is False
            with pytest.raises(queue.Empty):
                back.inbox.get(timeout=1.0)
    finally:
        back.close()


def test_start_failure_names_the_cause(tmp_path: Path) -> None:
    bad = Mosquitto(tmp_path / "bad", extra_config=["this_is_not_an_option 1"])
    with pytest.raises(BrokerError, match="exited with code") as excinfo:
        bad.start(timeout=5)
    # The error carries the broker's own complaint, not just an exit code.
    assert 'Unknown configuration variable "this_is_not_an_option"' in str(excinfo.value)
    assert not bad.running
