"""Responders' positions: parsing, the nearest on duty, and the board.

`parse_position` and `nearest` are pure; `ResponderBoard` keeps the latest
report of each responder in memory (a restarted hub knows none until each
reports again) and calls its listeners after every change, on the hub's loop.
"""
import json
import math

from hub.alarms import documents as alarm_docs

MAX_REPORT_BYTES = 1024


class PositionInvalid(ValueError):
    """A report that is not a usable position; `reason` goes back to the sender."""

    def __init__(self, reason, detail):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def parse_position(payload, size):
    """{"x", "y", "on_duty"?} from JSON bytes or a dict, with x, y inside the
    plan (`size` = (width, height)); raises PositionInvalid."""
    if isinstance(payload, (bytes, bytearray)):
        if len(payload) > MAX_REPORT_BYTES:
            raise PositionInvalid("oversized", "a position report is at most %d bytes"
                                  % MAX_REPORT_BYTES)
        try:
            payload = json.loads(bytes(payload).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise PositionInvalid("malformed", "not UTF-8 JSON") from exc
    if not isinstance(payload, dict):
        raise PositionInvalid("malformed", "a position is a JSON object {x, y}")
    out = {}
    for key, limit in (("x", size[0]), ("y", size[1])):
        v = payload.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or not 0 <= v <= limit:
            raise PositionInvalid("bad_field", "%s must be a number 0..%g (plan coordinates)"
                                  % (key, limit))
        out[key] = float(v)
    if "on_duty" in payload:
        if not isinstance(payload["on_duty"], bool):
            raise PositionInvalid("bad_field", "on_duty must be true or false")
        out["on_duty"] = payload["on_duty"]
    return out


def nearest(responders, point):
    """The responders on duty with a known position, nearest to `point` first,
    as (distance, doc); `responders` are board documents. Pure."""
    found = []
    for doc in responders:
        if doc.get("on_duty") and doc.get("x") is not None and doc.get("y") is not None:
            found.append((math.hypot(doc["x"] - point[0], doc["y"] - point[1]), doc))
    found.sort(key=lambda pair: (pair[0], pair[1]["id"]))
    return found


class ResponderBoard:
    """The responders of the running site (`site()`) and their latest reports."""

    def __init__(self, site, clock, size):
        self.site, self.clock, self.size = site, clock, size
        self._reports = {}   # id -> {"x", "y", "at", "source", "on_duty"?}
        self._changed = {}   # id -> version of its last change
        self.version = 0
        self._listeners = []

    def on_change(self, fn):
        """Call `fn()` after every change; returns the unsubscribe."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def doc(self, rid):
        r = self.site().responders.get(rid)
        if r is None:
            return None
        report = self._reports.get(rid, {})
        return {"id": r.id, "name": r.name, "kind": r.kind,
                "on_duty": report.get("on_duty", r.on_duty),
                "x": report.get("x"), "y": report.get("y"),
                "at": alarm_docs.iso(report["at"]) if "at" in report else None,
                "source": report.get("source")}

    def docs(self):
        return [self.doc(rid) for rid in sorted(self.site().responders)]

    def report(self, rid, payload, source):
        """Record a report; returns the responder's document. KeyError for an
        unknown responder, PositionInvalid for a bad report."""
        if rid not in self.site().responders:
            raise KeyError(rid)
        pos = parse_position(payload, self.size())
        self._reports[rid] = dict(pos, at=self.clock.now(), source=source)
        self.version += 1
        self._changed[rid] = self.version
        for fn in list(self._listeners):
            fn()
        return self.doc(rid)

    def changes_after(self, version):
        """(the board's version, [documents changed after `version`])."""
        ids = sorted((v, rid) for rid, v in self._changed.items() if v > version)
        return self.version, [d for d in (self.doc(rid) for _, rid in ids) if d is not None]


def board_for(hub):
    """The hub's board, made on first use (the HTTP routes and the MQTT component share it)."""
    board = getattr(hub, "responder_board", None)
    if board is None:
        from hub.config.plan import PLAN_SIZE
        board = ResponderBoard(lambda: hub.site, hub.clock,
                               lambda: hub.site.plan_size or PLAN_SIZE)
        hub.responder_board = board
    return board
