"""``anju visitors ...``: visits on a running hub through its HTTP API
(docs/visitors.md, docs/http_api.md "Visitors").

Talks HTTP only (``--hub URL`` or ``$ANJU_HUB_URL``, the token of
``--token-file`` or ``$ANJU_TOKEN``), like ``anju lock``. The visitor's ID
number and phone (and a watch-list value) are read from standard input, one
a line, never from an argument, which every user of the machine can read in
the process list. A resident token is printed once; the hub keeps only its
hash. Exit codes: 0 done, 1 the hub refused, 2 unreachable or bad input.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import json
import sys
import urllib.parse

from host_tools import alarms_cli, hubauth


def _iso(t):
    if t is None:
        return "-"
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="minutes")


def _path(visit=None, *rest):
    p = "/api/visitors/visits"
    if visit is not None:
        p += "/" + urllib.parse.quote(visit, safe="")
    return p + "".join("/" + r for r in rest)


def _read(prompt):
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()


def _call(args, method, path, body=None, ok=200):
    status, doc = alarms_cli._json(args.hub, method, path, body, timeout=args.timeout)
    if status != ok:
        return None, alarms_cli._fail(status, doc)
    return doc, 0


def _print_visits(visits):
    print("%-32s %-8s %-10s %-6s %-19s %-17s %-17s %s" % (
        "id", "flat", "state", "name", "id_number", "from", "until", "entrances"))
    for v in visits:
        print("%-32s %-8s %-10s %-6s %-19s %-17s %-17s %s" % (
            v["id"], v["flat"], v["state"], v["name"], v["id_number"], _iso(v["valid_from"]),
            _iso(v["valid_until"]), ",".join(v["entrances"])))


def cmd_register(args) -> int:
    id_number = _read("visitor's ID number: ")
    phone = _read("visitor's phone: ")
    if not id_number or not phone:
        print("error: the ID number and the phone are read from standard input, one a line",
              file=sys.stderr)
        return 2
    body = {"flat": args.flat, "name": args.name, "phone": phone, "id_number": id_number,
            "purpose": args.purpose, "valid_from": args.valid_from,
            "valid_until": args.valid_until, "entry": "repeated" if args.repeated else "single",
            "entrances": args.entrance, "flat_lock": args.flat_lock}
    if args.plate:
        body["plate"] = args.plate
    doc, code = _call(args, "POST", _path(), body, ok=201)
    if doc is None:
        return code
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print("visit %s for %s: %s" % (doc["id"], doc["flat"], doc["state"]))
    return 0


def cmd_list(args) -> int:
    query = {k: v for k, v in (("flat", args.flat), ("state", args.state),
                               ("personal", "1" if args.personal else None),
                               ("limit", str(args.limit))) if v}
    doc, code = _call(args, "GET", _path() + "?" + urllib.parse.urlencode(query))
    if doc is None:
        return code
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        _print_visits(doc["visits"])
    return 0


def cmd_show(args) -> int:
    doc, code = _call(args, "GET", _path(args.visit) + ("?personal=1" if args.personal else ""))
    if doc is None:
        return code
    print(json.dumps(doc, indent=2, ensure_ascii=False))
    return 0


def cmd_pass(args) -> int:
    doc, code = _call(args, "GET", _path(args.visit, "pass"))
    if doc is None:
        return code
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    print("visit %s, %s .. %s%s" % (doc["visit"], _iso(doc["valid_from"]),
                                    _iso(doc["valid_until"]),
                                    " (one entry)" if doc["one_time"] else ""))
    for c in doc["codes"]:
        print("  code %s at %s, %s .. %s" % (c["digits"], c["device"], _iso(c["valid_from"]),
                                             _iso(c["valid_until"])))
    print("  QR %s" % doc["qr"])
    return 0


def _decide(action):
    def run(args) -> int:
        body = {"note": args.note} if args.note else {}
        doc, code = _call(args, "POST", _path(args.visit, action), body)
        if doc is None:
            return code
        print("visit %s: %s" % (doc["id"], doc["state"]))
        return 0
    return run


def cmd_resident_token(args) -> int:
    if args.revoke:
        doc, code = _call(args, "POST", "/api/visitors/resident-tokens/revoke",
                          {"flat": args.flat})
        if doc is None:
            return code
        print("%d token(s) of flat %s revoked" % (doc["revoked"], doc["flat"]))
        return 0
    doc, code = _call(args, "POST", "/api/visitors/resident-tokens", {"flat": args.flat}, ok=201)
    if doc is None:
        return code
    print(doc["token"])
    print("the token for flat %s is shown once; the hub keeps only its hash" % doc["flat"],
          file=sys.stderr)
    return 0


def cmd_watch(args) -> int:
    value = _read("%s: " % ("ID number" if args.kind == "id" else "plate"))
    if not value:
        print("error: the value is read from standard input", file=sys.stderr)
        return 2
    body = {"kind": args.kind, "value": value}
    if args.note:
        body["note"] = args.note
    doc, code = _call(args, "POST", "/api/visitors/watch", body, ok=201)
    if doc is None:
        return code
    print("on the visitor watch list (%s)" % args.kind)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("visitors", help="visits on a running hub: register, list, "
                                               "approve, refuse, revoke, show, pass")
    sub = p.add_subparsers(dest="visitors_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--hub", default=alarms_cli.DEFAULT_HUB,
                        help="the hub's HTTP API (default $ANJU_HUB_URL or %(default)s)")
    common.add_argument("--timeout", type=float, default=alarms_cli.TIMEOUT_S,
                        help="seconds per request (default %(default)s)")
    common.add_argument("--json", action="store_true", help="print the hub's answer")
    hubauth.add_argument(common)
    guard = alarms_cli._guard

    r = sub.add_parser("register", parents=[common],
                       help="register a visit (ID number and phone from standard input)")
    r.add_argument("--flat", required=True)
    r.add_argument("--name", required=True)
    r.add_argument("--purpose", required=True)
    r.add_argument("--from", dest="valid_from", required=True,
                   help="ISO 8601 time (naive = UTC) or epoch seconds")
    r.add_argument("--until", dest="valid_until", required=True)
    r.add_argument("--entrance", action="append", required=True,
                   help="an entrance the pass covers (repeat for more)")
    r.add_argument("--plate")
    r.add_argument("--repeated", action="store_true", help="any number of entries in the window")
    r.add_argument("--flat-lock", action="store_true",
                   help="a code for the host flat's own smart lock too")
    r.set_defaults(func=guard(cmd_register))
    ls = sub.add_parser("list", parents=[common], help="visits, newest first")
    ls.add_argument("--flat")
    ls.add_argument("--state")
    ls.add_argument("--personal", action="store_true",
                    help="unmasked (needs permission visitors.personal)")
    ls.add_argument("--limit", type=int, default=100)
    ls.set_defaults(func=guard(cmd_list))
    sh = sub.add_parser("show", parents=[common], help="one visit with its history and entries")
    sh.add_argument("visit")
    sh.add_argument("--personal", action="store_true")
    sh.set_defaults(func=guard(cmd_show))
    ps = sub.add_parser("pass", parents=[common], help="an approved visit's codes and QR")
    ps.add_argument("visit")
    ps.set_defaults(func=guard(cmd_pass))
    for action in ("approve", "refuse", "revoke"):
        a = sub.add_parser(action, parents=[common], help="%s a visit" % action)
        a.add_argument("visit")
        a.add_argument("--note", help="why (required to approve a flagged visit)")
        a.set_defaults(func=guard(_decide(action)))
    t = sub.add_parser("resident-token", parents=[common],
                       help="a token for a flat's residents to register their visitors")
    t.add_argument("--flat", required=True)
    t.add_argument("--revoke", action="store_true", help="end every token of the flat instead")
    t.set_defaults(func=guard(cmd_resident_token))
    w = sub.add_parser("watch", parents=[common],
                       help="put an ID number or a plate on the visitor watch list (from "
                            "standard input)")
    w.add_argument("--kind", required=True, choices=("id", "plate"))
    w.add_argument("--note")
    w.set_defaults(func=guard(cmd_watch))
