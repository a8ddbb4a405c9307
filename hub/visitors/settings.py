"""The site file's `visitors:` section (docs/visitors.md, "Settings"). Pure.

    visitors:
      retention_days: 90          # personal data deleted this long after the visit ends
      auto_approve: {visits: 3, within_days: 180}   # repeat family visitor; visits: 0 = off
      overstay_after: 2h          # entered, no exit this long after the window: a notice
      upstream_full_id: []        # forwarding targets (mqtt, webhook) sent the full ID number
      readers:                    # gate readers (QR) and vehicle barriers (plates)
        - {id: gate-north-qr, kind: qr_reader, entrance: gate-north, key: <64 hex>}
        - {id: barrier-east, kind: barrier, entrance: car-east, key: <64 hex>}
"""
import re

from hub import ConfigError
from hub.config.values import parse_duration

KEYS = ("retention_days", "auto_approve", "overstay_after", "readers", "upstream_full_id")
TARGETS = ("mqtt", "webhook")
READER_KINDS = ("qr_reader", "barrier")
_IDENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")


class Reader:
    __slots__ = ("id", "kind", "entrance", "key")

    def __init__(self, id, kind, entrance, key):
        self.id, self.kind, self.entrance, self.key = id, kind, entrance, key

    def __repr__(self):
        return "Reader(%r, %s, %s)" % (self.id, self.kind, self.entrance)


class VisitorSettings:
    def __init__(self, retention_s=90 * 86400.0, auto_visits=3, auto_within_s=180 * 86400.0,
                 overstay_s=7200.0, readers=(), full_id_targets=()):
        self.retention_s = retention_s
        self.auto_visits = auto_visits
        self.auto_within_s = auto_within_s
        self.overstay_s = overstay_s
        self.readers = {r.id: r for r in readers}
        self.full_id_targets = tuple(full_id_targets)


def _int(value, where, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError("%s: expected an integer %d..%d, got %r" % (where, low, high, value))
    return value


def parse(section, where="visitors"):
    if section is None:
        return VisitorSettings()
    if not isinstance(section, dict):
        raise ConfigError("%s: expected a mapping" % where)
    unknown = sorted(set(section) - set(KEYS))
    if unknown:
        raise ConfigError("%s: unknown keys %s; allowed: %s" % (where, unknown, ", ".join(KEYS)))
    retention = _int(section.get("retention_days", 90), where + ".retention_days", 1, 3650)
    auto = section.get("auto_approve", {}) or {}
    if not isinstance(auto, dict) or set(auto) - {"visits", "within_days"}:
        raise ConfigError("%s.auto_approve: expected {visits: N, within_days: D}" % where)
    visits = _int(auto.get("visits", 3), where + ".auto_approve.visits", 0, 100)
    within = _int(auto.get("within_days", 180), where + ".auto_approve.within_days", 1, 3650)
    overstay = parse_duration(section.get("overstay_after", "2h"), where, "overstay_after")
    readers = []
    for i, r in enumerate(section.get("readers", []) or []):
        w = "%s.readers[%d]" % (where, i)
        if not isinstance(r, dict) or set(r) - {"id", "kind", "entrance", "key"}:
            raise ConfigError("%s: expected {id, kind, entrance, key}" % w)
        rid, kind, entrance, key = r.get("id"), r.get("kind"), r.get("entrance"), r.get("key")
        if not isinstance(rid, str) or not _IDENT.match(rid):
            raise ConfigError("%s.id: expected an id like gate-north-qr" % w)
        if kind not in READER_KINDS:
            raise ConfigError("%s.kind: expected one of %s" % (w, ", ".join(READER_KINDS)))
        if not isinstance(entrance, str) or not _IDENT.match(entrance):
            raise ConfigError("%s.entrance: expected an entrance id" % w)
        try:
            raw = bytes.fromhex(key) if isinstance(key, str) else b""
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise ConfigError("%s.key: must be 32 bytes (64 hex digits)" % w)
        if any(x.id == rid for x in readers):
            raise ConfigError("%s.id: %s is listed twice" % (w, rid))
        readers.append(Reader(rid, kind, entrance, raw))
    full = section.get("upstream_full_id", []) or []
    if not isinstance(full, list) or any(t not in TARGETS for t in full):
        raise ConfigError("%s.upstream_full_id: expected a list of %s" % (where, " / ".join(TARGETS)))
    return VisitorSettings(retention * 86400.0, visits, within * 86400.0, float(overstay),
                           readers, full)
