"""Scenario files (docs/scenarios.md): load and validate. Pure.

A scenario is a site (buildings, flats, residents, devices), a timeline of
physical events and the alarms that must and must not follow. Every error names
the file, the line and the key; nothing is started before the whole file is
valid.
"""
import hashlib

from hub import ConfigError
from hub.config import site as hubconfig
from hub.config import yamlfile
from hub.config.values import parse_duration
from simulator import scenario_readers as rdr
from simulator.clock import START as CLOCK_START  # a visit's window is checked against it

ACTIONS = {
    "open": "door opened", "close": "door closed",
    "case_open": "case opened", "case_close": "case closed",
    "battery": "battery voltage set", "remove": "device removed (power lost)",
    "insert": "device powered on",
    "flash_cut": "power cut armed at a flash write", "link_down": "Wi-Fi link lost", "link_up": "Wi-Fi link back",
    "broker": "the broker, as this device meets it",
    "inject": "frame injected on the air",
    "smoke": "smoke in the chamber", "dust": "dust settles in the chamber",
    "hush": "hush button pressed", "test_button": "test button pressed",
    "card": "card held to the reader", "pin": "PIN typed on the keypad",
    "finger": "finger on the fingerprint sensor", "key": "mechanical key turned",
    "handle": "inside handle turned", "jam": "bolt obstructed",
    "face": "entrance camera matched a person (the hub unlocks)",
    "phone": "phone unlocks over BLE",
    "tenant_add": "tenant's credential registered at the hub",
    "tenant_remove": "tenant's credential removed at the hub",
    "visitor_code": "the hub makes a visitor code for the lock",
    "visitor": "visitor code typed on the keypad",
    "visitor_revoke": "the hub revokes a visitor code",
    "visit": "a visit registered at the hub's visitor service",
    "visit_decide": "the visit decided at the hub",
    "visit_watch": "put on the visitor watch list",
    "plate": "a number plate at the barrier's camera",
    "qr": "a QR held to the gate reader",
    "reader_inject": "a bad message at a gate reader",
    "hub_restart": "hub restarted",
    "upstream_down": "upstream broker stopped",
    "upstream_up": "upstream broker started",
    "position": "responder reports its position",
    "walk": "responder walks",
}
SITE_ACTIONS = ("hub_restart", "upstream_down", "upstream_up")
# the hub's visitor service (docs/visitors.md): site steps, by an account allowed to take them
VISIT_ACTIONS = ("visit", "visit_decide", "visit_watch")
VISIT_KEYS = ("name", "flat", "by", "visitor", "phone", "id_number", "plate", "purpose", "from",
              "until", "entry", "entrances", "flat_lock")
VISIT_DECISIONS = ("approve", "refuse", "revoke")
VISIT_STATES = ("requested", "approved", "flagged", "refused", "revoked", "expired")
# a responder on the plan (docs/console.md, "Responders"): its phone reports positions
RESPONDER_ACTIONS = ("position", "walk")
WALK_EVERY_S = 60.0
LOCK_ACTIONS = ("card", "pin", "finger", "key", "handle", "jam", "tenant_add", "tenant_remove",
                "face", "phone", "visitor_code", "visitor", "visitor_revoke")
CREDENTIAL_KINDS = ("card", "pin", "finger", "phone")
# what a tenant step may ask for (hub/locks/book.py USER_TYPES)
USER_TYPES = ("unrestricted", "week_day_schedule", "year_day_window", "one_time", "expiring",
              "duress", "programming")
BROKER_STATES = ("ok", "refuse", "silent", "down")  # simulator/fault_broker.py
INJECT_KINDS = ("forged", "replayed", "tampered", "truncated", "oversized", "unknown_device",
                "wrong_key", "forged_command", "copied_command")
EXPECT_KINDS = ("alarm", "no_alarm", "delivered", "rejected", "siren", "silent", "access", "bolt",
                "visit", "visit_record", "gate", "visitor_log", "watchdog")
ACCESS_FILTERS = {
    "outcome": ("unlocked", "denied"),
    "method": ("card", "pin", "phone_ble", "face", "mechanical_key", "fingerprint", "inside",
               "remote", "visitor"),
    "reason": ("ok", "unknown_credential", "outside_schedule", "expired", "not_yet_valid",
               "disabled", "locked_out", "low_battery", "used", "jammed", "revoked", "no_clock",
               "list_full", "list_lost"),
}
BOLT_STATES = ("unknown", "locked", "unlocked", "locking", "unlocking", "jammed")
ALARM_TYPES = ("inactivity", "watchlist_face", "smoke", "door_left_open", "offline",
               "low_battery", "tamper", "clock_skew", "possible_attack",
               "unregistered_occupant", "forced_entry", "duress", "lock_wrong_code",
               "lock_jammed", "door_ajar", "visitor_watchlist")
REJECT_REASONS = ("truncated", "oversized", "bad_version", "unknown_device", "bad_tag", "replayed",
                  "duplicate", "bad_body", "unknown_type", "not_encrypted")
EVENT_TYPES = ("boot", "door", "tamper", "battery", "heartbeat", "state", "access", "forced",
               "lock_state", "lock_alarm", "cmd_result", "local_change")
# what a scenario adds to the site file's keys (hub.config.KEYS): read below,
# except `description`, which is for the reader (docs/scenarios.md)
SITE_EXTRA_KEYS = {"top": ("name", "description", "timeline", "expect"),
                   "device": ("door", "case", "battery_mv", "smoke", "bolt", "lock", "fingers")}


def _count(e, where, kind):
    v = e.get("count")
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ConfigError("%s: '%s' key 'count': expected a whole number >= 0, got %r"
                          % (where, kind, v))
    return v


class Step:
    __slots__ = ("at", "device", "action", "value", "line")

    def __init__(self, at, device, action, value, line):
        self.at, self.device, self.action, self.value, self.line = at, device, action, value, line


class Expectation:
    def __init__(self, kind, spec, line):
        self.kind = kind
        self.spec = spec
        self.line = line


class Scenario:
    def __init__(self):
        self.name = ""
        self.file = ""
        self.site = None
        self.device_specs = {}
        self.steps = []
        self.expectations = []
        self.end = 0.0
        self.visitor_codes = {}  # (lock, name) -> (from, until, one_time), visitor_code steps
        self.visits = {}  # name -> {"flat", "locks", "id_number"}, visit steps
        self.reader_reports = {}  # reader id -> plate and qr steps so far


def device_keys(site_id, device_id):
    """Deterministic per-device keys and MAC for a simulated community (never for real devices)."""
    seed = ("anju-sim/%s/%s" % (site_id, device_id)).encode()
    frame_key = hashlib.sha256(seed + b"/frame").digest()
    bind_key = hashlib.sha256(seed + b"/bind").digest()[:16]
    mac = bytes([0xA4, 0xC1, 0x38]) + hashlib.sha256(seed + b"/mac").digest()[:3]
    return frame_key, bind_key, mac


def _dur(node, key, required=True):
    if key not in node:
        if required:
            raise ConfigError("%s: missing key '%s'" % (node.where(), key))
        return None
    return parse_duration(node[key], node.where(key), key, allow_zero=True)


def _window(node, key, where):
    v = node.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or len(v) != 2:
        raise ConfigError("%s: key '%s': expected [from, to], like [12h, 12h5m]" % (where, key))
    lo = parse_duration(v[0], where, key, allow_zero=True)
    hi = parse_duration(v[1], where, key)
    if hi < lo:
        raise ConfigError("%s: key '%s': the window ends before it starts" % (where, key))
    return lo, hi


NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:._-")


def _name(v, where, key):
    """A card's or a finger's name in a scenario (its UID or template comes
    from the name: simulator.scenario.card_uid)."""
    if not isinstance(v, str) or not 1 <= len(v) <= 32 or any(c not in NAME_CHARS for c in v):
        raise ConfigError("%s: key '%s': a name of 1-32 characters A-Z a-z 0-9 : . _ -, got %r"
                          % (where, key, v))
    return v


def max_battery_mv(kind):
    """A sensor's 2xAA or coin cell, a lock's 4xAA (docs/smart_lock.md)."""
    return 12000 if kind == "smart_lock" else 5000


def _lock_options(d):
    """A smart lock's scenario keys: its bolt at the start, its settings
    (config.json `lock`, docs/smart_lock.md) and the fingers enrolled in its
    module at installation."""
    if d["kind"] != "smart_lock":
        for key in ("bolt", "lock", "fingers"):
            if key in d:
                raise ConfigError("%s: key '%s': only for a smart_lock" % (d.where(key), key))
        return {}
    bolt = d.get("bolt", "locked")
    if bolt not in ("locked", "unlocked"):
        raise ConfigError("%s: key 'bolt': '%s'; allowed: locked, unlocked" % (d.where("bolt"), bolt))
    opts = d.get("lock") or {}
    if not isinstance(opts, dict):
        raise ConfigError("%s: key 'lock': a mapping of lock settings" % d.where("lock"))
    fingers = d.get("fingers") or []
    if not isinstance(fingers, list):
        raise ConfigError("%s: key 'fingers': a list of finger names" % d.where("fingers"))
    names = [_name(f, d.where("fingers"), "fingers") for f in fingers]
    if len(set(names)) != len(names):
        raise ConfigError("%s: key 'fingers': a finger is enrolled once" % d.where("fingers"))
    return {"bolt": bolt, "lock": dict(opts), "fingers": names}


def _lock_step(action, value, where, site, dev, sc):
    if dev.kind != "smart_lock":
        raise ConfigError("%s: action '%s' is for a smart_lock, '%s' is a %s"
                          % (where, action, dev.id, dev.kind))
    if action in ("card", "finger", "face", "phone"):
        return _name(value, where, "value")
    if action == "pin":
        digits = value[1:] if isinstance(value, str) and value.startswith("*") else value
        if not isinstance(digits, str) or not digits.isdigit() or not 4 <= len(digits) <= 8:
            raise ConfigError("%s: action 'pin' needs 'value': 4-8 digits as a quoted string, "
                              "like \"1234\" (\"*1234\": programming mode)" % where)
        return value
    if action == "visitor_code":
        return _visitor_code(value, where, dev, sc)
    if action in ("visitor", "visitor_revoke"):
        if action == "visitor" and isinstance(value, dict):
            return _visit_at_lock(value, where, dev, sc)
        if action == "visitor" and isinstance(value, str) and value.isdigit():
            if len(value) != 10:
                raise ConfigError("%s: action 'visitor': typed digits are ten, like "
                                  "\"0123456789\"" % where)
            return value  # typed as they are: a code the hub never made
        name = _name(value, where, "value")
        if (dev.id, name) not in sc.visitor_codes:
            raise ConfigError("%s: action '%s': no visitor code '%s' made for %s by an earlier "
                              "visitor_code step" % (where, action, name, dev.id))
        return name
    if action == "key":
        if value not in ("locked", "unlocked"):
            raise ConfigError("%s: action 'key' needs 'value': locked or unlocked" % where)
        return value
    if action == "jam":
        return parse_duration(value if value is not None else "10s", where, "value")
    if action == "handle":
        if value is not None:
            raise ConfigError("%s: action 'handle' takes no 'value'" % where)
        return None
    # tenant_add / tenant_remove: {resident, and one of card, pin, finger}
    if not isinstance(value, dict):
        raise ConfigError("%s: action '%s' needs 'value': {resident, and one of card, pin, "
                          "finger}" % (where, action))
    unknown = sorted(set(value) - {"resident", "type", "schedule"} - set(CREDENTIAL_KINDS))
    if unknown:
        raise ConfigError("%s: action '%s': unknown key '%s'" % (where, action, unknown[0]))
    rid = value.get("resident")
    if rid not in site.residents:
        raise ConfigError("%s: action '%s': key 'resident': no resident '%s'" % (where, action, rid))
    kinds = [k for k in CREDENTIAL_KINDS if k in value]
    if len(kinds) != 1:
        raise ConfigError("%s: action '%s' needs exactly one of card, pin, finger, phone"
                          % (where, action))
    user_type = value.get("type", "unrestricted")
    if user_type not in USER_TYPES or (action == "tenant_remove" and "type" in value):
        raise ConfigError("%s: action '%s': key 'type': one of %s (tenant_add only)"
                          % (where, action, ", ".join(USER_TYPES)))
    schedule = value.get("schedule")
    if schedule is not None and (not isinstance(schedule, dict) or action != "tenant_add"):
        raise ConfigError("%s: action '%s': key 'schedule': a mapping (tenant_add only), like "
                          "{days: [mon, tue], start: \"08:00\", end: \"18:00\"}" % (where, action))
    if schedule is not None or user_type != "unrestricted":
        from hub.locks import LockError, book
        try:  # the hub's own check, so a bad schedule stops the file, not the run
            book.schedule_fields(site, site.residents[rid], user_type, schedule)
        except LockError as exc:
            raise ConfigError("%s: action '%s': %s" % (where, action, exc)) from exc
    return {"resident": rid, "type": user_type, "schedule": dict(schedule or {}),
            kinds[0]: _lock_step(kinds[0], value[kinds[0]], where, site, dev, sc)}


def _visitor_code(value, where, dev, sc):
    """{name, from, until, one_time}: `from` and `until` are offsets from the
    start of the run; the hub makes the code (hub/visitors/passcode.py) when
    the step comes, for the window it can carry inside them."""
    if not isinstance(value, dict) or set(value) - {"name", "from", "until", "one_time"} \
            or not {"name", "from", "until"} <= set(value):
        raise ConfigError("%s: action 'visitor_code' needs 'value': {name, from, until, "
                          "one_time}, like {name: guest, from: 1h, until: 3h}" % where)
    name = _name(value["name"], where, "name")
    if (dev.id, name) in sc.visitor_codes:
        raise ConfigError("%s: action 'visitor_code': a code '%s' was already made for %s"
                          % (where, name, dev.id))
    frm = parse_duration(value["from"], where, "from", allow_zero=True)
    until = parse_duration(value["until"], where, "until")
    one_time = value.get("one_time", False)
    if not isinstance(one_time, bool):
        raise ConfigError("%s: action 'visitor_code': key 'one_time': true or false" % where)
    if until <= frm:
        raise ConfigError("%s: action 'visitor_code': 'until' must be after 'from'" % where)
    sc.visitor_codes[(dev.id, name)] = (frm, until, one_time)
    return {"name": name, "from": frm, "until": until, "one_time": one_time}


def _visit_at_lock(value, where, dev, sc):
    """`visitor` with {visit: NAME}: the pass code the hub gave that visit for this lock."""
    if set(value) != {"visit"}:
        raise ConfigError("%s: action 'visitor': a visit's code is {visit: NAME}, like "
                          "{visit: guest}" % where)
    name = _name(value["visit"], where, "visit")
    visit = sc.visits.get(name)
    if visit is None:
        raise ConfigError("%s: action 'visitor': key 'visit': no visit '%s' registered by an "
                          "earlier visit step" % (where, name))
    if dev.id not in visit["locks"]:
        raise ConfigError("%s: action 'visitor': key 'visit': visit '%s' covers no entrance of "
                          "%s (its pass has codes for: %s)"
                          % (where, name, dev.id, ", ".join(visit["locks"]) or "no lock"))
    return {"visit": name}


def _role(value, where, permission, resident_ok, default):
    """`by`: `resident` (a resident token of the host flat) when `resident_ok`,
    else a role of hub/auth/roles.py that holds `permission`."""
    from hub.auth import roles
    by = value.get("by", default)
    if by == "resident" and resident_ok:
        return by
    if by not in roles.ROLES or not roles.allowed(by, permission):
        allowed = [r for r in roles.ROLES if roles.allowed(r, permission)]
        raise ConfigError("%s: key 'by': %r may not do this (permission %s); allowed: %s"
                          % (where, by, permission,
                             ", ".join((["resident"] if resident_ok else []) + allowed)))
    return by


def visit_body(value, t0=CLOCK_START):
    """A `visit` step's value -> the registration body the hub takes
    (docs/visitors.md, "A visit"), its window `from`/`until` after `t0`, the run's start."""
    body = {k: value[k] for k in ("flat", "phone", "id_number", "plate", "purpose", "entry",
                                  "entrances", "flat_lock") if k in value}
    body["name"] = value.get("visitor")
    body["valid_from"] = t0 + value["from"]
    body["valid_until"] = t0 + value["until"]
    return body


def _visit(value, where, at, site, sc):
    """{name, flat, by, visitor, phone, id_number, plate, purpose, from, until,
    entry, entrances, flat_lock}: checked by the hub's own validation
    (hub/visitors/fields.py) against the moment the step comes."""
    import datetime
    import zoneinfo
    from hub.visitors import VisitInvalid, fields
    from hub.visitors.book import entrances_of
    if not isinstance(value, dict):
        raise ConfigError("%s: action 'visit' needs 'value': {name, flat, visitor, phone, "
                          "id_number, purpose, from, until, entrances, ...}" % where)
    unknown = sorted(set(value) - set(VISIT_KEYS))
    if unknown:
        raise ConfigError("%s: action 'visit': unknown key '%s'; allowed: %s"
                          % (where, unknown[0], ", ".join(VISIT_KEYS)))
    for key in ("name", "flat", "from", "until"):
        if key not in value:
            raise ConfigError("%s: action 'visit': missing key '%s'" % (where, key))
    name = _name(value["name"], where, "name")
    if name in sc.visits:
        raise ConfigError("%s: action 'visit': key 'name': a visit '%s' was already registered"
                          % (where, name))
    by = _role(value, where, "visitors.register", True, "resident")
    v = dict(value, **{k: parse_duration(value[k], where, k, allow_zero=True)
                       for k in ("from", "until")})
    now = CLOCK_START + at
    today = datetime.datetime.fromtimestamp(
        now, zoneinfo.ZoneInfo(site.timezone or "UTC")).date()
    try:
        reg = fields.registration(visit_body(v), site.flats,
                                  entrances_of(site, site.visitors), now, today)
    except VisitInvalid as exc:
        field = {"name": "visitor", "valid_from": "from", "valid_until": "until"}.get(
            exc.field, exc.field)
        raise ConfigError("%s: action 'visit': key '%s': %s" % (where, field, exc.message)) \
            from exc
    locks = sorted(d.id for d in site.devices.values() if d.kind == "smart_lock" and (
        getattr(d, "entrance", None) in reg["entrances"]
        or (reg["flat_lock"] and d.flat == reg["flat"])))
    sc.visits[name] = {"flat": reg["flat"], "locks": locks, "id_number": reg["id_number"]}
    return {"name": name, "by": by, "spec": v}


def _visit_step(action, value, where, at, site, sc):
    if site.visitors is None:
        raise ConfigError("%s: action '%s' needs the site's 'visitors:' section (docs/visitors.md,"
                          " \"Enabling it\")" % (where, action))
    if action == "visit":
        return _visit(value, where, at, site, sc)
    if action == "visit_decide":
        if not isinstance(value, dict) or set(value) - {"visit", "action", "by", "note"} \
                or not {"visit", "action"} <= set(value):
            raise ConfigError("%s: action 'visit_decide' needs 'value': {visit, action, by, "
                              "note}, like {visit: guest, action: approve}" % where)
        name = _name(value["visit"], where, "visit")
        if name not in sc.visits:
            raise ConfigError("%s: action 'visit_decide': key 'visit': no visit '%s' registered "
                              "by an earlier visit step" % (where, name))
        if value["action"] not in VISIT_DECISIONS:
            raise ConfigError("%s: action 'visit_decide': key 'action': '%s'; allowed: %s"
                              % (where, value["action"], ", ".join(VISIT_DECISIONS)))
        by = _role(value, where, "visitors.approve", value["action"] == "revoke", "staff")
        note = value.get("note")
        if note is not None and (not isinstance(note, str) or not 1 <= len(note) <= 200):
            raise ConfigError("%s: action 'visit_decide': key 'note': 1-200 characters" % where)
        return {"visit": name, "action": value["action"], "by": by, "note": note}
    # visit_watch: {id_number | plate, by, note}
    import datetime
    from hub.visitors import VisitInvalid, fields
    kinds = [k for k in ("id_number", "plate") if k in (value or {})]
    if not isinstance(value, dict) or len(kinds) != 1 \
            or set(value) - {"id_number", "plate", "by", "note"}:
        raise ConfigError("%s: action 'visit_watch' needs 'value': {id_number or plate, by, "
                          "note}, like {id_number: \"110101199003074514\"}" % where)
    by = _role(value, where, "visitors.watch", False, "police_liaison")
    kind = kinds[0]
    try:
        if kind == "id_number":
            fields.id_number(value[kind], datetime.datetime.fromtimestamp(
                CLOCK_START + at, datetime.timezone.utc).date(), kind)
        else:
            fields.plate(value[kind], kind)
    except VisitInvalid as exc:
        raise ConfigError("%s: action 'visit_watch': key '%s': %s" % (where, kind, exc.message)) \
            from exc
    return {"kind": "id" if kind == "id_number" else "plate", "value": value[kind], "by": by,
            "note": value.get("note")}


def phone_key(name):
    """The 16-byte key of the simulated phone called `name` (test keys only)."""
    return hashlib.sha256(("anju-sim-phone/" + name).encode()).digest()[:16]


def card_uid(name, length=4):
    """The UID of the simulated card called `name` (4 or 7 bytes; a name
    ending in ':7' is a 7-byte card). Deterministic, like device_keys."""
    if name.endswith(":7"):
        length = 7
    uid = bytearray(hashlib.sha256(("anju-sim-card/" + name).encode()).digest()[:length])
    if length == 7:
        uid[0] = 0x04  # NXP's manufacturer byte: never the cascade tag 0x88
    elif uid[0] == 0x88:
        uid[0] = 0x08  # a single-size UID never starts with the cascade tag
    return bytes(uid)


def parse(doc, boards_loader=None):
    if not isinstance(doc, dict):
        raise ConfigError("%s: a scenario must be a mapping with site, devices, timeline, expect"
                          % getattr(doc, "file", "<scenario>"))
    sc = Scenario()
    sc.file = doc.file
    sc.name = str(doc.get("name", doc.file))
    site = hubconfig.parse_site(doc, require_keys=False, extra_keys=SITE_EXTRA_KEYS)
    for dev in site.devices.values():
        frame_key, bind_key, mac = device_keys(site.site_id, dev.id)
        dev.frame_key = frame_key
        dev.bind_key = bind_key
        dev.ble_address = ":".join("%02X" % b for b in mac)
        site.by_address[dev.ble_address] = dev.id
    sc.site = site
    for d in doc.get("devices") or []:
        where = d.where()
        if boards_loader is not None:
            try:
                board = boards_loader(d["board"], d["kind"])
            except ValueError as exc:
                raise ConfigError("%s: key 'board': %s" % (d.where("board"), exc)) from exc
        else:
            board = None
        if d["transport"] == "mqtt" and board is not None and "wifi" not in board["radios"]:
            raise ConfigError("%s: board %s has no Wi-Fi for transport 'mqtt'" % (where, d["board"]))
        if d["transport"] == "ble" and board is not None and "ble" not in board["radios"]:
            raise ConfigError("%s: board %s has no BLE" % (where, d["board"]))
        lock_opts = _lock_options(d)
        door = d.get("door", "closed")
        case = d.get("case", "closed")
        for key, v in (("door", door), ("case", case)):
            if v not in ("open", "closed"):
                raise ConfigError("%s: key '%s': '%s'; allowed: open, closed" % (d.where(key), key, v))
        mv = d.get("battery_mv", 5600 if d["kind"] == "smart_lock" else 2950)
        top = max_battery_mv(d["kind"])
        if isinstance(mv, bool) or not isinstance(mv, int) or not 0 <= mv <= top:
            raise ConfigError("%s: key 'battery_mv': an integer 0..%d" % (d.where("battery_mv"), top))
        smoke_opts = d.get("smoke") or {}
        if not isinstance(smoke_opts, dict):
            raise ConfigError("%s: key 'smoke': a mapping of smoke sensor settings" % d.where("smoke"))
        sc.device_specs[str(d["id"])] = {"smoke": dict(smoke_opts), "kind": d["kind"], **lock_opts,
                                        "board": board, "board_name": d["board"], "door": door,
                                        "case": case, "battery_mv": mv,
                                        "heartbeat_s": int(site.devices[str(d["id"])].heartbeat_s)}
    t = 0.0
    last_position = {}  # responder id -> (x, y) of its previous position or walk
    for step in doc.get("timeline") or []:
        if not isinstance(step, dict):
            raise ConfigError("%s: every timeline entry must be a mapping" % doc.where("timeline"))
        where = step.where()
        if "at" in step and "after" in step:
            raise ConfigError("%s: use 'at' or 'after', not both" % where)
        if "at" in step:
            at = _dur(step, "at")
            if at < t:
                raise ConfigError("%s: key 'at': %s is before the previous step" % (step.where("at"), step["at"]))
            t = at
        elif "after" in step:
            t += _dur(step, "after")
        else:
            raise ConfigError("%s: a step needs 'at' (from the start) or 'after' (from the previous step)" % where)
        action = step.get("action")
        device = step.get("device")
        if action in RESPONDER_ACTIONS or "responder" in step:
            sc.steps.extend(_responder_steps(step, t, action, site, last_position))
            continue
        if action is None:
            if device is not None:
                raise ConfigError("%s: key 'device' without an 'action'" % where)
            sc.steps.append(Step(t, None, None, None, step.line))
            continue
        if action not in ACTIONS:
            raise ConfigError("%s: key 'action': unknown action '%s'; allowed: %s"
                              % (step.where("action"), action, ", ".join(ACTIONS)))
        if action in VISIT_ACTIONS:
            if device is not None:
                raise ConfigError("%s: action '%s' takes no 'device'" % (where, action))
            sc.steps.append(Step(t, None, action,
                                 _visit_step(action, step.get("value"), where, t, site, sc),
                                 step.line))
            continue
        readers = rdr.readers_of(site)
        if action in rdr.READER_ACTIONS or (device is not None and str(device) in readers):
            if action not in rdr.READER_ACTIONS:
                raise ConfigError("%s: action '%s': '%s' is a visitor reader; its actions: %s"
                                  % (where, action, device, ", ".join(rdr.READER_ACTIONS)))
            if device is None or str(device) not in readers:
                raise ConfigError("%s: key 'device': action '%s' needs a reader of the site's "
                                  "visitors.readers, got '%s'; known: %s"
                                  % (step.where("device") if device is not None else where,
                                     action, device, ", ".join(sorted(readers)) or "none"))
            sc.steps.append(Step(t, str(device), action,
                                 rdr.reader_step(action, step.get("value"), where,
                                                 readers[str(device)], sc), step.line))
            continue
        if action in SITE_ACTIONS:
            if device is not None:
                raise ConfigError("%s: action '%s' takes no 'device'" % (where, action))
            sc.steps.append(Step(t, None, action, None, step.line))
            continue
        if device is None or str(device) not in site.devices:
            raise ConfigError("%s: key 'device': '%s' is not a device of this scenario"
                              % (step.where("device") if device is not None else where, device))
        value = step.get("value")
        if action == "smoke":
            from simulator import chamber
            if not isinstance(value, dict) or value.get("profile") not in chamber.PROFILES:
                raise ConfigError("%s: action 'smoke' needs 'value': {profile: one of %s, ...}"
                                  % (where, ", ".join(chamber.PROFILES)))
            try:
                chamber.SmokeEvent(value["profile"], 0, **{k: v for k, v in value.items()
                                                           if k != "profile"})
            except ValueError as exc:
                raise ConfigError("%s: action 'smoke': %s" % (where, exc)) from exc
            value = dict(value)
        if action == "broker" and value not in BROKER_STATES:
            raise ConfigError("%s: action 'broker' needs 'value': one of %s"
                              % (where, ", ".join(BROKER_STATES)))
        if action == "dust" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError("%s: action 'dust' needs 'value': counts per hour" % where)
        top = max_battery_mv(site.devices[str(device)].kind)
        if action == "battery" and (isinstance(value, bool) or not isinstance(value, int)
                                    or not 0 <= value <= top):
            raise ConfigError("%s: action 'battery' needs 'value': millivolts 0..%d" % (where, top))
        if action == "flash_cut" and (isinstance(value, bool) or not isinstance(value, int)
                                      or not 1 <= value <= 100000):
            raise ConfigError("%s: action 'flash_cut' needs 'value': the n-th flash write "
                              "(program or erase) from now, 1..100000" % where)
        if action in LOCK_ACTIONS:
            value = _lock_step(action, value, where, site, site.devices[str(device)], sc)
        if action == "inject" and value not in INJECT_KINDS:
            raise ConfigError("%s: action 'inject' needs 'value', one of %s"
                              % (where, ", ".join(INJECT_KINDS)))
        sc.steps.append(Step(t, str(device), action, value, step.line))
    # a walk's reports fall after its own step: keep the timeline in time order
    sc.steps.sort(key=lambda st: st.at)
    sc.end = max([t] + [st.at for st in sc.steps])
    for e in doc.get("expect") or []:
        if not isinstance(e, dict):
            raise ConfigError("%s: every expectation must be a mapping" % doc.where("expect"))
        # a gate's own keys `rejected` and `ignored` are not the frames' `rejected`
        kinds = ["gate"] if "gate" in e else [k for k in EXPECT_KINDS if k in e]
        if len(kinds) != 1:
            raise ConfigError("%s: an expectation needs exactly one of %s" % (e.where(), ", ".join(EXPECT_KINDS)))
        kind = kinds[0]
        spec = {"what": e[kind]}
        allowed = {"alarm": ALARM_TYPES, "no_alarm": ALARM_TYPES, "rejected": REJECT_REASONS}
        if kind in allowed and spec["what"] not in allowed[kind]:
            raise ConfigError("%s: key '%s': unknown value '%s'; allowed: %s"
                              % (e.where(kind), kind, spec["what"], ", ".join(allowed[kind])))
        if kind in ("alarm", "no_alarm"):
            for key in ("flat", "resident", "device"):
                if key in e:
                    spec[key] = str(e[key])
            if "flat" in spec and spec["flat"] not in site.flats:
                raise ConfigError("%s: key 'flat': no flat '%s'" % (e.where("flat"), spec["flat"]))
            spec["window"] = _window(e, "between", e.where("between"))
            spec["count"] = _count(e, e.where(), kind) if "count" in e else 1
            if spec["window"] is not None:
                sc.end = max(sc.end, spec["window"][1])
        elif kind == "delivered":
            if spec["what"] not in site.devices:
                raise ConfigError("%s: key 'delivered': no device '%s'" % (e.where("delivered"), spec["what"]))
            spec["type"] = e.get("type", "door")
            if spec["type"] not in EVENT_TYPES:
                raise ConfigError("%s: key 'type': unknown event type '%s'; allowed: %s"
                                  % (e.where(), spec["type"], ", ".join(EVENT_TYPES)))
            if "count" not in e:
                raise ConfigError("%s: 'delivered' needs 'count' (an integer)" % e.where())
            spec["count"] = _count(e, e.where(), kind)
        elif kind in ("siren", "silent"):
            if spec["what"] not in site.devices:
                raise ConfigError("%s: key '%s': no device '%s'" % (e.where(kind), kind, spec["what"]))
            spec["window"] = _window(e, "between", e.where("between"))
            if spec["window"] is None:
                raise ConfigError("%s: '%s' needs 'between: [from, to]'" % (e.where(), kind))
            sc.end = max(sc.end, spec["window"][1])
        elif kind in ("access", "bolt"):
            dev = site.devices.get(str(spec["what"]))
            if dev is None or dev.kind != "smart_lock":
                raise ConfigError("%s: key '%s': '%s' is not a smart_lock of this scenario"
                                  % (e.where(kind), kind, spec["what"]))
            spec["what"] = str(spec["what"])
            if kind == "access":
                for key, allowed in ACCESS_FILTERS.items():
                    if key in e:
                        if e[key] not in allowed:
                            raise ConfigError("%s: key '%s': unknown value '%s'; allowed: %s"
                                              % (e.where(key), key, e[key], ", ".join(allowed)))
                        spec[key] = e[key]
                if "credential" in e:
                    spec["credential"] = str(e["credential"])
                if "code" in e and str(e["code"]) in sc.visits:
                    if spec["what"] not in sc.visits[str(e["code"])]["locks"]:
                        raise ConfigError("%s: key 'code': visit '%s' has no code for %s"
                                          % (e.where("code"), e["code"], spec["what"]))
                    spec["visit"] = str(e["code"])
                elif "code" in e:
                    if (spec["what"], str(e["code"])) not in sc.visitor_codes:
                        raise ConfigError("%s: key 'code': no visitor code '%s' made for %s"
                                          % (e.where("code"), e["code"], spec["what"]))
                    spec["code"] = str(e["code"])
                spec["window"] = _window(e, "between", e.where("between"))
                if "count" not in e:
                    raise ConfigError("%s: 'access' needs 'count' (an integer)" % e.where())
                spec["count"] = _count(e, e.where(), kind)
                if spec["window"] is not None:
                    sc.end = max(sc.end, spec["window"][1])
            else:
                if e.get("state") not in BOLT_STATES:
                    raise ConfigError("%s: 'bolt' needs 'state', one of %s"
                                      % (e.where(), ", ".join(BOLT_STATES)))
                spec["state"] = e["state"]
                spec["at"] = _dur(e, "at")
                sc.end = max(sc.end, spec["at"])
        elif kind in ("visit", "visit_record"):
            name = str(spec["what"])
            if name not in sc.visits:
                raise ConfigError("%s: key '%s': no visit '%s' registered by a visit step"
                                  % (e.where(kind), kind, name))
            spec["what"] = name
            if kind == "visit":
                if e.get("state") not in VISIT_STATES:
                    raise ConfigError("%s: 'visit' needs 'state', one of %s"
                                      % (e.where(), ", ".join(VISIT_STATES)))
                spec["state"] = e["state"]
            else:
                spec["count"] = _count(e, e.where(), kind) if "count" in e else 1
        elif kind == "gate":
            spec = rdr.gate_expectation(e, site)
        elif kind == "visitor_log":
            spec = rdr.visitor_log_expectation(e, site)
        elif kind == "watchdog":
            spec["what"] = str(spec["what"])
            if spec["what"] not in site.devices:
                raise ConfigError("%s: key 'watchdog': no device '%s'"
                                  % (e.where("watchdog"), spec["what"]))
            if "count" not in e:
                raise ConfigError("%s: 'watchdog' needs 'count' (an integer)" % e.where())
            spec["count"] = _count(e, e.where(), kind)
        elif kind == "rejected":
            if "count" not in e:
                raise ConfigError("%s: 'rejected' needs 'count' (an integer)" % e.where())
            spec["count"] = _count(e, e.where(), kind)
        sc.expectations.append(Expectation(kind, spec, e.line))
    if not sc.steps and not sc.expectations:
        raise ConfigError("%s: the scenario has no timeline and no expectations" % doc.file)
    return sc


def _point(value, where, key, size):
    """[x, y] or {x, y} inside the plan -> (x, y)."""
    if isinstance(value, dict):
        value = [value.get("x"), value.get("y")]
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)):
        raise ConfigError("%s: key '%s': a point in plan coordinates, {x: .., y: ..} or [x, y]"
                          % (where, key))
    x, y = float(value[0]), float(value[1])
    if not (0 <= x <= size[0] and 0 <= y <= size[1]):
        raise ConfigError("%s: key '%s': (%g, %g) is outside the plan (%g x %g)"
                          % (where, key, x, y, size[0], size[1]))
    return x, y


def _responder_steps(step, t, action, site, last_position):
    """`position` (value: a point) or `walk` (value: {to: point, over: duration,
    every: duration}) of a site's responder -> position steps, a walk's spread
    in a straight line from the responder's previous position, one report
    `every` (1m by default) until `over` has passed. Pure."""
    from hub.config.plan import PLAN_SIZE
    where = step.where()
    rid = step.get("responder")
    if action not in RESPONDER_ACTIONS:
        raise ConfigError("%s: a 'responder' step's action is one of %s"
                          % (where, ", ".join(RESPONDER_ACTIONS)))
    if "device" in step:
        raise ConfigError("%s: action '%s' takes 'responder', not 'device'" % (where, action))
    if rid is None or str(rid) not in site.responders:
        raise ConfigError("%s: key 'responder': '%s' is not a responder of this site; known: %s"
                          % (where, rid, ", ".join(sorted(site.responders)) or "none"))
    rid = str(rid)
    size = site.plan_size or PLAN_SIZE
    value = step.get("value")
    if action == "position":
        x, y = _point(value, where, "value", size)
        last_position[rid] = (x, y)
        return [Step(t, None, "position", {"responder": rid, "x": x, "y": y}, step.line)]
    if not isinstance(value, dict) or "to" not in value or "over" not in value:
        raise ConfigError("%s: action 'walk' needs 'value': {to: [x, y], over: 10m, every: 1m}"
                          % where)
    if rid not in last_position:
        raise ConfigError("%s: responder '%s' walks from nowhere: give a 'position' step first"
                          % (where, rid))
    to = _point(value["to"], where, "to", size)
    over = parse_duration(value["over"], where, "over")
    every = parse_duration(value["every"], where, "every") if "every" in value else WALK_EVERY_S
    if over <= 0 or every <= 0:
        raise ConfigError("%s: action 'walk': 'over' and 'every' must be more than 0" % where)
    (x0, y0), n = last_position[rid], max(1, int(round(over / every)))
    last_position[rid] = to
    return [Step(t + over * i / n, None, "position",
                 {"responder": rid, "x": round(x0 + (to[0] - x0) * i / n, 1),
                  "y": round(y0 + (to[1] - y0) * i / n, 1)}, step.line)
            for i in range(1, n + 1)]


def load(path, boards_loader=None):
    return parse(yamlfile.load(path), boards_loader)
