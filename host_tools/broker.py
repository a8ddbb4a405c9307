"""`anju broker config`: the site broker's Mosquitto 2 configuration, made
from the site (docs/broker.md).

One directory holds everything the broker and the hub need:

    mosquitto.conf   listener, no anonymous clients, the password and ACL
                     files, persistence, the queue limits the hub relies on
    anju.passwd      Mosquitto's password file (PBKDF2-SHA512, `$7$`), 0600
    anju.acl         each device confined to anju/<site>/<its id>/..., the hub
                     to what it reads and publishes; anonymous: nothing
    passwords.json   the clear-text passwords ({user: password}), 0600: what
                     goes into each device's config.json (`mqtt.password`)
    hub.password     the hub's password alone, 0600 (`hub.mqtt.password_file`)

The text of every file is a pure function of the site, the passwords and the
salts (`render`); randomness comes in as arguments, so tests fix it. Running
it again keeps every password and every hash line (the files come out byte
for byte the same) unless `rotate` names the user, and drops the accounts of
devices no longer in the site. Passwords are never printed or logged; `anju
broker password DEVICE` prints one when it is asked for.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from hub.ingest.login import hub_username

ITERATIONS = 101  # what mosquitto_passwd writes; the passwords are 192 random bits
SALT_BYTES = 12
PASSWORD_BYTES = 24

# Device topics (docs/protocol.md §2) and who may use them.
# ack: a lock's unlock receipts; ota/up, ota/down: updates (docs/ota.md)
DEVICE_PUBLISHES = ("event", "state", "availability", "ack", "ota/up")
DEVICE_SUBSCRIBES = ("cmd", "ota/down")

# Home Assistant's account when hub.home_assistant is enabled; 'anju-' ids
# are refused for devices, so it cannot collide with one
HOME_ASSISTANT_USER = "anju-homeassistant"

SECRET = 0o600
PUBLIC = 0o644


class BrokerConfigError(Exception):
    """The configuration cannot be made (unreadable earlier files, bad arguments)."""


# ---- pure: the texts ---------------------------------------------------------------
def broker_devices(site):
    """Ids of the devices that log in to the site broker (transport mqtt)."""
    return sorted(d.id for d in site.devices.values() if d.transport == "mqtt")


def broker_responders(site):
    """Ids of the responders, who log in to report their position (hub/responders)."""
    return sorted(getattr(site, "responders", None) or {})


def broker_readers(site):
    """Ids of the visitor gate readers and barriers (hub/visitors/readers.py)."""
    visitors = getattr(site, "visitors", None)
    return sorted(visitors.readers) if visitors is not None else []


def hub_topics(site_id, ha_prefix="homeassistant", upstream_prefix="anju/upstream"):
    """(access, topic) the hub's identity is granted on its site broker."""
    base = "anju/%s/" % site_id
    return [("read", base + "+/event"),            # device frames (hub/ingest/mqtt.py)
            ("read", base + "+/state"),            # retained heartbeat frames
            ("read", base + "+/ack"),              # lock acknowledgements (face unlock)
            ("read", base + "+/visitor"),          # gate readers' and barriers' reports
            ("write", base + "+/cmd"),             # interconnect, unlock commands
            ("read", base + "+/ota/up"),           # update reports and chunk requests (hub/ota)
            ("write", base + "+/ota/down"),        # acks, offers and chunks (hub/ota)
            ("read", base + "+/availability"),     # the devices' own (each device writes its own)
            ("readwrite", base + "hub/availability"),  # its own, and its will
            ("readwrite", base + "+/ha_state"),    # Home Assistant state (hub/forward/discovery.py)
            ("readwrite", base + "+/ha_availability"),  # HA's per-device view (supervision)
            ("readwrite", ha_prefix + "/#"),       # Home Assistant discovery configs
            ("readwrite", "%s/%s/#" % (upstream_prefix, site_id)),  # when upstream is this broker
            ("read", base + "responders/+/position")]  # responders' positions (hub/responders)


def home_assistant_topics(site_id, ha_prefix="homeassistant"):
    """(access, topic) for Home Assistant's own account: what the hub's
    discovery publishes for it, and its birth message."""
    base = "anju/%s/" % site_id
    return [("read", ha_prefix + "/#"),
            ("write", ha_prefix + "/status"),
            ("read", base + "+/ha_state"),
            ("read", base + "+/ha_availability"),
            ("read", base + "hub/availability")]


def acl_text(site_id, hub_user, ha_prefix="homeassistant", upstream_prefix="anju/upstream",
             home_assistant=False, readers=()):
    """Mosquitto's acl_file: the hub's `user` block, then `pattern` lines that
    give every other account (user name = device id) its own topics. Nothing
    is granted before the first `user` line, so anonymous clients get nothing
    (the listener refuses them anyway)."""
    lines = ["# generated by `anju broker config` for site %s; re-run it instead of editing"
             % site_id,
             "",
             "# the hub (hub.mqtt.username): its site's device topics, commands, its own",
             "# availability, Home Assistant discovery and its upstream topics",
             "user %s" % hub_user]
    lines += ["topic %s %s" % (access, t)
              for access, t in hub_topics(site_id, ha_prefix, upstream_prefix)]
    if home_assistant:
        lines += ["",
                  "# Home Assistant (hub.home_assistant): reads what the hub's discovery publishes",
                  "user %s" % HOME_ASSISTANT_USER]
        lines += ["topic %s %s" % (access, t)
                  for access, t in home_assistant_topics(site_id, ha_prefix)]
    for reader in readers:
        lines += ["",
                  "# visitor reader %s (hub/visitors/readers.py): its scans and plates" % reader,
                  "user %s" % reader,
                  "topic write anju/%s/%s/visitor" % (site_id, reader)]
    lines += ["",
              "# every device (user name = device id): publish its own frames, state,",
              "# availability and acks; read its own commands; nothing else",
              "# (device ids 'hub', 'hub-*' and 'anju-*' are refused by the site parser)"]
    lines += ["pattern write anju/%s/%%u/%s" % (site_id, leaf) for leaf in DEVICE_PUBLISHES]
    lines += ["pattern read anju/%s/%%u/%s" % (site_id, leaf) for leaf in DEVICE_SUBSCRIBES]
    lines += ["",
              "# every responder (user name = responder id, never a device id): its own position",
              "pattern write anju/%s/responders/%%u/position" % site_id]
    return "\n".join(lines) + "\n"


def hash_password(password, salt, iterations=ITERATIONS):
    """One password in Mosquitto 2's `$7$` format: PBKDF2-HMAC-SHA512."""
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return "$7$%d$%s$%s" % (iterations, base64.b64encode(salt).decode(),
                            base64.b64encode(digest).decode())


def hash_matches(encoded, password):
    """Whether a `$7$` hash is that of `password` (False for any other format)."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    try:
        iterations = int(parts[2])
        salt, digest = base64.b64decode(parts[3]), base64.b64decode(parts[4])
    except ValueError:
        return False
    mine = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(mine, digest)


def passwd_text(passwords, earlier_hashes, new_salt):
    """The password file: a hash line per user, sorted; a user's earlier hash
    line is kept when it still matches the password (so a re-run writes the
    same bytes)."""
    lines = []
    for user in sorted(passwords):
        old = earlier_hashes.get(user)
        if old is not None and hash_matches(old, passwords[user]):
            lines.append("%s:%s" % (user, old))
        else:
            lines.append("%s:%s" % (user, hash_password(passwords[user], new_salt())))
    return "\n".join(lines) + "\n"


def plan_passwords(users, earlier, rotate, new_password):
    """{user: password} for `users`: the earlier password unless the user is
    in `rotate` (or `rotate` is True), a new one for a new user. Accounts not
    in `users` are left out."""
    out = {}
    for user in users:
        keep = earlier.get(user)
        if keep is None or rotate is True or user in rotate:
            keep = new_password()
        out[user] = keep
    return out


def conf_text(site_id, install_dir, listen, persistence_dir=None, tls=None):
    """mosquitto.conf. `listen` is (address or None, port); `install_dir` is
    where anju.passwd and anju.acl will be read from; `tls` {cafile, certfile,
    keyfile, port} adds a TLS listener that asks for client certificates
    (`anju certs`) and takes their common name as the user name."""
    host, port = listen
    lines = ["# generated by `anju broker config` for site %s; re-run it instead of editing" % site_id,
             "per_listener_settings false",
             "allow_anonymous false",
             "password_file %s" % (Path(install_dir) / "anju.passwd"),
             "acl_file %s" % (Path(install_dir) / "anju.acl"),
             "",
             "listener %d%s" % (port, " " + host if host else "")]
    if tls is not None:
        lines += ["",
                  "# TLS with client certificates: the certificate's common name is the user",
                  "listener %d%s" % (tls["port"], " " + host if host else ""),
                  "cafile %s" % tls["cafile"],
                  "certfile %s" % tls["certfile"],
                  "keyfile %s" % tls["keyfile"],
                  "require_certificate true",
                  "use_identity_as_username true"]
    lines += ["",
              "# queued QoS 1 frames for the hub survive a broker restart",
              "persistence true",
              "autosave_interval 30"]
    if persistence_dir is not None:
        lines.append("persistence_location %s/" % str(persistence_dir).rstrip("/"))
    lines += ["# never drop QoS 1 frames queued for the hub while it restarts (the default",
              "# limit of 1000 discards frames the devices were told had arrived), and let",
              "# the hub have enough in flight to commit frames in batches",
              "max_queued_messages 0",
              "max_inflight_messages 1000"]
    return "\n".join(lines) + "\n"


def render(site_id, devices, earlier_passwords, earlier_hashes, rotate, *, new_password,
           new_salt, install_dir, listen, persistence_dir=None, tls=None,
           ha_prefix="homeassistant", upstream_prefix="anju/upstream", home_assistant=False,
           readers=()):
    """{file name: (text, mode)} of the whole directory, and the passwords."""
    hub_user = hub_username(site_id)
    users = [hub_user] + ([HOME_ASSISTANT_USER] if home_assistant else []) + list(devices)
    passwords = plan_passwords(users, earlier_passwords, rotate, new_password)
    # written in this order: passwords.json first, so a run cut short is
    # completed by the next one with the same passwords
    files = {
        "passwords.json": (json.dumps({"site": site_id, "passwords": passwords}, indent=2,
                                      sort_keys=True) + "\n", SECRET),
        "hub.password": (passwords[hub_user] + "\n", SECRET),
        "anju.passwd": (passwd_text(passwords, earlier_hashes, new_salt), SECRET),
        "anju.acl": (acl_text(site_id, hub_user, ha_prefix, upstream_prefix, home_assistant,
                              readers), PUBLIC),
        "mosquitto.conf": (conf_text(site_id, install_dir, listen, persistence_dir, tls), PUBLIC),
    }
    return files, passwords


def site_topics(site):
    """{ha_prefix, upstream_prefix, home_assistant} from the site's hub section
    (validated by `anju config check`)."""
    hubcfg = site.hub or {}
    ha = hubcfg.get("home_assistant") or {}
    up = hubcfg.get("upstream") or {}
    return {"ha_prefix": ha.get("discovery_prefix", "homeassistant"),
            "upstream_prefix": up.get("topic_prefix", "anju/upstream"),
            "home_assistant": bool(ha.get("enabled", False))}


# ---- the shell: reading what is there, writing the directory ------------------------
def new_password():
    return secrets.token_urlsafe(PASSWORD_BYTES)


def new_salt():
    return os.urandom(SALT_BYTES)


def read_passwords(out, site_id=None):
    """{user: password} from an earlier run in `out` ({} when there was none);
    BrokerConfigError when that run was for another site than `site_id`."""
    path = Path(out) / "passwords.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise BrokerConfigError("cannot read %s: %s" % (path, exc)) from exc
    pw = doc.get("passwords") if isinstance(doc, dict) else None
    if not isinstance(pw, dict) or not all(isinstance(v, str) and v for v in pw.values()):
        raise BrokerConfigError("%s: expected {\"passwords\": {user: password}}" % path)
    if site_id is not None and doc.get("site") != site_id:
        raise BrokerConfigError("%s holds the broker configuration of site '%s', not '%s'; "
                                "choose another --out" % (Path(out), doc.get("site"), site_id))
    return pw


def read_hashes(out):
    path = Path(out) / "anju.passwd"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise BrokerConfigError("cannot read %s: %s" % (path, exc)) from exc
    hashes = {}
    for line in text.splitlines():
        user, sep, encoded = line.partition(":")
        if sep:
            hashes[user] = encoded
    return hashes


def write_files(out, files):
    """Write each file through a temporary file and a rename, with its mode
    from the start (a secret is never readable by others, not even briefly).
    Everything is rendered before the first write, so bad input changes nothing."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (text, mode) in files.items():
        path = out / name
        tmp = out / (".%s.tmp" % name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        written.append(path)
    return written


def generate(site, out, *, listen=(None, 1883), install_dir=None, rotate=(),
             persistence_dir=None, tls=None, extra_devices=()):
    """Make (or refresh) the directory `out` for `site`; the paths written and
    the passwords. `install_dir` (default `out`) is where Mosquitto will read
    the password and ACL files. `extra_devices` are accounts for ids that are
    not devices of the site (the simulator's stand-in for an account left on
    the broker after its device was removed)."""
    out = Path(out)
    topics = site_topics(site)
    if rotate is not True:
        accounts = (set(broker_devices(site)) | set(broker_responders(site))
                    | set(broker_readers(site)) | {hub_username(site.site_id)})
        if topics["home_assistant"]:
            accounts.add(HOME_ASSISTANT_USER)
        unknown = set(rotate) - accounts
        if unknown:
            raise BrokerConfigError("--rotate: no broker account %s in site %s (accounts: the "
                                    "hub %s and the devices with transport mqtt)"
                                    % (", ".join(sorted(unknown)), site.site_id,
                                       hub_username(site.site_id)))
    files, passwords = render(
        site.site_id, broker_devices(site) + broker_responders(site) + broker_readers(site)
        + list(extra_devices),
        read_passwords(out, site.site_id),
        read_hashes(out), rotate if rotate is True else set(rotate),
        new_password=new_password, new_salt=new_salt,
        install_dir=install_dir if install_dir is not None else out.resolve(),
        listen=listen, persistence_dir=persistence_dir, tls=tls, readers=broker_readers(site),
        **topics)
    return write_files(out, files), passwords


# ---- `anju broker ...` -------------------------------------------------------------
def _load_site(args):
    from hub.config import site as config
    if args.db or args.kek:
        if not (args.db and args.kek):
            raise BrokerConfigError("--db and --kek go together")
        from hub.clock import SystemClock
        from hub.registry.db import Registry
        reg = Registry.open(args.db, args.kek, SystemClock())
        try:
            site = reg.site()
        finally:
            reg.close()
        if args.site:
            site.hub = config.load_site(args.site).hub
        return site
    if not args.site:
        raise BrokerConfigError("give the site file (SITE.yaml), or --db and --kek for a registry")
    return config.load_site(args.site)


def _listen(value, default_port):
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "", value
    try:
        port = int(port)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise BrokerConfigError("'%s' is not [ADDRESS:]PORT with a port 1..65535" % value)
    return host or None, port or default_port


def cmd_config(args):
    import sys
    from hub import ConfigError, HubError
    try:
        site = _load_site(args)
        tls = None
        if args.tls_port is not None:
            if not (args.cafile and args.certfile and args.keyfile):
                raise BrokerConfigError("--tls-port needs --cafile, --certfile and --keyfile "
                                        "(`anju certs ca` and `anju certs server`)")
            tls = {"port": args.tls_port, "cafile": args.cafile, "certfile": args.certfile,
                   "keyfile": args.keyfile}
        rotate = True if args.rotate_all else tuple(args.rotate or ())
        paths, passwords = generate(site, args.out, listen=_listen(args.listen, 1883),
                                    install_dir=args.install_dir, rotate=rotate,
                                    persistence_dir=args.persistence_dir, tls=tls)
    except (BrokerConfigError, ConfigError, HubError) as exc:
        print("anju broker: error: %s" % exc, file=sys.stderr)
        return 2
    what = {"mosquitto.conf": "Mosquitto configuration (install as /etc/mosquitto/conf.d/anju.conf)",
            "anju.acl": "ACL: each device confined to its own topics",
            "anju.passwd": "password file (hashed), mode 0600",
            "passwords.json": "clear-text passwords for the devices' config.json, mode 0600",
            "hub.password": "the hub's password (hub.mqtt.password_file), mode 0600"}
    for path in paths:
        print("wrote %s: %s" % (path, what[path.name]))
    devices = len(passwords) - 1 - (HOME_ASSISTANT_USER in passwords)
    print("site %s: %d broker account(s): %s (the hub), %d device(s)%s"
          % (site.site_id, len(passwords), hub_username(site.site_id), devices,
             ", %s" % HOME_ASSISTANT_USER if HOME_ASSISTANT_USER in passwords else ""))
    return 0


def cmd_password(args):
    """One account's password, printed because it was asked for (to put into
    a device's config.json)."""
    import sys
    try:
        passwords = read_passwords(args.out)
    except BrokerConfigError as exc:
        print("anju broker: error: %s" % exc, file=sys.stderr)
        return 2
    if args.user not in passwords:
        print("anju broker: error: no account '%s' in %s (run `anju broker config` first)"
              % (args.user, Path(args.out) / "passwords.json"), file=sys.stderr)
        return 2
    print(passwords[args.user])
    return 0


def register(sub) -> None:
    b = sub.add_parser("broker", help="the site broker's Mosquitto configuration").add_subparsers(
        dest="broker_command", required=True)
    p = b.add_parser("config", help="write mosquitto.conf, password file and ACL for the site")
    p.add_argument("site", nargs="?", help="site file (SITE.yaml); with --db: its hub section")
    p.add_argument("--db", help="the hub's database, for a site kept in the registry")
    p.add_argument("--kek", help="the registry's KEK file (with --db)")
    p.add_argument("--out", default="var/broker", help="output directory (default var/broker)")
    p.add_argument("--install-dir", help="where Mosquitto will read anju.passwd and anju.acl "
                   "(default: the output directory), e.g. /etc/mosquitto/anju")
    p.add_argument("--listen", default="1883", help="[ADDRESS:]PORT of the plain listener "
                   "(default 1883 on every address)")
    p.add_argument("--persistence-dir", help="persistence_location (default: Mosquitto's; "
                   "Debian sets /var/lib/mosquitto/)")
    p.add_argument("--tls-port", type=int, help="also a TLS listener with client certificates")
    p.add_argument("--cafile")
    p.add_argument("--certfile")
    p.add_argument("--keyfile")
    p.add_argument("--rotate", action="append", metavar="USER",
                   help="new password for this account (repeatable; a device id or hub-<site>)")
    p.add_argument("--rotate-all", action="store_true", help="new passwords for every account")
    p.set_defaults(func=cmd_config)
    p = b.add_parser("password", help="print one account's password (for a device's config.json)")
    p.add_argument("user")
    p.add_argument("--out", default="var/broker", help="the directory `broker config` wrote")
    p.set_defaults(func=cmd_password)
