"""Rule settings, configurable per site, building and flat.

In the site file a `rules:` mapping may stand at the top level, in a building
and in a flat; the most specific wins, key by key:

    rules:
      inactivity: {after: 12h}
      door_left_open: {after: 10m}

Every rule declares its defaults and how each key is read (`SCHEMA`); unknown
rules and keys are configuration errors that name the file and line.
"""
from hub import ConfigError
from hub.config.values import parse_duration, parse_quiet_hours

# rule -> key -> (kind, default); kinds: duration (seconds), number, bool, text,
# hours (a daily range like 22:00-06:00, local time)
SCHEMA = {
    "inactivity": {"enabled": ("bool", True), "after": ("duration", 12 * 3600),
                   "quiet_hours": ("hours", "")},
    "door_left_open": {"enabled": ("bool", True), "after": ("duration", 10 * 60)},
    "offline": {"enabled": ("bool", True), "grace": ("number", 2.5)},
    "low_battery": {"enabled": ("bool", True), "below_percent": ("number", 20)},
    "tamper": {"enabled": ("bool", True)},
    "smoke": {"enabled": ("bool", True), "interconnect": ("text", "flat")},
    "unregistered_occupant": {"enabled": ("bool", True)},
    "forced_entry": {"enabled": ("bool", True)},
    "duress": {"enabled": ("bool", True)},
    "lock_wrong_code": {"enabled": ("bool", True)},
    "lock_jammed": {"enabled": ("bool", True)},
    "door_ajar": {"enabled": ("bool", True)},
    "clock_skew": {"enabled": ("bool", True), "max": ("duration", 300)},
    "attack": {"enabled": ("bool", True), "rejections": ("number", 5),
               "within": ("duration", 600)},
    "escalation": {"enabled": ("bool", True), "after": ("duration", 5 * 60),
                   "max_level": ("number", 2), "target": ("text", "")},
}


def parse(node, where):
    """Validate one `rules:` mapping; return {rule: {key: value}} with only the given keys."""
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise ConfigError("%s: key 'rules': must be a mapping of rule names" % where)
    out = {}
    for rule, values in node.items():
        at = node.where(rule) if hasattr(node, "where") else where
        if rule not in SCHEMA:
            raise ConfigError("%s: key 'rules': unknown rule '%s'; known: %s"
                              % (at, rule, ", ".join(sorted(SCHEMA))))
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise ConfigError("%s: rule '%s': must be a mapping of settings" % (at, rule))
        parsed = {}
        for key, value in values.items():
            kat = values.where(key) if hasattr(values, "where") else at
            if key not in SCHEMA[rule]:
                raise ConfigError("%s: rule '%s': unknown setting '%s'; known: %s"
                                  % (kat, rule, key, ", ".join(sorted(SCHEMA[rule]))))
            kind = SCHEMA[rule][key][0]
            parsed[key] = _value(kind, value, kat, "%s.%s" % (rule, key))
        out[rule] = parsed
    return out


def _value(kind, value, where, key):
    if kind == "duration":
        return parse_duration(value, where, key)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError("%s: key '%s': expected true or false" % (where, key))
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError("%s: key '%s': expected a number >= 0" % (where, key))
        return value
    if not isinstance(value, str):
        raise ConfigError("%s: key '%s': expected text" % (where, key))
    if kind == "hours":
        try:
            parse_quiet_hours(value)
        except ValueError as exc:
            raise ConfigError("%s: key '%s': %s" % (where, key, exc)) from exc
    return value


def resolve(site, rule, flat_id=None, building_id=None):
    """Defaults, overridden by the site's, the building's and the flat's settings."""
    out = {k: v[1] for k, v in SCHEMA[rule].items()}
    flat = site.flats.get(flat_id) if flat_id else None
    if flat is not None and building_id is None:
        building_id = flat.building
    layers = [getattr(site, "rules", {}),
              getattr(site, "building_rules", {}).get(building_id, {}),
              getattr(flat, "rules", {}) if flat is not None else {}]
    for layer in layers:
        out.update(layer.get(rule, {}))
    if rule == "inactivity" and flat is not None:
        out["after"] = flat.inactivity_s  # the flat's `inactivity:` shorthand included
    return out
