"""Typed values of a site file, checked where they are read: durations, flags,
MQTT topics, broker addresses, optional sections, and quiet-hour ranges.

Pure, and imported by every validator (the site, the rules' settings, the
forwarders, preflight), so it imports nothing of the hub but `ConfigError`.
Every error names the file, line and key.
"""
import difflib
import math
import re

from hub import ConfigError

DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$|^\d+(?:\.\d+)?$")
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
QUIET_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def parse_duration(value, where, key, allow_zero=False):
    """'12h', '30m', '45s', '1.5d', '12h5m' or a number of seconds -> seconds (float)."""
    if isinstance(value, bool):
        raise ConfigError("%s: key '%s': expected a duration like 12h, 30m or 45s" % (where, key))
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).replace(" ", "")
        if not DURATION.match(text):
            raise ConfigError("%s: key '%s': '%s' is not a duration (like 12h, 30m, 45s, 1h30m)"
                              % (where, key, value))
        seconds = sum(float(n) * UNITS[u or None] for n, u in DURATION_PART.findall(text))
    if not math.isfinite(seconds):
        raise ConfigError("%s: key '%s': '%s' is not a finite duration" % (where, key, value))
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ConfigError("%s: key '%s': must be positive" % (where, key))
    return seconds


def refuse_unknown_keys(node, allowed, place):
    """ConfigError for the first key of `node` not in `allowed`, at its file and
    line, with the closest allowed key as a hint. `place`: "in resident",
    "in hub.upstream"."""
    for key in node:
        if key in allowed:
            continue
        hint = difflib.get_close_matches(str(key), allowed, n=1)
        msg = "unknown key '%s' %s; allowed: %s%s" % (
            key, place, ", ".join(allowed), "; did you mean '%s'?" % hint[0] if hint else "")
        raise ConfigError("%s: %s" % (node.where(key), msg) if hasattr(node, "where") else msg)


def where_in(node, key, name):
    """`name` ("hub.webhook") preceded by the file and line of `key` in `node`
    when the mapping was read from a file: "site.yaml:14: hub.webhook"."""
    line = getattr(node, "key_lines", {}).get(key) or getattr(node, "line", 0)
    return "%s:%d: %s" % (node.file, line, name) if line else name


def section(node, allowed, where, example="of keys to values", at=None):
    """An optional mapping of a site file (`hub.upstream`, ...): {} when absent,
    ConfigError when it is not a mapping (reported at `at`, default `where`) or
    holds a key not in `allowed`."""
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise ConfigError("%s: must be a mapping %s" % (at or where, example))
    refuse_unknown_keys(node, allowed, "in " + where)
    return node


def topic(node, key, where, default, example):
    """`node[key]` as an MQTT topic without wildcards (`default` when absent)."""
    value = node.get(key, default)
    if value is not None and (not isinstance(value, str) or not value
                              or any(c in value for c in "+#\0")):
        raise ConfigError("%s: key '%s': expected a topic without wildcards, like %s"
                          % (where_in(node, key, where), key, example))
    return value


def flag(node, key, where, default):
    """`node[key]` as true/false (`default` when absent); ConfigError otherwise."""
    value = node.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError("%s: key '%s': expected true or false" % (where_in(node, key, where), key))
    return value


def host_port(node, where):
    """Check the optional `host` and `port` of a broker mapping; (host, port)."""
    host, port = node.get("host"), node.get("port")
    if host is not None and (not isinstance(host, str) or not host):
        raise ConfigError("%s: key 'host': expected a host name or address"
                          % where_in(node, "host", where))
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                             or not 1 <= port <= 65535):
        raise ConfigError("%s: key 'port': expected an integer 1..65535, got %r"
                          % (where_in(node, "port", where), port))
    return host, port


def parse_quiet_hours(text):
    """'22:00-06:00' -> ((22, 0), (6, 0)); '' -> None; ValueError if malformed."""
    if not text:
        return None
    m = QUIET_HOURS.match(text.replace(" ", ""))
    if m is None:
        raise ValueError("'%s' is not a range like 22:00-06:00" % text)
    start, end = (int(m[1]), int(m[2])), (int(m[3]), int(m[4]))
    if start == end:
        raise ValueError("'%s' is empty: start and end are the same" % text)
    return start, end
