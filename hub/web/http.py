"""The hub's local HTTP API (docs/http_api.md): health, alarms, access log and
face enrollment; alarm actions, audit export and Prometheus metrics
(docs/alarms.md).

Why a `ThreadingHTTPServer` in its own thread and not asyncio streams: the
face routes are CPU-bound and blocking (decoding a photo, running the detector
and the embedding model takes 50–500 ms), so on the event loop each would need
an executor hop anyway, and the standard library has no HTTP parser for
asyncio streams; a hand-written one is exactly the kind of code we avoid.
Handler threads never touch the hub's SQLite store themselves: every store
read or write is a loop callback through `hub.face.sinks.LoopBridge`, with a
timeout (503 when it expires). The face gallery has its own connection and
lock and is thread-safe.

Binds 127.0.0.1 unless configured otherwise; there is no authentication, so
only put it on another interface behind a proxy that adds it. Every error is a
JSON body `{"error": code, "detail": text}`; a handler exception is logged and
becomes a 500, it never stops the server. Request bodies (photos included) are
never logged.
"""
import base64
import binascii
import csv
import datetime
import io
import json
import logging
import re
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hub import StoreError

log = logging.getLogger("anju.hub.http")

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
STOP_TIMEOUT_S = 10.0


class HttpError(Exception):
    """A request the API refuses: becomes `{"error": code, "detail": ...}` with `status`."""

    def __init__(self, status, code, detail="", headers=None):
        super().__init__(detail)
        self.status, self.code, self.detail = int(status), code, detail
        self.headers = headers or {}


class Request:
    def __init__(self, method, path, query, body_bytes, params):
        self.method, self.path, self.query, self.params = method, path, query, params
        self._body = body_bytes

    def json(self):
        if not self._body:
            raise HttpError(400, "bad_json", "a JSON object body is required")
        try:
            doc = json.loads(self._body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, "bad_json", "body is not valid JSON: %s" % exc) from exc
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
    """A non-JSON answer (metrics text, CSV export) a route may return instead of a dict."""

    def __init__(self, content_type, text, filename=None):
        self.content_type, self.data, self.filename = content_type, text.encode("utf-8"), filename


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
        self.routes = [
            ("GET", re.compile(r"^/health$"), self.health),
            ("GET", re.compile(r"^/metrics$"), self.metrics),
            ("GET", re.compile(r"^/api/alarms$"), self.alarms),
            ("GET", re.compile(r"^/api/alarms/(?P<id>[^/]+)$"), self.alarm),
            ("POST", re.compile(r"^/api/alarms/(?P<id>[^/]+)/actions$"), self.alarm_action),
            ("GET", re.compile(r"^/api/audit$"), self.audit),
            ("GET", re.compile(r"^/api/dead-letters$"), self.dead_letters),
            ("POST", re.compile(r"^/api/dead-letters/requeue$"), self.requeue_dead_letters),
            ("GET", re.compile(r"^/api/access-log$"), self.access_log),
            ("GET", re.compile(r"^/api/devices$"), self.devices),
            ("GET", re.compile(r"^/api/devices/(?P<id>[^/]+)$"), self.device),
            ("GET", re.compile(r"^/api/face/persons$"), self.face_list),
            ("POST", re.compile(r"^/api/face/persons$"), self.face_enroll),
            ("DELETE", re.compile(r"^/api/face/persons/(?P<id>[^/]+)$"), self.face_delete),
            ("POST", re.compile(r"^/api/face/identify$"), self.face_identify),
        ]

    def match(self, method, path):
        """(handler, params) or HttpError 404 / 405."""
        allowed = []
        for route_method, pattern, handler in self.routes:
            m = pattern.match(path)
            if m is None:
                continue
            if route_method == method:
                return handler, {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
            allowed.append(route_method)
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
        result = self._store(processor.handle, doc, "http", "local")
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
            log.warning("dead letters re-queued", extra={"ids": requeued})
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
                                                 "time": self.clock.now(), "via": "http"})
        return status, body

    def face_delete(self, req):
        api = self._face()
        status, body = api.delete_person(self.face.gallery, {"id": req.params["id"]})
        if status == 200:
            self._audit("face_person_deleted", {"person_id": req.params["id"],
                                                "time": self.clock.now(), "via": "http"})
        return status, body

    def face_identify(self, req):
        api = self._face()
        doc = req.json()
        photo = _b64(doc.get("photo"), "photo")
        return api.identify(self.face.pipeline, self.face.gallery, {"photo": photo},
                            self.face.match_threshold)


class _Handler(BaseHTTPRequestHandler):
    server_version = "anju-hub"
    error_content_type = "application/json"

    def log_message(self, format, *args):
        log.debug("http %s", format % args)

    def _send(self, status, body, headers=None):
        data = json.dumps(body, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _body(self):
        if self.headers.get("Transfer-Encoding"):
            raise HttpError(411, "length_required", "send a Content-Length, not chunks")
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError as exc:
            raise HttpError(400, "bad_request", "Content-Length is not a number") from exc
        if length < 0:
            raise HttpError(400, "bad_request", "Content-Length is negative")
        if length > self.server.max_body:
            # Not read: the connection is closed after the answer.
            self.close_connection = True
            raise HttpError(413, "payload_too_large", "body of %d bytes; the limit is %d"
                            % (length, self.server.max_body))
        return self.rfile.read(length)

    def _dispatch(self):
        started = time.monotonic()
        api = self.server.api
        url = urllib.parse.urlsplit(self.path)
        status = 500
        try:
            status = self._respond(api, url)
        except (BrokenPipeError, ConnectionResetError) as exc:
            log.debug("http client went away: %s", exc)
        log.debug("http %s %s -> %d in %.1f ms", self.command, url.path, status,
                  (time.monotonic() - started) * 1e3)

    def _respond(self, api, url):
        try:
            handler, params = api.match(self.command, url.path)
            body = self._body()
            req = Request(self.command, url.path, urllib.parse.parse_qs(url.query), body, params)
            req.headers = self.headers  # content type and actor for the registry routes
            status, doc = handler(req)
        except HttpError as exc:
            self._send(exc.status, {"error": exc.code, "detail": exc.detail}, exc.headers)
            return exc.status
        except Exception:  # any handler bug: a 500 and a log line, never a dead server
            log.exception("http %s %s failed", self.command, url.path)
            self._send(500, {"error": "internal", "detail": "internal error; see the hub's log"})
            return 500
        if isinstance(doc, RawBody):
            self._send_raw(status, doc)
        else:
            self._send(status, doc)
        return status

    def _send_raw(self, status, raw):
        self.send_response(status)
        self.send_header("Content-Type", raw.content_type)
        self.send_header("Content-Length", str(len(raw.data)))
        if raw.filename:
            self.send_header("Content-Disposition", 'attachment; filename="%s"' % raw.filename)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw.data)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _dispatch


class HubHttpServer:
    """The API server in its own thread; `port` is the bound port (0 picks one)."""

    def __init__(self, api, host="127.0.0.1", port=0, max_body=MAX_BODY_BYTES):
        self.api = api
        self._server = ThreadingHTTPServer((host, int(port)), _Handler)
        self._server.daemon_threads = True
        self._server.api = api
        self._server.max_body = int(max_body)
        self.host, self.port = self._server.server_address[:2]
        self._thread = None

    def start(self):
        """Serve in a thread; returns `stop`."""
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="hub-http", daemon=True)
        self._thread.start()
        log.info("http api listening", extra={"address": "%s:%d" % (self.host, self.port)})
        return self.stop

    def stop(self):
        """Blocking: waits for the serving thread (call it off the event loop)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None
        self._server.server_close()


def parse_config(section, where="hub.http"):
    """`{host, port, max_body_bytes}` from the site file's `hub.http` mapping."""
    from hub import ConfigError
    if section is True:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError("%s: expected a mapping with host and port" % where)
    unknown = sorted(set(section) - {"host", "port", "max_body_bytes"})
    if unknown:
        raise ConfigError("%s: unknown keys %s; allowed: host, port, max_body_bytes" % (where, unknown))
    host = section.get("host", "127.0.0.1")
    port = section.get("port", 8080)
    max_body = section.get("max_body_bytes", MAX_BODY_BYTES)
    if not isinstance(host, str) or not host:
        raise ConfigError("%s.host: expected an address like 127.0.0.1" % where)
    for key, value, low, high in (("port", port, 0, 65535), ("max_body_bytes", max_body, 1, 1 << 30)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError("%s.%s: expected an integer %d..%d, got %r" % (where, key, low, high, value))
    return {"host": host, "port": port, "max_body_bytes": max_body}
