"""The HTTP server of the hub's API: aiohttp on the hub's own asyncio loop.

Why aiohttp: the hub already is one asyncio loop, and aiohttp's server runs
on it (`web.AppRunner` + `web.TCPSite`) without a second server process or a
thread per connection; a slow client costs a coroutine and a socket, never a
thread. It parses HTTP for us, comes with the client the tests use, and is
well kept (aio-libs). CPU-bound handlers (face models, imports, exports,
argon2 password checks) run in this server's own thread pool, so the loop
that ingests alarms keeps running.

Every request passes, in this order: the Host and Origin checks (403), the
route table (404/405), authentication (an `Authorization: Bearer` API token,
or the session cookie; 401), the route's permission (403), the CSRF token
for a state change made with a session cookie (403), then the body, read
within `body_timeout_s` (408, connection closed) and at most
`max_body_bytes` (413, not read). JSON bodies need `application/json` (415)
and at most 32 levels of nesting (400). Every state change, and every
refused attempt by an authenticated caller, is written to the account audit
with the account that made it.

This module must never log a request body, a password, a token or a cookie.
"""
import asyncio
import concurrent.futures
import json
import logging
import time
import urllib.parse

from aiohttp import web

from hub import StoreError
from hub.auth import origin
from hub.web.auth_routes import SESSION_COOKIE
from hub.web.http import (BODY_TIMEOUT_S, EXECUTOR, MAX_BODY_BYTES, EventStream, HttpError,
                          RawBody, Request)

log = logging.getLogger("anju.hub.http")

CSRF_HEADER = "X-CSRF-Token"
CHANGES = ("POST", "PUT", "PATCH", "DELETE")
WORKERS = 8
KEEPALIVE_S = 15.0
SHUTDOWN_S = 5.0
LINGER_S = 1.0  # after an answer to an unread body (413, 408), drain this long, then close


def _json(doc, status, headers=None):
    # plain "application/json" (no charset parameter), as the API always answered
    return web.Response(status=status, body=json.dumps(doc, default=str).encode(),
                        headers={**(headers or {}), "Content-Type": "application/json"})


def _error(exc):
    extra = getattr(exc, "extra", None) or {}
    return _json({**extra, "error": exc.code, "detail": exc.detail}, exc.status, exc.headers)


class HubHttpServer:
    """The API on the running loop; `port` is the bound port after `start()`."""

    def __init__(self, api, accounts, host="127.0.0.1", port=0, max_body=MAX_BODY_BYTES,
                 body_timeout_s=BODY_TIMEOUT_S, backlog=1024, allowed_hosts=origin.LOOPBACK,
                 secure_cookies=False):
        self.api, self.accounts = api, accounts
        self.host, self.port = host, int(port)
        self.max_body, self.body_timeout_s = int(max_body), float(body_timeout_s)
        self.backlog = int(backlog)
        self.allowed_hosts = tuple(h.lower() for h in allowed_hosts)
        self.secure_cookies = secure_cookies
        self.executor = concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="hub-http")
        self._runner = None
        self.loop = None
        self._channels = set()  # open event streams, told to end when the server stops

    @classmethod
    def from_config(cls, api, accounts, cfg):
        return cls(api, accounts, cfg["host"], cfg["port"], cfg["max_body_bytes"],
                   cfg["body_timeout_s"], cfg["backlog"], cfg["allowed_hosts"],
                   cfg["secure_cookies"])

    async def start(self):
        """Listen; returns the coroutine function that stops the server."""
        self.loop = asyncio.get_running_loop()
        # client_max_size is a second guard: _read_body refuses first, by Content-Length
        app = web.Application(client_max_size=self.max_body + 1)
        app.router.add_route("*", "/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     keepalive_timeout=KEEPALIVE_S, shutdown_timeout=SHUTDOWN_S,
                                     lingering_time=LINGER_S)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=self.backlog)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("http api listening", extra={"address": "%s:%d" % (self.host, self.port)})
        return self.stop

    async def stop(self):
        for channel in list(self._channels):
            channel.closing.set()  # streams end at once instead of holding the shutdown
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        # handlers still running in the pool may wait on the loop: it keeps running
        await self.loop.run_in_executor(None, self.executor.shutdown, True)

    async def _off_loop(self, fn, *args):
        return await self.loop.run_in_executor(self.executor, fn, *args)

    # ---- one request ------------------------------------------------------------------
    async def _serve(self, request):
        started = time.monotonic()
        try:
            response = await self._respond(request)
        except HttpError as exc:
            response = _error(exc)
            if exc.status in (408, 413):
                response.force_close()  # the rest of the body is not read
        except Exception:  # any handler bug: a 500 and a log line, never a dead server
            log.exception("http %s %s failed", request.method, request.path)
            response = _json({"error": "internal", "detail": "internal error; see the hub's log"},
                             500)
        log.debug("http %s %s -> %d in %.1f ms", request.method, request.path, response.status,
                  (time.monotonic() - started) * 1e3)
        return response

    def _check_origin(self, request):
        host = request.headers.get("Host")
        if not origin.host_allowed(host, self.allowed_hosts):
            raise HttpError(403, "bad_host", "this hub does not answer to Host %r; allowed: %s "
                            "(hub.http.allowed_hosts)" % ((host or "")[:100],
                                                         ", ".join(self.allowed_hosts)))
        # behind a TLS proxy (secure_cookies) browsers name the hub https://...
        scheme = "https" if request.secure or self.secure_cookies else "http"
        if request.headers.get("Sec-Fetch-Site") == "cross-site" or not origin.origin_allowed(
                request.headers.get("Origin"), host, self.allowed_hosts, scheme):
            raise HttpError(403, "bad_origin", "requests from another site are refused")

    def _authenticate(self, request):
        """The Principal of the request's credentials, None without any; 401 for bad ones."""
        auth = request.headers.get("Authorization")
        if auth is not None:
            scheme, _, token = auth.partition(" ")
            principal = (self.accounts.by_token(token.strip())
                         if scheme.lower() == "bearer" else None)
            if principal is None:
                raise HttpError(401, "unauthorized", "the API token is unknown or revoked",
                                {"WWW-Authenticate": 'Bearer realm="anju"'})
            return principal
        session = request.cookies.get(SESSION_COOKIE)
        if session:
            principal = self.accounts.by_session(session)
            if principal is None:
                raise HttpError(401, "session_expired", "the session has ended; log in again",
                                {"WWW-Authenticate": 'Bearer realm="anju"'})
            return principal
        return None

    async def _read_body(self, request):
        if request.headers.get("Transfer-Encoding"):
            raise HttpError(411, "length_required", "send a Content-Length, not chunks")
        raw = request.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError as exc:
            raise HttpError(400, "bad_request", "Content-Length is not a number") from exc
        if length < 0:
            raise HttpError(400, "bad_request", "Content-Length is negative")
        if length > self.max_body:
            raise HttpError(413, "payload_too_large", "body of %d bytes; the limit is %d"
                            % (length, self.max_body))
        try:
            return await asyncio.wait_for(request.read(), self.body_timeout_s)
        except asyncio.TimeoutError as exc:
            raise HttpError(408, "request_timeout", "the body did not arrive within %.1f s"
                            % self.body_timeout_s) from exc
        except web.HTTPRequestEntityTooLarge as exc:
            raise HttpError(413, "payload_too_large", "the body is over the limit of %d bytes"
                            % self.max_body) from exc

    async def _respond(self, request):
        self._check_origin(request)
        raw_path = request.raw_path.split("?", 1)[0]
        route, params = self.api.match(request.method, raw_path)
        permission = route.permission_for(params)
        principal = None
        if permission is not None:  # open routes ignore credentials
            try:
                principal = await self._off_loop(self._authenticate, request)
            except StoreError as exc:
                raise HttpError(503, "store_unavailable", str(exc)) from exc
        address = request.remote
        if permission is not None:
            if principal is None:
                raise HttpError(401, "unauthorized", "log in (POST /api/login) or send "
                                "Authorization: Bearer <API token>",
                                {"WWW-Authenticate": 'Bearer realm="anju"'})
            if not principal.may(permission):
                await self._audit(principal, route, raw_path, "denied", address,
                                  {"permission": permission})
                raise HttpError(403, "forbidden", "role %s may not %s (permission %s)"
                                % (principal.role, route.name.replace("_", " "), permission))
        if request.method in CHANGES and principal is not None \
                and not principal.csrf_ok(request.headers.get(CSRF_HEADER)):
            await self._audit(principal, route, raw_path, "csrf_refused", address, None)
            raise HttpError(403, "csrf", "a change made with a session needs the %s header "
                            "given at login" % CSRF_HEADER)
        body = await self._read_body(request)
        req = Request(request.method, raw_path,
                      urllib.parse.parse_qs(request.query_string), body, params,
                      request.headers, principal, address)
        req.recheck = lambda: self._recheck(request)
        try:
            if route.runs == EXECUTOR:
                result = await self._off_loop(route.handler, req)
            else:
                result = route.handler(req)
        except HttpError as exc:
            if request.method in CHANGES:
                await self._audit(req.principal, route, raw_path, "refused", address,
                                  {"status": exc.status, "error": exc.code})
            raise
        status, doc = result
        if isinstance(doc, EventStream):
            return await self._stream(request, status, doc)
        if request.method in CHANGES:
            await self._audit(req.principal, route, raw_path, "ok", address, {"status": status})
        if isinstance(doc, RawBody):
            response = web.Response(status=status, body=doc.data,
                                    headers={"Content-Type": doc.content_type})
            response.headers.update(doc.headers)
            if doc.filename:
                response.headers["Content-Disposition"] = 'attachment; filename="%s"' % doc.filename
        else:
            response = _json(doc, status)
        for name, value, max_age in req.cookies:
            if value is None:
                response.del_cookie(name, path="/")
            else:
                response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                                    samesite="Strict",
                                    secure=self.secure_cookies or request.secure)
        return response

    async def _recheck(self, request):
        """The request's Principal as the accounts database has it now, or None."""
        try:
            return await self._off_loop(self._authenticate, request)
        except (HttpError, StoreError):
            return None

    async def _stream(self, request, status, stream):
        response = web.StreamResponse(status=status, headers={
            "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store",
            "X-Accel-Buffering": "no"})  # a proxy (nginx) must not hold events back
        await response.prepare(request)
        channel = _Channel(response, request.transport)
        self._channels.add(channel)
        try:
            await stream.run(channel)
        except Exception:  # the answer has begun: end it, log, keep serving
            log.exception("http %s %s: stream failed", request.method, request.path)
        finally:
            self._channels.discard(channel)
        if not channel.aborted:
            try:
                await response.write_eof()
            except ConnectionError:
                pass
        return response

    async def _audit(self, principal, route, path, outcome, address, detail):
        if route.name == "login":
            return  # the login route writes its own rows (it knows the account tried)
        try:
            await self._off_loop(self.accounts.record,
                                 principal.account if principal is not None else None,
                                 "%s %s" % (route.method, route.name), path[:200], outcome,
                                 address, detail)
        except StoreError as exc:  # the change is made (or refused); say so in the log
            log.error("account audit not written: %s", exc, extra={"path": path[:200]})


class _Channel:
    """What an EventStream writes to (hub/web/http.py)."""

    def __init__(self, response, transport):
        self._response, self._transport = response, transport
        self.closing = asyncio.Event()
        self.aborted = False

    async def send(self, data):
        if self.aborted:
            raise ConnectionResetError("the stream was dropped")
        await self._response.write(data)

    def abort(self):
        self.aborted = True
        if self._transport is not None:
            self._transport.abort()
