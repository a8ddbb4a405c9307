"""The hub's local HTTP API (docs/http_api.md): health, alarms, access log and
face enrollment; alarm actions, audit export and Prometheus metrics
(docs/alarms.md); accounts and sessions (hub/web/auth_routes.py).

This module holds the route table (`HubApi.routes`: method, path pattern,
handler, the permission it needs, where it runs) and the handlers; the
server that serves them is aiohttp on the hub's own loop
(hub/web/server.py), which authenticates every request and checks the
permission before a handler runs. Handlers are plain functions taking a
`Request` and returning `(status, dict)`; they run on the loop when they only
read the hub's store (which belongs to the loop), or in the server's
executor when they are CPU-bound (face models, imports, exports), where they
reach the store through `hub.face.sinks.LoopBridge`.

Every error is a JSON body `{"error": code, "detail": text}`; a handler
exception is logged and becomes a 500 without a traceback in the answer, it
never stops the server. Request bodies (photos, passwords) are never logged.
"""
import base64
import binascii
import csv
import datetime
import io
import json
import logging
import re
import urllib.parse
import uuid
from collections import namedtuple

from hub import StoreError

log = logging.getLogger("anju.hub.http")

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_JSON_DEPTH = 32      # objects/arrays inside each other; deeper -> 400
BODY_TIMEOUT_S = 10.0    # a body must have arrived this long after the headers
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
JSON_TYPES = ("application/json",)


class HttpError(Exception):
    """A request the API refuses: becomes `{"error": code, "detail": ...}` with `status`
    (and the keys of `extra`, such as the `field` a registry change got wrong)."""

    def __init__(self, status, code, detail="", headers=None, extra=None):
        super().__init__(detail)
        self.status, self.code, self.detail = int(status), code, detail
        self.headers = headers or {}
        self.extra = extra or {}


class Request:
    """What a handler sees: method, path, query, route params, body bytes,
    headers, and `principal` (hub/auth/accounts.py), the authenticated caller."""

    def __init__(self, method, path, query, body_bytes, params, headers=None, principal=None,
                 address=None):
        self.method, self.path, self.query, self.params = method, path, query, params
        self._body = body_bytes
        self.headers = headers if headers is not None else {}
        self.principal, self.address = principal, address
        self.cookies = []  # (name, value or None to clear, max_age) for the server to set
        self.recheck = None  # coroutine function: the caller's Principal now, or None (streams)

    @property
    def account(self):
        return self.principal.account if self.principal is not None else None

    def content_type(self):
        ctype = self.headers.get("Content-Type") or ""
        return ctype.split(";")[0].strip().lower()

    def json(self):
        if not self._body:
            raise HttpError(400, "bad_json", "a JSON object body is required")
        if self.content_type() not in JSON_TYPES:
            raise HttpError(415, "unsupported_media_type",
                            "send the body as Content-Type: application/json; got %r"
                            % (self.content_type() or "no content type"))
        doc = parse_json(self._body)
        if not isinstance(doc, dict):
            raise HttpError(400, "bad_json", "body must be a JSON object")
        return doc

    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[-1] if values else default

    def limit(self):
        raw = self.arg("limit", str(DEFAULT_LIMIT))
        try:
            value = int(raw)
        except ValueError as exc:
            raise HttpError(400, "bad_request", "limit must be an integer") from exc
        if not 1 <= value <= MAX_LIMIT:
            raise HttpError(400, "bad_request", "limit must be 1..%d" % MAX_LIMIT)
        return value


class RawBody:
    """A non-JSON answer (metrics text, CSV export, the console's files) a route
    may return instead of a dict: `text` is a str (sent as UTF-8) or bytes."""

    def __init__(self, content_type, text, filename=None, headers=None):
        self.content_type, self.filename = content_type, filename
        self.data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        self.headers = headers or {}


class EventStream:
    """An answer written over time (`text/event-stream`): the server calls
    `await run(channel)`; `channel.send(bytes)` writes (ConnectionError once
    the client is gone), `channel.closing` (an asyncio.Event) is set when the
    server stops, `channel.abort()` cuts the connection. The answer ends when
    `run` returns."""

    def __init__(self, run):
        self.run = run


_JSON_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def json_depth_ok(data, limit=MAX_JSON_DEPTH):
    """False when `data` (JSON bytes) nests objects/arrays deeper than `limit`.
    Strings are skipped whole by the regex (a base64 photo is one match), so
    this costs little even for a 10 MiB body; it runs before `json.loads`,
    whose recursion would fail on deep input."""
    depth = 0
    for m in _JSON_TOKENS.finditer(data):
        c = m.group()[:1]
        if c in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return False
        elif c in (b"]", b"}"):
            depth -= 1
    return True


def parse_json(data):
    """JSON bytes -> value, or HttpError 400 (never a RecursionError or a 500)."""
    if not json_depth_ok(data):
        raise HttpError(400, "bad_json", "JSON nested deeper than %d levels" % MAX_JSON_DEPTH)
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise HttpError(400, "bad_json", "body is not valid JSON: %s" % str(exc)[:200]) from exc


AUDIT_COLUMNS = ("at", "alarm_id", "seq", "state", "actor", "note", "type", "flat", "device")


def _csv_cell(value):
    # a spreadsheet would run a cell starting like a formula (notes come from outside)
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _time_arg(req, name):
    """An epoch-seconds number or an ISO 8601 time (naive = UTC), or None."""
    raw = req.arg(name)
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        if value != value or value in (float("inf"), float("-inf")):
            raise HttpError(400, "bad_request", "%s must be a finite time" % name)
        return value
    try:
        t = datetime.datetime.fromisoformat(raw)
    except ValueError as exc:
        raise HttpError(400, "bad_request", "%s must be epoch seconds or an ISO 8601 time"
                        % name) from exc
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return t.timestamp()


def _b64(value, what):
    if not isinstance(value, str) or not value:
        raise HttpError(400, "bad_request", "%s must be a base64 string" % what)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HttpError(400, "bad_request", "%s is not valid base64" % what) from exc


LOOP, EXECUTOR = "loop", "executor"


class Route(namedtuple("Route", "method regex handler permission runs")):
    """One route: `permission` is a name from hub/auth/roles.py, None (open), or
    a function of the path params returning one (the registry's collections)."""

    def __new__(cls, method, pattern, handler, permission, runs=EXECUTOR):
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        return super().__new__(cls, method, regex, handler, permission, runs)

    def permission_for(self, params):
        return self.permission(params) if callable(self.permission) else self.permission

    @property
    def name(self):
        return getattr(self.handler, "__name__", "route")


class HubApi:
    """The routes, as methods taking a `Request` and returning `(status, dict)`.

    `status()` returns the link states (thread-safe reads); `bridge` runs store
    work on the hub's loop; `face` is the running `FaceAccessHost` or None;
    `events` records enrollment changes in the access log.
    """

    def __init__(self, store, clock, bridge, status, face=None, events=None):
        self.store, self.clock, self.bridge = store, clock, bridge
        self.status, self.face, self.events = status, face, events
        self.started_at = clock.now()
        self.ops = None  # (hub, command processor, link), attached by hub/alarms/commands.py
        self.firmware = None  # fn(device id) -> its reported firmware, set by hub/ota/api.py
        # permission (hub/auth/roles.py; None = open) and where the handler runs:
        # on the loop (store reads, which belong to the loop) or in the executor
        self.routes = [
            Route("GET", r"^/health$", self.health, None, LOOP),
            Route("GET", r"^/metrics$", self.metrics, "hub.metrics", EXECUTOR),
            Route("GET", r"^/api/alarms$", self.alarms, "alarms.read", LOOP),
            Route("GET", r"^/api/alarms/(?P<id>[^/]+)$", self.alarm, "alarms.read", LOOP),
            Route("POST", r"^/api/alarms/(?P<id>[^/]+)/actions$", self.alarm_action,
                  "alarms.act", LOOP),
            Route("GET", r"^/api/audit$", self.audit, "alarms.read", EXECUTOR),
            Route("GET", r"^/api/dead-letters$", self.dead_letters, "forwarding.read", LOOP),
            Route("POST", r"^/api/dead-letters/requeue$", self.requeue_dead_letters,
                  "forwarding.requeue", LOOP),
            Route("GET", r"^/api/access-log$", self.access_log, "access_log.read", LOOP),
            Route("GET", r"^/api/devices$", self.devices, "devices.read", LOOP),
            Route("GET", r"^/api/devices/(?P<id>[^/]+)$", self.device, "devices.read", LOOP),
            Route("GET", r"^/api/devices/(?P<id>[^/]+)/events$", self.device_events,
                  "devices.read", LOOP),
            Route("GET", r"^/api/face/persons$", self.face_list, "faces.read", EXECUTOR),
            Route("POST", r"^/api/face/persons$", self.face_enroll, "faces.write", EXECUTOR),
            Route("DELETE", r"^/api/face/persons/(?P<id>[^/]+)$", self.face_delete,
                  "faces.write", EXECUTOR),
            Route("POST", r"^/api/face/identify$", self.face_identify, "faces.identify", EXECUTOR),
        ]

    def match(self, method, path):
        """(route, params) or HttpError 404 / 405."""
        allowed = []
        for route in self.routes:
            m = route.regex.match(path)
            if m is None:
                continue
            if route.method == method:
                return route, {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
            allowed.append(route.method)
        if allowed:
            raise HttpError(405, "method_not_allowed", "%s %s: allowed %s"
                            % (method, path, ", ".join(sorted(set(allowed)))),
                            {"Allow": ", ".join(sorted(set(allowed)))})
        raise HttpError(404, "not_found", "no route %s" % path)

    def _store(self, fn, *args):
        try:
            return self.bridge.call(fn, *args)
        except StoreError as exc:
            raise HttpError(503, "store_unavailable", str(exc)) from exc

    # ---- hub ---------------------------------------------------------------
    def health(self, req):
        links = self.status()
        depth = self._store(self.store.outbox_depth)
        body = {"status": "ok" if links["mqtt"] and links["upstream"] else "degraded",
                "mqtt": {"connected": links["mqtt"]},
                "upstream": {"connected": links["upstream"]},
                "outbox_depth": depth,
                "uptime_s": round(self.clock.now() - self.started_at, 3),
                "face": {"enabled": self.face is not None,
                         "entrances": self.face.entrances if self.face else []}}
        if self.ops is not None and self.ops[2] is not None:
            link = self.ops[2]
            body["commands"] = {"connected": link.connected.is_set(),
                                "subscribed": link.subscribed.is_set()}
        return 200, body

    # ---- alarm lifecycle, audit and metrics (docs/alarms.md) ---------------------------
    def attach_operations(self, hub, processor, link):
        """Enable the action, audit and metrics routes (called once the hub runs);
        `link` is the upstream command subscriber (its `connected`, `subscribed`),
        or None on a hub without an MQTT upstream."""
        self.ops = (hub, processor, link)

    def _ops(self):
        if self.ops is None:
            raise HttpError(503, "not_ready", "the hub's alarm operations are not running")
        return self.ops

    def alarm(self, req):
        alarm_id = req.params["id"]

        def read():
            return self.store.alarm(alarm_id), self.store.transitions(alarm_id)
        doc, trail = self._store(read)
        if doc is None:
            raise HttpError(404, "unknown_alarm", "no alarm %s" % alarm_id)
        return 200, {"alarm": doc, "transitions": trail}

    def alarm_action(self, req):
        from hub.alarms import commands
        processor = self._ops()[1]
        if len(req._body or b"") > commands.MAX_COMMAND_BYTES:
            raise HttpError(413, "payload_too_large", "a command is at most %d bytes"
                            % commands.MAX_COMMAND_BYTES)
        doc = req.json()
        alarm_id = req.params["id"]
        if doc.get("alarm_id") not in (None, alarm_id):
            raise HttpError(400, "bad_request", "alarm_id in the body differs from the path")
        doc = dict(doc, alarm_id=alarm_id)
        doc.setdefault("command_id", "http-%s" % uuid.uuid4())
        # the transition names the account; an "actor" in the body (the person at
        # a shared desk) is kept after it
        account = req.account or "local"
        named = doc.get("actor")
        if isinstance(named, str) and named.strip() and named != account:
            doc["actor"] = ("%s/%s" % (account, named))[:commands.MAX_ACTOR_CHARS]
        elif named is None or named == account:
            doc["actor"] = account
        result = self._store(processor.handle, doc, "http", account)
        status = {"applied": 200, "duplicate": 200, "same_state": 200, "out_of_order": 409,
                  "closed": 409, "unknown_alarm": 404, "invalid": 400}[result["outcome"]]
        return status, result

    def audit(self, req):
        fmt = req.arg("format", "json")
        if fmt not in ("json", "csv"):
            raise HttpError(400, "bad_request", "format must be json or csv")
        since, until = _time_arg(req, "since"), _time_arg(req, "until")
        rows = self._store(self.store.audit, since, until)
        for row in rows:
            row["at_iso"] = datetime.datetime.fromtimestamp(
                row["at"], datetime.timezone.utc).isoformat()
        if fmt == "json":
            return 200, {"transitions": rows, "total": len(rows)}
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(AUDIT_COLUMNS)
        for row in rows:
            writer.writerow([row["at_iso"]] + [_csv_cell(row[k]) for k in AUDIT_COLUMNS[1:]])
        return 200, RawBody("text/csv; charset=utf-8", out.getvalue(), "anju-audit.csv")

    def dead_letters(self, req):
        """Documents a forwarding target refused for good (docs/forwarding.md)."""
        target = req.arg("target")
        rows = self._store(self.store.dead_letters, target)
        return 200, {"dead_letters": rows[-req.limit():], "total": len(rows)}

    def requeue_dead_letters(self, req):
        """{"ids": [..]} or {"all": true, "target"?: name}: back into the outbox."""
        hub = self._ops()[0]
        doc = req.json()
        target = doc.get("target")
        if target is not None and not isinstance(target, str):
            raise HttpError(400, "bad_request", "'target' must be a string")
        if doc.get("all") is True:
            ids = None
        else:
            ids = doc.get("ids")
            if (not isinstance(ids, list) or not ids or len(ids) > 10000
                    or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):
                raise HttpError(400, "bad_request", "'ids' must be a list of 1 to 10000 dead "
                                                    "letter ids, or give \"all\": true")

        def requeue():
            with self.store.transaction():
                done = self.store.requeue_dead_letters(ids, target)
            if done[0]:
                hub.notify_outbox()
            return done
        requeued, unknown = self._store(requeue)
        if requeued:
            log.warning("dead letters re-queued", extra={"ids": requeued, "account": req.account})
        return 200, {"requeued": requeued, "unknown": unknown}

    def metrics(self, req):
        from hub.web import metrics
        hub, processor, _ = self._ops()
        links = self.status()
        ingest = {"store_errors": hub.ingest_errors,
                  "receiver_restarts": getattr(hub.mqtt, "restarts", None),
                  "wal_pages": self.store.wal_pages}
        snap = self._store(metrics.collect, self.store, hub.pipeline, links,
                           processor.snapshot(), self.clock.now(), ingest)
        return 200, RawBody(metrics.CONTENT_TYPE, metrics.render(snap))

    def alarms(self, req):
        limit = req.limit()
        docs = self._store(self.store.alarms)
        return 200, {"alarms": docs[-limit:], "total": len(docs)}

    def _device_doc(self, device_id):
        """Reported state (None = never reported) and, for a smoke sensor, its
        alarm/warning/muted/testing/fault/end-of-service/low-battery flags."""
        state = self.store.device_state(device_id)
        smoke = self.store.rule_get("smoke", "state:" + device_id)
        if state is None and smoke is None:
            return None
        doc = {"device": device_id, "state": state}
        if smoke is not None:
            doc["smoke"] = smoke
        if self.firmware is not None:
            doc["firmware"] = self.firmware(device_id)  # what it reported it runs (hub/ota)
        return doc

    def devices(self, req):
        docs = self._store(lambda: [self._device_doc(i)
                                    for i in sorted(self.store.last_seen_all())])
        return 200, {"devices": docs}

    def device(self, req):
        device_id = req.params["id"]
        doc = self._store(self._device_doc, device_id)
        if doc is None:
            raise HttpError(404, "unknown_device", "no state reported by device %s" % device_id)
        return 200, doc

    def device_events(self, req):
        device_id = req.params["id"]
        events = self._store(self.store.recent_events, device_id, req.limit())
        return 200, {"device": device_id, "events": events}

    def access_log(self, req):
        limit = req.limit()
        kind = req.arg("kind") or None
        return 200, {"entries": self._store(self.store.access_log, kind, limit)}

    # ---- face (handlers in hub/face/api.py) ----------------------------------
    def _face(self):
        if self.face is None:
            raise HttpError(404, "face_disabled", "face access is not configured on this hub")
        from hub.face import api
        return api

    def _audit(self, kind, payload):
        if self.events is not None:
            try:
                self.events.record(kind, payload)
            except StoreError as exc:  # the change is made; say so in the log at least
                log.error("access log not written: %s", exc, extra={"kind": kind})

    def face_list(self, req):
        api = self._face()
        return api.list_persons(self.face.gallery, {"list": req.arg("list")})

    def face_enroll(self, req):
        api = self._face()
        doc = req.json()
        photos = doc.get("photos")
        if not isinstance(photos, list) or not photos:
            raise HttpError(400, "bad_request", "photos must be a non-empty list of base64 strings")
        doc["photos"] = [_b64(p, "photos[%d]" % i) for i, p in enumerate(photos)]
        status, body = api.enroll(self.face.pipeline, self.face.gallery, doc, self.clock.now())
        if status == 201:
            self._audit("face_person_enrolled", {"person_id": body["id"], "list": body["list"],
                                                 "embeddings": body["embeddings"],
                                                 "time": self.clock.now(), "via": "http",
                                                 "account": req.account})
        return status, body

    def face_delete(self, req):
        api = self._face()
        status, body = api.delete_person(self.face.gallery, {"id": req.params["id"]})
        if status == 200:
            self._audit("face_person_deleted", {"person_id": req.params["id"],
                                                "time": self.clock.now(), "via": "http",
                                                "account": req.account})
        return status, body

    def face_identify(self, req):
        api = self._face()
        doc = req.json()
        photo = _b64(doc.get("photo"), "photo")
        return api.identify(self.face.pipeline, self.face.gallery, {"photo": photo},
                            self.face.match_threshold)


HTTP_KEYS = ("host", "port", "max_body_bytes", "body_timeout_s", "backlog", "allowed_hosts",
             "secure_cookies")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def parse_config(section, where="hub.http"):
    """The site file's `hub.http` mapping -> `{host, port, max_body_bytes,
    body_timeout_s, backlog, allowed_hosts, secure_cookies}` (docs/http_api.md)."""
    from hub import ConfigError
    from hub.auth import origin
    if section is True:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError("%s: expected a mapping with host and port" % where)
    unknown = sorted(set(section) - set(HTTP_KEYS))
    if unknown:
        raise ConfigError("%s: unknown keys %s; allowed: %s" % (where, unknown, ", ".join(HTTP_KEYS)))
    host = section.get("host", "127.0.0.1")
    port = section.get("port", 8080)
    max_body = section.get("max_body_bytes", MAX_BODY_BYTES)
    backlog = section.get("backlog", 1024)
    if not isinstance(host, str) or not host:
        raise ConfigError("%s.host: expected an address like 127.0.0.1" % where)
    for key, value, low, high in (("port", port, 0, 65535), ("max_body_bytes", max_body, 1, 1 << 30),
                                  ("backlog", backlog, 1, 65535)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError("%s.%s: expected an integer %d..%d, got %r" % (where, key, low, high, value))
    timeout = section.get("body_timeout_s", BODY_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0.05 <= timeout <= 300:
        raise ConfigError("%s.body_timeout_s: expected seconds 0.05..300, got %r" % (where, timeout))
    secure = section.get("secure_cookies", False)
    if not isinstance(secure, bool):
        raise ConfigError("%s.secure_cookies: expected true or false, got %r" % (where, secure))
    names = section.get("allowed_hosts")
    if names is None:
        if host in WILDCARD_HOSTS:
            raise ConfigError("%s.allowed_hosts: the API listens on all interfaces (host %s); list "
                              "the names and addresses clients reach it by, e.g. [hub.local, "
                              "192.168.1.20]" % (where, host))
        names = list(origin.LOOPBACK) + ([host] if host not in origin.LOOPBACK else [])
    if not isinstance(names, list) or not names:
        raise ConfigError("%s.allowed_hosts: expected a non-empty list of host names or addresses"
                          % where)
    allowed = []
    for i, name in enumerate(names):
        parsed = origin.split_host(name) if isinstance(name, str) else None
        if parsed is None or parsed[1] is not None or name in WILDCARD_HOSTS or "*" in name:
            raise ConfigError("%s.allowed_hosts[%d]: %r is not a host name or address (no port, "
                              "no wildcard)" % (where, i, name))
        allowed.append(parsed[0])
    return {"host": host, "port": port, "max_body_bytes": max_body, "body_timeout_s": float(timeout),
            "backlog": backlog, "allowed_hosts": tuple(allowed), "secure_cookies": secure}
