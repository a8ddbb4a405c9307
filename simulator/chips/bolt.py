"""The lock's H-bridge, DC gear motor and bolt (docs/simulator.md, "The bolt").

The firmware drives the H-bridge inputs `motor_a` and `motor_b` (outputs the
model watches): A high throws the bolt towards locked, B high retracts it,
both low coast and both high brake. The gearbox is a worm drive: the bolt
moves only while exactly one input is high, at 1/travel_s of its travel per
second (0.8 s end to end), and stops where it is otherwise. Its position
(0.0 retracted .. 1.0 thrown) is integrated lazily in virtual time: the state
carries the time it caught up to, and the model catches up before a motor
input changes and before every reading.

Inputs it drives: the end stops `bolt_locked` / `bolt_unlocked`, low within
`end` of that end (the switches close just before the mechanical end, so a
driver that stops at the switch never stalls). Analog: the motor current on
`motor_adc` through a shunt amplifier (`mv_per_a`, full scale from the
board's ADC): an inrush from the stall current down to the running current
over `inrush_s` after the motor starts, `run_ma` while the bolt moves, the
stall current `stall_ma` while it is driven and cannot move (obstructed, or
at its mechanical end), 0 when off or braking.

The world (through SimDevice.change_chip): `obstruct(now, until, direction)`
stops the bolt where it is in that direction (1 throwing, the default: a
misaligned strike plate; -1 retracting; 0 both), `clear(now)` ends it;
`key_turn(now, to, duration_s)` moves it to "locked" / "unlocked" by the
mechanical key without the motor; `force(now, pos)` pushes it to `pos` at
once (the bolt forced back with a tool).

Written for MicroPython and CPython alike: it runs in the board too.
"""
KIND = "bolt"


class Chip:
    def __init__(self, motor_a, motor_b, locked, unlocked, adc_pin, travel_s=0.8,
                 mv_per_a=2000, full_scale_mv=3300, run_ma=150, stall_ma=1200,
                 inrush_s=0.1, end=0.03, pos=0.0):
        self.pins = [motor_a, motor_b, locked, unlocked, adc_pin]
        self.travel_s = travel_s
        self.mv_per_a = mv_per_a
        self.full_scale_mv = full_scale_mv
        self.run_ma = run_ma
        self.stall_ma = stall_ma
        self.inrush_s = inrush_s
        self.end = end
        self.pos = pos
        self.t = 0.0          # the time the position caught up to
        self.a = 0            # the H-bridge inputs as last driven
        self.b = 0
        self.since = 0.0      # when the motor last started in its direction
        self.block = None     # [from, until or None, direction]
        self.manual = None    # [until, target, rate per second]: a key turning it

    @classmethod
    def for_board(cls, board, **kw):
        p = board["pins"]
        kw.setdefault("full_scale_mv", board["adc"]["full_scale_mv"])
        return cls(p["motor_a"], p["motor_b"], p["bolt_locked"], p["bolt_unlocked"],
                   p["motor_adc"], **kw)

    # ---- state -------------------------------------------------------------
    def state(self):
        return {"kind": KIND, "pins": self.pins, "travel_s": self.travel_s,
                "mv_per_a": self.mv_per_a, "full_scale_mv": self.full_scale_mv,
                "run_ma": self.run_ma, "stall_ma": self.stall_ma, "inrush_s": self.inrush_s,
                "end": self.end, "pos": self.pos, "t": self.t, "a": self.a, "b": self.b,
                "since": self.since, "block": self.block, "manual": self.manual}

    @classmethod
    def restore(cls, st):
        p = st["pins"]
        c = cls(p[0], p[1], p[2], p[3], p[4], st["travel_s"], st["mv_per_a"],
                st["full_scale_mv"], st["run_ma"], st["stall_ma"], st["inrush_s"],
                st["end"], st["pos"])
        c.t = st["t"]
        c.a = st["a"]
        c.b = st["b"]
        c.since = st["since"]
        c.block = st["block"]
        c.manual = st["manual"]
        return c

    def inputs(self):
        return (self.pins[2], self.pins[3])

    def analog(self):
        return (self.pins[4],)

    def outputs(self):
        return (self.pins[0], self.pins[1])

    # ---- physics -------------------------------------------------------------
    def direction(self):
        if self.a and not self.b:
            return 1
        if self.b and not self.a:
            return -1
        return 0

    def _blocked(self, t, d):
        blk = self.block
        if blk is None or d == 0 or t < blk[0] or (blk[1] is not None and t >= blk[1]):
            return False
        return blk[2] == 0 or blk[2] == d

    def catch_up(self, now):
        """Move the bolt from self.t to `now` with the inputs as they were."""
        t = self.t
        while t < now:
            nxt = now
            for edge in (self.block[0] if self.block else None,
                         self.block[1] if self.block else None,
                         self.manual[0] if self.manual else None):
                if edge is not None and t < edge < nxt:
                    nxt = edge
            dt = nxt - t
            m = self.manual
            if m is not None and t < m[0]:
                step = m[2] * dt
                if self.pos < m[1]:
                    self.pos = min(m[1], self.pos + step)
                else:
                    self.pos = max(m[1], self.pos - step)
            else:
                d = self.direction()
                if d and not self._blocked(t, d):
                    self.pos = min(1.0, max(0.0, self.pos + d * dt / self.travel_s))
            t = nxt
        if self.manual is not None and now >= self.manual[0]:
            self.manual = None
        if self.block is not None and self.block[1] is not None and now >= self.block[1]:
            self.block = None
        if now > self.t:
            self.t = now

    def moving(self, now):
        d = self.direction()
        if d == 0 or self._blocked(now, d):
            return False
        return self.pos < 1.0 if d > 0 else self.pos > 0.0

    def current_ma(self, now):
        self.catch_up(now)
        d = self.direction()
        if d == 0:
            return 0
        if not self.moving(now):
            return self.stall_ma
        run = now - self.since
        if run < self.inrush_s:
            return int(self.run_ma + (self.stall_ma - self.run_ma) * (1 - run / self.inrush_s))
        return self.run_ma

    # ---- the board's side ------------------------------------------------------
    def pin_written(self, pin_id, level, now, levels):
        self.catch_up(now)
        before = self.direction()
        if pin_id == self.pins[0]:
            self.a = level
        elif pin_id == self.pins[1]:
            self.b = level
        after = self.direction()
        if after != before and after != 0:
            self.since = now

    def level(self, pin_id, now, levels):
        self.catch_up(now)
        if pin_id == self.pins[2]:
            return 0 if self.pos >= 1.0 - self.end else 1
        return 0 if self.pos <= self.end else 1

    def adc(self, pin_id, now, levels):
        mv = self.current_ma(now) * self.mv_per_a / 1000
        return max(0, min(65535, int(mv * 65535 / self.full_scale_mv)))

    # ---- the world -------------------------------------------------------------
    def obstruct(self, now, until=None, direction=1):
        self.catch_up(now)
        self.block = [now, until, direction]

    def clear(self, now):
        self.catch_up(now)
        self.block = None

    def key_turn(self, now, to, duration_s=0.6):
        self.catch_up(now)
        target = 1.0 if to == "locked" else 0.0
        if to not in ("locked", "unlocked"):
            raise ValueError("key_turn to 'locked' or 'unlocked'")
        self.manual = [now + duration_s, target, 1.0 / duration_s]

    def force(self, now, pos):
        self.catch_up(now)
        self.pos = min(1.0, max(0.0, pos))
