"""The site broker with the configuration `anju broker config` generates, for
real: Mosquitto 2 on a free loopback port with the generated mosquitto.conf,
password file and ACL (host_tools/broker.py), clients with the generated
passwords, and the real hub.

Mosquitto 2 (2.0.11 here) drops a publish the ACL denies and then closes that
client's connection; it grants every subscription but delivers only what the
ACL lets the client read. So each denial is shown by absence, after a
positive control: a message sent after the denied ones, through the same
broker, that does arrive. The broker handles one packet at a time and queues
each subscriber's messages in order, so once the control has arrived,
anything denied before it would have arrived too.
"""
import asyncio
import json
import threading
import uuid

import paho.mqtt.client as paho
import pytest

from hub import TransportError
from hub.clock import SystemClock
from hub.service import HubService
from host_tools.broker import HOME_ASSISTANT_USER
from tests.integration import hubkit

pytestmark = [pytest.mark.broker]

A, B, HUB = "door-101", "door-102", "hub-sunrise"
BASE = "anju/sunrise/"
HA_EXTRA = "hub:\n  home_assistant: {enabled: true}\n"


class Client:
    """A paho client (MQTT 3.1.1, as the devices speak) that records what it gets."""

    def __init__(self, broker, user=None, password=None, topics=()):
        self.got = []
        self.cond = threading.Condition()
        self.connack = None
        self._connected = threading.Event()
        self.dropped = threading.Event()
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2,
                             client_id="t-%s-%s" % (user or "anon", uuid.uuid4().hex[:6]),
                             protocol=paho.MQTTv311)
        if user is not None:
            self.c.username_pw_set(user, password)
        self._topics = list(topics)
        self._subscribed = threading.Event()
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.c.on_message = self._on_message
        self.c.reconnect_delay_set(0.05, 0.2)  # close() waits for a pending retry
        self.c.on_disconnect = self._on_disconnect
        self.c.on_publish = self._on_publish
        self.c.connect(broker.host, broker.port, keepalive=30)
        self.c.loop_start()
        assert self._connected.wait(5), "no CONNACK"

    @classmethod
    def login(cls, broker, user, topics=()):
        login = broker.login(user)
        c = cls(broker, login["username"], login["password"], topics)
        assert not c.connack.is_failure, c.connack
        if topics:
            assert c._subscribed.wait(5), "no SUBACK"
        return c

    def _on_disconnect(self, *args):
        self.dropped.set()
        with self.cond:
            self.cond.notify_all()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connack = reason_code
        if not reason_code.is_failure and self._topics:
            client.subscribe([(t, 1) for t in self._topics])
        self._connected.set()

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.got.append((msg.topic, bytes(msg.payload), msg.retain))
            self.cond.notify_all()

    def _on_publish(self, *args):
        with self.cond:
            self.cond.notify_all()

    def publish(self, topic, payload, retain=False):
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(5)
        assert info.is_published(), "no PUBACK for %s" % topic

    def attempt(self, topic, payload, retain=False):
        """A publish the broker may deny: wait until it acknowledged it or
        closed the connection (either way it has handled the packet)."""
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        with self.cond:
            self.cond.wait_for(lambda: info.is_published() or self.dropped.is_set(), 5)
        assert info.is_published() or self.dropped.is_set(), "the broker did not answer"

    def wait_for(self, topic, payload=None, timeout=5.0):
        def seen():
            return any(t == topic and (payload is None or p == payload) for t, p, _ in self.got)
        with self.cond:
            assert self.cond.wait_for(seen, timeout), "%s never arrived; got %r" % (topic, self.got)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def site_broker(make_site_broker):
    return make_site_broker(hubkit.site(extra=HA_EXTRA))


@pytest.fixture
def clients():
    made = []
    yield made
    for c in made:
        c.close()


@pytest.mark.parametrize("user, password", [
    pytest.param(None, None, id="anonymous"),
    pytest.param(A, "not-the-password", id="wrong-password"),
    pytest.param("door-999", "whatever", id="unknown-user"),
    pytest.param(A, "B's password", id="another-devices-password"),
])
def test_the_broker_refuses_clients_without_a_valid_login(site_broker, clients, user, password):
    if password == "B's password":
        password = site_broker.passwords[B]
    c = Client(site_broker, user, password)
    clients.append(c)
    assert c.connack.is_failure, "CONNACK %s for %s" % (c.connack, user)
    # the same device with its own password is let in (positive control)
    clients.append(Client.login(site_broker, A))


def test_a_device_cannot_write_another_devices_or_the_hubs_topics(site_broker, clients):
    hub = Client.login(site_broker, HUB, [BASE + "+/event", BASE + "+/state",
                                          BASE + "+/availability", BASE + "+/ha_state"])
    ha = Client.login(site_broker, HOME_ASSISTANT_USER, ["homeassistant/#"])
    b = Client.login(site_broker, B, [BASE + B + "/cmd"])
    clients.extend([hub, ha, b])
    # the truth before the attack: B's retained state and availability, the hub's
    b.publish(BASE + B + "/state", b"b-state", retain=True)
    b.publish(BASE + B + "/availability", b"online", retain=True)
    hub.publish(BASE + "hub/availability", b"online", retain=True)
    for topic in (BASE + B + "/state", BASE + B + "/availability", BASE + "hub/availability"):
        hub.wait_for(topic)
    with hub.cond:
        hub.got.clear()
    denied = [
        (BASE + B + "/event", True), (BASE + B + "/event", False),
        (BASE + B + "/state", True), (BASE + B + "/availability", True),
        (BASE + "hub/availability", True), (BASE + B + "/ha_state", True),
        (BASE + B + "/ha_availability", True),
        (BASE + B + "/cmd", False), (BASE + A + "/cmd", False),
        ("homeassistant/binary_sensor/anju_sunrise_door-102/door/config", True),
        ("anju/upstream/sunrise/alarms", False),
    ]
    for topic, retain in denied:
        a = Client.login(site_broker, A)  # a denied publish costs A its connection
        clients.append(a)
        a.attempt(topic, b"offline" if retain else b"forged", retain=retain)
    # positive controls, sent after every denied publish
    a = Client.login(site_broker, A)
    clients.append(a)
    a.publish(BASE + A + "/event", b"mine")
    hub.publish(BASE + B + "/cmd", b"control")
    hub.publish("homeassistant/sensor/control/config", b"{}")
    hub.wait_for(BASE + A + "/event", b"mine")
    b.wait_for(BASE + B + "/cmd", b"control")
    ha.wait_for("homeassistant/sensor/control/config")
    assert [(t, p) for t, p, _ in hub.got] == [(BASE + A + "/event", b"mine")]
    assert [(t, p) for t, p, _ in b.got] == [(BASE + B + "/cmd", b"control")]
    assert [t for t, _, _ in ha.got] == ["homeassistant/sensor/control/config"]
    # and the retained truth is untouched for anyone who subscribes now
    late = Client.login(site_broker, HUB, [BASE + B + "/state", BASE + "+/availability"])
    clients.append(late)
    for topic, payload in ((BASE + B + "/state", b"b-state"), (BASE + B + "/availability", b"online"),
                           (BASE + "hub/availability", b"online")):
        late.wait_for(topic)
        assert [p for t, p, retained in late.got if t == topic] == [payload]


@pytest.mark.parametrize("user", [HUB, HOME_ASSISTANT_USER, A])
def test_only_the_device_itself_writes_its_retained_state_and_availability(site_broker, clients,
                                                                           user):
    b = Client.login(site_broker, B)
    clients.append(b)
    b.publish(BASE + B + "/state", b"b-state", retain=True)
    b.publish(BASE + B + "/availability", b"online", retain=True)
    for topic in (BASE + B + "/state", BASE + B + "/availability"):
        other = Client.login(site_broker, user)  # a denied publish may cost the connection
        clients.append(other)
        other.attempt(topic, b"offline", retain=True)
    # every attempt was handled (acknowledged or its connection closed) before this
    late = Client.login(site_broker, HUB, [BASE + B + "/state", BASE + B + "/availability"])
    clients.append(late)
    late.wait_for(BASE + B + "/state")
    late.wait_for(BASE + B + "/availability")
    assert sorted((t, p) for t, p, retained in late.got if retained) == [
        (BASE + B + "/availability", b"online"), (BASE + B + "/state", b"b-state")]


def test_a_device_reads_only_its_own_commands(site_broker, clients):
    a = Client.login(site_broker, A, [BASE + B + "/cmd", BASE + "+/cmd", BASE + "#",
                                      BASE + "hub/cmd", BASE + "hub/availability",
                                      "homeassistant/#", BASE + A + "/cmd"])
    hub = Client.login(site_broker, HUB)
    b = Client.login(site_broker, B)
    clients.extend([a, hub, b])
    hub.publish(BASE + B + "/cmd", b"for-b")
    hub.publish(BASE + "hub/cmd", b"for-the-hub")
    hub.publish(BASE + "hub/availability", b"online", retain=True)
    hub.publish("homeassistant/lock/x/config", b"{}", retain=True)
    b.publish(BASE + B + "/event", b"b-frame")
    hub.publish(BASE + A + "/cmd", b"for-a")  # the positive control, last
    a.wait_for(BASE + A + "/cmd", b"for-a")
    # it matched three of A's filters (own cmd, +/cmd, #): each copy is A's own command
    assert {(t, p) for t, p, _ in a.got} == {(BASE + A + "/cmd", b"for-a")}


@pytest.mark.parametrize("ingest", ["thread", "process"])
async def test_the_hub_logs_in_and_ingests_a_devices_frames(tmp_path, site_broker, upstream_broker,
                                                          ingest):
    hub = HubService(hubkit.site(extra=HA_EXTRA), tmp_path / "hub.db", SystemClock(),
                     {"host": site_broker.host, "port": site_broker.port, "ingest": ingest,
                      **site_broker.login(HUB)},
                     {"host": upstream_broker.host, "port": upstream_broker.port})
    await hub.start(connect_timeout=10)
    try:
        await asyncio.to_thread(hubkit.publish_frame, site_broker, A, hubkit.door_frame(1))
        await hubkit.wait_for(lambda: hub.pipeline.stats["accepted"] == 1, what="A's frame accepted")
        assert hub.pipeline.stats["rejected"] == 0
    finally:
        await hub.stop()


async def test_a_hub_with_a_wrong_password_does_not_start(tmp_path, site_broker, upstream_broker,
                                                         caplog):
    wrong = "pw-" + uuid.uuid4().hex
    hub = HubService(hubkit.site(), tmp_path / "hub.db", SystemClock(),
                     {"host": site_broker.host, "port": site_broker.port,
                      "username": HUB, "password": wrong},
                     {"host": upstream_broker.host, "port": upstream_broker.port})
    assert wrong not in repr(hub.mqtt.login)
    with pytest.raises(TransportError) as failed:
        await hub.start(connect_timeout=1.5)
    assert "broker refused the hub" in caplog.text
    assert wrong not in caplog.text and wrong not in str(failed.value)


async def test_the_hub_republishes_its_retained_topics_after_the_broker_forgot_them(
        tmp_path, site_broker, upstream_broker, clients):
    site = hubkit.site(extra=HA_EXTRA)
    hub = await hubkit.start_hub(tmp_path / "hub.db", site_broker, upstream_broker, site_cfg=site,
                                 http=False)
    owned = [BASE + "hub/availability", BASE + A + "/ha_state", BASE + A + "/ha_availability",
             "homeassistant/binary_sensor/anju_sunrise_door-101/door/config"]
    watch = ["homeassistant/#", BASE + "+/ha_state", BASE + "+/ha_availability",
             BASE + "hub/availability"]
    try:
        first = Client.login(site_broker, HOME_ASSISTANT_USER, watch)
        clients.append(first)
        for topic in owned:
            await asyncio.to_thread(first.wait_for, topic)
        # a broker restart that loses its database: every retained message is gone
        await asyncio.to_thread(site_broker.stop)
        (site_broker.persistence_dir / "mosquitto.db").unlink(missing_ok=True)
        await asyncio.to_thread(site_broker.start)
        fresh = Client.login(site_broker, HOME_ASSISTANT_USER, watch)
        clients.append(fresh)
        for topic in owned:
            await asyncio.to_thread(fresh.wait_for, topic, None, 15)
        latest = {t: p for t, p, _ in fresh.got}
        assert latest[BASE + "hub/availability"] == b"online"
        cfg = json.loads(latest["homeassistant/binary_sensor/anju_sunrise_door-101/door/config"])
        assert cfg["device_class"] == "door"
        await hubkit.wait_for(lambda: hub.links()["mqtt"], what="the hub's ingest reconnected")
    finally:
        await hub.stop()


async def test_the_hub_logs_in_with_its_certificate_on_the_tls_listener(tmp_path, upstream_broker,
                                                                       make_broker, clients):
    """`anju broker config --tls-port`: the certificate's common name is the
    user name, under the same ACL; the hub's `hub.mqtt.tls` login."""
    from host_tools import broker as broker_config
    from host_tools import certs
    from host_tools.mosquitto import HOST, free_port
    pki = tmp_path / "pki"
    certs.make_ca(pki)
    certs.make_server(pki, "broker", ["127.0.0.1"])
    certs.make_client(pki, HUB)
    site = hubkit.site()
    port, tls_port = free_port(), free_port()
    broker_config.generate(site, tmp_path / "conf", listen=(HOST, port),
                           persistence_dir=tmp_path / "data",
                           tls={"port": tls_port, "cafile": pki / "ca.pem",
                                "certfile": pki / "broker.pem", "keyfile": pki / "broker.key"})
    (tmp_path / "data").mkdir()
    site_broker = make_broker("tls-site", port=port, include_dir=tmp_path / "conf")
    tls = {"ca": str(pki / "ca.pem"), "cert": str(pki / (HUB + ".pem")),
           "key": str(pki / (HUB + ".key"))}
    hub = HubService(site, tmp_path / "hub.db", SystemClock(),
                     {"host": "127.0.0.1", "port": tls_port, "tls": tls, "ingest": "thread"},
                     {"host": upstream_broker.host, "port": upstream_broker.port})
    await hub.start(connect_timeout=10)
    try:
        # a device on the plain listener with its password; the hub hears it over TLS
        passwords = broker_config.read_passwords(tmp_path / "conf")
        site_broker.passwords = passwords
        await asyncio.to_thread(hubkit.publish_frame, site_broker, A, hubkit.door_frame(1))
        await hubkit.wait_for(lambda: hub.pipeline.stats["accepted"] == 1, what="A's frame accepted")
    finally:
        await hub.stop()
    assert "u'%s'" % HUB in site_broker.log_tail(400)


async def test_an_upstream_on_the_site_broker_uses_the_hubs_login(tmp_path, site_broker, clients):
    """`hub.upstream` pointing at the site broker itself: the forwarder and the
    command subscriber log in as the hub, whose ACL has `anju/upstream/<site>/#`."""
    watcher = Client.login(site_broker, HUB, ["anju/upstream/sunrise/alarms"])
    clients.append(watcher)
    hub = await hubkit.start_hub(tmp_path / "hub.db", site_broker, site_broker, http=False)
    try:
        alarm = hubkit.raise_alarm(hub, "tamper:door-101")
        await asyncio.to_thread(watcher.wait_for, "anju/upstream/sunrise/alarms", None, 10)
        (topic, payload, _), = [m for m in watcher.got if m[0].endswith("/alarms")]
        assert json.loads(payload)["id"] == alarm["id"]
    finally:
        await hub.stop()
