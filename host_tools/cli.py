"""The `anju` command line.

    anju sim run SCENARIO.yaml     run a scenario against the real firmware and hub
    anju sim check SCENARIO.yaml   validate a scenario file only
    anju demo                      brokers + hub + a simulated community, paced for watching
    anju hub run --config SITE     the hub service on wall time
    anju config check SITE.yaml    validate a site configuration, as the hub does at start
    anju keys new                  fresh frame and bind keys for a device
    anju users ...                 accounts and API tokens of the hub's HTTP API
    anju broker config SITE.yaml   the site broker's Mosquitto config, passwords and ACL
    anju boards [list|show NAME]   supported boards
    anju release keygen/build/verify  signed firmware releases (docs/ota.md)
    anju flash --board B --port P  MicroPython onto a bare board (docs/flashing.md)
    anju deploy --device D --port P --board B   the app, runtime and config onto it

Exit codes: 0 success, 1 a scenario expectation failed, 2 invalid input
(the message names the file, line and key).
"""
import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import sys
from pathlib import Path

from hub import ConfigError, HubError

REPO = Path(__file__).resolve().parent.parent


def _err(msg):
    print("anju: error: %s" % msg, file=sys.stderr)
    return 2


def cmd_sim_run(args):
    from simulator import runner
    logging.basicConfig(level=logging.ERROR if not args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        ok, run = asyncio.run(runner.run_scenario(args.scenario, workdir=args.workdir,
                                                  pace=args.pace,
                                                  console=getattr(args, "console", None)))
    except (ConfigError, ValueError) as exc:
        return _err(str(exc))
    print("scenario %s: %s" % (args.scenario, "PASSED" if ok else
                               "FAILED (%d expectation(s))" % len(run.failures)))
    return 0 if ok else 1


def cmd_sim_check(args):
    from host_tools import boards
    from simulator import scenario
    try:
        sc = scenario.load(args.scenario, boards_loader=boards.load)
    except (ConfigError, ValueError) as exc:
        return _err(str(exc))
    print("%s: valid: %d device(s), %d step(s), %d expectation(s)"
          % (args.scenario, len(sc.device_specs), len(sc.steps), len(sc.expectations)))
    return 0


def cmd_demo(args):
    print("anju demo: two private Mosquitto brokers (site and upstream), the hub with its "
          "console, and a simulated community whose door sensors and smart lock run the real "
          "firmware.\n"
          "Simulated time runs at %.1f s per hour; Ctrl-C stops.\n" % args.pace)
    args.scenario = str(REPO / "scenarios" / "demo.yaml")
    args.workdir = None
    args.verbose = False
    # the property-office console on the demo's hub (docs/console.md)
    port = args.console_port
    if port > 0 and not _port_free(port):
        print("port %d is taken: the console takes a free port (its address follows)\n" % port)
        port = 0
    args.console = None if port < 0 else {"host": "127.0.0.1", "port": port}
    return cmd_sim_run(args)


def _port_free(port):
    import socket
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cmd_config_check(args):
    """The site file, and every section the hub validates when it starts
    (hub/config/preflight.py); no connection, database or camera is opened."""
    from hub.config import site as config
    from hub.config import preflight
    try:
        site = config.load_site(args.file)
        checked = preflight.check(site)
    except ConfigError as exc:
        return _err(str(exc))
    print("%s: valid: site %s, %d building(s), %d flat(s), %d resident(s), %d device(s); "
          "checked %s" % (args.file, site.site_id, len(site.buildings), len(site.flats),
                          len(site.residents), len(site.devices), ", ".join(checked)))
    return 0


def cmd_keys_new(args):
    keys = {"frame_key": secrets.token_hex(32), "bind_key": secrets.token_hex(16)}
    print(json.dumps(keys, indent=2))
    return 0


def cmd_boards(args):
    from host_tools import boards
    if args.action == "show":
        try:
            print(json.dumps(boards.load(args.name), indent=2))
        except boards.BoardError as exc:
            return _err(str(exc))
        return 0
    for name in boards.names():
        try:
            b = boards.load(name)
            print("%-10s %s  radios: %s" % (name, b["title"], ", ".join(b["radios"])))
        except boards.BoardError as exc:
            print("%-10s INVALID: %s" % (name, exc))
            return 2
    return 0


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the extras."""

    SKIP = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record):
        doc = {"ts": round(record.created, 3), "level": record.levelname.lower(),
               "logger": record.name, "msg": record.getMessage()}
        for k, v in vars(record).items():
            if k not in self.SKIP:
                doc[k] = v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def _hostport(value, default_port):
    host, _, port = value.rpartition(":")
    if not host:
        return value, default_port
    return host, int(port)


def cmd_hub_run(args):
    from hub.config import site as config
    from hub.clock import SystemClock
    from hub.ingest.login import LOGIN_KEYS
    from hub.ingest.mqtt import INGEST_MODES
    from hub.service import HubService
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    from hub.config import preflight
    try:
        site = config.load_site(args.config)
        preflight.check(site)  # what `anju config check` checks, before anything is opened
    except ConfigError as exc:
        return _err(str(exc))
    hubcfg = site.hub
    mqtt_host, mqtt_port = _hostport(args.mqtt or "%s:%s" % (
        (hubcfg.get("mqtt") or {}).get("host", "127.0.0.1"),
        (hubcfg.get("mqtt") or {}).get("port", 1883)), 1883)
    up = hubcfg.get("upstream") or {}
    up_host, up_port = _hostport(args.upstream or "%s:%s" % (up.get("host", "127.0.0.1"),
                                                             up.get("port", 1883)), 1883)
    db = args.db or hubcfg.get("database") or "var/hub.db"
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    registry = None
    if args.registry or hubcfg.get("registry"):  # docs/registry.md
        from hub.registry import db as site_registry
        try:
            registry, site = site_registry.open_for_hub(args.config, db, SystemClock(), args.kek)
        except HubError as exc:
            return _err(str(exc))

    async def main():
        site_broker = hubcfg.get("mqtt") or {}
        ingest = site_broker.get("ingest", INGEST_MODES[0])
        # the hub's login (username, password or password_file, tls), checked by preflight
        login = {k: site_broker[k] for k in LOGIN_KEYS if k in site_broker}
        hub = HubService(site, db, SystemClock(),
                         {"host": mqtt_host, "port": mqtt_port, "ingest": ingest, **login},
                         {"host": up_host, "port": up_port,
                          "topic_prefix": up.get("topic_prefix", "anju/upstream")},
                         enable_ble=bool((hubcfg.get("ble") or {}).get("enabled", False)),
                         registry=registry)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # a stop asked for while the hub still waits for its broker ends the
        # start at once (start() stops what it had started)
        starting = asyncio.create_task(hub.start(connect_timeout=args.connect_timeout))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            try:
                await starting
            except asyncio.CancelledError:
                pass
            return
        stopping.cancel()
        await starting  # raises what made the start fail
        await stop.wait()
        await hub.stop()

    try:
        asyncio.run(main())
    except HubError as exc:
        return _err(str(exc))
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="anju", description="anju: smart-security community tools")
    sub = p.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("sim", help="run or check simulator scenarios").add_subparsers(
        dest="sim_command", required=True)
    r = sim.add_parser("run", help="run a scenario file")
    r.add_argument("scenario")
    r.add_argument("--workdir", help="keep brokers' and devices' files here")
    r.add_argument("--pace", type=float, default=0.0,
                   help="wall seconds per simulated hour (default: as fast as possible)")
    r.add_argument("-v", "--verbose", action="store_true")
    r.set_defaults(func=cmd_sim_run)
    c = sim.add_parser("check", help="validate a scenario file")
    c.add_argument("scenario")
    c.set_defaults(func=cmd_sim_check)

    d = sub.add_parser("demo", help="watch a simulated community (what `make run` starts)")
    d.add_argument("--pace", type=float, default=float(os.environ.get("ANJU_DEMO_PACE", "1.0")),
                   help="wall seconds per simulated hour (default 1.0)")
    d.add_argument("--console-port", type=int, default=8080,
                   help="the console's port on 127.0.0.1 (default 8080; 0: any free port; "
                        "-1: no console)")
    d.set_defaults(func=cmd_demo)

    h = sub.add_parser("hub", help="the hub service").add_subparsers(dest="hub_command",
                                                                      required=True)
    hr = h.add_parser("run", help="run the hub on wall time")
    hr.add_argument("--config", required=True, help="site configuration (YAML)")
    hr.add_argument("--db", help="SQLite event store (default: hub.database or var/hub.db)")
    hr.add_argument("--mqtt", help="site broker HOST:PORT (overrides hub.mqtt)")
    hr.add_argument("--upstream", help="upstream broker HOST:PORT (overrides hub.upstream)")
    hr.add_argument("--connect-timeout", type=float, default=30.0)
    hr.add_argument("--registry", action="store_true",
                    help="the site registry in the database is the source of truth (docs/registry.md)")
    hr.add_argument("--kek", help="registry KEK file (overrides hub.kek_file; default /etc/anju/kek)")
    hr.set_defaults(func=cmd_hub_run)

    cfg = sub.add_parser("config", help="site configuration").add_subparsers(
        dest="config_command", required=True)
    cc = cfg.add_parser("check", help="validate a site configuration")
    cc.add_argument("file")
    cc.set_defaults(func=cmd_config_check)

    k = sub.add_parser("keys", help="device keys").add_subparsers(dest="keys_command",
                                                                 required=True)
    kn = k.add_parser("new", help="print a fresh frame_key and bind_key")
    kn.set_defaults(func=cmd_keys_new)
    from host_tools import registry_cli
    registry_cli.register_kek(k)

    b = sub.add_parser("boards", help="supported boards")
    b.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    b.add_argument("name", nargs="?")
    b.set_defaults(func=cmd_boards)

    try:
        from host_tools import face_cli
    except ImportError:
        face_cli = None  # face access needs the optional face packages
    if face_cli is not None:
        face_cli.register(sub)
    registry_cli.register(sub)
    from host_tools import alarms_cli
    alarms_cli.register(sub)
    from host_tools import fleet_cli
    fleet_cli.register(sub)
    from host_tools import lock_cli
    lock_cli.register(sub)
    from host_tools import visitors_cli
    visitors_cli.register(sub)
    from host_tools import certs
    certs.register(sub)
    from host_tools import users_cli
    users_cli.register(sub)
    from host_tools import broker
    broker.register(sub)
    from host_tools import release
    release.register(sub)
    from host_tools.flash import cli as flash_cli
    flash_cli.register(sub)
    from host_tools.deploy import cli as deploy_cli
    deploy_cli.register(sub)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
