"""The hub's implementations of the face-access sinks, and the bridge that lets
other threads use the hub's store.

The SQLite store belongs to the asyncio loop thread: the ingest, rules and
forwarder tasks use it between awaits, never across one, so a function run as a
loop callback sees no half-open transaction. Face access calls its sinks from
worker threads (and the lock-ack handler from paho's thread); `LoopBridge.call`
runs the store work as a loop callback and waits for the result with a timeout
shorter than the face service's own (5 s), turning a timeout into `StoreError`.

A watch-list alarm goes through exactly the path of an inactivity alarm: one
transaction writes the alarm, its first transition and its outbox row, then the
forwarder is woken. This module must never touch the store from a foreign
thread and never log lock keys or payload secrets (payloads carry none).
"""
import asyncio
import concurrent.futures
import logging
import numbers

from hub import StoreError
from hub.alarms import documents as alarms

log = logging.getLogger("anju.hub.sinks")

CALL_TIMEOUT_S = 4.0


class LoopBridge:
    """Runs functions on the hub's loop thread for callers in other threads."""

    def __init__(self, loop, timeout_s=CALL_TIMEOUT_S):
        self.loop = loop
        self.timeout_s = timeout_s
        self.closed = False

    def _on_loop_thread(self):
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def call(self, fn, *args):
        """`fn(*args)` on the loop thread; its result, or its exception re-raised here."""
        if self.closed:
            raise StoreError("the hub is stopping; %s not run" % getattr(fn, "__name__", fn))
        if self._on_loop_thread():
            return fn(*args)
        future = concurrent.futures.Future()

        def run():
            if not future.set_running_or_notify_cancel():
                return  # the caller gave up; do not write late
            try:
                future.set_result(fn(*args))
            except Exception as exc:  # handed to the waiting thread, which re-raises it
                future.set_exception(exc)

        try:
            self.loop.call_soon_threadsafe(run)
        except RuntimeError as exc:  # the loop is closed
            raise StoreError("the hub's loop is not running") from exc
        try:
            return future.result(self.timeout_s)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise StoreError("the hub's store did not answer within %.1f s"
                             % self.timeout_s) from exc

    def close(self):
        self.closed = True


def _evidence(detail):
    """What a responder looks at first: the snapshot, the score, who matched."""
    out = {}
    for key in ("snapshot", "score", "person_id", "name", "track", "models"):
        if key in detail:
            out[key] = detail[key]
    return out


class HubAlarmSink:
    """`raise_alarm` for face access: an `anju.alarm/1` document into the outbox."""

    def __init__(self, site, store, clock, topic, bridge, notify_outbox):
        self.site = site
        self.store = store
        self.clock = clock
        self.topic = topic
        self.bridge = bridge
        self.notify_outbox = notify_outbox  # called on the loop thread after the commit

    def raise_alarm(self, type, severity, location, detail):
        return self.bridge.call(self._raise, type, severity, dict(location or {}), dict(detail or {}))

    def _raise(self, type, severity, location, detail):
        if location.get("site") not in (None, self.site.site_id):
            raise StoreError("alarm for site %r raised on the hub of %r"
                             % (location.get("site"), self.site.site_id))
        now = self.clock.now()
        doc = alarms.generic(self.site, type, severity, location, detail, now,
                             evidence=_evidence(detail))
        # A JSON round trip now, so a value the encoder cannot take fails here and
        # not in the forwarder; numpy scalars become plain numbers.
        doc = _plain(doc)
        with self.store.transaction() as tx:
            tx.insert_alarm(doc, now, self.topic, actor="face")
        self.notify_outbox()
        log.info("alarm raised", extra={"alarm": doc["id"], "type": type,
                                        "entrance": location.get("entrance")})
        return doc["id"]


class HubEventSink:
    """`record` for face access: one row per event in the append-only access_log."""

    def __init__(self, store, clock, bridge):
        self.store = store
        self.clock = clock
        self.bridge = bridge

    def record(self, kind, payload):
        payload = _plain(dict(payload or {}))
        at = payload.get("time")
        if not isinstance(at, numbers.Real) or isinstance(at, bool):
            at = self.clock.now()
        return self.bridge.call(self.store.append_access, kind, float(at), payload)


def _plain(value):
    """JSON-safe copy: numpy numbers to Python numbers, tuples to lists, other
    objects to their str()."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, bool, type(None))):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return str(value)
