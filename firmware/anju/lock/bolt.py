"""Bolt and door supervision: `handle(state, event, now, cfg) -> (state, actions)`.

Pure (no pins, no clock): the shell samples the motor current, the end stops
and the door reed and feeds them in; the actions say what the H-bridge does
and what the app reports (docs/smart_lock.md, "Bolt and door").

Time: `now` is milliseconds from `time.ticks_ms()` (it wraps at 2**30 on the
esp32 and rp2 ports); the core only takes differences of two times
(`ticks_diff`), so a stamp must be fresher than 2**29 ms (6.2 days). The app
feeds at least one event per wake (a `tick` on a timer wake): stamps older
than their windows are dropped then.

Events:
  ("boot", at_locked, at_unlocked, door_open)   the inputs as read at start
  ("lock", method) / ("unlock", method)         the app's decision (method as in
                                                ACCESS); an unlock authorises the
                                                door to open for grace_ms (and
                                                turns a lock run back)
  ("handle",)                                   the inside handle / exit button
  ("sample", current_ma, at_locked, at_unlocked) one reading while the motor runs
                                                (every ~10 ms); while idle, the
                                                end stops (mechanical key)
  ("door", is_open)                             the reed changed (debounced)
  ("tick",)                                     a timer wake (relock, ajar)

Actions, in order:
  ("motor", dir)              1 throw (A high), -1 retract (B high), 0 off
  ("bolt_state", code)        UNKNOWN .. JAMMED (LOCK_STATE's bolt byte)
  ("door_state", code)        CLOSED, OPEN, AJAR, FORCED (LOCK_STATE's door byte)
  ("forced", cause)           FORCED_OPENED (the door opened with the bolt thrown
                              and no unlock), FORCED_BOLT (the bolt pushed off
                              its locked end and left between the ends)
  ("alarm", kind, active)     ALARM_JAMMED, ALARM_AJAR; 1 raised, 0 cleared
  ("mechanical_key", code)    the bolt reached LOCKED / UNLOCKED without the motor
  ("relock",)                 the auto-relock starts a lock run (the app logs it)
  ("refused", reason)         "busy" (a run is on) or "door_open" (a lock with the
                              door open would throw the bolt into the air)

`running(state)` says whether a motor run is on (the shell samples until it
is not); `next_due(state, now, cfg)` is the ms until the core needs a tick.
"""

# bolt states (LOCK_STATE)
UNKNOWN = 0
LOCKED = 1
UNLOCKED = 2
LOCKING = 3
UNLOCKING = 4
JAMMED = 5

# door states (LOCK_STATE)
DOOR_UNKNOWN = 0
CLOSED = 1
OPEN = 2
AJAR = 3
FORCED = 4

# FORCED causes
FORCED_OPENED = 1
FORCED_BOLT = 2

# LOCK_ALARM kinds handled here
ALARM_JAMMED = 2
ALARM_AJAR = 3

# run phases
_IDLE = 0
_DRIVE = 1     # towards the target
_REVERSE = 2   # stalled: back to where it came from, then jammed
_ABORT = 3     # the door opened while locking: back to unlocked, not a jam

_PERIOD = 1 << 30
_HALF = 1 << 29


def ticks_diff(a, b):
    """a - b for ms ticks that wrap at 2**30 (as time.ticks_diff)."""
    return ((a - b + _HALF) & (_PERIOD - 1)) - _HALF


class BoltConfig:
    def __init__(self, inrush_ms=150, stall_ma=600, stall_ms=300, travel_ms=5000,
                 relock_s=30, ajar_s=60, grace_ms=5000, key_ms=3000):
        if inrush_ms < 0 or stall_ms <= 0 or stall_ma <= 0:
            raise ValueError("inrush_ms, stall_ms and stall_ma must be positive")
        if travel_ms <= inrush_ms + stall_ms:
            raise ValueError("travel_ms must exceed inrush_ms + stall_ms")
        if not 0 <= relock_s <= 3600:
            raise ValueError("relock_s must be 0..3600")
        if not 10 <= ajar_s <= 3600:
            raise ValueError("ajar_s must be 10..3600")
        self.inrush_ms = inrush_ms
        self.stall_ma = stall_ma
        self.stall_ms = stall_ms
        self.travel_ms = travel_ms
        self.relock_s = relock_s
        self.ajar_s = ajar_s
        self.grace_ms = grace_ms
        self.key_ms = key_ms


class BoltState:
    __slots__ = ("bolt", "door", "at_locked", "at_unlocked", "door_open",
                 "dir", "phase", "t0", "stall_t", "jam_alarm", "ajar_alarm",
                 "auth_t", "handle_t", "open_t", "relock_t", "left_t", "bolt_forced")

    def __init__(self):
        self.bolt = UNKNOWN
        self.door = DOOR_UNKNOWN
        self.at_locked = False
        self.at_unlocked = False
        self.door_open = False
        self.dir = 0            # the motor's direction while a run is on
        self.phase = _IDLE
        self.t0 = 0             # when the motor started in this direction
        self.stall_t = None     # first reading over stall_ma (after blanking)
        self.jam_alarm = False
        self.ajar_alarm = False
        self.auth_t = None      # last unlock (credential, remote, handle, key)
        self.handle_t = None    # last press of the inside handle
        self.open_t = None      # when the door opened
        self.relock_t = None    # when the auto-relock is due
        self.left_t = None      # the bolt left its locked end without the motor
        self.bolt_forced = False  # ... and stayed between the ends for key_ms


def running(state):
    return state.phase != _IDLE


def _recent(t, now, window):
    return t is not None and ticks_diff(now, t) <= window


def _start(state, direction, now, out):
    state.dir = direction
    state.phase = _DRIVE
    state.t0 = now
    state.stall_t = None
    state.relock_t = None
    out.append(("motor", direction))
    out.append(("bolt_state", LOCKING if direction > 0 else UNLOCKING))


def _set_bolt(state, code, out):
    if state.bolt != code:
        state.bolt = code
        out.append(("bolt_state", code))


def _arm_relock(state, now, cfg):
    if cfg.relock_s > 0 and state.door == CLOSED and state.bolt == UNLOCKED:
        state.relock_t = (now + cfg.relock_s * 1000) & (_PERIOD - 1)
    else:
        state.relock_t = None


def _jammed(state, out):
    state.phase = _IDLE
    state.dir = 0
    out.append(("motor", 0))
    state.bolt = JAMMED
    out.append(("bolt_state", JAMMED))
    if not state.jam_alarm:
        state.jam_alarm = True
        out.append(("alarm", ALARM_JAMMED, 1))


def _reverse(state, phase, now, out):
    state.dir = -state.dir
    state.phase = phase
    state.t0 = now
    state.stall_t = None
    out.append(("motor", 0))
    out.append(("motor", state.dir))
    if phase == _ABORT:
        out.append(("bolt_state", UNLOCKING))
        state.bolt = UNLOCKING


def _run_sample(state, current_ma, now, cfg, out):
    at_target = state.at_locked if state.dir > 0 else state.at_unlocked
    if at_target:
        end = LOCKED if state.dir > 0 else UNLOCKED
        if state.phase == _REVERSE:
            _jammed(state, out)
            return
        state.phase = _IDLE
        state.dir = 0
        out.append(("motor", 0))
        state.bolt = end
        out.append(("bolt_state", end))
        if state.jam_alarm:
            state.jam_alarm = False
            out.append(("alarm", ALARM_JAMMED, 0))
        _arm_relock(state, now, cfg)
        return
    elapsed = ticks_diff(now, state.t0)
    stalled = elapsed >= cfg.travel_ms
    if not stalled and elapsed >= cfg.inrush_ms:
        if current_ma > cfg.stall_ma:
            if state.stall_t is None:
                state.stall_t = now
            stalled = ticks_diff(now, state.stall_t) >= cfg.stall_ms
        else:
            state.stall_t = None
    if not stalled:
        return
    if state.phase == _DRIVE:
        _reverse(state, _REVERSE, now, out)
    else:
        _jammed(state, out)  # stuck on the way back too


def _ends(state, at_locked, at_unlocked, now, cfg, out):
    """End stops while the motor is off: the bolt moved by hand (a key)."""
    was_locked, was_unlocked = state.at_locked, state.at_unlocked
    state.at_locked, state.at_unlocked = at_locked, at_unlocked
    if at_locked or at_unlocked:
        state.bolt_forced = False
    if at_locked and not was_locked:
        state.left_t = None
        state.relock_t = None
        if state.bolt != LOCKED:
            state.bolt = LOCKED
            out.append(("mechanical_key", LOCKED))
            out.append(("bolt_state", LOCKED))
    elif at_unlocked and not was_unlocked:
        state.left_t = None
        if state.bolt != UNLOCKED:
            inside = _recent(state.handle_t, now, cfg.grace_ms)
            state.bolt = UNLOCKED
            state.auth_t = now  # whoever turned it holds a key (or is inside)
            if not inside:
                out.append(("mechanical_key", UNLOCKED))
            out.append(("bolt_state", UNLOCKED))
            _arm_relock(state, now, cfg)
    elif not at_locked and not at_unlocked and (was_locked or was_unlocked):
        if was_locked and not _recent(state.handle_t, now, cfg.grace_ms):
            state.left_t = now  # off the locked end: a key turning, or the bolt forced
        _set_bolt(state, UNKNOWN, out)


def _door(state, is_open, now, cfg, out):
    if is_open == state.door_open and state.door != DOOR_UNKNOWN:
        return
    state.door_open = is_open
    if is_open:
        state.open_t = now
        state.relock_t = None
        thrown = (state.at_locked or state.bolt in (LOCKED, LOCKING)
                  or state.left_t is not None or state.bolt_forced)
        if thrown and not _recent(state.auth_t, now, cfg.grace_ms):
            state.door = FORCED
            out.append(("door_state", FORCED))
            out.append(("forced", FORCED_OPENED))
        else:
            state.door = OPEN
            out.append(("door_state", OPEN))
        if state.phase == _DRIVE and state.dir > 0:
            _reverse(state, _ABORT, now, out)  # never throw the bolt into an open door
    else:
        state.open_t = None
        state.door = CLOSED
        out.append(("door_state", CLOSED))
        if state.ajar_alarm:
            state.ajar_alarm = False
            out.append(("alarm", ALARM_AJAR, 0))
        if state.phase == _IDLE:
            _arm_relock(state, now, cfg)


def _timers(state, now, cfg, out):
    if state.auth_t is not None and not _recent(state.auth_t, now, cfg.grace_ms):
        state.auth_t = None
    if state.handle_t is not None and not _recent(state.handle_t, now, cfg.grace_ms):
        state.handle_t = None
    if (state.open_t is not None and not state.ajar_alarm
            and ticks_diff(now, state.open_t) >= cfg.ajar_s * 1000):
        state.ajar_alarm = True
        if state.door == OPEN:
            state.door = AJAR
            out.append(("door_state", AJAR))
        out.append(("alarm", ALARM_AJAR, 1))
    if state.left_t is not None and ticks_diff(now, state.left_t) >= cfg.key_ms:
        state.left_t = None
        if not (state.at_locked or state.at_unlocked):
            state.bolt_forced = True
            out.append(("forced", FORCED_BOLT))
    if state.relock_t is not None and ticks_diff(now, state.relock_t) >= 0:
        state.relock_t = None
        if state.phase == _IDLE and state.door == CLOSED and state.bolt == UNLOCKED:
            out.append(("relock",))
            _start(state, 1, now, out)


def handle(state, event, now, cfg):
    out = []
    kind = event[0]
    if kind == "sample":
        if state.phase != _IDLE:
            state.at_locked, state.at_unlocked = event[2], event[3]
            _run_sample(state, event[1], now, cfg, out)
        else:
            _ends(state, event[2], event[3], now, cfg, out)
    elif kind == "door":
        _door(state, bool(event[1]), now, cfg, out)
    elif kind == "lock" or kind == "unlock":
        direction = 1 if kind == "lock" else -1
        if direction < 0:
            state.auth_t = now
        if state.phase == _DRIVE and state.dir > 0 and direction < 0:
            _reverse(state, _ABORT, now, out)  # an unlock while (re)locking turns back
        elif state.phase != _IDLE:
            out.append(("refused", "busy"))
        elif direction > 0 and state.door_open:
            out.append(("refused", "door_open"))
        elif (state.at_locked if direction > 0 else state.at_unlocked):
            _set_bolt(state, LOCKED if direction > 0 else UNLOCKED, out)  # already there
            if direction < 0:
                _arm_relock(state, now, cfg)
        else:
            _start(state, direction, now, out)
    elif kind == "handle":
        state.auth_t = now
        state.handle_t = now
    elif kind == "boot":
        state.at_locked, state.at_unlocked = bool(event[1]), bool(event[2])
        state.bolt = LOCKED if state.at_locked else UNLOCKED if state.at_unlocked else UNKNOWN
        state.door_open = bool(event[3])
        state.door = OPEN if state.door_open else CLOSED
        state.open_t = now if state.door_open else None
        out.append(("bolt_state", state.bolt))
        out.append(("door_state", state.door))
        if state.phase == _IDLE:
            _arm_relock(state, now, cfg)
    elif kind != "tick":
        raise ValueError("unknown event %r" % (kind,))
    _timers(state, now, cfg, out)
    return state, out


def next_due(state, now, cfg):
    """Milliseconds until the core needs a `tick` (None: nothing pending)."""
    due = None
    if state.relock_t is not None:
        due = ticks_diff(state.relock_t, now)
    if state.open_t is not None and not state.ajar_alarm:
        left = ticks_diff(state.open_t, now) + cfg.ajar_s * 1000
        due = left if due is None or left < due else due
    if state.left_t is not None:
        left = ticks_diff(state.left_t, now) + cfg.key_ms
        due = left if due is None or left < due else due
    return None if due is None else max(0, due)
