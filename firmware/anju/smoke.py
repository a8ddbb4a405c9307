"""Photoelectric smoke alarm: chamber signal processing and the alarm state
machine, `handle(state, event, now, cfg) -> (state, actions)`.

Pure. The shell pulses the IR LED, reads the photodiode dark and lit, reads
the battery, and feeds one `sample` event per chamber reading; the actions say
what the siren does, which frames to send and when to sample next. Semantics
follow Matter's SmokeCOAlarm cluster (smoke state normal / warning / critical,
muted, test in progress, hardware fault, end of service, interconnect) and the
smoke-alarm standards (temporal-3, hush limited in time and refused above a
high level, trouble chirps).

It never touches pins, radios or flash, and it never lets the clean-air
baseline follow smoke: the baseline only moves after a whole window of clean
samples, by a bounded step.

Events:
  ("boot", reset_cause)
  ("sample", dark, lit, battery_mv)     raw ADC (u16) with the LED off and on
  ("button",)                           test/hush button pressed
  ("test_done", chamber_ok, siren_ok, radio_ok)
  ("interconnect", sound)               authenticated hub command (1 sound, 0 silence)

Actions, in the order the shell must carry them out (siren first):
  ("siren", pattern)        "alarm" (repeating temporal-3), "off", "chirp", "chirp2", "test"
  ("send", frame_type, body)
  ("self_test",)            run the chamber/siren/radio checks, then feed test_done
  ("persist",)              baseline or installation data changed: write them to flash
  ("next_sample", seconds)  last action
"""
import struct

from anju import battery

UNKNOWN = -1

# frame types (docs/protocol.md, 0x30-0x3F smoke sensor)
T_SMOKE = 0x30
T_SMOKE_STATUS = 0x31
T_HUSH = 0x32
T_SELF_TEST = 0x33
T_FAULT = 0x34
T_BATTERY = 0x12
T_BOOT = 0x01
T_CMD_INTERCONNECT = 0x38  # hub -> device
OBJ_SMOKE = 0x29  # BTHome v2 binary "smoke"

# smoke levels (Matter SmokeState: normal, warning, critical)
NORMAL = 0
WARNING = 1
ALARM = 2

CAUSE_CHAMBER = 0
CAUSE_INTERCONNECT = 1

# status flags
F_ALARM = 0x01
F_WARNING = 0x02
F_MUTED = 0x04
F_TESTING = 0x08
F_FAULT = 0x10
F_EOS = 0x20
F_LOW_BATTERY = 0x40
F_INTERCONNECT = 0x80

FAULT_NONE = 0
FAULT_CHAMBER = 1
FAULT_CONTAMINATION = 2
FAULT_END_OF_SERVICE = 3

HUSH_REFUSED = 0
HUSH_MUTED = 1
HUSH_ENDED = 2

# alarm threshold (counts above the clean-air baseline) per sensitivity level
ALARM_COUNTS = {1: 2400, 2: 3200, 3: 4000}  # 1 high, 2 normal, 3 low


class SmokeConfig:
    def __init__(self, sensitivity=2, confirm=4, clear=5, sample_s=8, fast_s=1,
                 hush_s=600, lifetime_s=10 * 365 * 86400, heartbeat_s=3600,
                 empty_mv=2400, full_mv=3000, low_mv=2600, chirp_s=60,
                 drift_window=360, drift_step=8, comp_limit=4000,
                 lit_min=300, lit_max=62000, dark_max=20000, fault_confirm=3,
                 calibration=8, fw=(0, 1)):
        if sensitivity not in ALARM_COUNTS:
            raise ValueError("sensitivity must be 1 (high), 2 (normal) or 3 (low)")
        if confirm < 2 or clear < 1:
            raise ValueError("confirm must be at least 2 samples, clear at least 1")
        if fast_s < 1 or sample_s < fast_s:
            raise ValueError("sample_s must be at least fast_s >= 1")
        if full_mv <= empty_mv:
            raise ValueError("full_mv must be above empty_mv")
        self.sensitivity = sensitivity
        self.alarm = ALARM_COUNTS[sensitivity]
        self.warning = self.alarm * 6 // 10   # pre-alarm
        self.clear_alarm = self.alarm * 7 // 10  # hysteresis
        self.clear_warning = self.warning * 7 // 10
        self.rise = self.warning // 2   # sample fast from here
        self.hush_max = self.alarm * 2  # "high level": hush refused above
        self.clean_band = self.warning // 3  # baseline learns only below this
        self.confirm = confirm
        self.clear = clear
        self.sample_s = sample_s
        self.fast_s = fast_s
        self.hush_s = hush_s
        self.lifetime_s = lifetime_s
        self.heartbeat_s = heartbeat_s
        self.empty_mv = empty_mv
        self.full_mv = full_mv
        self.low_mv = low_mv
        self.chirp_s = chirp_s
        self.drift_window = drift_window
        self.drift_step = drift_step
        self.comp_limit = comp_limit
        self.lit_min = lit_min
        self.lit_max = lit_max
        self.dark_max = dark_max
        self.fault_confirm = fault_confirm
        self.calibration = calibration
        self.fw = fw

    def confirm_s(self):
        """Longest time from a threshold crossing to the alarm decision."""
        return self.sample_s + (self.confirm - 1) * self.fast_s


_FIELDS = ("level", "cause", "above", "below", "muted_until", "refused", "testing",
           "interconnect", "fault", "fault_n", "eos", "low", "battery_step",
           "last_chirp", "last_heartbeat", "installed", "factory", "baseline",
           "win_n", "win_sum", "net", "prev_net", "cal_n", "cal_sum", "reported")


class SmokeState:
    """Everything the alarm remembers between samples (RAM; the baseline, the
    factory reading and the installation time also go to flash on `persist`)."""

    __slots__ = _FIELDS

    def __init__(self, installed=UNKNOWN, factory=UNKNOWN, baseline=UNKNOWN):
        self.level = NORMAL
        self.cause = CAUSE_CHAMBER
        self.above = 0          # consecutive samples at or above the next level
        self.below = 0          # consecutive samples under the hysteresis level
        self.muted_until = 0    # 0: not muted
        self.refused = 0
        self.testing = 0
        self.interconnect = 0   # 1: sounding because the hub relayed an alarm
        self.fault = FAULT_NONE
        self.fault_n = 0
        self.eos = 0
        self.low = 0
        self.battery_step = UNKNOWN
        self.last_chirp = UNKNOWN
        self.last_heartbeat = UNKNOWN
        self.installed = installed
        self.factory = factory  # clean-air lit-dark reading at installation
        self.baseline = baseline
        self.win_n = 0
        self.win_sum = 0
        self.net = 0
        self.prev_net = 0
        self.cal_n = 0
        self.cal_sum = 0
        self.reported = UNKNOWN  # last level sent in a SMOKE frame

    def copy(self):
        s = SmokeState()
        for f in _FIELDS:
            setattr(s, f, getattr(self, f))
        return s

    def sounding(self, now):
        return (self.level == ALARM and self.muted_until == 0) or self.interconnect == 1

    def muted(self, now):
        # a hush lasts until the sample that sees its end (that sample reports it)
        return self.muted_until != 0


# config.json `smoke` keys: (default, lowest, highest)
OPTIONS = {"sensitivity": (2, 1, 3), "confirm": (4, 2, 20), "sample_s": (8, 1, 60),
           "fast_s": (1, 1, 10), "hush_s": (600, 30, 900), "lifetime_days": (3650, 1, 7300),
           "lifetime_s": (0, 0, 7300 * 86400), "chirp_s": (60, 10, 3600),
           "drift_window": (360, 1, 100000), "cmd_poll_ms": (500, 50, 60000),
           "link_retry_s": (5, 1, 3600)}
POWER = ("mains", "battery")


def config_from(d, heartbeat_s=3600, where="config.json"):
    """The `smoke` section of config.json -> (SmokeConfig, options dict).

    Raises ValueError naming the key and the allowed values."""
    o = d.get("smoke")
    if o is None:
        o = {}
    if not isinstance(o, dict):
        raise ValueError("%s: key 'smoke' must be an object" % where)
    opts = {}
    for key, v in o.items():
        if key == "power":
            if v not in POWER:
                raise ValueError("%s: smoke.power is '%s'; allowed: %s" % (where, v, ", ".join(POWER)))
            continue
        if key not in OPTIONS:
            raise ValueError("%s: unknown key smoke.%s; known: power, %s"
                             % (where, key, ", ".join(sorted(OPTIONS))))
        lo, hi = OPTIONS[key][1], OPTIONS[key][2]
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError("%s: smoke.%s must be an integer %d..%d" % (where, key, lo, hi))
    for key, spec in OPTIONS.items():
        opts[key] = o.get(key, spec[0])
    opts["power"] = o.get("power", "mains")
    lifetime = opts["lifetime_s"] or opts["lifetime_days"] * 86400
    cfg = SmokeConfig(sensitivity=opts["sensitivity"], confirm=opts["confirm"],
                      sample_s=opts["sample_s"], fast_s=opts["fast_s"], hush_s=opts["hush_s"],
                      lifetime_s=lifetime, heartbeat_s=heartbeat_s, chirp_s=opts["chirp_s"],
                      drift_window=opts["drift_window"])
    return cfg, opts


def contamination(state, cfg):
    """How much of the drift compensation range the baseline used, 0..100 %."""
    if state.factory == UNKNOWN or state.baseline == UNKNOWN:
        return 0
    drift = state.baseline - state.factory
    if drift <= 0:
        return 0
    return min(100, drift * 100 // cfg.comp_limit)


battery_percent = battery.percent


def flags(state, now):
    f = 0
    if state.level == ALARM:
        f |= F_ALARM
    elif state.level == WARNING:
        f |= F_WARNING
    if state.muted(now):
        f |= F_MUTED
    if state.testing:
        f |= F_TESTING
    if state.fault != FAULT_NONE:
        f |= F_FAULT
    if state.eos:
        f |= F_EOS
    if state.low:
        f |= F_LOW_BATTERY
    if state.interconnect:
        f |= F_INTERCONNECT
    return f


def smoke_body(level, cause, net, threshold):
    return struct.pack(">BBHH", level, cause, max(0, min(net, 0xFFFF)), threshold)


def status_body(state, now, cfg, pct, mv, queued):
    return struct.pack(">BBHBBH", flags(state, now), pct, mv, contamination(state, cfg),
                       cfg.sensitivity, min(queued, 0xFFFF))


def _send(actions, mtype, body):
    actions.append(("send", mtype, body))


def _siren_for(state, now):
    return "alarm" if state.sounding(now) else "off"


def handle(state, event, now, cfg, queued=0):
    """Apply one event at device time `now` (seconds); return (state, actions)."""
    kind = event[0]
    s = state.copy()
    actions = []
    if kind == "boot":
        _send(actions, T_BOOT, struct.pack(">BBB", event[1], cfg.fw[0], cfg.fw[1]))
        if s.installed == UNKNOWN:
            s.installed = now
            actions.append(("persist",))
        return s, actions
    if kind == "sample":
        return _sample(s, event, now, cfg, queued, actions)
    was_sounding = state.sounding(now)
    if kind == "button":
        _button(s, now, cfg, actions)
    elif kind == "test_done":
        s.testing = 0
        bits = (1 if event[1] else 0) | (2 if event[2] else 0) | (4 if event[3] else 0)
        _send(actions, T_SELF_TEST, struct.pack(">BB", bits, 1 if bits == 7 else 0))
    elif kind == "interconnect":
        sound = 1 if event[1] else 0
        if sound != s.interconnect:
            s.interconnect = sound
            if s.level != ALARM:
                _send(actions, T_SMOKE, smoke_body(ALARM if sound else s.level,
                                                   CAUSE_INTERCONNECT, s.net, cfg.alarm))
    else:
        raise ValueError("unknown event %r" % (kind,))
    if s.sounding(now) != was_sounding:
        actions.insert(0, ("siren", _siren_for(s, now)))
    actions.append(("next_sample", cfg.fast_s if _fast(s, now, cfg) else cfg.sample_s))
    return s, actions


def _button(s, now, cfg, actions):
    if s.level == ALARM and not s.muted(now):
        if s.net >= cfg.hush_max:
            s.refused += 1
            _send(actions, T_HUSH, struct.pack(">BH", HUSH_REFUSED, min(s.net, 0xFFFF)))
        else:
            s.muted_until = now + cfg.hush_s
            _send(actions, T_HUSH, struct.pack(">BH", HUSH_MUTED, min(s.net, 0xFFFF)))
    elif s.interconnect:
        # a remote alarm silenced here (the source keeps sounding)
        s.interconnect = 0
        _send(actions, T_HUSH, struct.pack(">BH", HUSH_MUTED, min(s.net, 0xFFFF)))
    elif s.level == WARNING and not s.muted(now):
        s.muted_until = now + cfg.hush_s  # pre-emptive hush (cooking)
        _send(actions, T_HUSH, struct.pack(">BH", HUSH_MUTED, min(s.net, 0xFFFF)))
    elif not s.testing and not s.muted(now):
        s.testing = 1
        actions.append(("self_test",))


def _fast(s, now, cfg):
    return (s.level != NORMAL or s.interconnect or s.net >= cfg.rise
            or s.net - s.prev_net >= cfg.rise // 2 or s.above > 0 or s.muted(now))


def _sample(s, event, now, cfg, queued, actions):
    _, dark, lit, mv = event
    was_sounding = s.sounding(now)
    raw = lit - dark
    # ---- hardware fault: chamber reading out of range -------------------------
    bad = lit < dark + cfg.lit_min or lit > cfg.lit_max or dark > cfg.dark_max
    if bad:
        s.fault_n += 1
        if s.fault_n >= cfg.fault_confirm and s.fault != FAULT_CHAMBER:
            s.fault = FAULT_CHAMBER
            _send(actions, T_FAULT, struct.pack(">BB", FAULT_CHAMBER, 1))
    else:
        s.fault_n = 0
        if s.fault == FAULT_CHAMBER:
            s.fault = FAULT_NONE
            _send(actions, T_FAULT, struct.pack(">BB", FAULT_CHAMBER, 0))
    if not bad:
        _chamber(s, raw, now, cfg, actions)
    # ---- hush ends on its own -----------------------------------------------
    if s.muted_until != 0 and now >= s.muted_until:
        s.muted_until = 0
        _send(actions, T_HUSH, struct.pack(">BH", HUSH_ENDED, min(s.net, 0xFFFF)))
    if s.muted(now) and s.net >= cfg.hush_max and s.level == ALARM:
        s.muted_until = 0  # smoke grew past the high level: the siren comes back
        _send(actions, T_HUSH, struct.pack(">BH", HUSH_ENDED, min(s.net, 0xFFFF)))
    # ---- end of service ------------------------------------------------------
    if not s.eos and s.installed != UNKNOWN and now - s.installed >= cfg.lifetime_s:
        s.eos = 1
        _send(actions, T_FAULT, struct.pack(">BB", FAULT_END_OF_SERVICE, 1))
    # ---- battery ---------------------------------------------------------------
    pct = battery_percent(mv, cfg)
    low = 1 if mv <= cfg.low_mv else 0
    step = pct // 10
    if step != s.battery_step or low != s.low:
        s.battery_step = step
        s.low = low
        _send(actions, T_BATTERY, struct.pack(">BH", pct, mv))
    # ---- siren: alarm changes first, then trouble chirps -----------------------
    sounding = s.sounding(now)
    if sounding != was_sounding:
        actions.insert(0, ("siren", _siren_for(s, now)))
    elif not sounding and (s.low or s.eos or s.fault != FAULT_NONE):
        if s.last_chirp == UNKNOWN or now - s.last_chirp >= cfg.chirp_s or now < s.last_chirp:
            s.last_chirp = now
            actions.append(("siren", "chirp2" if s.eos or s.fault else "chirp"))
    # ---- supervision -------------------------------------------------------------
    if s.last_heartbeat == UNKNOWN or now - s.last_heartbeat >= cfg.heartbeat_s \
            or now < s.last_heartbeat:
        s.last_heartbeat = now
        _send(actions, T_SMOKE_STATUS, status_body(s, now, cfg, pct, mv, queued))
    actions.append(("next_sample", cfg.fast_s if _fast(s, now, cfg) else cfg.sample_s))
    return s, actions


def _chamber(s, raw, now, cfg, actions):
    if s.baseline == UNKNOWN:
        # installation: learn the clean-air reading before judging anything
        s.cal_n += 1
        s.cal_sum += raw
        if s.cal_n >= cfg.calibration:
            s.factory = s.cal_sum // s.cal_n
            s.baseline = s.factory
            actions.append(("persist",))
        return
    s.prev_net = s.net
    net = raw - s.baseline
    if 0 < s.baseline < s.factory:
        # the clean-air reading fell: the LED (or photodiode) lost output, and
        # smoke scatters that much less; scale back to nominal sensitivity
        net = net * s.factory // s.baseline
    s.net = net
    _track_baseline(s, raw, cfg, actions)
    if s.level == ALARM:
        if net < cfg.clear_alarm:
            s.below += 1
            if s.below >= cfg.clear:
                s.level = WARNING if net >= cfg.warning else NORMAL
                s.below = 0
                s.above = 0
                s.muted_until = 0
                _report(s, cfg, actions)
        else:
            s.below = 0
        return
    if net >= cfg.alarm:
        s.above += 1
        if s.above >= cfg.confirm:
            s.level = ALARM
            s.above = 0
            s.below = 0
            if s.muted_until != 0 and net >= cfg.hush_max:
                s.muted_until = 0
            _report(s, cfg, actions)
        return
    if s.level == WARNING:
        s.above = 0
        if net < cfg.clear_warning:
            s.below += 1
            if s.below >= cfg.clear:
                s.level = NORMAL
                s.below = 0
                s.muted_until = 0
                _report(s, cfg, actions)
        else:
            s.below = 0
        return
    if net >= cfg.warning:
        s.above += 1
        if s.above >= 2:
            s.level = WARNING
            s.above = 0
            s.below = 0
            _report(s, cfg, actions)
        return
    s.above = 0


def _report(s, cfg, actions):
    if s.reported != s.level:
        s.reported = s.level
        _send(actions, T_SMOKE, smoke_body(s.level, CAUSE_CHAMBER, s.net, cfg.alarm))


def _track_baseline(s, raw, cfg, actions):
    """Follow dust and drift slowly; a single smoky sample voids the window."""
    if s.net >= cfg.clean_band or s.level != NORMAL:
        s.win_n = 0
        s.win_sum = 0
        return
    s.win_n += 1
    s.win_sum += raw
    if s.win_n < cfg.drift_window:
        return
    mean = s.win_sum // s.win_n
    s.win_n = 0
    s.win_sum = 0
    step = mean - s.baseline
    if step > cfg.drift_step:
        step = cfg.drift_step
    elif step < -cfg.drift_step:
        step = -cfg.drift_step
    if step == 0:
        return
    before = contamination(s, cfg)
    s.baseline += step
    actions.append(("persist",))
    after = contamination(s, cfg)
    if after >= 100 and before < 100 and s.fault == FAULT_NONE:
        s.fault = FAULT_CONTAMINATION
        _send(actions, T_FAULT, struct.pack(">BB", FAULT_CONTAMINATION, 1))
    elif after // 10 != before // 10:
        s.last_heartbeat = UNKNOWN  # report the new contamination step now


def persisted(state):
    """What goes to flash: (installed, factory, baseline)."""
    return state.installed, state.factory, state.baseline
