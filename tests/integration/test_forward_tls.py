"""MQTT over TLS with client certificates, for real: certificates made by
host_tools/certs.py, a private Mosquitto with a TLS listener that requires a
client certificate and takes its common name as the username, and the ACL
file from docs/forwarding.md that confines each device to its own topics.
"""
import asyncio
import json
import socket
import ssl
import threading
import time

import paho.mqtt.client as paho
import pytest

from hub import ConfigError
from hub.forward.outbox import Wakeups
from hub.forward.upstream import UpstreamForwarder, tls_context
from hub.store import Store
from host_tools import certs

pytestmark = [pytest.mark.broker]

SITE = "s1"
# the example ACL of docs/forwarding.md, for site s1
ACL = """\
# the hub: everything of its own site, and its upstream alarms
user hub-s1
topic readwrite anju/s1/#
topic readwrite anju/upstream/s1/#
topic readwrite homeassistant/#

# every device (certificate common name = device id = username): its own topics only
pattern readwrite anju/s1/%u/#
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    certs.make_ca(d)
    certs.make_server(d, "broker", ["127.0.0.1", "localhost"])
    certs.make_server(d, "wronghost", ["broker.elsewhere.example"])
    certs.make_client(d, "hub-s1")
    certs.make_client(d, "door-a")
    certs.make_client(d, "door-b")
    return d


def tls_broker(make_broker, pki, tmp_path, server="broker"):
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    return make_broker("tls", extra_config=(
        "cafile %s" % (pki / "ca.pem"), "certfile %s" % (pki / ("%s.pem" % server)),
        "keyfile %s" % (pki / ("%s.key" % server)), "require_certificate true",
        "use_identity_as_username true", "acl_file %s" % acl))


def client(broker, pki, name=None, client_id=None):
    """A started paho client; `.connected` is set on a successful CONNACK."""
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id or name or "anon",
                    protocol=paho.MQTTv5)
    c.connected = threading.Event()
    c.got = []

    def on_connect(cl, userdata, flags, rc, props):
        if not rc.is_failure:
            c.connected.set()
    c.on_connect = on_connect
    c.on_message = lambda cl, u, msg: c.got.append((msg.topic, msg.payload))
    if name is None:
        c.tls_set(ca_certs=str(pki / "ca.pem"))
    else:
        c.tls_set(ca_certs=str(pki / "ca.pem"), certfile=str(pki / ("%s.pem" % name)),
                  keyfile=str(pki / ("%s.key" % name)))
    try:
        c.connect(broker.host, broker.port)
    except OSError:
        pass  # refused during the handshake: never connected
    c.loop_start()
    return c


def test_keys_are_private_and_never_overwritten(pki):
    for key in pki.glob("*.key"):
        assert key.stat().st_mode & 0o777 == 0o600
    with pytest.raises(certs.CertError):
        certs.make_client(pki, "door-a")


async def test_hub_forwards_over_tls_with_its_client_certificate(make_broker, pki, tmp_path):
    broker = tls_broker(make_broker, pki, tmp_path)
    platform = client(broker, pki, "hub-s1", client_id="platform")
    assert platform.connected.wait(5)
    platform.subscribe("anju/upstream/s1/#", qos=1)
    time.sleep(0.2)
    store = Store(tmp_path / "hub.db")
    with store.transaction() as tx:
        tx.insert_alarm({"id": "a1", "seq": 1, "type": "smoke", "severity": "critical",
                         "state": "raised"}, 1.0, "anju/upstream/s1/alarms")
    tls = {"ca": pki / "ca.pem", "cert": pki / "hub-s1.pem", "key": pki / "hub-s1.key"}
    fwd = UpstreamForwarder(store, broker.host, broker.port, "hub-s1", Wakeups(), tls=tls)
    fwd.start(asyncio.get_running_loop())
    task = asyncio.create_task(fwd.run())
    try:
        fwd.wakeup.set()
        for _ in range(100):
            if store.outbox_depth() == 0 and platform.got:
                break
            await asyncio.sleep(0.05)
        assert store.outbox_depth() == 0
        assert json.loads(platform.got[0][1])["id"] == "a1"
    finally:
        task.cancel()
        fwd.stop()
        platform.disconnect()
        platform.loop_stop()
        store.close()


def test_broker_refuses_a_client_without_certificate(make_broker, pki, tmp_path):
    broker = tls_broker(make_broker, pki, tmp_path)
    c = client(broker, pki, None)
    try:
        assert not c.connected.wait(2), "the broker accepted a client without a certificate"
    finally:
        c.disconnect()
        c.loop_stop()


@pytest.mark.parametrize("server, refused", [("broker", False), ("wronghost", True)])
def test_hub_verifies_the_broker_hostname(make_broker, pki, tmp_path, server, refused):
    broker = tls_broker(make_broker, pki, tmp_path, server=server)
    ctx = tls_context({"ca": pki / "ca.pem", "cert": pki / "hub-s1.pem",
                       "key": pki / "hub-s1.key"})
    with socket.create_connection(broker.address, timeout=5) as raw:
        if refused:
            with pytest.raises(ssl.SSLCertVerificationError):
                ctx.wrap_socket(raw, server_hostname=broker.host)
        else:
            ctx.wrap_socket(raw, server_hostname=broker.host).close()


def test_tls_config_errors_are_config_errors(pki, tmp_path):
    store = Store(tmp_path / "hub.db")
    try:
        for tls in ({}, {"ca": pki / "ca.pem", "cert": pki / "hub-s1.pem"},
                    {"ca": tmp_path / "missing.pem"}):
            with pytest.raises(ConfigError):
                UpstreamForwarder(store, "127.0.0.1", 1, "x", Wakeups(), tls=tls)
    finally:
        store.close()


def test_acl_confines_each_device_to_its_own_topics(make_broker, pki, tmp_path):
    broker = tls_broker(make_broker, pki, tmp_path)
    hub = client(broker, pki, "hub-s1")
    a = client(broker, pki, "door-a")
    try:
        assert hub.connected.wait(5) and a.connected.wait(5)
        hub.subscribe("anju/s1/#", qos=1)
        time.sleep(0.2)
        forged = a.publish("anju/s1/door-b/event", b"forged", qos=1)
        own = a.publish("anju/s1/door-a/event", b"mine", qos=1)
        forged.wait_for_publish(5)
        own.wait_for_publish(5)
        time.sleep(0.3)
        assert hub.got == [("anju/s1/door-a/event", b"mine")]
    finally:
        for c in (hub, a):
            c.disconnect()
            c.loop_stop()
