"""Site configuration: site → buildings → flats → residents, and devices.

Loaded from YAML (docs/deploy-pi.md §3) and validated with errors that name
the file, line and key. A key that no level knows (`KEYS`) is an error, never
ignored: a misspelt `lives_alon` must not leave a safety rule on its default.
Device keys are loaded into memory only; they never appear in logs or in `repr`.
"""
import datetime
import re
import zoneinfo
from pathlib import Path

from hub import ConfigError
from hub.config import plan as site_plan
from hub.config import yamlfile
from hub.config.values import parse_duration, refuse_unknown_keys
from hub.rules import settings as rule_settings
from hub.visitors import settings as visitor_settings

IDENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
DEVICE_KINDS = ("door_sensor", "smart_lock", "smoke_sensor")
TRANSPORTS = ("mqtt", "ble")
MAC = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
ROLES = ("owner", "tenant", "family", "visitor")
CREDENTIAL = re.compile(r"^[A-Za-z0-9:._-]{1,16}$")  # what a lock reports (docs/protocol.md)
# A device id is its topic level (anju/<site>/<id>/...), its broker user name
# and its MQTT client id (docs/broker.md): `hub` is the hub's topic level,
# `hub-<site>` its user name and `anju-hub-<site>...` its client ids, so a
# device with one of these ids could publish as the hub or take over its
# session. IDENT already keeps out '/', '+', '#' and ':'.
RESERVED_DEVICE_IDS = ("hub",)
RESERVED_DEVICE_PREFIXES = ("hub-", "anju-")

# The keys each mapping of a site file may hold; anything else is an error.
# `hub`, `face` and `rules` are checked inside by their own validators
# (hub/config/preflight.py, hub/face/config.py, hub/rules/settings.py). A flat's and a
# device's `name` and a resident's `elderly` are not read by the hub; the
# registry keeps them (hub/registry/db.py, hub/registry/csvfile.py).
KEYS = {
    "top": ("site", "defaults", "rules", "buildings", "devices", "hub", "face", "responders",
            "visitors"),
    "site": ("id", "name", "timezone", "plan"),
    "defaults": ("inactivity",),
    "building": ("id", "name", "rules", "flats", "plan", "outline"),
    "flat": ("id", "name", "inactivity", "rules", "residents", "floor"),
    "resident": ("id", "name", "phone", "lives_alone", "elderly", "role", "registered", "from",
                 "until", "credentials"),
    "device": ("id", "name", "kind", "board", "flat", "entrance", "transport", "heartbeat",
               "ble_address", "frame_key", "bind_key"),
}


class Resident:
    __slots__ = ("id", "name", "phone", "lives_alone", "flat", "role", "registered",
                 "valid_from", "valid_until", "credentials")

    def __init__(self, id, name, phone, lives_alone, flat, role="owner", registered=True,
                 valid_from=None, valid_until=None, credentials=()):
        self.id, self.name, self.phone, self.lives_alone, self.flat = id, name, phone, lives_alone, flat
        self.role = role
        self.registered = registered
        self.valid_from = valid_from    # datetime.date or None, first day (site time zone)
        self.valid_until = valid_until  # datetime.date or None, last day, inclusive
        self.credentials = tuple(credentials)

    def public(self):
        return {"id": self.id, "name": self.name}

    def registered_on(self, day):
        """Whether the resident is registered on local date `day`."""
        if not self.registered:
            return False
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_until is None or day <= self.valid_until


class Flat:
    def __init__(self, id, building, inactivity_s, rules=None):
        self.id = id
        self.building = building
        self.floor = None  # from the site file's `floor`, or its id (hub/config/plan.py)
        self.inactivity_s = inactivity_s
        self.rules = rules or {}
        self.residents = []

    @property
    def lives_alone(self):
        return any(r.lives_alone for r in self.residents)

    def watched_resident(self):
        for r in self.residents:
            if r.lives_alone:
                return r
        return None


class Device:
    def __init__(self, id, kind, board, flat, transport, frame_key, bind_key, ble_address,
                 heartbeat_s, entrance=None):
        self.id = id
        self.entrance = entrance  # smart locks at a building entrance instead of a flat
        self.kind = kind
        self.board = board
        self.flat = flat
        self.transport = transport
        self.frame_key = frame_key
        self.bind_key = bind_key
        self.ble_address = ble_address
        self.heartbeat_s = heartbeat_s

    def __repr__(self):
        return "Device(%r, %s, flat=%s)" % (self.id, self.kind, self.flat)


class SiteConfig:
    def __init__(self):
        self.site_id = None
        self.site_name = None
        self.timezone = "UTC"  # IANA name; quiet hours and validity dates are local
        self.buildings = {}
        self.flats = {}
        self.residents = {}
        self.devices = {}
        self.by_address = {}
        self.hub = {}
        self.rules = {}
        self.building_rules = {}
        self.visitors = None  # hub.visitors.settings.VisitorSettings when `visitors:` is given
        self.face = None  # the raw `face:` mapping; validated by hub.face.config when present
        # the site plan (hub/config/plan.py): (width, height) or None, outlines by
        # building (only those the file gives), the responders by id
        self.plan_size = None
        self.outlines = {}
        self.responders = {}

    def device_flat(self, device_id):
        d = self.devices.get(device_id)
        return self.flats.get(d.flat) if d else None


def _get(node, key, where, kind, required=True, default=None):
    if key not in node:
        if required:
            raise ConfigError("%s: missing key '%s'" % (where, key))
        return default
    v = node[key]
    if kind is not None and not isinstance(v, kind) or isinstance(v, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        at = node.where(key) if hasattr(node, "where") else where
        raise ConfigError("%s: key '%s': expected %s, got %s" % (at, key, names, type(v).__name__))
    return v


def _ident(node, key, where):
    v = _get(node, key, where, (str, int))
    v = str(v)
    if not IDENT.match(v):
        raise ConfigError("%s: key '%s': '%s' must match [a-z0-9][a-z0-9_-]{0,47}"
                          % (node.where(key), key, v))
    return v


def reserved_device_id(did):
    """Why `did` cannot be a device id (it would be the hub's topic level,
    user name or client id), or None when it can."""
    if did in RESERVED_DEVICE_IDS:
        return "anju/<site>/%s/... are the hub's own topics" % did
    for prefix in RESERVED_DEVICE_PREFIXES:
        if did.startswith(prefix):
            return "ids starting with '%s' are the hub's broker identities" % prefix
    return None


def _known(node, level, extra_keys):
    refuse_unknown_keys(node, KEYS[level] + tuple((extra_keys or {}).get(level, ())),
                        "at the top level" if level == "top" else "in " + level)


def _hexkey(node, key, size, where, required):
    v = _get(node, key, where, str, required=required)
    if v is None:
        return None
    try:
        raw = bytes.fromhex(v)
    except ValueError as exc:
        raise ConfigError("%s: key '%s': not hex" % (node.where(key), key)) from exc
    if len(raw) != size:
        raise ConfigError("%s: key '%s': must be %d bytes (%d hex digits)"
                          % (node.where(key), key, size, size * 2))
    return raw


def _list(node, key, where):
    v = _get(node, key, where, list, required=False, default=[])
    for item in v:
        if not isinstance(item, dict):
            raise ConfigError("%s: key '%s': every entry must be a mapping" % (node.where(key), key))
    return v


def parse_site(doc, require_keys=True, extra_keys=None):
    """Validate a parsed YAML document; return SiteConfig. `extra_keys`
    ({level: keys}, levels as in `KEYS`) admits more keys, e.g. a scenario's
    `timeline:` (simulator/scenario.py); the caller validates those."""
    if not isinstance(doc, dict):
        raise ConfigError("%s: the file must be a mapping with 'site', 'buildings' and 'devices'"
                          % getattr(doc, "file", "<config>"))
    cfg = SiteConfig()
    top = doc.where()
    _known(doc, "top", extra_keys)
    site = _get(doc, "site", top, dict)
    _known(site, "site", extra_keys)
    cfg.site_id = _ident(site, "id", site.where())
    cfg.site_name = str(site.get("name", cfg.site_id))
    cfg.timezone = _timezone(site, site.where())
    cfg.plan_size = site_plan.parse_site_plan(site)
    for section in ("hub", "defaults", "face"):
        if section in doc and doc[section] is not None and not isinstance(doc[section], dict):
            raise ConfigError("%s: key '%s': must be a mapping of keys to values"
                              % (doc.where(section), section))
    cfg.hub = doc.get("hub") or {}
    cfg.face = doc.get("face")
    # the visitor service (hub/visitors/settings.py); None = not enabled
    cfg.visitors = (visitor_settings.parse(doc.get("visitors") or {},
                                           doc.where("visitors") + ": visitors")
                    if "visitors" in doc else None)
    defaults = doc.get("defaults") or {}
    _known(defaults, "defaults", extra_keys)
    cfg.rules = rule_settings.parse(doc.get("rules"), doc.where("rules"))
    default_inactivity = parse_duration(
        defaults.get("inactivity", "12h"),
        defaults.where("inactivity") if "inactivity" in defaults else top, "inactivity")
    for b in _list(doc, "buildings", top):
        _known(b, "building", extra_keys)
        bid = _ident(b, "id", b.where())
        if bid in cfg.buildings:
            raise ConfigError("%s: duplicate building id '%s'" % (b.where("id"), bid))
        cfg.buildings[bid] = str(b.get("name", bid))
        cfg.building_rules[bid] = rule_settings.parse(b.get("rules"), b.where("rules"))
        shape = site_plan.parse_building_shape(b, cfg.plan_size or site_plan.PLAN_SIZE)
        if shape is not None:
            cfg.outlines[bid] = shape
        for f in _list(b, "flats", b.where()):
            _known(f, "flat", extra_keys)
            fid = _ident(f, "id", f.where())
            if fid in cfg.flats:
                raise ConfigError("%s: duplicate flat id '%s'" % (f.where("id"), fid))
            flat_rules = rule_settings.parse(f.get("rules"), f.where("rules"))
            if "inactivity" in f:
                inact = parse_duration(f["inactivity"], f.where("inactivity"), "inactivity")
            else:
                inact = default_inactivity
                for layer in (cfg.rules, cfg.building_rules[bid], flat_rules):
                    inact = layer.get("inactivity", {}).get("after", inact)
            flat = Flat(fid, bid, inact, flat_rules)
            flat.floor = site_plan.parse_floor(f, fid)
            cfg.flats[fid] = flat
            for r in _list(f, "residents", f.where()):
                _known(r, "resident", extra_keys)
                rid = _ident(r, "id", r.where())
                if rid in cfg.residents:
                    raise ConfigError("%s: duplicate resident id '%s'" % (r.where("id"), rid))
                res = Resident(rid, str(_get(r, "name", r.where(), str)),
                               str(r.get("phone", "")),
                               bool(_get(r, "lives_alone", r.where(), bool, required=False,
                                         default=False)), fid, **_registration(r))
                flat.residents.append(res)
                cfg.residents[rid] = res
    for d in _list(doc, "devices", top):
        _known(d, "device", extra_keys)
        did = _ident(d, "id", d.where())
        reserved = reserved_device_id(did)
        if reserved:
            raise ConfigError("%s: key 'id': device id '%s' is reserved: %s"
                              % (d.where("id"), did, reserved))
        if did in cfg.devices:
            raise ConfigError("%s: duplicate device id '%s'" % (d.where("id"), did))
        kind = _get(d, "kind", d.where(), str)
        if kind not in DEVICE_KINDS:
            raise ConfigError("%s: key 'kind': unknown device kind '%s'; allowed: %s"
                              % (d.where("kind"), kind, ", ".join(DEVICE_KINDS)))
        transport = _get(d, "transport", d.where(), str)
        if transport not in TRANSPORTS:
            raise ConfigError("%s: key 'transport': '%s'; allowed: %s"
                              % (d.where("transport"), transport, ", ".join(TRANSPORTS)))
        flat, entrance = _placement(d, kind, cfg)
        board = _get(d, "board", d.where(), str)
        frame_key = _hexkey(d, "frame_key", 32, d.where(), require_keys)
        bind_key = _hexkey(d, "bind_key", 16, d.where(), require_keys and transport == "ble")
        addr = _get(d, "ble_address", d.where(), str, required=transport == "ble" and require_keys)
        if addr is not None:
            addr = addr.upper()
            if not MAC.match(addr):
                raise ConfigError("%s: key 'ble_address': '%s' is not a MAC like A4:C1:38:00:00:01"
                                  % (d.where("ble_address"), addr))
            if addr in cfg.by_address:
                raise ConfigError("%s: key 'ble_address': %s is already used by %s"
                                  % (d.where("ble_address"), addr, cfg.by_address[addr]))
        hb = parse_duration(d.get("heartbeat", "1h"), d.where("heartbeat"), "heartbeat")
        dev = Device(did, kind, board, flat, transport, frame_key, bind_key, addr, hb, entrance)
        cfg.devices[did] = dev
        if addr is not None:
            cfg.by_address[addr] = did
    for reader in (cfg.visitors.readers.values() if cfg.visitors is not None else ()):
        # a reader's id is its broker user name and topic level, like a device's
        clash = ("device id '%s'" % reader.id if reader.id in cfg.devices
                 else reserved_device_id(reader.id))
        if clash:
            raise ConfigError("%s: visitors.readers: reader id '%s' is taken: %s"
                              % (doc.where("visitors"), reader.id, clash))
    cfg.responders = site_plan.parse_responders(doc)
    for r in doc.get("responders") or []:
        # a responder's id is its broker user name (docs/broker.md): never a device's
        clash = ("device id '%s'" % r["id"] if r["id"] in cfg.devices
                 else reserved_device_id(r["id"]))
        if clash:
            raise ConfigError("%s: key 'id': responder id '%s' is taken: %s"
                              % (r.where("id"), r["id"], clash))
    return cfg


def _timezone(site, where):
    name = _get(site, "timezone", where, str, required=False, default="UTC")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError("%s: key 'timezone': '%s' is not an IANA time zone like Asia/Shanghai"
                          % (site.where("timezone"), name)) from exc
    return name


def _date(node, key):
    v = node.get(key)
    if v is None:
        return None
    if isinstance(v, datetime.date) and not isinstance(v, datetime.datetime):
        return v
    try:
        return datetime.date.fromisoformat(str(v))
    except ValueError as exc:
        raise ConfigError("%s: key '%s': '%s' is not a date like 2026-01-31"
                          % (node.where(key), key, v)) from exc


def _registration(r):
    """A resident's role, registration, validity dates and lock credentials."""
    where = r.where()
    role = _get(r, "role", where, str, required=False, default="owner")
    if role not in ROLES:
        raise ConfigError("%s: key 'role': '%s'; allowed: %s" % (r.where("role"), role,
                                                                 ", ".join(ROLES)))
    registered = _get(r, "registered", where, bool, required=False, default=True)
    _get(r, "elderly", where, bool, required=False)  # kept in the document, not used yet
    valid_from, valid_until = _date(r, "from"), _date(r, "until")
    if valid_from and valid_until and valid_until < valid_from:
        raise ConfigError("%s: key 'until': %s is before 'from' %s"
                          % (r.where("until"), valid_until, valid_from))
    creds = _get(r, "credentials", where, list, required=False, default=[])
    for c in creds:
        if not isinstance(c, str) or not CREDENTIAL.match(c):
            raise ConfigError("%s: key 'credentials': '%s' must match [A-Za-z0-9:._-]{1,16}"
                              % (r.where("credentials"), c))
    return {"role": role, "registered": registered, "valid_from": valid_from,
            "valid_until": valid_until, "credentials": creds}


def _placement(d, kind, cfg):
    """(flat, entrance): every device is in a flat; a smart lock may be at an entrance."""
    if "entrance" in d:
        if kind != "smart_lock":
            raise ConfigError("%s: key 'entrance': only a smart_lock stands at an entrance; "
                              "a %s belongs to a flat" % (d.where("entrance"), kind))
        if "flat" in d:
            raise ConfigError("%s: key 'entrance': a lock is at a flat or at an entrance, "
                              "not both" % d.where("entrance"))
        return None, _ident(d, "entrance", d.where())
    flat = str(_get(d, "flat", d.where(), (str, int)))
    if flat not in cfg.flats:
        raise ConfigError("%s: key 'flat': no flat '%s' in this site" % (d.where("flat"), flat))
    return flat, None


def load_site(path):
    return parse_site(yamlfile.load(Path(path)))
