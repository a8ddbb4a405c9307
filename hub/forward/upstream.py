"""The upstream MQTT 5 target: the police/property platform's broker, QoS 1,
optional TLS with the hub's client certificate (docs/forwarding.md).

Delivery order, backoff and dead letters are the outbox's (hub/forward/outbox.py);
this module only publishes and waits for the PUBACK. It never logs payloads.
"""
import asyncio
import logging
import ssl
import threading

import paho.mqtt.client as paho

from hub import ConfigError
from hub.config.values import flag, host_port, refuse_unknown_keys, section, topic, where_in
from hub.forward.outbox import DELIVERED, RETRY, WINDOW, OutboxDrainer

log = logging.getLogger("anju.hub.forwarder")

PUBACK_TIMEOUT_S = 30.0  # counted only while connected: paho re-sends after a reconnect

TLS_KEYS = ("ca", "cert", "key")
UPSTREAM_KEYS = ("enabled", "host", "port", "topic_prefix", "tls")


def tls_context(tls, where="hub.upstream.tls"):
    """ssl.SSLContext from {ca, cert, key}: the platform's CA, the hub's client
    certificate; hostname verification stays on. Reads the files, nothing else:
    `anju config check` calls it too (hub/config/preflight.py)."""
    if isinstance(tls, dict):
        refuse_unknown_keys(tls, TLS_KEYS, "in " + where)
    if not isinstance(tls, dict) or "ca" not in tls:
        raise ConfigError("%s: needs at least 'ca' (and 'cert' + 'key' for a client certificate)"
                          % where_in(tls, None, where))
    if ("cert" in tls) != ("key" in tls):
        raise ConfigError("%s: 'cert' and 'key' go together" % where_in(tls, None, where))
    for key in TLS_KEYS:
        if key in tls:  # name the file that is missing, not just "a TLS file"
            try:
                with open(str(tls[key]), "rb"):
                    pass
            except OSError as exc:
                raise ConfigError("%s: key '%s': cannot read %s: %s"
                                  % (where_in(tls, key, where), key, tls[key],
                                     exc.strerror or exc)) from exc
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls["ca"]))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("%s: key 'ca': cannot load %s as PEM certificates: %s"
                          % (where_in(tls, "ca", where), tls["ca"], exc)) from exc
    if "cert" in tls:
        try:
            ctx.load_cert_chain(str(tls["cert"]), str(tls["key"]))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError("%s: keys 'cert' and 'key': cannot load the client certificate "
                              "and its key: %s" % (where_in(tls, "cert", where), exc)) from exc
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def parse_upstream(node, where="hub.upstream"):
    """The site file's `hub.upstream` mapping, checked (TLS files loaded):
    {enabled, host, port, topic_prefix, tls}, None for what is not given.
    Opens no connection."""
    node = section(node, UPSTREAM_KEYS, where, "like {host: ..., port: 1883}")
    enabled = flag(node, "enabled", where, True)
    host, port = host_port(node, where)
    prefix = topic(node, "topic_prefix", where, None, "anju/upstream")
    tls = node.get("tls")
    if tls is not None:
        tls_context(tls, where + ".tls")
    return {"enabled": enabled, "host": host, "port": port, "topic_prefix": prefix, "tls": tls}


class UpstreamForwarder(OutboxDrainer):
    """The MQTT 5 target: QoS 1 publishes, pipelined up to `window`."""

    target = "mqtt"

    def __init__(self, store, host, port, client_id, wakeup, tls=None, window=WINDOW,
                 backoff=None, now=None, sleep=None, puback_timeout=PUBACK_TIMEOUT_S,
                 login=None):
        super().__init__(store, wakeup, window=window, backoff=backoff, now=now, sleep=sleep)
        self.host = host
        self.port = port
        self.connected = threading.Event()
        self.puback_timeout = puback_timeout
        self.tls = tls  # {ca, cert, key} or None: other upstream clients use the same identity
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=paho.MQTTv5)
        # the hub's site-broker login (with its TLS) when the upstream is that
        # same broker (hub/ingest/login.py); other upstream clients do the same
        self.login = login
        if login is not None:
            login.apply(self._client)
        elif tls is not None:
            self._client.tls_set_context(tls_context(tls))
        self._client.max_inflight_messages_set(window)
        self._client.reconnect_delay_set(min_delay=0.2, max_delay=10)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._loop = None
        self._acks = {}  # mid -> future; touched on the loop thread only

    def start(self, loop):
        self._loop = loop
        self._client.connect_async(self.host, self.port, keepalive=30)
        self._client.loop_start()

    def stop(self):
        self._client.disconnect()
        self._client.loop_stop()

    def ready(self):
        return self.connected.is_set()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("upstream refused the hub", extra={"reason": str(reason_code)})
            return
        self.connected.set()
        log.info("connected upstream", extra={"broker": "%s:%d" % (self.host, self.port)})
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.wakeup.set)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        log.warning("upstream link lost", extra={"reason": str(reason_code)})

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        # paho calls this holding its message lock: hand over, take no lock here
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._acked, mid, reason_code)

    def _acked(self, mid, reason_code):
        fut = self._acks.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(reason_code)

    async def send(self, row):
        _, alarm_id, seq, topic, payload, _ = row
        fut = asyncio.get_running_loop().create_future()
        info = self._client.publish(topic, payload.encode(), qos=1)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            return RETRY, "publish failed: %s" % paho.error_string(info.rc)
        # NO_CONN: paho keeps the message and sends it after the reconnect.
        # Registered before this coroutine yields, so _acked (which runs on
        # this loop) always finds it.
        self._acks[info.mid] = fut
        waited = 0.0
        try:
            while True:
                try:
                    reason = await asyncio.wait_for(asyncio.shield(fut), 1.0)
                    break
                except asyncio.TimeoutError:
                    if self.connected.is_set():
                        waited += 1.0
                    if waited >= self.puback_timeout:
                        return RETRY, "no PUBACK within %.0f s" % self.puback_timeout
        finally:
            self._acks.pop(info.mid, None)
        if reason is not None and getattr(reason, "is_failure", False):
            return RETRY, "upstream refused the publish: %s" % reason
        return DELIVERED, None
