"""Scenario steps and expectations for the visitor gate readers and vehicle
barriers (docs/scenarios.md; the readers are simulated by simulator/readers.py).
Pure: called by simulator.scenario.parse, every error a ConfigError naming
the file, the line, the step and the key.

    {device: barrier-east, action: plate, value: "粤BD12345"}
    {device: barrier-east, action: plate, value: {plate: "粤BD12345", direction: out}}
    {device: gate-north-qr, action: qr, value: {visit: guest}}
    {device: barrier-east, action: reader_inject, value: replayed}
    {gate: barrier-east, open: true, count: 1}
    {gate: barrier-east, rejected: forged, count: 1}
    {visitor_log: visitor_plate_unknown, count: 1}
"""
from hub import ConfigError

READER_ACTIONS = ("plate", "qr", "reader_inject")
ACTION_KIND = {"plate": "barrier", "qr": "qr_reader"}
DIRECTIONS = ("in", "out")
# reports the hub must reject (counted by the hub, answered with nothing) and
# commands on the reader's cmd topic the reader must ignore (simulator/readers.py)
REPORT_INJECTS = ("forged", "replayed", "stale")
COMMAND_INJECTS = ("forged_command", "replayed_command")
INJECT_KINDS = REPORT_INJECTS + COMMAND_INJECTS
STALE_S = 300  # a stale report's clock is this far behind (the hub allows 60 s)
# what the hub answers (hub/visitors/model.py admit, hub/visitors/book.py)
GATE_REASONS = ("ok", "invalid", "unknown", "malformed", "requested", "refused", "flagged",
                "revoked", "expired", "not_yet", "entrance_not_covered", "spent")
# what the hub counts for a report it rejects (hub/visitors/readers.py)
REPORT_REJECTS = ("malformed", "forged", "replayed", "stale", "wrong_kind", "too_long")
IGNORE_REASONS = ("malformed", "forged", "mismatched", "replayed", "stale")
# the access log's visitor kinds (hub/visitors/book.py)
VISITOR_LOG_KINDS = ("visitor_entry", "visitor_refused", "visitor_qr_refused",
                     "visitor_plate_refused", "visitor_plate_unknown")
GATE_KEYS = ("gate", "count", "open", "reason", "direction", "rejected", "ignored")
VISITOR_LOG_KEYS = ("visitor_log", "count", "reader")


def readers_of(site):
    visitors = getattr(site, "visitors", None)
    return visitors.readers if visitors is not None else {}


def _direction(value, where, action):
    d = value.get("direction", "in")
    if d not in DIRECTIONS:
        raise ConfigError("%s: action '%s': key 'direction': '%s'; allowed: in, out"
                          % (where, action, d))
    return d


def reader_step(action, value, where, reader, sc):
    """A reader step's value, checked: {plate, direction}, {visit, direction}
    or {inject}. `reader` is the site's settings.Reader."""
    from hub.visitors import VisitInvalid, fields
    if action in ACTION_KIND and reader.kind != ACTION_KIND[action]:
        raise ConfigError("%s: action '%s' is for a %s, '%s' is a %s"
                          % (where, action, ACTION_KIND[action], reader.id, reader.kind))
    reports = sc.reader_reports.setdefault(reader.id, 0)
    if action == "plate":
        if isinstance(value, str):
            value = {"plate": value}
        if not isinstance(value, dict) or "plate" not in value or set(value) - {"plate",
                                                                                "direction"}:
            raise ConfigError("%s: action 'plate' needs 'value': a plate, like \"粤BD12345\", or "
                              "{plate, direction: in | out}" % where)
        try:
            plate = fields.plate(value["plate"], "plate")
        except VisitInvalid as exc:
            raise ConfigError("%s: action 'plate': key 'plate': %s" % (where, exc.message)) \
                from exc
        sc.reader_reports[reader.id] = reports + 1
        return {"plate": plate, "direction": _direction(value, where, action)}
    if action == "qr":
        if not isinstance(value, dict) or "visit" not in value or set(value) - {"visit",
                                                                                "direction"}:
            raise ConfigError("%s: action 'qr' needs 'value': {visit: NAME, direction: in | "
                              "out}, the QR of that visit's pass, like {visit: guest}" % where)
        name = value["visit"]
        if not isinstance(name, str) or name not in sc.visits:
            raise ConfigError("%s: action 'qr': key 'visit': no visit '%s' registered by an "
                              "earlier visit step" % (where, name))
        sc.reader_reports[reader.id] = reports + 1
        return {"visit": name, "direction": _direction(value, where, action)}
    if value not in INJECT_KINDS:
        raise ConfigError("%s: action 'reader_inject' needs 'value', one of %s"
                          % (where, ", ".join(INJECT_KINDS)))
    if value in ("replayed", "replayed_command") and not reports:
        raise ConfigError("%s: action 'reader_inject': '%s' needs an earlier plate or qr step "
                          "of %s to replay" % (where, value, reader.id))
    return {"inject": value}


def _count(e, kind):
    v = e.get("count")
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ConfigError("%s: '%s' needs 'count': a whole number >= 0, got %r"
                          % (e.where(), kind, v))
    return v


def _unknown_keys(e, kind, allowed):
    unknown = sorted(set(e) - set(allowed))
    if unknown:
        raise ConfigError("%s: '%s' expectation: unknown key '%s'; allowed: %s"
                          % (e.where(unknown[0]), kind, unknown[0], ", ".join(allowed)))


def _one_of(e, key, allowed):
    if e[key] not in allowed:
        raise ConfigError("%s: key '%s': unknown value '%s'; allowed: %s"
                          % (e.where(key), key, e[key], ", ".join(allowed)))
    return e[key]


def gate_expectation(e, site):
    """{gate: READER, count, open, reason, direction}: answers the reader took;
    {gate, rejected: REASON, count}: its reports the hub rejected;
    {gate, ignored: REASON, count}: answers the reader ignored."""
    _unknown_keys(e, "gate", GATE_KEYS)
    rid = e["gate"]
    readers = readers_of(site)
    if not isinstance(rid, str) or rid not in readers:
        raise ConfigError("%s: key 'gate': '%s' is not a reader of the site's visitors.readers;"
                          " known: %s" % (e.where("gate"), rid, ", ".join(sorted(readers))
                                         or "none"))
    spec = {"what": rid, "count": _count(e, "gate")}
    counted = [k for k in ("rejected", "ignored") if k in e]
    filters = [k for k in ("open", "reason", "direction") if k in e]
    if len(counted) > 1 or (counted and filters):
        raise ConfigError("%s: a 'gate' expectation counts answers (open, reason, direction), "
                          "rejected reports or ignored answers, one at a time" % e.where())
    if counted:
        kind = counted[0]
        spec[kind] = _one_of(e, kind, REPORT_REJECTS if kind == "rejected" else IGNORE_REASONS)
        return spec
    if "open" in e:
        if not isinstance(e["open"], bool):
            raise ConfigError("%s: key 'open': true or false" % e.where("open"))
        spec["open"] = e["open"]
    if "reason" in e:
        spec["reason"] = _one_of(e, "reason", GATE_REASONS)
    if "direction" in e:
        spec["direction"] = _one_of(e, "direction", DIRECTIONS)
    return spec


def visitor_log_expectation(e, site):
    """{visitor_log: KIND, count, reader}: entries of that kind in the hub's access log."""
    _unknown_keys(e, "visitor_log", VISITOR_LOG_KEYS)
    spec = {"what": _one_of(e, "visitor_log", VISITOR_LOG_KINDS),
            "count": _count(e, "visitor_log")}
    if "reader" in e:
        if e["reader"] not in readers_of(site):
            raise ConfigError("%s: key 'reader': '%s' is not a reader of the site's "
                              "visitors.readers" % (e.where("reader"), e["reader"]))
        spec["reader"] = e["reader"]
    return spec
