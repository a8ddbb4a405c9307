"""Gate readers (QR) and vehicle barriers (number plates) on the site broker
(docs/visitors.md, "Gate readers and barriers").

These are commercial devices, not anju firmware: a QR turnstile or a plate
camera with its barrier, integrated through the vendor's MQTT bridge, which
speaks JSON. So their messages are JSON with an HMAC over the canonical
encoding, with the same guarantees as device frames: a per-reader key (the
site file's `visitors.readers[].key`), a strictly increasing counter the hub
keeps in its store, and a clock check; forged, replayed and stale reports
change nothing and are counted.

    reader -> hub   anju/<site>/<reader>/visitor   QoS 1
        {"reader", "counter", "at", "kind": "qr"|"plate", "value", "direction": "in"|"out",
         "mac"}
    hub -> reader   anju/<site>/<reader>/cmd       QoS 1
        {"reader", "counter", "ref", "at", "open", "reason", "valid_s", "mac"}

    mac = hex(HMAC-SHA256(key, LABEL 0x00 canonical)[:16]), canonical = the
    object without "mac" as JSON, keys sorted, no spaces, UTF-8;
    LABEL = "anju-visitor-report" (reader -> hub) / "anju-visitor-cmd".

`parse_report` and `command` are pure; `ReaderLink` is the shell: its paho
client (logged in as the hub) hands a message to the loop, where it is
verified, decided by the visitor book, and answered through the hub's
shared command link (hub/forward/device_commands.py).
"""
import asyncio
import hashlib
import hmac
import json
import logging
import threading

import paho.mqtt.client as paho

from hub import HubError
from hub.forward import device_commands

log = logging.getLogger("anju.hub.visitors")

REPORT_LABEL = b"anju-visitor-report"
COMMAND_LABEL = b"anju-visitor-cmd"
MAX_SKEW_S = 60       # a report older or newer than this is stale
MAX_REPORT_BYTES = 1024
OPEN_VALID_S = 10     # a reader ignores an open command older than this
COUNTER_RULE = "visitor_readers"
REPORT_KEYS = {"reader", "counter", "at", "kind", "value", "direction", "mac"}


class ReportRejected(HubError):
    """A report that changes nothing; `reason` is counted and logged."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def canonical(doc):
    return json.dumps({k: v for k, v in doc.items() if k != "mac"}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(key, label, doc):
    return hmac.new(key, label + b"\x00" + canonical(doc), hashlib.sha256).digest()[:16].hex()


def parse_report(reader, payload, last_counter, now):
    """A verified report of `reader` (settings.Reader) -> the report dict, or
    ReportRejected(reason): malformed, forged, replayed, stale."""
    if len(payload) > MAX_REPORT_BYTES:
        raise ReportRejected("too_long")
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReportRejected("malformed") from exc
    if not isinstance(doc, dict) or set(doc) != REPORT_KEYS:
        raise ReportRejected("malformed")
    mac = doc["mac"]
    if not isinstance(mac, str) or not hmac.compare_digest(
            mac.encode(), sign(reader.key, REPORT_LABEL, doc).encode()):
        raise ReportRejected("forged")
    counter, at = doc["counter"], doc["at"]
    if (doc["reader"] != reader.id or isinstance(counter, bool) or not isinstance(counter, int)
            or isinstance(at, bool) or not isinstance(at, (int, float))
            or doc["kind"] not in ("qr", "plate") or doc["direction"] not in ("in", "out")
            or not isinstance(doc["value"], str)):
        raise ReportRejected("malformed")
    if doc["kind"] == "qr" and reader.kind != "qr_reader" or \
            doc["kind"] == "plate" and reader.kind != "barrier":
        raise ReportRejected("wrong_kind")
    if counter <= last_counter:
        raise ReportRejected("replayed")
    if abs(at - now) > MAX_SKEW_S:
        raise ReportRejected("stale")
    return doc


def command(reader, counter, ref, now, opened, reason):
    doc = {"reader": reader.id, "counter": counter, "ref": ref, "at": int(now),
           "open": bool(opened), "reason": reason, "valid_s": OPEN_VALID_S}
    doc["mac"] = sign(reader.key, COMMAND_LABEL, doc)
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def topic_filter(site_id):
    return "anju/%s/+/visitor" % site_id


class ReaderLink:
    """The hub's side of the readers: subscribe, verify, decide, answer."""

    def __init__(self, hub, service):
        self.hub, self.service = hub, service
        self.site_id = hub.site.site_id
        self.link = device_commands.shared_link(hub)
        self.subscribed = threading.Event()
        self.rejected = {}
        self._stop_link = None
        self._loop = None
        self._pending = set()
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                   client_id="anju-hub-%s-visitors" % self.site_id)
        if hub.mqtt.login is not None:
            hub.mqtt.login.apply(self._client)
        self._client.reconnect_delay_set(min_delay=0.2, max_delay=5)
        subscribed = self.subscribed
        self._client.on_connect = lambda c, u, f, rc, p: (
            None if rc.is_failure else c.subscribe(topic_filter(self.site_id), qos=1))
        self._client.on_subscribe = lambda c, u, m, rcs, p: (
            subscribed.set() if not any(r.is_failure for r in rcs) else None)
        self._client.on_disconnect = lambda c, u, f, rc, p: subscribed.clear()
        self._client.on_message = self._on_message

    async def start(self):
        self._loop = asyncio.get_running_loop()
        self._stop_link = self.link.start()
        host, port = self.hub._mqtt_address
        self._client.connect_async(host, port, keepalive=30)
        self._client.loop_start()

    async def stop(self):
        self._client.disconnect()
        await asyncio.wait_for(self._loop.run_in_executor(None, self._client.loop_stop), 10.0)
        reset = getattr(self._client, "_reset_sockets", None)
        if reset is not None:
            reset()
        for task in list(self._pending):
            task.cancel()
        if self._stop_link is not None:
            self._stop_link()
            self._stop_link = None

    async def wait_ready(self, timeout):
        end = self._loop.time() + timeout
        while not (self.subscribed.is_set() and self.link.connected.is_set()):
            if self._loop.time() > end:
                from hub import TransportError
                raise TransportError("visitor readers: not subscribed within %.0f s" % timeout)
            await asyncio.sleep(0.02)

    def _on_message(self, client, userdata, msg):
        try:
            self._loop.call_soon_threadsafe(self._apply, msg.topic, bytes(msg.payload))
        except RuntimeError:
            pass  # the loop is closed; the reader times out and the visitor scans again

    def _reject(self, reader_id, reason):
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        log.warning("visitor reader report rejected", extra={"reader": reader_id,
                                                              "reason": reason})

    def _apply(self, topic, payload):
        parts = topic.split("/")
        reader = self.service.settings.readers.get(parts[2]) if len(parts) == 4 else None
        if reader is None:
            return self._reject(parts[2] if len(parts) == 4 else None, "unknown_reader")
        store, now = self.hub.store, self.hub.clock.now()
        last = store.rule_get(COUNTER_RULE, "ctr:" + reader.id, 0)
        try:
            doc = parse_report(reader, payload, last, now)
        except ReportRejected as exc:
            return self._reject(reader.id, exc.reason)
        book = self.service.book
        try:
            with store.transaction() as tx:  # the counter before the decision: no replay
                tx.rule_set(COUNTER_RULE, "ctr:" + reader.id, doc["counter"])
            if doc["kind"] == "qr":
                opened, reason, _ = book.admit_qr(reader, doc["value"], doc["direction"])
            else:
                opened, reason, _ = book.admit_plate(reader, doc["value"], doc["direction"])
            with store.transaction() as tx:
                counter = device_commands.allocate_counter(tx, reader.id, now)
        except HubError as exc:
            # the store failed: nothing opens; the reader shows no answer
            log.error("visitor reader report not decided", extra={"reader": reader.id,
                                                                  "error": str(exc)})
            return
        payload = command(reader, counter, doc["counter"], now, opened, reason)
        task = asyncio.ensure_future(self._answer(reader, payload))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _answer(self, reader, payload):
        try:
            await self.link.publish(device_commands.cmd_topic(self.site_id, reader.id), payload)
        except device_commands.CommandError as exc:
            # not retried: an open command is worth nothing seconds later; the
            # reader shows no answer and the visitor scans again
            log.warning("visitor reader not answered", extra={"reader": reader.id,
                                                              "error": str(exc)})
