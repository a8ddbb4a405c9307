"""Door-magnet sensor state machine: handle(state, event, now) -> (state, actions).

Pure. The shell samples the reed switch (debounced), the tamper switch and the
battery, then feeds one event per wake; the actions say which frames to send and
how long to sleep. It never touches pins, radios or flash.

Events:
  ("boot", reset_cause)                       cold start (not a deep-sleep wake)
  ("sample", is_open, case_open, battery_mv)  the inputs as read on this wake

Actions:
  ("send", frame_type, body)   in the order they must be delivered
  ("sleep", seconds)           last action: deep sleep until the next heartbeat,
                               or earlier on a reed or tamper change
"""
from anju import battery, frame

UNKNOWN = -1


class DoorConfig:
    def __init__(self, heartbeat_s=3600, empty_mv=2200, full_mv=3000, low_percent=20,
                 fw=(0, 1)):
        if heartbeat_s < 10:
            raise ValueError("heartbeat_s must be at least 10")
        if full_mv <= empty_mv:
            raise ValueError("full_mv must be above empty_mv")
        self.heartbeat_s = heartbeat_s
        self.empty_mv = empty_mv
        self.full_mv = full_mv
        self.low_percent = low_percent
        self.fw = fw


class DoorState:
    """What the sensor last reported; kept in RTC memory across deep sleep."""

    __slots__ = ("door", "tamper", "battery_step", "low", "last_heartbeat")

    def __init__(self, door=UNKNOWN, tamper=UNKNOWN, battery_step=UNKNOWN, low=0,
                 last_heartbeat=UNKNOWN):
        self.door = door
        self.tamper = tamper
        self.battery_step = battery_step
        self.low = low
        self.last_heartbeat = last_heartbeat

    def copy(self):
        return DoorState(self.door, self.tamper, self.battery_step, self.low,
                         self.last_heartbeat)

    def as_tuple(self):
        return (self.door, self.tamper, self.battery_step, self.low, self.last_heartbeat)


battery_percent = battery.percent


def heartbeat_flags(state):
    flags = 0
    if state.door == 1:
        flags |= frame.HB_OPEN
    if state.tamper == 1:
        flags |= frame.HB_TAMPER
    if state.low:
        flags |= frame.HB_BATTERY_LOW
    return flags


def handle(state, event, now, cfg, queued=0):
    """Apply one event at device time `now` (seconds); return (state, actions)."""
    kind = event[0]
    s = state.copy()
    actions = []
    if kind == "boot":
        actions.append(("send", frame.T_BOOT, frame.boot_body(event[1], cfg.fw[0], cfg.fw[1])))
        return s, actions
    if kind != "sample":
        raise ValueError("unknown event %r" % (kind,))
    _, is_open, case_open, mv = event
    door = 1 if is_open else 0
    if door != s.door:
        s.door = door
        actions.append(("send", frame.T_DOOR, frame.door_body(door)))
    tamper = 1 if case_open else 0
    if tamper != s.tamper:
        s.tamper = tamper
        actions.append(("send", frame.T_TAMPER, b"\x01" if tamper else b"\x00"))
    pct = battery_percent(mv, cfg)
    low = 1 if pct <= cfg.low_percent else 0
    step = pct // 10
    if step != s.battery_step or low != s.low:
        # report on every 10 % step and when crossing the low threshold
        s.battery_step = step
        s.low = low
        actions.append(("send", frame.T_BATTERY, frame.battery_body(pct, mv)))
    due = s.last_heartbeat == UNKNOWN or now - s.last_heartbeat >= cfg.heartbeat_s \
        or now < s.last_heartbeat
    if due:
        s.last_heartbeat = now
        actions.append(("send", frame.T_HEARTBEAT,
                        frame.heartbeat_body(heartbeat_flags(s), pct, mv, queued)))
    actions.append(("sleep", max(1, s.last_heartbeat + cfg.heartbeat_s - now)))
    return s, actions
