"""The live alarm stream of the console: `GET /api/alarms/stream`, server-sent
events (docs/console.md, "Live alarms").

Every change of an alarm is a row of the store's alarm feed (hub/store.py),
whose id increases with every commit. Each event names the feed id it brings
the client up to (`id:`), so a browser's EventSource sends it back as
`Last-Event-ID` when it reconnects, and the stream replays every alarm that
changed after it, each once in its current version, before it goes on live.
A client that starts afresh (no id) gets every open alarm and the most
recently changed closed ones; an id the store has never given (the hub's
database was replaced) gets a `reset` and that same snapshot.

    retry: 1000                         how soon the browser reconnects (ms)
    event: alarm   id: 42   data: {"feed_id": 42, "alarm": <anju.alarm/1 document>}
    event: ready   id: 42   data: {"feed_id": 42}     catch-up done; live from here
    event: reset            data: {}                  forget what you have
    event: ended            data: {"reason": "session"|"forbidden"|"stopping"}
    event: responder        data: {"responder": {id, kind, on_duty, x, y, at, ...}}
    : keepalive                                       every 15 s

New alarms reach the stream on the store's commit (`on_alarm_change`), not by
polling. Every heartbeat the caller's credentials are looked up again: a
session that ended (logout, password change, 12 h), a revoked token or a role
that lost `alarms.read` ends the stream with `ended`. The resident named in an
inactivity alarm is sent only to roles with `residents.read`.

Responders' positions (hub/responders/board.py) travel on the same stream:
no id (they are state, not a log), every responder that has reported sent
once before `ready`, then each change as the board records it (the board
wakes the stream as the store does).

The framing and the choice of what to replay are pure functions; `AlarmStreams`
is the shell on the hub's loop. It never changes state.
"""
import asyncio
import json
import logging

from hub import StoreError
from hub.web.http import LOOP, EventStream, HttpError, Route

log = logging.getLogger("anju.hub.http")

RETRY_MS = 1000
HEARTBEAT_S = 15.0
SNAPSHOT_CLOSED = 50   # closed alarms a fresh console is given besides every open one
MAX_ID_CHARS = 19


def frame(event, data, event_id=None):
    """One server-sent event as bytes (`data` as one line of JSON)."""
    head = "event: %s\n" % event
    if event_id is not None:
        head += "id: %d\n" % event_id
    return (head + "data: %s\n\n" % json.dumps(data, separators=(",", ":"), default=str)).encode()


def parse_after(last_event_id, after):
    """The feed id a client has seen, from `Last-Event-ID` (sent by the browser
    when it reconnects, so it wins) or the `after` query value; None for none."""
    for value, name in ((last_event_id, "Last-Event-ID"), (after, "after")):
        if value is None or value == "":
            continue
        if not value.isdigit() or len(value) > MAX_ID_CHARS:
            raise HttpError(400, "bad_request", "%s must be a feed id (digits)" % name)
        return int(value)
    return None


def visible(doc, principal):
    """The document as `principal` may see it: the resident only with residents.read."""
    if doc.get("resident") is not None and not principal.may("residents.read"):
        return dict(doc, resident=None)
    return doc


def catch_up(store, after, closed_limit=SNAPSHOT_CLOSED):
    """(reset?, [(feed id, document)], the feed id the client is then at)."""
    last = store.alarm_feed_last()
    if after is not None and after <= last:
        return False, store.alarm_changes_after(after), last
    return after is not None, store.alarm_snapshot(closed_limit), last


def mount(api, store):
    """Add the stream's route to `api` (before `/api/alarms/<id>`, which would
    take "stream" for an id); returns the `AlarmStreams`."""
    streams = AlarmStreams(store)
    api.routes.insert(0, Route("GET", r"^/api/alarms/stream$", streams.handler, "alarms.read",
                               LOOP))
    return streams


class AlarmStreams:
    """The open streams; woken by the store after every commit that changed an alarm."""

    def __init__(self, store, heartbeat_s=HEARTBEAT_S):
        self.store, self.heartbeat_s = store, heartbeat_s
        self._open = set()
        self.responders = None  # the ResponderBoard, when the hub has one
        self._unsubscribe = [store.on_alarm_change(self._wake)]

    def unsubscribe(self):
        for fn in self._unsubscribe:
            fn()
        self._unsubscribe = []

    def attach_responders(self, board):
        """Send `board`'s responders on every stream (the plan's markers)."""
        self.responders = board
        self._unsubscribe.append(board.on_change(self._wake))

    def _responder_frames(self, version, principal):
        """(the board's version, frames of the responders changed after `version`)."""
        if self.responders is None:
            return version, []
        from hub.console.plan import visible_responder
        version, docs = self.responders.changes_after(version)
        return version, [frame("responder", {"responder": visible_responder(d, principal)})
                         for d in docs]

    def __len__(self):
        return len(self._open)

    def _wake(self):
        for entry in self._open:
            entry.wake.set()

    def drop_all(self, abort=True):
        """Drop every open stream (the clients reconnect and catch up): `abort`
        cuts the connection as a network failure would, else the stream ends."""
        for entry in list(self._open):
            self._open.discard(entry)  # no longer open, whatever its coroutine does next
            entry.drop(abort)

    def handler(self, req):
        """GET /api/alarms/stream (alarms.read)."""
        after = parse_after(req.headers.get("Last-Event-ID"), req.arg("after"))
        return 200, EventStream(lambda channel: self._run(req, after, channel))

    async def _run(self, req, after, channel):
        entry = _Open(channel)
        self._open.add(entry)  # before the catch-up: a commit during it wakes us
        principal = req.principal
        try:
            await channel.send(b"retry: %d\n\n" % RETRY_MS)
            reset, changes, cursor = catch_up(self.store, after)
            if reset:
                await channel.send(frame("reset", {}))
            for feed_id, doc in changes:
                await channel.send(frame("alarm", {"feed_id": feed_id,
                                                   "alarm": visible(doc, principal)}, feed_id))
            rversion, frames = self._responder_frames(-1, principal)
            for data in frames:
                await channel.send(data)
            await channel.send(frame("ready", {"feed_id": cursor}, cursor))
            loop = asyncio.get_running_loop()
            next_check = loop.time() + self.heartbeat_s
            while not channel.closing.is_set():
                entry.wake.clear()
                for feed_id, doc in self.store.alarm_changes_after(cursor):
                    await channel.send(frame("alarm", {"feed_id": feed_id,
                                                       "alarm": visible(doc, principal)}, feed_id))
                    cursor = feed_id
                rversion, frames = self._responder_frames(rversion, principal)
                for data in frames:
                    await channel.send(data)
                wait = next_check - loop.time()
                if wait > 0:
                    await _first(entry.wake, channel.closing, wait)
                    continue
                principal = await req.recheck()
                if principal is None or not principal.may("alarms.read"):
                    await channel.send(frame("ended", {"reason": "session" if principal is None
                                                       else "forbidden"}))
                    return
                await channel.send(b": keepalive\n\n")
                next_check = loop.time() + self.heartbeat_s
            await channel.send(frame("ended", {"reason": "stopping"}))
        except StoreError as exc:  # the client reconnects and catches up from its id
            log.error("alarm stream ended: the store failed: %s", exc)
        except ConnectionError:
            pass  # the client went away (or was dropped)
        finally:
            self._open.discard(entry)


class _Open:
    def __init__(self, channel):
        self.channel = channel
        self.wake = asyncio.Event()

    def drop(self, abort):
        if abort:
            self.channel.abort()
        self.channel.closing.set()


async def _first(a, b, timeout):
    """Until either event is set, or `timeout` seconds."""
    waiters = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
