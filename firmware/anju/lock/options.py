"""The `lock` section of config.json (docs/smart_lock.md, "Settings"). Pure.

`parse(raw, where)` -> Options; ConfigError naming the key and the allowed
values for anything else, so a bad file is refused on the host (`anju
deploy`, the simulator) and at the lock's boot, never half-applied.
"""
from anju.config import ConfigError

POWER = ("battery", "mains")

# key: (default, low, high)
INTS = {
    "max_users": (100, 1, 500),
    "max_credentials": (200, 1, 1000),
    "visitor_blocked": (128, 1, 1024),  # used one-time and revoked visitor codes kept
    "wrong_limit": (5, 1, 5),
    "lockout_s": (90, 90, 3600),      # GA 374-2019: never below 90 s
    "relock_s": (30, 0, 3600),        # 0: no auto-relock
    "ajar_s": (60, 10, 3600),
    "cmd_poll_s": (300, 10, 3600),    # battery: check-in interval for hub commands
    "mains_poll_ms": (100, 20, 5000),
    "answer_ms": (300, 0, 5000),      # after reporting, listen this long for the hub's answer
    "awake_ms": (10000, 2000, 60000),  # awake after a touch, key, finger or handle
    "card_window_ms": (10000, 1000, 60000),
    "card_poll_ms": (250, 50, 2000),
    "scan_ms": (20, 5, 100),          # keypad and inputs while awake
    "cutoff_mv": (4400, 1000, 12000),  # below it the motor is not run
    "low_mv": (4800, 1000, 12000),    # low-battery warning (4x AA: 1.2 V a cell)
    "full_mv": (6000, 1000, 12000),
    "ops_full": (10000, 100, 100000),  # operations a full battery gives (datasheet)
    "mv_per_a": (2000, 100, 10000),   # motor current shunt amplifier
    "stall_ma": (600, 100, 5000),
    "inrush_ms": (150, 0, 1000),
    "stall_ms": (300, 50, 2000),
    "travel_ms": (5000, 1000, 20000),
}


class Options:
    def __init__(self):
        self.power = "battery"
        self.phone = True  # the BLE phone unlock, on boards with BLE
        for key, spec in INTS.items():
            setattr(self, key, spec[0])

    def ops_left(self, mv):
        """Operations the battery still gives at `mv`: linear from `cutoff_mv`
        (0) to `full_mv` (`ops_full`); the warning at `low_mv` leaves many
        more than the 50 the standard asks for."""
        if mv <= self.cutoff_mv:
            return 0
        span = self.full_mv - self.cutoff_mv
        return min(self.ops_full, (mv - self.cutoff_mv) * self.ops_full // span)

    def percent(self, mv):
        if mv <= self.cutoff_mv:
            return 0
        return min(100, (mv - self.cutoff_mv) * 100 // (self.full_mv - self.cutoff_mv))


def parse(raw, where="config.json"):
    o = raw.get("lock")
    if o is None:
        o = {}
    if not isinstance(o, dict):
        raise ConfigError("%s: key 'lock' must be an object" % where)
    opts = Options()
    for key, v in o.items():
        if key == "power":
            if v not in POWER:
                raise ConfigError("%s: lock.power is '%s'; allowed: %s" % (where, v, ", ".join(POWER)))
            opts.power = v
            continue
        if key == "phone":
            if not isinstance(v, bool):
                raise ConfigError("%s: lock.phone must be true or false" % where)
            opts.phone = v
            continue
        spec = INTS.get(key)
        if spec is None:
            raise ConfigError("%s: unknown key lock.%s; known: power, phone, %s"
                              % (where, key, ", ".join(sorted(INTS))))
        if isinstance(v, bool) or not isinstance(v, int) or not spec[1] <= v <= spec[2]:
            raise ConfigError("%s: lock.%s must be an integer %d..%d" % (where, key, spec[1], spec[2]))
        setattr(opts, key, v)
    if not opts.cutoff_mv < opts.low_mv < opts.full_mv:
        raise ConfigError("%s: lock.cutoff_mv < lock.low_mv < lock.full_mv must hold" % where)
    if opts.travel_ms <= opts.inrush_ms + opts.stall_ms:
        raise ConfigError("%s: lock.travel_ms must exceed lock.inrush_ms + lock.stall_ms" % where)
    return opts
