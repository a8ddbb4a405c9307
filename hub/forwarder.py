"""Outbox → forwarding targets: the upstream MQTT 5 broker (QoS 1, optional
TLS with the hub's client certificate) and, in hub/webhook.py, an HTTPS webhook.

`OutboxDrainer` is the delivery core shared by both targets. It keeps up to
`window` documents in flight, at most ONE per alarm: version n+1 of an alarm
is sent only after the target acknowledged version n, while different alarms
proceed side by side; fire alarms (higher priority) are offered first. A row
leaves the outbox only after the target acknowledged it (MQTT PUBACK, HTTP 2xx),
and that delete is committed before the next version of the same alarm is
sent. A failed send waits with exponential backoff and jitter (per alarm,
capped); a document the target refuses for good (webhook 4xx) goes to the
`dead_letters` table and is logged as an error: it is never dropped silently.

A crash between acknowledgement and delete sends the same (id, seq) again;
the platform de-duplicates on it (docs/forwarding.md). This module never
deletes a row that was not acknowledged and never logs secrets or payloads.
"""
import asyncio
import logging
import random
import ssl
import threading

import paho.mqtt.client as paho

from hub import ConfigError
from hub.config import flag, host_port, refuse_unknown_keys, section, topic, where_in

log = logging.getLogger("anju.hub.forwarder")

PUBACK_TIMEOUT_S = 30.0  # counted only while connected: paho re-sends after a reconnect
WINDOW = 50
DELIVERED, RETRY, DEAD = "delivered", "retry", "dead"


class Backoff:
    """Exponential backoff with full jitter: attempt n waits a random time in
    [base*2**n / 2, base*2**n], never more than `cap`. Pure; `rng` injected."""

    def __init__(self, base=0.5, cap=60.0, rng=None):
        self.base = base
        self.cap = cap
        self.rng = rng or random.Random()

    def delay(self, attempt):
        top = min(self.cap, self.base * (2 ** min(attempt, 32)))
        return top / 2 + self.rng.random() * top / 2


class Wakeups:
    """One asyncio.Event per target behind the Event interface the hub uses:
    `set()` wakes every target, `is_set()` is true while any has not run yet."""

    def __init__(self):
        self._events = {}

    def event(self, target):
        return self._events.setdefault(target, asyncio.Event())

    def set(self):
        for e in self._events.values():
            e.set()

    def is_set(self):
        return any(e.is_set() for e in self._events.values())

    def clear(self):
        for e in self._events.values():
            e.clear()


class OutboxDrainer:
    """Drains one target's outbox rows. Subclasses provide `send(row)` →
    (DELIVERED | RETRY | DEAD, reason) and `ready()`."""

    target = "mqtt"

    def __init__(self, store, wakeup, window=WINDOW, backoff=None, now=None, sleep=None):
        self.store = store
        if isinstance(wakeup, Wakeups):
            wakeup = wakeup.event(self.target)
        self.wakeup = wakeup
        self.window = window
        self.backoff = backoff or Backoff()
        self._now = now  # monotonic seconds; the loop's clock unless injected
        self._sleep = sleep or asyncio.sleep
        self.delivered = 0
        self.retried = 0
        self.dead = 0
        self.busy = False
        self._not_before = {}  # alarm id -> earliest time of its next attempt

    def ready(self):
        return True

    async def send(self, row):
        raise NotImplementedError

    def idle(self):
        return not self.busy and (not self.ready() or self.store.outbox_depth(self.target) == 0)

    def now(self):
        return self._now() if self._now is not None else asyncio.get_running_loop().time()

    async def run(self):
        while True:
            self.busy = False
            await self.wakeup.wait()
            self.wakeup.clear()
            self.busy = True
            await self.drain()

    async def drain(self):
        """Send until this target's outbox is empty (or the target is not ready
        and nothing is in flight)."""
        inflight = {}  # task -> row
        try:
            while True:
                if self.ready() and len(inflight) < self.window:
                    self._fill(inflight)
                if not inflight:
                    if not self.ready() or self.store.outbox_depth(self.target) == 0:
                        return
                    # every waiting alarm is backing off: sleep until the first is due
                    due = min(self._not_before.values(), default=self.now())
                    waiters = [asyncio.ensure_future(self.wakeup.wait()),
                               asyncio.ensure_future(self._sleep(max(0.0, due - self.now())))]
                    try:
                        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        for w in waiters:
                            w.cancel()
                    self.wakeup.clear()
                    continue
                done, _ = await asyncio.wait(list(inflight), return_when=asyncio.FIRST_COMPLETED)
                self._settle([(inflight.pop(t), t) for t in done])
        finally:
            for t in inflight:
                t.cancel()

    def _fill(self, inflight):
        busy = {row[1] for row in inflight.values()}
        now = self.now()
        for row in self.store.outbox_heads(self.target, self.window + len(busy)):
            if len(inflight) >= self.window:
                break
            alarm_id = row[1]
            if alarm_id in busy or self._not_before.get(alarm_id, now) > now:
                continue
            busy.add(alarm_id)
            inflight[asyncio.ensure_future(self.send(row))] = row

    def _settle(self, finished):
        """One transaction for every send that finished: delete, count or dead-letter."""
        now = self.now()
        with self.store.transaction() as tx:
            for row, task in finished:
                if task.cancelled():
                    continue
                exc = task.exception()
                outcome, reason = (RETRY, "%s: %s" % (type(exc).__name__, exc)) if exc else \
                    task.result()
                row_id, alarm_id, seq = row[0], row[1], row[2]
                if outcome == DELIVERED:
                    tx.outbox_delivered(row_id)
                    self._not_before.pop(alarm_id, None)
                    self.delivered += 1
                elif outcome == DEAD:
                    tx.outbox_dead_letter(row_id, reason, now)
                    self._not_before.pop(alarm_id, None)
                    self.dead += 1
                    log.error("alarm refused by %s: kept as a dead letter" % self.target,
                              extra={"alarm": alarm_id, "seq": seq, "reason": reason})
                else:
                    tx.outbox_attempt(row_id)
                    self.retried += 1
                    wait = self.backoff.delay(row[5])
                    self._not_before[alarm_id] = now + wait
                    log.warning("forwarding failed; retrying", extra={
                        "target": self.target, "alarm": alarm_id, "seq": seq, "reason": reason,
                        "retry_in_s": round(wait, 2)})


TLS_KEYS = ("ca", "cert", "key")
UPSTREAM_KEYS = ("enabled", "host", "port", "topic_prefix", "tls")


def tls_context(tls, where="hub.upstream.tls"):
    """ssl.SSLContext from {ca, cert, key}: the platform's CA, the hub's client
    certificate; hostname verification stays on. Reads the files, nothing else:
    `anju config check` calls it too (hub/preflight.py)."""
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
                 backoff=None, now=None, sleep=None, puback_timeout=PUBACK_TIMEOUT_S):
        super().__init__(store, wakeup, window=window, backoff=backoff, now=now, sleep=sleep)
        self.host = host
        self.port = port
        self.connected = threading.Event()
        self.puback_timeout = puback_timeout
        self.tls = tls  # {ca, cert, key} or None: other upstream clients use the same identity
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=paho.MQTTv5)
        if tls is not None:
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


def build_forwarders(store, site, upstream, clock, wakeup, webhook=None):
    """The site's targets from `upstream` ({host, port, topic_prefix, tls?};
    `enabled: false` or no host = no MQTT target) and `webhook` (else the
    site's `hub.webhook`). Sets `store.targets` so every alarm document is
    queued once per target. At least one target is required."""
    hubcfg = getattr(site, "hub", None) or {}
    forwarders = []
    from_file = parse_upstream(hubcfg.get("upstream"))
    enabled = upstream.get("enabled", from_file["enabled"]) if upstream else False
    if enabled and upstream.get("host"):
        tls = upstream.get("tls", from_file["tls"])
        forwarders.append(UpstreamForwarder(store, upstream["host"], int(upstream["port"]),
                                            "anju-hub-%s-upstream" % site.site_id, wakeup,
                                            tls=tls))
    webhook = webhook if webhook is not None else hubcfg.get("webhook")
    if webhook is not None:
        from hub.webhook import WebhookForwarder, parse_config
        forwarders.append(WebhookForwarder(store, parse_config(webhook), clock, wakeup))
    if not forwarders:
        raise ConfigError("hub: no forwarding target: configure hub.upstream and/or hub.webhook")
    store.targets = tuple(f.target for f in forwarders)
    for target, rows in store.outbox_targets().items():
        if target not in store.targets:
            log.error("outbox rows wait for a target that is no longer configured",
                      extra={"target": target, "rows": rows})
    return forwarders
