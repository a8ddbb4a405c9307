"""``anju fleet status|update``: what a site's devices run and their updates,
through a running hub's HTTP API (docs/ota.md "anju fleet").

    anju fleet status [--release ID] [--json]
    anju fleet update --release DIR --devices door-101,door-102 --window 02:00-05:00
    anju fleet withdraw --devices door-101,door-102

`update` sends the signed release directory (as `anju release build` made it)
to the hub, which checks its signature with the site's release public key and
every file before it keeps it (the release key never leaves the operator's
machine), then targets the devices: each is offered the release inside the
window, in the site's time zone. `withdraw` stops updates under way: no more
offers, and a device in the middle of its transfer drops its copy at its next
chunk request (one already running the release keeps it). `status` marks an
update "stalled" when the device has been silent mid-update for three of its
heartbeats (at least an hour). Exit codes: 0 done, 1 the hub refused (the
reason on stderr), 2 the hub could not be reached, bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from host_tools import alarms_cli, hubauth


def _devices(text):
    return [d.strip() for d in text.split(",") if d.strip()]


def cmd_status(args) -> int:
    path = "/api/fleet" + ("?release=" + args.release if args.release else "")
    status, doc = alarms_cli._json(args.hub, "GET", path, timeout=args.timeout)
    if status != 200:
        return alarms_cli._fail(status, doc)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    rel = doc.get("release")
    if rel:
        print("release %s: %s %s" % (rel["id"], rel["app"], rel["version"]))
    print("%-20s %-13s %-9s %-5s %-9s %-20s %s" % ("device", "kind", "version", "slot", "behind",
                                                   "update", "failed updates"))
    for d in doc["devices"]:
        fw = d["firmware"] or {}
        tg = d["target"]
        update = "-" if tg is None else "%s %s (%d%%)%s" % (
            tg["version"], tg["state"], tg["percent"] or 0,
            "" if tg.get("stalled_s") is None else ", stalled %s" % _ago(tg["stalled_s"]))
        behind = d.get("behind")
        print("%-20s %-13s %-9s %-5s %-9s %-20s %s" % (
            d["device"], d["kind"], fw.get("version", "unknown"),
            fw.get("slot", "-") + ("*" if fw.get("trial") else ""),
            "-" if behind is None else ("yes" if behind else "no"), update,
            ", ".join("%s %s" % (f["version"], f["reason"])
                      for f in fw.get("failed_updates", [])) or "-"))
    return 0


def _ago(seconds):
    return "%dh%02dm" % (seconds // 3600, seconds % 3600 // 60)


def cmd_withdraw(args) -> int:
    devices = _devices(args.devices)
    if not devices:
        print("error: --devices: give device ids, separated by commas", file=sys.stderr)
        return 2
    status, doc = alarms_cli._json(args.hub, "POST", "/api/ota/withdrawals",
                                   {"devices": devices}, timeout=args.timeout)
    if status != 200:
        return alarms_cli._fail(status, doc)
    print("update withdrawn from %d device(s): %s" % (len(doc["withdrawn"]),
                                                      ", ".join(doc["withdrawn"])))
    return 0


def cmd_update(args) -> int:
    from hub.ota import release as ota_release
    rel_dir = Path(args.release)
    if not (rel_dir / "manifest.bin").is_file():
        print("error: --release %s: no manifest.bin (a directory `anju release build` made)"
              % rel_dir, file=sys.stderr)
        return 2
    devices = _devices(args.devices)
    if not devices:
        print("error: --devices: give device ids, separated by commas", file=sys.stderr)
        return 2
    status, doc = alarms_cli._json(args.hub, "POST", "/api/ota/releases",
                                   ota_release.to_upload(rel_dir), timeout=args.timeout)
    if status != 201:
        return alarms_cli._fail(status, doc)
    print("release %s published: %s %s, %d files, %d bytes"
          % (doc["id"], doc["app"], doc["version"], doc["files"], doc["bytes"]))
    status, plan = alarms_cli._json(args.hub, "POST", "/api/ota/updates",
                                    {"release": doc["id"], "devices": devices,
                                     "window": args.window}, timeout=args.timeout)
    if status != 202:
        return alarms_cli._fail(status, plan)
    print("update to %s planned for %d device(s), window %s"
          % (plan["version"], len(plan["devices"]), plan["window"]))
    return 0


def register(subparsers) -> None:
    import argparse
    p = subparsers.add_parser("fleet", help="devices' firmware and over-the-air updates")
    sub = p.add_subparsers(dest="fleet_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--hub", default=alarms_cli.DEFAULT_HUB,
                        help="the hub's HTTP API (default $ANJU_HUB_URL or %(default)s)")
    common.add_argument("--timeout", type=float, default=alarms_cli.TIMEOUT_S,
                        help="seconds per request (default %(default)s)")
    hubauth.add_argument(common)
    st = sub.add_parser("status", parents=[common],
                        help="what each device runs, which are behind a release, update progress")
    st.add_argument("--release", help="a published release's id: mark devices behind it")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=alarms_cli._guard(cmd_status))
    up = sub.add_parser("update", parents=[common],
                        help="publish a signed release to the hub and update devices with it")
    up.add_argument("--release", required=True, help="the release directory (anju release build)")
    up.add_argument("--devices", required=True, help="device ids, separated by commas")
    up.add_argument("--window", required=True,
                    help="HH:MM-HH:MM in the site's time zone when devices may take it")
    up.set_defaults(func=alarms_cli._guard(cmd_update))
    wd = sub.add_parser("withdraw", parents=[common],
                        help="stop the updates under way on devices")
    wd.add_argument("--devices", required=True, help="device ids, separated by commas")
    wd.set_defaults(func=alarms_cli._guard(cmd_withdraw))
