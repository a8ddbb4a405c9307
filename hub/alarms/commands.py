"""Lifecycle commands from the upstream platform (docs/alarms.md): dispatch,
acknowledge, resolve, cancel, false alarm.

Two ways in, one path: `anju.command/1` documents on the upstream broker's
`<prefix>/<site>/commands` topic (this module's own paho MQTT 5 client, a
persistent session, so commands sent while the hub was down arrive after it
comes back) and `POST /api/alarms/<id>/actions` (hub/web/http.py). Both end in
`CommandProcessor.apply`, which runs `Pipeline.command` in one store
transaction on the hub's loop thread: the command id makes a repeated command a
`duplicate`, the lifecycle (hub/alarms/lifecycle.py) ignores out-of-order and closed
ones, and the new alarm version goes upstream through the outbox like any other.

An MQTT command is acknowledged (manual PUBACK) only after its outcome is
committed; a message that cannot be a command (malformed, oversized, unknown
action) is answered `invalid`, counted, logged and acknowledged, so a poison
message is not redelivered forever. Every outcome is published as an
`anju.command_result/1` document on `<prefix>/<site>/command_results`.

It must never touch the store from paho's thread, never crash on any payload,
and never log a command's note in full (it may name people; only its length).
"""
import asyncio
import json
import logging
import threading

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub import StoreError
from hub.alarms import documents as alarm_docs

log = logging.getLogger("anju.hub.commands")

SCHEMA = "anju.command/1"
RESULT_SCHEMA = "anju.command_result/1"
MAX_COMMAND_BYTES = 16 * 1024
MAX_ID_CHARS = 128
MAX_ACTOR_CHARS = 128
MAX_NOTE_CHARS = 2000
SESSION_EXPIRY_S = 7 * 24 * 3600  # commands queued at the broker for a hub down up to a week
ACTIONS = {"dispatch": "dispatched", "acknowledge": "acknowledged", "resolve": "resolved",
           "cancel": "cancelled", "false_alarm": "false_alarm"}
OUTCOMES = ("applied", "duplicate", "same_state", "out_of_order", "closed", "unknown_alarm",
            "invalid")


class CommandInvalid(ValueError):
    """A payload that is not a usable command; `reason` is reported to the sender."""

    def __init__(self, reason, detail, partial=None):
        super().__init__(detail)
        self.reason, self.detail, self.partial = reason, detail, partial or {}


def _text(doc, key, limit, required=True):
    value = doc.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise CommandInvalid("bad_field", "%s must be a non-empty string" % key, doc)
    if len(value) > limit:
        raise CommandInvalid("bad_field", "%s longer than %d characters" % (key, limit), doc)
    return value


def parse(payload, default_actor="platform"):
    """A command dict {command_id, alarm_id, action, state, actor, note, at,
    assignee} (assignee: who a dispatch sends, e.g. a responder id) from
    JSON bytes or a dict; raises CommandInvalid. Pure."""
    if isinstance(payload, (bytes, bytearray)):
        if len(payload) > MAX_COMMAND_BYTES:
            raise CommandInvalid("oversized", "command of %d bytes; the limit is %d"
                                 % (len(payload), MAX_COMMAND_BYTES))
        try:
            payload = json.loads(bytes(payload).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise CommandInvalid("malformed", "not UTF-8 JSON: %s" % exc) from exc
    if not isinstance(payload, dict):
        raise CommandInvalid("malformed", "a command is a JSON object")
    partial = {k: payload.get(k) for k in ("command_id", "alarm_id", "action")
               if isinstance(payload.get(k), str) and len(payload.get(k)) <= MAX_ID_CHARS}
    if payload.get("schema", SCHEMA) != SCHEMA:
        raise CommandInvalid("bad_schema", "schema must be %s" % SCHEMA, partial)
    try:
        cmd = {"command_id": _text(payload, "command_id", MAX_ID_CHARS),
               "alarm_id": _text(payload, "alarm_id", MAX_ID_CHARS),
               "action": _text(payload, "action", MAX_ID_CHARS),
               "actor": _text(payload, "actor", MAX_ACTOR_CHARS, required=False) or default_actor,
               "note": payload.get("note"),
               "at": payload.get("at"),
               "assignee": _text(payload, "assignee", MAX_ACTOR_CHARS, required=False)}
    except CommandInvalid as exc:
        exc.partial = partial
        raise
    if cmd["action"] not in ACTIONS:
        raise CommandInvalid("unknown_action", "action must be one of %s"
                             % ", ".join(ACTIONS), partial)
    if cmd["note"] is not None and (not isinstance(cmd["note"], str)
                                    or len(cmd["note"]) > MAX_NOTE_CHARS):
        raise CommandInvalid("bad_field", "note must be a string of at most %d characters"
                             % MAX_NOTE_CHARS, partial)
    if cmd["at"] is not None and not isinstance(cmd["at"], str):
        raise CommandInvalid("bad_field", "at must be an ISO 8601 string", partial)
    if cmd["assignee"] is not None and cmd["action"] != "dispatch":
        raise CommandInvalid("bad_field", "assignee (who is sent) goes with dispatch only", partial)
    cmd["state"] = ACTIONS[cmd["action"]]
    return cmd


class CommandProcessor:
    """Applies commands through the pipeline and counts their outcomes.

    `apply` and `reject` run on the hub's loop thread only (the store's thread).
    """

    def __init__(self, pipeline, clock, notify_outbox):
        self.pipeline = pipeline
        self.clock = clock
        self.notify_outbox = notify_outbox
        self.counts = {outcome: 0 for outcome in OUTCOMES}
        self._lock = threading.Lock()  # counts are read by the HTTP server's worker threads

    def _count(self, outcome):
        with self._lock:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def snapshot(self):
        with self._lock:
            return dict(self.counts)

    def apply(self, cmd, source):
        """Run one parsed command; returns the `anju.command_result/1` document.
        Raises StoreError when the store failed (nothing was committed)."""
        now = self.clock.now()
        outcome, doc = self.pipeline.command(cmd["alarm_id"], cmd["state"], cmd["actor"], now,
                                             cmd["note"], cmd["command_id"],
                                             assignee=cmd.get("assignee"))
        if outcome == "applied":
            self.notify_outbox()
        current = doc if doc is not None else self.pipeline.store.alarm(cmd["alarm_id"])
        self._count(outcome)
        log.info("alarm command", extra={"command": cmd["command_id"], "alarm": cmd["alarm_id"],
                                         "action": cmd["action"], "actor": cmd["actor"],
                                         "assignee": cmd.get("assignee"),
                                         "outcome": outcome, "source": source,
                                         "note_chars": len(cmd["note"] or "")})
        return result_doc(cmd, outcome, now, current)

    def reject(self, exc, source):
        now = self.clock.now()
        self._count("invalid")
        log.warning("alarm command rejected", extra={"reason": exc.reason, "detail": exc.detail,
                                                     "source": source,
                                                     "command": exc.partial.get("command_id")})
        return result_doc(exc.partial, "invalid", now, None, exc.reason, exc.detail)

    def handle(self, payload, source, default_actor="platform"):
        try:
            cmd = parse(payload, default_actor)
        except CommandInvalid as exc:
            return self.reject(exc, source)
        return self.apply(cmd, source)


def result_doc(cmd, outcome, now, alarm=None, reason=None, detail=None):
    doc = {"schema": RESULT_SCHEMA, "command_id": cmd.get("command_id"),
           "alarm_id": cmd.get("alarm_id"), "action": cmd.get("action"), "outcome": outcome,
           "at": alarm_docs.iso(now),
           "state": alarm["state"] if alarm else None, "seq": alarm["seq"] if alarm else None}
    if reason is not None:
        doc["reason"] = reason
        doc["detail"] = detail
    return doc


def topics(alarm_topic, site_id):
    """(commands topic, results topic) next to the alarms topic `<prefix>/<site>/alarms`."""
    base = alarm_topic.rsplit("/", 1)[0]
    if not base.endswith("/" + site_id):
        raise ValueError("alarm topic %r does not end in /%s/alarms" % (alarm_topic, site_id))
    return base + "/commands", base + "/command_results"


def mqtt_upstream(hub):
    """The hub's MQTT upstream forwarder, or None (a webhook-only hub has no
    command topic)."""
    from hub.forward.upstream import UpstreamForwarder
    for f in getattr(hub, "forwarders", None) or [getattr(hub, "forwarder", None)]:
        if isinstance(f, UpstreamForwarder):
            return f
    return None


class LocalCommands:
    """The component on a hub without an MQTT upstream (webhook only): the
    HTTP action, audit and metrics routes, no command topic."""

    def __init__(self, hub):
        self.hub = hub
        self.processor = CommandProcessor(hub.pipeline, hub.clock, hub.notify_outbox)

    async def start(self):
        if self.hub.http is not None:
            self.hub.http.api.attach_operations(self.hub, self.processor, None)

    async def stop(self):
        pass


class UpstreamCommands:
    """The component: subscribes to the commands topic on the upstream broker
    (and enables the HTTP routes, as LocalCommands does)."""

    def __init__(self, hub):
        self.hub = hub
        self.processor = CommandProcessor(hub.pipeline, hub.clock, hub.notify_outbox)
        site_id = hub.site.site_id
        self.command_topic, self.result_topic = topics(hub.pipeline.alarm_topic, site_id)
        upstream = mqtt_upstream(hub)
        self.host, self.port = upstream.host, upstream.port
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.store_errors = 0
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                   client_id="anju-hub-%s-commands" % site_id,
                                   protocol=paho.MQTTv5, manual_ack=True)
        tls = getattr(upstream, "tls", None)
        if tls is None:
            tls = ((getattr(hub.site, "hub", None) or {}).get("upstream") or {}).get("tls")
        login = getattr(upstream, "login", None)
        if login is not None:  # the upstream is the site broker: the hub's login there
            login.apply(self._client)
        elif tls is not None:  # the same broker, the same TLS settings as the forwarder
            from hub.forward.upstream import tls_context
            self._client.tls_set_context(tls_context(tls))
        self._client.reconnect_delay_set(min_delay=0.2, max_delay=10)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._sub_mid = None
        self._loop = None
        self._queue = None
        self._task = None
        self._busy = False

    # ---- life cycle (loop thread) --------------------------------------------------
    async def start(self):
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="upstream-commands")
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        self._client.connect_async(self.host, self.port, keepalive=30, clean_start=False,
                                   properties=props)
        self._client.loop_start()
        if self.hub.http is not None:
            self.hub.http.api.attach_operations(self.hub, self.processor, self)

    async def stop(self):
        # Queued, unprocessed commands stay unacknowledged: the broker offers them again.
        self._client.disconnect()
        await asyncio.wait_for(self._loop.run_in_executor(None, self._client.loop_stop), 10.0)
        # paho 2.2 keeps the wake-up socket pair of loop_start() open until the
        # client is garbage collected; close it now (the client is not reused)
        reset = getattr(self._client, "_reset_sockets", None)
        if reset is not None:
            reset()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def idle(self):
        return not self._busy and (self._queue is None or self._queue.empty())

    async def wait_ready(self, timeout):
        """Until subscribed upstream (tests, tools); TransportError after `timeout`."""
        from hub import TransportError
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.subscribed.is_set():
            if loop.time() > deadline:
                raise TransportError("not subscribed to %s on %s:%d within %.0f s"
                                     % (self.command_topic, self.host, self.port, timeout))
            await asyncio.sleep(0.02)

    # ---- paho's thread: record and hand over -----------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("upstream refused the command client", extra={"reason": str(reason_code)})
            return
        self.connected.set()
        self.subscribed.clear()
        _, self._sub_mid = client.subscribe(self.command_topic, qos=1)
        log.info("listening for upstream commands",
                 extra={"topic": self.command_topic,
                        "session_present": bool(getattr(flags, "session_present", False))})

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if mid == self._sub_mid and not any(rc.is_failure for rc in reason_codes):
            self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        self.subscribed.clear()
        log.warning("upstream command link lost", extra={"reason": str(reason_code)})

    def _on_message(self, client, userdata, msg):
        item = (bytes(msg.payload), msg.mid, msg.qos)
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: not acknowledged, offered again later
            log.warning("command dropped at shutdown; the broker keeps it")

    # ---- loop thread: apply, publish the result, then acknowledge ----------------------
    async def _run(self):
        while True:
            payload, mid, qos = await self._queue.get()
            self._busy = True
            try:
                try:
                    result = self.processor.handle(payload, "mqtt")
                except StoreError:
                    # nothing committed: no ack, so the broker offers it again after a reconnect
                    self.store_errors += 1
                    log.exception("command not stored")
                    continue
                self._client.publish(self.result_topic, json.dumps(result).encode(), qos=1)
                if qos:
                    self._client.ack(mid, qos)
            finally:
                self._busy = self._queue.qsize() > 0
