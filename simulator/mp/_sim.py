"""The board's side of the channel to the simulator (runs in MicroPython).

The simulator owns the virtual clock and the world (pins driven from
outside, analog sources, the radio, the access point). This module keeps the
device's view of them between two blocking points and talks to the host over
two pipes (fd 3 in, fd 4 out). Every message is a 4-byte big-endian length and
a JSON object; docs/simulator.md lists them.

Only one side runs at a time: the host waits while the firmware runs, and the
firmware waits (in `block`) while the host advances the world.
"""
import gc
import json

_rd = None
_wr = None

rtc_offset = 0     # seconds the firmware set its clock away from the virtual clock (RTC.datetime)
now = 0.0          # virtual seconds since the simulator's epoch (the device's view)
boot = None        # the boot message
levels = {}        # pin id -> level, as the world and the firmware set them
adc = {}           # analog pin id -> raw u16 that holds until the next hand-over
chamber = None     # a smoke sensor's chamber model: (adc pin, IR LED pin, _chamber.Chamber)
_chamber = None    # the model's module (simulator/chamber.py), imported at the boot
irq_handlers = {}  # pin id -> (handler, pin object)
timers = []        # machine.Timer objects with a `due` virtual time
sockets = []       # sockets open in this boot; closed when it ends
horizon = 0.0      # nothing that could reach this device happens before this virtual time
synced = 0.0       # the simulator's clock when it last handed over
wifi_ok = True     # the access point is reachable
fault = None       # (host, port) of a misbehaving broker the device meets instead
heap_base = 0      # gc.mem_alloc() before the firmware ran
heap_peak = 0      # most live heap the firmware held, sampled at every message and sleep
heap_limit = 0     # the board's budget on this port (boards/*.json heap_bytes x factor)
_since_gc = 0
# Peripheral chips (simulator/chips/*.py) run in the board as `_chip_<kind>`,
# restored from the host's state at every hand-over and returned at every block:
chips = {}         # name -> chip model
derived = {}       # input pin id -> the chip that drives it (read before `levels`)
adc_models = {}    # analog pin id -> the chip that produces its reading
watch = {}         # output pin id -> chips told before the firmware changes its level
_chip_mods = {}    # kind -> module, imported at the boot
# machine.WDT (started by the firmware; a boot ends it): [virtual time it
# bites unless fed, its period, whether light sleep counts]. It resets the
# board with WDT_RESET when not fed for its period of running or sleeping;
# esp32 light sleep pauses it (the timer group's clock is gated), rp2 light
# sleep does not (ports/rp2/modmachine.c keeps the watchdog armed). Few names:
# each one is interned on the heap the firmware is measured on (wait and block
# spell out whether a sleep counts: a helper's one name more grew the lock
# probe's measured peak by a string-table block, about 6 KB).
wdt = None
# The `bluetooth` module's GATT events from the host (a central connected,
# wrote, ...): fn(events), run like an interrupt handler when they arrive
ble = None


class DeepSleep(SystemExit):
    """machine.deepsleep(): ends this boot (nothing runs after it on a chip)."""


class HeapExceeded(SystemExit):
    """The firmware held more live heap than its board's budget allows."""


class Reset(SystemExit):
    """machine.reset() (or the watchdog): ends this boot; the host boots it
    again with the reset cause in args[0] (HARD_RESET when none)."""


def watchdog(period_s=None, in_light=True):
    """machine.WDT(timeout=...) (re)starts the watchdog; with no period, feed()."""
    global wdt
    if period_s is not None:
        wdt = [now + period_s, period_s, in_light]
    elif wdt is not None:
        wdt[0] = now + wdt[1]


def open_channel(rfd, wfd):
    global _rd, _wr
    _rd = open(rfd, "rb")
    _wr = open(wfd, "wb")


def _read(n):
    buf = b""
    while len(buf) < n:
        chunk = _rd.read(n - len(buf))
        if not chunk:
            raise SystemExit(75)  # the simulator went away
        buf += chunk
    return buf


HEAP_SLACK = 8192


def sample_heap():
    """Track the most live heap the firmware held. mem_alloc() counts garbage
    until the next collection, so a new high is confirmed by collecting first
    (the firmware's own GC would have done the same before failing)."""
    global heap_peak, _since_gc
    used = gc.mem_alloc() - heap_base
    _since_gc += 1
    # exact to HEAP_SLACK: collecting at every message would cost more than the rest
    if used > heap_peak + HEAP_SLACK or (used > heap_peak and _since_gc > 500):
        gc.collect()
        _since_gc = 0
        used = gc.mem_alloc() - heap_base
        if used > heap_peak:
            heap_peak = used
            if heap_limit and used > heap_limit:
                raise HeapExceeded(used)


_posted = []  # notices not yet written: they go out with the next message
outs = {}     # pin id -> the level the firmware last drove it to, not yet told
POST_MAX = 16


def _frame(msg):
    data = json.dumps(msg).encode()
    return len(data).to_bytes(4, "big") + data


def post(msg):
    """A notice the host needs no answer to (a pin driven, a packet sent): it
    is written with the next message, in order, so the host sees the same
    sequence with fewer writes. Whatever waits for the host sends first."""
    sample_heap()
    _posted.append(_frame(msg))
    if len(_posted) >= POST_MAX:
        send(None)


def send(msg):
    """Write the posted notices and `msg` (None: only the notices)."""
    sample_heap()
    if outs:
        # the host keeps only each pin's latest level: the levels in between
        # reach nobody (a reading the host makes comes after this message)
        _posted.insert(0, _frame({"outs": [[k, v] for k, v in outs.items()]}))
        outs.clear()
    if msg is not None:
        _posted.append(_frame(msg))
    data = b"".join(_posted)
    del _posted[:]
    _wr.write(data)


def recv():
    n = int.from_bytes(_read(4), "big")
    return json.loads(_read(n))


def call(msg):
    """A request the host answers at once (an ADC reading)."""
    send(msg)
    return recv()["r"]


def _apply(msg):
    global now, wifi_ok, fault, horizon, synced, chamber
    now = msg["now"]
    # handed over ahead of its time, the simulator's clock is still at `synced`
    synced = msg.get("synced", now)
    horizon = msg.get("horizon", now)
    for k, v in msg.get("levels", ()):
        levels[k] = v
    for k, v in msg.get("adc", ()):
        adc[k] = v
    spec = msg.get("chamber")
    if spec is not None:
        chamber = (spec[0], spec[1], _chamber.Chamber.restore(spec[2]))
    wifi_ok = msg.get("wifi_ok", wifi_ok)
    fault = msg.get("fault", fault)
    cut = msg.get("cut")
    if cut is not None and flash is not None:
        flash.cut_after(cut)
    periph = msg.get("periph")
    if periph:
        _restore_chips(periph)
    if msg.get("rx_wait"):
        _wait_readable()


RX_WAIT_MS = 20000  # real time; the broker hands a command on in well under a millisecond


def _wait_readable():
    """The hub's command reached the broker: wait (real time, bounded) until
    an open socket can read it, so the firmware's next poll finds it whatever
    the host's load (the link takes no virtual time)."""
    if not sockets:
        return
    import select
    p = select.poll()
    for s in sockets:
        p.register(s._s, select.POLLIN)
    p.poll(RX_WAIT_MS)


def _restore_chips(periph):
    """The host's view of the chips (it may have changed them: a card held to
    the reader, a key pressed, the bolt turned by a key)."""
    chips.clear()
    derived.clear()
    adc_models.clear()
    watch.clear()
    for name, st in periph.items():
        chip = _chip_mods[st["kind"]].Chip.restore(st)
        chips[name] = chip
        for pin_id in chip.inputs():
            derived[pin_id] = chip
        for pin_id in chip.analog():
            adc_models[pin_id] = chip
        for pin_id in chip.outputs():
            watch.setdefault(pin_id, []).append(chip)


def chip_states():
    """What the chips got to, for the host (None: no chips)."""
    if not chips:
        return None
    return {name: chip.state() for name, chip in chips.items()}


def chip_level(pin_id):
    """The level a chip drives on input `pin_id` now; None when no chip does."""
    chip = derived.get(pin_id)
    if chip is None:
        return None
    return chip.level(pin_id, now, levels)


def pin_written(pin_id, level):
    """The firmware is about to drive `pin_id` to `level`: chips that watch it
    (an H-bridge input, a keypad row, a chip select) catch up first."""
    for chip in watch.get(pin_id, ()):
        chip.pin_written(pin_id, level, now, levels)


def start(msg):
    """Take the boot message's view of the world."""
    global boot, _chamber
    boot = msg
    if "chamber" in msg:
        import _chamber  # while the path is still the simulator's
    for st in (msg.get("periph") or {}).values():
        kind = st["kind"]
        if kind not in _chip_mods:
            _chip_mods[kind] = __import__("_chip_" + kind)
    _apply(msg)


def read_chamber(pin_id):
    """The chamber's reading, when `pin_id` is its photodiode; else None."""
    if chamber is None or pin_id != chamber[0]:
        return None
    return chamber[2].read(now, levels.get(chamber[1]) == 1)


def noise_state():
    """Where the chamber's noise got to, for the host (None: no chamber)."""
    return None if chamber is None else chamber[2].noise_state()


replies_due = 0  # hand-overs owed since this device published (its hub may answer it)


def published():
    """The device published a frame. A device the hub answers (boot "answers":
    a lock, whose frames can make the hub send it the time) hands over at its
    next two sleeps, so the hub has taken the frame in and its answer is on
    the connection before the device goes on reading: the answer comes at the
    same virtual time on every run."""
    global replies_due
    if boot.get("answers"):
        replies_due = 2


def wait(kind, until, extra=None):
    """A sleep: taken here when nothing outside the device can happen before it
    ends (the world, the hub and every other device are quiet until `horizon`),
    else handed to the host. Timers due on the way fire at their own times."""
    global replies_due
    if replies_due:
        replies_due -= 1
        block(kind, until, extra)
        return
    counts = wdt is not None and kind != "deep" and (kind != "light" or wdt[2])
    if until < horizon and not (counts and until >= wdt[0]):
        sample_heap()
        if wdt is not None and not counts:
            wdt[0] += until - now  # esp32: light sleep does not count
        fire_timers(until)
        return
    block(kind, until, extra)
    while kind == "sleep" and now < until:
        # woken early for a BLE event (its IRQ ran): time.sleep goes on, as on
        # the ports, where the stack's callbacks run during a sleep
        block(kind, until)


def sync():
    """Before the device does something the world sees (a packet on the
    network, an advertisement): let the simulator's clock catch up with the
    time this device reached on its own."""
    if now > synced:
        block("sleep", now)


def block(kind, until, extra=None):
    """Hand control to the host until the wake time or an interrupt (or the
    watchdog biting: the board resets there)."""
    counts = wdt is not None and kind != "deep" and (kind != "light" or wdt[2])
    if counts and (until is None or until > wdt[0]):
        until = max(wdt[0], now)  # it bites there
    at = now
    missed = False
    if kind in ("light", "deep") and flash is not None and flash.cut_at is not None:
        flash.cut_at = None  # a cut is armed for one wake: this one wrote less
        missed = True
    send({"block": kind, "until": until, "extra": extra, "heap": heap_peak, "at": now,
          "listen": len(sockets) > 0, "base": heap_base,
          "ops": flash.ops if flash is not None else 0, "cut_missed": missed,
          "noise": noise_state(), "periph": chip_states()})
    msg = recv()
    _apply(msg)
    if wdt is not None and not counts:
        wdt[0] += now - at  # esp32: light sleep does not count
    fire_timers(msg["now"])
    for pin_id in msg.get("irqs", ()):
        h = irq_handlers.get(pin_id)
        if h is not None and h[0] is not None:
            h[0](h[1])
    events = msg.get("ble")
    if events and ble is not None:
        ble(events)
    if wdt is not None and now >= wdt[0]:
        raise Reset("WDT_RESET")


def fire_timers(until):
    """Run timer callbacks that fell due while the firmware was blocked, each at
    its own virtual time (a hardware timer keeps running while the app waits)."""
    global now
    while True:
        due = None
        for t in timers:
            if t.due is not None and t.due <= until and (due is None or t.due < due.due):
                due = t
        if due is None:
            now = until
            return
        now = due.due
        due.fire()


def close_sockets():
    for s in list(sockets):
        try:
            s.close()
        except OSError:
            pass
    del sockets[:]


# ---- flash: a LittleFS2 block device over the device's image file ----------
flash = None


class Flash:
    """Block device for os.VfsLfs2 (extended interface: offsets within a block).

    The image is a host file, so what was written survives the process. A
    power cut can be armed at the n-th program or erase of the next wake (up
    to the next light or deep sleep): that operation is torn (half of it
    reaches the image) and the board loses power there."""

    def __init__(self, path, blocks, block_size, base=0):
        self.f = open(path, "r+b")
        self.base = base  # where the file system starts in the image (a whole flash: its partition)
        self.blocks = blocks
        self.bs = block_size
        self.ops = 0
        self.cut_at = None
        self._erased = b"\xff" * block_size  # allocated before the firmware's heap is counted

    def cut_after(self, n):
        self.cut_at = self.ops + n

    def _op(self, pos, data):
        self.ops += 1
        self.f.seek(self.base + pos)
        if self.cut_at is not None and self.ops >= self.cut_at:
            self.f.write(data[:len(data) // 2])
            send({"cut": self.ops})
            recv()  # the host removes power: this process ends here
            raise SystemExit(75)
        self.f.write(data)

    def readblocks(self, block, buf, off=0):
        self.f.seek(self.base + block * self.bs + off)
        self.f.readinto(buf)

    def writeblocks(self, block, buf, off=None):
        self._op(block * self.bs + (off or 0), buf)

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.blocks
        if op == 5:  # block size
            return self.bs
        if op == 6:  # erase
            self._op(arg * self.bs, self._erased)
            return 0
        return 0
