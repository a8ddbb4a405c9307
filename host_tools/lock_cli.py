"""``anju lock ...``: a smart lock's state, lock/unlock, its users and
credentials and its log, through a running hub's HTTP API (docs/smart_lock.md,
docs/http_api.md "Smart locks").

Talks HTTP only (as ``anju alarms`` does: ``--hub URL`` or ``$ANJU_HUB_URL``,
the token of ``--token-file`` or ``$ANJU_TOKEN``); never opens the hub's
database. A command is answered with its pending state: the lock confirms it
later, and ``anju lock credentials`` shows when it did. A PIN, a card UID or a
phone key is read from standard input (never from an argument, which every
user of the machine can read in the process list), and never printed.
Exit codes: 0 done (queued), 1 the hub refused, 2 unreachable or bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import getpass
import json
import sys
import urllib.parse

from host_tools import alarms_cli, hubauth


def _iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="seconds")


def _path(lock, *rest):
    return "/api/locks/%s%s" % (urllib.parse.quote(lock, safe=""),
                                "".join("/" + urllib.parse.quote(r, safe="") for r in rest))


def _get(args, path):
    status, doc = alarms_cli._json(args.hub, "GET", path, timeout=args.timeout)
    if status != 200:
        return None, alarms_cli._fail(status, doc)
    return doc, 0


def _show(args, doc):
    print(json.dumps(doc, indent=2, ensure_ascii=False))
    return 0


def cmd_status(args) -> int:
    doc, code = _get(args, _path(args.lock) if args.lock else "/api/locks")
    if doc is None:
        return code
    if args.json:
        return _show(args, doc)
    print("%-16s %-10s %-10s %-8s %-7s %s" % ("lock", "bolt", "door", "battery", "pending",
                                             "flags"))
    for lock in doc.get("locks", [doc]):
        st = lock["state"] or {}
        flags = [k for k in ("case_open", "battery_low", "locked_out") if st.get(k)]
        if st and not st.get("clock_set"):
            flags.append("no_clock")
        print("%-16s %-10s %-10s %-8s %-7d %s" % (
            lock["device"], st.get("bolt", "unknown"), st.get("door", "unknown"),
            "%s%%" % st["percent"] if "percent" in st else "-", len(lock["pending"]),
            ",".join(flags) or "-"))
    return 0


def _action(args, action) -> int:
    status, doc = alarms_cli._json(args.hub, "POST", _path(args.lock, "actions"),
                                   {"action": action}, timeout=args.timeout)
    if status != 202:
        return alarms_cli._fail(status, doc)
    cmd = doc["command"]
    print("%s %s: queued as command %d (confirmed when the lock answers)"
          % (action, args.lock, cmd["counter"]))
    return 0


def cmd_unlock(args) -> int:
    return _action(args, "unlock")


def cmd_lock(args) -> int:
    return _action(args, "lock")


def cmd_users(args) -> int:
    doc, code = _get(args, _path(args.lock, "users"))
    if doc is None:
        return code
    if args.json:
        return _show(args, doc)
    print("%-5s %-12s %-8s %s" % ("user", "resident", "state", "credentials"))
    for u in doc["users"]:
        creds = ", ".join("%s (%s, %s)" % (c["credential"], c["kind"], c["state"])
                          for c in u["credentials"])
        print("%-5s %-12s %-8s %s" % (u["user"], u["resident"] or "-", u["state"], creds or "-"))
    return 0


def cmd_credentials(args) -> int:
    doc, code = _get(args, _path(args.lock, "credentials"))
    if doc is None:
        return code
    if args.json:
        return _show(args, doc)
    print("%-17s %-11s %-5s %-12s %-6s %-9s %s" % ("credential", "kind", "user", "resident",
                                                  "source", "state", "reason"))
    for c in doc["credentials"]:
        print("%-17s %-11s %-5s %-12s %-6s %-9s %s" % (
            c["credential"], c["kind"] or "-", c["user"] or "-", c["resident"] or "-",
            c["source"], c["state"], c["reason"] or "-"))
    return 0


def _read_secret(kind):
    prompt = {"pin": "PIN: ", "card": "card UID (hex): ", "phone": "phone key (32 hex): "}[kind]
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()


def cmd_add(args) -> int:
    body = {"resident": args.resident, "kind": args.kind}
    if args.kind == "fingerprint":
        if args.template is None:
            print("error: a fingerprint needs --template (the module's slot id)", file=sys.stderr)
            return 2
        body["template"] = args.template
    else:
        secret = _read_secret(args.kind)
        if not secret:
            print("error: nothing read from standard input", file=sys.stderr)
            return 2
        body[{"pin": "pin", "card": "card_uid", "phone": "phone_key"}[args.kind]] = secret
    status, doc = alarms_cli._json(args.hub, "POST", _path(args.lock, "credentials"), body,
                                   timeout=args.timeout)
    if status != 202:
        return alarms_cli._fail(status, doc)
    c = doc["credential"]
    print("credential %s for %s on %s: %s (%s)" % (c["credential"], c["resident"], args.lock,
                                                  c["state"], ", ".join(
                                                      x["command"] for x in doc["commands"])))
    return 0


def cmd_remove(args) -> int:
    status, doc = alarms_cli._json(args.hub, "DELETE", _path(args.lock, "credentials",
                                                             args.credential),
                                   timeout=args.timeout)
    if status != 202:
        return alarms_cli._fail(status, doc)
    print("credential %s on %s: %s" % (args.credential, args.lock, doc["credential"]["state"]))
    return 0


def cmd_visitor_revoke(args) -> int:
    if sys.stdin.isatty():
        digits = getpass.getpass("visitor code (10 digits): ")
    else:
        digits = sys.stdin.readline().strip()
    if not digits:
        print("error: nothing read from standard input", file=sys.stderr)
        return 2
    status, doc = alarms_cli._json(args.hub, "POST", _path(args.lock, "visitor-revocations"),
                                   {"digits": digits}, timeout=args.timeout)
    if status != 202:
        return alarms_cli._fail(status, doc)
    r = doc["revocation"]
    print("visitor code %s (%s .. %s) on %s: revocation %s (command %d)" % (
        r["code"], _iso(r["valid_from"]), _iso(r["valid_until"]), args.lock, r["state"],
        doc["command"]["counter"]))
    return 0


def cmd_log(args) -> int:
    doc, code = _get(args, _path(args.lock, "log") + "?limit=%d" % args.limit)
    if doc is None:
        return code
    if args.json:
        return _show(args, doc)
    for e in doc["entries"]:
        v = e["values"]
        if e["type"] == "access":
            what = "%s %s%s%s" % (v["method"], v["outcome"],
                                  "" if v["reason"] == "ok" else " (%s)" % v["reason"],
                                  " DURESS" if v.get("duress") else "")
            who = v.get("credential") or "-"
        else:
            what, who = "%s %s" % (e["type"], json.dumps(v, sort_keys=True)), "-"
        print("%-26s %-8s %-17s %s" % (_iso(e["received_at"]), e["counter"], who, what))
    return 0


async def phone(args, **backend) -> int:
    """Lock or unlock over BLE as a phone does (docs/smart_lock.md, "Phone unlock
    over BLE"): the phone key from standard input, never an argument. bleak
    talks to BlueZ unless `backend` names another (bleak's `backend=`)."""
    from host_tools import lock_ble
    raw = _read_secret("phone")
    try:
        key = bytes.fromhex(raw)
    except ValueError:
        key = b""
    if len(key) != 16:
        print("anju: error: the phone key must be 32 hex digits (16 bytes)", file=sys.stderr)
        return 2
    action = lock_ble.ACTION_LOCK if args.throw else lock_ble.ACTION_UNLOCK
    try:
        _, seq = await lock_ble.unlock(args.address, args.credential, key, action,
                                       lock_id=args.lock, timeout=args.timeout, **backend)
    except lock_ble.LockBleError as exc:
        print("anju: error: %s: %s" % (args.lock, exc), file=sys.stderr)
        return 1
    print("%s: %s (the lock's log #%d)" % (args.lock, "locked" if args.throw else "unlocked", seq))
    return 0


def cmd_phone(args) -> int:
    return asyncio.run(phone(args))


def register(subparsers) -> None:
    p = subparsers.add_parser("lock", help="smart locks on a running hub: status, lock/unlock, "
                                           "users, credentials, log")
    sub = p.add_subparsers(dest="lock_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--hub", default=alarms_cli.DEFAULT_HUB,
                        help="the hub's HTTP API (default $ANJU_HUB_URL or %(default)s)")
    common.add_argument("--timeout", type=float, default=alarms_cli.TIMEOUT_S,
                        help="seconds per request (default %(default)s)")
    common.add_argument("--json", action="store_true", help="print the hub's answer")
    hubauth.add_argument(common)
    guard = alarms_cli._guard

    st = sub.add_parser("status", parents=[common], help="what the lock reported (all locks "
                                                         "without LOCK)")
    st.add_argument("lock", nargs="?")
    st.set_defaults(func=guard(cmd_status))
    for name, func, text in (("unlock", cmd_unlock, "ask the lock to unlock"),
                             ("lock", cmd_lock, "ask the lock to throw its bolt")):
        a = sub.add_parser(name, parents=[common], help=text)
        a.add_argument("lock")
        a.set_defaults(func=guard(func))
    us = sub.add_parser("users", parents=[common], help="the lock's users and their credentials")
    us.add_argument("lock")
    us.set_defaults(func=guard(cmd_users))
    cr = sub.add_parser("credentials", parents=[common],
                        help="the lock's credentials: pending, active, failed, removing")
    cr.add_argument("lock")
    cr.set_defaults(func=guard(cmd_credentials))
    ad = sub.add_parser("credential-add", parents=[common],
                        help="add a credential for a resident (the secret from standard input)")
    ad.add_argument("lock")
    ad.add_argument("--resident", required=True)
    ad.add_argument("--kind", required=True, choices=("card", "pin", "phone", "fingerprint"))
    ad.add_argument("--template", type=int, help="fingerprint: the module's slot id")
    ad.set_defaults(func=guard(cmd_add))
    rm = sub.add_parser("credential-remove", parents=[common], help="remove a credential")
    rm.add_argument("lock")
    rm.add_argument("credential")
    rm.set_defaults(func=guard(cmd_remove))
    vr = sub.add_parser("visitor-revoke", parents=[common],
                        help="revoke a visitor code on the lock (the ten digits from standard "
                             "input)")
    vr.add_argument("lock")
    vr.set_defaults(func=guard(cmd_visitor_revoke))
    ph = sub.add_parser("phone", help="unlock (or lock) over BLE as a registered phone, from "
                                      "this computer's Bluetooth (the key from standard input)")
    ph.add_argument("lock", help="the lock's device id (bound into the exchange)")
    ph.add_argument("--address", required=True, help="the lock's BLE address, AA:BB:CC:DD:EE:FF")
    ph.add_argument("--credential", required=True, help="the phone credential's id, e.g. c-12")
    ph.add_argument("--lock", dest="throw", action="store_true",
                    help="throw the bolt instead of unlocking")
    ph.add_argument("--timeout", type=float, default=10.0, help="seconds (default %(default)s)")
    ph.set_defaults(func=cmd_phone)
    lg = sub.add_parser("log", parents=[common], help="the lock's accesses and alarms, newest "
                                                      "first")
    lg.add_argument("lock")
    lg.add_argument("--limit", type=int, default=50)
    lg.set_defaults(func=guard(cmd_log))
