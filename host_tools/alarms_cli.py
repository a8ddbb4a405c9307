"""``anju alarms ...``: list, show, act on and export alarms through a running
hub's HTTP API (docs/alarms.md).

``register(subparsers)`` adds the ``alarms`` group; every leaf sets
``func(args) -> int``. Exit codes: 0 done, 1 the hub refused or did not apply
(unknown alarm, out of order, closed, invalid), 2 the hub could not be reached
or answered garbage. It talks HTTP only (stdlib ``urllib``, with a timeout),
with the API token of ``--token-file`` or ``$ANJU_TOKEN`` (host_tools/hubauth.py);
it never opens the hub's database. Every action carries a fresh command id, so
``--command-id`` makes a retry of the same action safe.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

from host_tools import hubauth
from hub.alarms.commands import ACTIONS

DEFAULT_HUB = os.environ.get("ANJU_HUB_URL", "http://127.0.0.1:8080")
TIMEOUT_S = 10.0


class HubUnreachable(Exception):
    """No usable answer from the hub (connection refused, timeout, not JSON)."""


_AUTH = {}  # the Authorization header of this run (set by _guard)


def _request(hub, method, path, body=None, timeout=TIMEOUT_S):
    """(status, bytes, content type); HTTP error statuses are returned, not raised."""
    url = hub.rstrip("/") + path
    data = None if body is None else json.dumps(body).encode()
    headers = dict(_AUTH)
    if data:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HubUnreachable("cannot reach the hub at %s: %s" % (hub, reason)) from exc


def _json(hub, method, path, body=None, timeout=TIMEOUT_S):
    status, data, _ = _request(hub, method, path, body, timeout)
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise HubUnreachable("the hub at %s answered %d with something that is not JSON"
                             % (hub, status)) from exc
    return status, doc


def _fail(status, doc):
    print("error: hub answered %d: %s%s" % (status, doc.get("error", doc.get("outcome", "?")),
                                            ": " + str(doc["detail"]) if doc.get("detail") else ""),
          file=sys.stderr)
    return 1


def cmd_list(args) -> int:
    status, doc = _json(args.hub, "GET", "/api/alarms?limit=%d" % args.limit, timeout=args.timeout)
    if status != 200:
        return _fail(status, doc)
    alarms = [a for a in doc["alarms"] if args.state is None or a["state"] == args.state]
    if args.json:
        print(json.dumps(alarms, indent=2))
        return 0
    print("%-36s  %-22s %-9s %-12s %-4s %-10s %s" % ("id", "type", "severity", "state", "seq",
                                                    "flat", "raised_at"))
    for a in alarms:
        print("%-36s  %-22s %-9s %-12s %-4s %-10s %s" % (
            a["id"], a["type"], a["severity"], a["state"], a["seq"], a.get("flat") or "-",
            a.get("raised_at")))
    return 0


def cmd_show(args) -> int:
    status, doc = _json(args.hub, "GET", "/api/alarms/%s" % urllib.parse.quote(args.alarm_id, safe=""),
                        timeout=args.timeout)
    if status != 200:
        return _fail(status, doc)
    print(json.dumps(doc, indent=2, ensure_ascii=False))
    return 0


def cmd_act(args) -> int:
    body = {"action": args.action, "actor": args.actor, "note": args.note,
            "command_id": args.command_id or "cli-%s" % uuid.uuid4()}
    if getattr(args, "assignee", None):
        body["assignee"] = args.assignee
    status, doc = _json(args.hub, "POST",
                        "/api/alarms/%s/actions" % urllib.parse.quote(args.alarm_id, safe=""),
                        body, timeout=args.timeout)
    print(json.dumps(doc, indent=2))
    if status == 200 and doc.get("outcome") in ("applied", "duplicate", "same_state"):
        return 0
    return _fail(status, doc)


def cmd_audit(args) -> int:
    query = {"format": args.format}
    if args.since:
        query["since"] = args.since
    if args.until:
        query["until"] = args.until
    status, data, ctype = _request(args.hub, "GET", "/api/audit?" + urllib.parse.urlencode(query),
                                   timeout=args.timeout)
    if status != 200:
        try:
            return _fail(status, json.loads(data))
        except ValueError as exc:
            raise HubUnreachable("the hub answered %d with something that is not JSON"
                                 % status) from exc
    if args.output:
        try:
            with open(args.output, "wb") as f:
                f.write(data)
        except OSError as exc:
            print("error: %s: %s" % (args.output, exc.strerror), file=sys.stderr)
            return 2
        print("wrote %d bytes to %s" % (len(data), args.output), file=sys.stderr)
    else:
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
    return 0


def cmd_dead_letters(args) -> int:
    path = "/api/dead-letters?limit=%d" % args.limit
    if args.target:
        path += "&target=" + urllib.parse.quote(args.target, safe="")
    status, doc = _json(args.hub, "GET", path, timeout=args.timeout)
    if status != 200:
        return _fail(status, doc)
    if args.json:
        print(json.dumps(doc["dead_letters"], indent=2))
        return 0
    print("%-6s %-8s %-36s %-4s %-8s %s" % ("id", "target", "alarm", "seq", "attempts", "reason"))
    for d in doc["dead_letters"]:
        print("%-6s %-8s %-36s %-4s %-8s %s" % (d["id"], d["target"], d["alarm_id"], d["seq"],
                                                d["attempts"], d["reason"]))
    return 0


def cmd_requeue(args) -> int:
    if bool(args.all) == bool(args.ids):
        print("error: give dead letter ids, or --all", file=sys.stderr)
        return 2
    body = {"all": True} if args.all else {"ids": args.ids}
    if args.target:
        body["target"] = args.target
    status, doc = _json(args.hub, "POST", "/api/dead-letters/requeue", body, timeout=args.timeout)
    if status != 200:
        return _fail(status, doc)
    print("re-queued: %s" % (", ".join(map(str, doc["requeued"])) or "none"))
    if doc["unknown"]:
        print("error: no such dead letter: %s" % ", ".join(map(str, doc["unknown"])),
              file=sys.stderr)
        return 1
    return 0


def _guard(func):
    def run(args) -> int:
        try:
            _AUTH.clear()
            _AUTH.update(hubauth.headers(args.token_file))
            return func(args)
        except hubauth.TokenError as exc:
            print("error: %s" % exc, file=sys.stderr)
            return 2
        except HubUnreachable as exc:
            print("error: %s" % exc, file=sys.stderr)
            return 2
    return run


def register(subparsers) -> None:
    p = subparsers.add_parser("alarms", help="alarms on a running hub: list, show, act, audit, dead letters")
    sub = p.add_subparsers(dest="alarms_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--hub", default=DEFAULT_HUB,
                        help="the hub's HTTP API (default $ANJU_HUB_URL or %(default)s)")
    common.add_argument("--timeout", type=float, default=TIMEOUT_S,
                        help="seconds per request (default %(default)s)")
    hubauth.add_argument(common)

    ls = sub.add_parser("list", parents=[common], help="alarms, oldest first")
    ls.add_argument("--state", choices=("raised", "dispatched", "acknowledged", "resolved",
                                        "cancelled", "false_alarm"))
    ls.add_argument("--limit", type=int, default=1000, help="the newest N (default 1000)")
    ls.add_argument("--json", action="store_true", help="print the documents")
    ls.set_defaults(func=_guard(cmd_list))

    sh = sub.add_parser("show", parents=[common], help="one alarm with its transitions")
    sh.add_argument("alarm_id")
    sh.set_defaults(func=_guard(cmd_show))

    act = sub.add_parser("act", parents=[common], help="dispatch, acknowledge, resolve, cancel or mark false")
    act.add_argument("alarm_id")
    act.add_argument("action", choices=tuple(ACTIONS))
    act.add_argument("--note")
    act.add_argument("--actor", default=os.environ.get("USER") or "cli")
    act.add_argument("--command-id", help="reuse to retry safely (default: a fresh one)")
    act.add_argument("--assignee", help="with dispatch: whom it sends (a responder id)")
    act.set_defaults(func=_guard(cmd_act))

    au = sub.add_parser("audit", parents=[common], help="export every transition (actor, time, note)")
    au.add_argument("--format", choices=("csv", "json"), default="csv")
    au.add_argument("--since", help="ISO 8601 time or epoch seconds")
    au.add_argument("--until", help="ISO 8601 time or epoch seconds")
    au.add_argument("--output", "-o", help="file to write (default: stdout)")
    au.set_defaults(func=_guard(cmd_audit))

    dl = sub.add_parser("dead-letters", parents=[common],
                        help="documents a forwarding target refused for good")
    dl.add_argument("--target", help="only this target (mqtt, webhook)")
    dl.add_argument("--limit", type=int, default=1000, help="the newest N (default 1000)")
    dl.add_argument("--json", action="store_true", help="print the rows with their payloads")
    dl.set_defaults(func=_guard(cmd_dead_letters))

    rq = sub.add_parser("requeue", parents=[common],
                        help="send dead letters again (after fixing what the target refused)")
    rq.add_argument("ids", nargs="*", type=int, help="dead letter ids")
    rq.add_argument("--all", action="store_true", help="every dead letter (of --target)")
    rq.add_argument("--target", help="with --all: only this target")
    rq.set_defaults(func=_guard(cmd_requeue))
