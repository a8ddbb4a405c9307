"""Smart lock app (docs/smart_lock.md).

One loop, always running: take what woke the lock (a key, a card, a finger,
the handle, the door, the case, a timer), let the cores decide (access:
anju.lock.decide and anju.lock.control; bolt and door: anju.lock.bolt), move
the bolt, then stamp, queue and deliver frames and hear hub commands on the
kept MQTT session. The lock decides every opening itself, offline too; the
network only carries what happened and what the hub asks. Between uses it
light-sleeps with its input interrupts armed.
"""
import json
import struct
import time

import machine

from anju.config import DeviceConfig
from anju.shell import hw, storage
from anju.shell.ota import updateboot

CTR_FILE = "ctr"
SEQ_FILE = "seq"
HUB_CTR_FILE = "hubctr"
FILES = {"users": "users", "credentials": "creds", "settings": "settings", "visitors": "visit"}
# the update boot (docs/ota.md, "The smart lock"): the longest it keeps the
# keypad, reader and phone away, the wait after someone cut one short, and
# the wait before asking again when an offer came while the lock was in use
UPDATE_BOOT_MAX_MS = 180000
OTA_HOLD_MS = 600000
OTA_BUSY_RETRY_MS = 60000


def _someone(board):
    """A person at the lock during an update boot: a key (the rows driven low,
    a pressed key pulls its column low) or the inside handle (low while
    pressed)."""
    Pin = machine.Pin
    pins = board["pins"]
    for row in pins.get("kp_rows") or ():
        Pin(row, Pin.OUT, value=0)
    watched = []
    for pin_id in list(pins.get("kp_cols") or ()) + ([pins["handle"]] if "handle" in pins else []):
        if board.get("mcu") == "esp32" and 34 <= pin_id <= 39:
            watched.append(Pin(pin_id, Pin.IN))  # no pull-up on these: the board has its own
        else:
            watched.append(Pin(pin_id, Pin.IN, Pin.PULL_UP))
    return lambda: any(p.value() == 0 for p in watched)


def _update_boot():
    """An update the lock asked for runs here, before anything of the lock
    is imported: the verifier has the heap its tables would take."""
    store = storage.FileStorage("/data")
    percent = updateboot.requested(store)
    if percent is None:
        return
    with open("/config.json") as f:
        cfg = DeviceConfig(json.load(f), "/config.json")
    board = hw.load_board()
    updateboot.run(cfg, board, store, percent, CTR_FILE, _someone(board), UPDATE_BOOT_MAX_MS)


_update_boot()

from anju import counter, frame, pqueue  # noqa: E402  (after the update boot's check)
from anju.lock import bolt, control, decide, keys, options, users, wire  # noqa: E402
from anju.shell import lock_hw  # noqa: E402


class SmartLock:
    def __init__(self, cfg, raw, board, store):
        self.cfg = cfg
        self.board = board
        self.store = store
        self.opts = o = options.parse(raw, "/config.json")
        self.device_id = cfg.device_id.encode()
        self.ckey = wire.cred_key(cfg.frame_key)
        self.dcfg = decide.LockConfig(o.max_users, o.max_credentials, o.wrong_limit, o.lockout_s,
                                      o.relock_s, o.ajar_s, o.cutoff_mv,
                                      wrap_key=wire.wrap_key(cfg.frame_key),
                                      visit_key=frame.hmac_sha256(cfg.frame_key,
                                                                  b"anju-lock-visit"))
        self.table = users.Table(o.max_users, o.max_credentials)
        self._load_table()
        self.blocked = None  # visitor codes' blocked list: visitor_list(), at first use
        reserved = store.read_u32(SEQ_FILE)
        self.state = decide.LockState(self.dcfg, counter.resume(None, reserved), reserved,
                                      store.read_u32(HUB_CTR_FILE))
        decide.load_settings(self.state, store.read(FILES["settings"]) or b"")
        self.counter = counter.FrameCounter(store, None, CTR_FILE)
        self.queue = pqueue.PersistentQueue(store, "q", cfg.queue_bytes)
        # hardware: what the board wires (docs/smart_lock.md, "Hardware and pins")
        pins = board["pins"]
        self.bolt = lock_hw.Bolt(board, o.mv_per_a)
        self.inputs = lock_hw.LockInputs(board)
        self.keypad = self.rfid = self.finger = None
        if "kp_rows" in pins:
            from anju.shell import keypad
            self.keypad = keypad.Keypad(board)
        if "rfid_cs" in pins:
            from anju.shell import mfrc522
            self.rfid = mfrc522.MFRC522(board)
        self.finger_down = False  # a finger already decided on, not yet lifted
        if "fp_tx" in pins:
            from anju.shell import r503
            self.finger = r503.R503(board)
            if self.finger.touch is not None:
                # the module's touch output wakes the lock (the handler only records it)
                self.finger.touch.irq(handler=self._on_touch, trigger=machine.Pin.IRQ_FALLING)
        self.phone = None
        self.phone_decided = False  # this poll's answer reached the decision
        if "ble" in board["radios"] and self.opts.phone:
            # phones unlock over BLE by challenge-response (docs/smart_lock.md)
            import bluetooth
            from anju.lock import phone
            from anju.shell import lock_ble
            auth = phone.PhoneAuth(cfg.device_id, lambda cid: decide.phone_key(self.table, cid))
            self.phone = lock_ble.LockBle(bluetooth.BLE(), cfg.device_id, auth)
            self.phone.start()
        self.entry = keys.Entry()
        self.bcfg = self._bolt_cfg()
        self.bs, acts = lock_hw.boot_state(self.bolt, self.inputs, self.bcfg)
        self.inputs.watch()
        self.tamper = self.inputs.tamper_open()
        self.mv = self.inputs.battery_mv()
        self.battery_low = False
        self.reported = None      # (bolt, door, flags) last sent in a LOCK_STATE
        self.state_frame = None   # the newest LOCK_STATE, None once a later frame was sent
        self.state_due = False
        self.rejected_cmds = 0
        ms = time.ticks_ms()
        self.awake_until = ms
        self.card_until = None
        self.next_card = ms
        self.next_link = ms
        self.next_heartbeat = ms
        self.link = None
        self.reporter = None
        self.wdt = lambda: None
        self.next_ota = ms  # report (and confirm a trial) once the link is up after boot
        if cfg.transport == "mqtt":
            from anju.shell import mqtt_link
            self.link = mqtt_link.Session(cfg, self.on_command)
            if cfg.release_pubkey is not None:
                self.start_ota(board, ms)
        self.bolt_actions(acts)

    def start_ota(self, board, ms):
        from anju.ota import slots
        from anju.shell.ota.report import Reporter
        self.reporter = r = Reporter(self.cfg, self.counter.next, hw.device_time,
                                     feed=lambda: self.wdt(), battery_percent=self.battery_percent)
        st = slots.load(r.slots)
        if st is not None and st["trial"] is not None:
            # the boot shim started the watchdog for this trial (boards that
            # deep-sleep): it runs on after the confirm, so the lock feeds it
            self.wdt = hw.watchdog(board)
        why = updateboot.ended(self.store)
        if why == updateboot.SOMEONE:
            self.awake(ms)  # someone is here: scan the keys, and update later
            self.next_ota = time.ticks_add(ms, OTA_HOLD_MS)

    def _on_touch(self, pin):
        self.inputs.changed = True  # ISR: record the fact only

    def _load_table(self):
        """Users and credentials from flash. A file that does not load (torn,
        corrupt: its CRC fails) leaves that part empty: the lock opens for
        nobody it cannot vouch for (the mechanical key and the inside handle
        still work) until the hub provisions it again."""
        for part in ("users", "credentials"):
            blob = self.store.read(FILES[part])
            if blob is None:
                continue
            try:
                getattr(self.table, "load_" + part)(blob)
            except users.TableError:
                print("lock: %s file unreadable, starting without it" % part)
        self.table.drop_orphans()

    def visitor_list(self):
        """The blocked list of used one-time and revoked visitor codes
        (anju.lock.visitor), read from flash at the first visitor code or
        revocation: until then neither the module nor the list takes heap."""
        if self.blocked is None:
            from anju.lock import visitor
            b = visitor.Blocked(self.opts.visitor_blocked)
            blob = self.store.read(FILES["visitors"])
            if blob is not None and not b.load(blob):
                # it may have held used and revoked codes: none opens for 30 days
                print("lock: visitor blocked list unreadable, visitor codes refused for 30 days")
                b.lose()
            self.blocked = b
        return self.blocked

    def _bolt_cfg(self):
        o = self.opts
        return bolt.BoltConfig(o.inrush_ms, o.stall_ma, o.stall_ms, o.travel_ms,
                               self.state.relock_s, self.state.ajar_s)

    # ---- reporting ------------------------------------------------------------
    def send(self, mtype, body):
        f = frame.encode(self.cfg.frame_key, self.device_id, mtype, self.counter.next(),
                         hw.device_time(), body)
        # the retained state must be the newest frame: the hub takes an older
        # counter on any topic as a replay
        self.state_frame = f if mtype == wire.T_LOCK_STATE else None
        self.state_due = True  # the retained state goes out with this check-in
        try:
            self.queue.push(f)
        except pqueue.QueueFull:
            pass  # a full queue keeps the oldest: they are what the hub lacks
        self.next_link = time.ticks_ms()  # deliver now

    def flags(self):
        f = 0
        if self.tamper:
            f |= wire.SF_TAMPER
        if self.battery_low:
            f |= wire.SF_BATTERY_LOW
        if decide.locked_out(self.state, hw.device_time()):
            f |= wire.SF_LOCKED_OUT
        if self.state.clock_set:
            f |= wire.SF_CLOCK_SET
        return f

    def report_state(self, force=False):
        o = self.opts
        now = (self.bs.bolt, self.bs.door, self.flags())
        if now == self.reported and not force:
            return
        self.reported = now
        self.send(wire.T_LOCK_STATE, wire.lock_state_body(
            self.bs.bolt, self.bs.door, now[2], o.percent(self.mv), self.mv, len(self.queue),
            o.ops_left(self.mv)))

    # ---- the cores' actions ------------------------------------------------------
    def do(self, actions):
        for act in actions:
            kind = act[0]
            if kind == "persist":
                self.persist(act[1])
            elif kind == "send":
                self.send(act[1], act[2])
            elif kind == "unlock":
                self.run(-1, act[1])
            elif kind == "lock":
                self.run(1, wire.M_REMOTE)
            elif kind == "set_clock":
                set_rtc(act[1])
            # "alarm" and "indicate" are the keypad's buzzer and LEDs: not wired here
        self.report_state()

    def persist(self, part):
        s = self.state
        if part == "seq":
            self.store.write_u32(SEQ_FILE, s.seq_reserved)
        elif part == "cmd_counter":
            self.store.write_u32(HUB_CTR_FILE, s.cmd_counter)  # a replay stays refused after a power cut
        elif part == "settings":
            self.store.write(FILES["settings"], decide.settings_blob(s))
            self.bcfg = self._bolt_cfg()
        elif part == "visitors":
            self.store.write(FILES["visitors"], self.blocked.dump())
        else:
            self.store.write(FILES[part], getattr(self.table, "dump_" + part)())

    def run(self, direction, method):
        self.bs, acts = self.bolt.run_bolt(direction, self.bcfg, self.bs, self.inputs, method)
        self.bolt_actions(acts)

    def feed(self, event):
        """One event for bolt supervision; the motor does what it says (an
        auto-relock starts a run) and the rest is reported."""
        self.bs, acts = bolt.handle(self.bs, event, time.ticks_ms(), self.bcfg)
        self.bolt.apply(acts)
        self.bolt_actions(acts)

    def bolt_actions(self, acts):
        for a in acts:
            kind = a[0]
            if kind == "forced":
                self.send(wire.T_FORCED, wire.forced_body(a[1]))
            elif kind == "alarm":
                self.send(wire.T_LOCK_ALARM, wire.lock_alarm_body(a[1], a[2]))
            elif kind == "mechanical_key":
                self.decide(("mechanical_key",))
            elif kind == "relock":
                self.bs, more = self.bolt.supervise(self.bs, self.bcfg, self.inputs)
                self.bolt_actions(more)
        self.report_state()

    def decide(self, event):
        blocked = self.visitor_list() if event[0] == "visitor" else None
        self.state, actions = decide.handle(self.state, event, hw.device_time(), self.dcfg,
                                            self.table, blocked)
        self.do(actions)

    def on_phone(self, action, cid):
        """An authentic, fresh answer from a phone (anju.lock.phone checked it):
        the decision as for any credential; (result, seq) for the reply."""
        self.phone_decided = True
        self.state, actions = decide.handle(self.state, ("phone", action, cid), hw.device_time(),
                                            self.dcfg, self.table)
        result, seq = wire.R_OK, 0
        for a in actions:
            if a[0] == "send" and a[1] == wire.T_ACCESS:
                result = a[2][2]
                seq = struct.unpack_from(">I", a[2], 6)[0]
        self.do(actions)
        return result, seq

    # ---- hub commands -----------------------------------------------------------
    def on_command(self, payload):
        try:
            cmd = wire.verify_command(self.cfg.frame_key, self.device_id, payload,
                                      self.state.cmd_counter)
        except frame.FrameError:
            self.rejected_cmds += 1  # forged, replayed, malformed: not answered
            return
        blocked = self.visitor_list() if cmd.type == wire.T_VISITOR_REVOKE else None
        self.state, actions = control.apply(self.state, cmd, hw.device_time(), self.dcfg,
                                            self.table, blocked)
        self.do(actions)

    # ---- updates ----------------------------------------------------------------------
    def battery_percent(self):
        return self.opts.percent(self.mv) if self.opts.power == "battery" else 100

    def quiet(self, ms):
        """Nobody is using the lock and nothing is open or pending: no
        alarm, lockout or programming mode, the bolt at rest with no
        relock due, the door shut, the case closed, every frame delivered."""
        bs = self.bs
        return (not bolt.running(bs) and bolt.next_due(bs, ms, self.bcfg) is None
                and not (bs.jam_alarm or bs.ajar_alarm or bs.door_open or bs.bolt_forced)
                and not self.tamper and not len(self.queue)
                and decide.next_timer(self.state, hw.device_time()) is None
                and time.ticks_diff(self.awake_until, ms) <= 0
                and (self.card_until is None or time.ticks_diff(self.card_until, ms) <= 0)
                and not self.finger_down and (self.phone is None or self.phone._link < 0))

    def service_ota(self):
        """The light OTA exchange on the kept session, after the queued
        frames: report, confirm a trial once the hub acknowledged, hear an
        offer. The offer is fetched in an update boot, and only while the
        lock is quiet; otherwise it is asked for again a minute later."""
        ms = time.ticks_ms()
        if (self.reporter is None or len(self.queue)
                or time.ticks_diff(self.next_ota, ms) > 0):
            return
        self.next_ota = time.ticks_add(ms, OTA_BUSY_RETRY_MS)  # if the hub does not answer
        try:
            offer = self.reporter.exchange(self.link.client)
        except OSError:
            self.link.down()
            return
        ms = time.ticks_ms()
        self.next_ota = time.ticks_add(ms, self.cfg.heartbeat_s * 1000)
        if offer is None:
            return
        if not self.quiet(ms):
            self.next_ota = time.ticks_add(ms, OTA_BUSY_RETRY_MS)
            return
        updateboot.request(self.store, self.battery_percent())
        self.link.down()  # a clean disconnect: the broker keeps our session and its commands
        hw.reset()  # into the update boot

    # ---- the loop -------------------------------------------------------------------
    def tick(self):
        self.wdt()
        ms = time.ticks_ms()
        _, handle = self.inputs.take()
        if self.phone is not None:
            self.phone_decided = False
            out = self.phone.poll(ms, self.on_phone)
            if out is not None and not self.phone_decided:
                self.decide(("phone_refused",))  # every failure is logged too
            if self.phone._link >= 0:
                self.awake(ms)  # a phone is connected: stay awake for its answer
        if self.keypad is not None:
            self.keys(ms)
        if self.rfid is not None and self.card_window(ms):
            self.card(ms)
        if self.finger is not None:
            present = self.finger.finger_present()
            if present and not self.finger_down:
                self.awake(ms)
                page = self.finger.identify()
                if page is not False:  # False: no finger any more, or no answer
                    self.finger_down = True  # one touch, one decision
                    self.decide(("credential", wire.M_FINGERPRINT, page))
            elif not present:
                self.finger_down = False
        if handle:
            self.awake(ms)
            self.feed(("handle",))
            self.decide(("inside",))
        is_open = self.inputs.door_open()
        if is_open != self.bs.door_open:
            self.feed(("door", is_open))
        if not bolt.running(self.bs):
            at_locked, at_unlocked = self.bolt.ends()
            self.feed(("sample", 0, at_locked, at_unlocked))  # a key, or the bolt forced
        self.feed(("tick",))
        self.decide(("tick",))
        self.case_and_battery()
        if time.ticks_diff(self.next_heartbeat, ms) <= 0:
            self.next_heartbeat = time.ticks_add(ms, self.cfg.heartbeat_s * 1000)
            self.report_state(force=True)
        if self.link is not None:
            self.service_link()
        self.sleep()

    def keys(self, ms):
        kp = self.keypad
        if kp.woken:
            # a touch on the keypad: someone is at the lock, and the reader
            # starts (the debounce needs a few scans before the key counts)
            self.awake(ms)
            self.card_until = time.ticks_add(ms, self.opts.card_window_ms)
        if time.ticks_diff(self.awake_until, ms) > 0:
            kp.disarm()
            kp.update()
            ev = kp.take()
            while ev is not None:
                key, down = ev
                if down:
                    self.awake(ms)
                    self.card_until = time.ticks_add(ms, self.opts.card_window_ms)
                    got = self.entry.feed(key, ms)
                    if got is not None:
                        self.decide(decide.keypad_event(got, self.ckey))
                ev = kp.take()
            kp.woken = False
        self.entry.expired(ms)

    def card_window(self, ms):
        """The reader polls: always on mains power, on a battery for
        card_window_ms after a touch on the keypad."""
        if self.opts.power == "mains":
            return True
        if self.card_until is not None and time.ticks_diff(self.card_until, ms) <= 0:
            self.card_until = None
        return self.card_until is not None

    def card(self, ms):
        if time.ticks_diff(self.next_card, ms) > 0:
            return
        self.next_card = time.ticks_add(ms, self.opts.card_poll_ms)
        uid = self.rfid.read_uid()  # the driver halts the card: held on, it stays quiet
        if uid is not None:
            self.card_until = None  # one card, one decision; a key press re-arms the reader
            self.decide(("credential", wire.M_CARD, wire.card_digest(self.ckey, uid)))

    def case_and_battery(self):
        t = self.inputs.tamper_open()
        if t != self.tamper:
            self.tamper = t
            self.send(frame.T_TAMPER, frame.door_body(t))  # the same u8: 1 opened
        mv = self.inputs.battery_mv()
        self.mv = mv
        if self.state.battery_mv is None or abs(mv - self.state.battery_mv) >= 20:
            self.decide(("battery", mv))
        low = mv < self.opts.low_mv
        if low != self.battery_low:
            self.battery_low = low
            self.send(frame.T_BATTERY, frame.battery_body(self.opts.percent(mv), mv))

    def awake(self, ms):
        self.awake_until = time.ticks_add(ms, self.opts.awake_ms)

    def service_link(self):
        ms = time.ticks_ms()
        if time.ticks_diff(self.next_link, ms) > 0:
            return
        if self.state_due and self.state_frame is None and self.reported is not None:
            self.report_state(force=True)  # frames came after the last state: a fresh one
        if len(self.queue):
            # this check-in's first frame: the hub's time must answer one of ours
            self.state.answer_floor = struct.unpack_from(">I", self.queue.peek(1)[0], 2)[0]
        sent = self.link.deliver(self.queue, self.state_frame if self.state_due else None)
        if sent and self.link.client is not None and self.opts.answer_ms:
            time.sleep_ms(self.opts.answer_ms)  # the hub answers what it heard (the time)
        ok = self.link.client is not None and self.link.poll()
        if ok and not len(self.queue):
            self.state_due = False
        if ok:
            self.service_ota()
        ms = time.ticks_ms()
        if self.opts.power == "battery":
            self.link.down()  # the radio is off between check-ins
            wait_s = self.opts.cmd_poll_s
        elif ok:
            self.next_link = time.ticks_add(ms, self.opts.mains_poll_ms)
            return
        else:
            wait_s = self.cfg.retry_s
        if not ok or len(self.queue):
            from anju.shell import mqtt_link
            wait_s = min(wait_s, mqtt_link.backoff_s(self.cfg.retry_s // 10 or 1,
                                                     max(self.link.failures - 1, 0)))
        self.next_link = time.ticks_add(ms, wait_s * 1000)

    def sleep(self):
        ms = time.ticks_ms()
        due = [self.next_link, self.next_heartbeat]
        someone = time.ticks_diff(self.awake_until, ms) > 0
        if someone:
            due.append(time.ticks_add(ms, self.opts.scan_ms))  # scanning the keys
        reader = self.rfid is not None and self.card_window(ms)
        if reader:
            due.append(self.next_card)
        nxt = bolt.next_due(self.bs, ms, self.bcfg)
        if nxt is not None:
            due.append(time.ticks_add(ms, max(nxt, 1)))
        t = decide.next_timer(self.state, hw.device_time())
        if t is not None:
            due.append(time.ticks_add(ms, max(t, 1) * 1000))
        wait = min(time.ticks_diff(t, ms) for t in due)
        if wait <= 0:
            return
        if someone or reader or self.opts.power == "mains":
            time.sleep_ms(wait)  # awake: scanning, or on mains with the session kept
            return
        if self.keypad is not None:
            self.keypad.arm_wake()  # rows low: any key pulls its column low and wakes us
        low, high = self.wake_levels()
        poll = hw.arm_light_wake(self.board, low, high)
        changed = self.inputs.changed or (self.keypad is not None and self.keypad.woken)
        if not changed:
            machine.lightsleep(min(wait, poll or hw.MAX_LIGHTSLEEP_MS, hw.MAX_LIGHTSLEEP_MS))

    def wake_levels(self):
        """The inputs that must end light sleep, by the level they go to: keys,
        the handle and a finger pull low; the door, the case and the bolt's end
        stop change from where they are now (a key turning the bolt)."""
        pins = self.board["pins"]
        low = list(pins.get("kp_cols") or ()) if self.keypad is not None else []
        for name in ("handle", "fp_touch"):
            if name in pins and (name != "fp_touch" or self.finger is not None):
                low.append(pins[name])
        high = []
        for name, level in (("reed", self.inputs.door_open()), ("tamper", self.tamper),
                            ("bolt_locked", not self.bs.at_locked),
                            ("bolt_unlocked", not self.bs.at_unlocked)):
            if name in pins:
                (low if level else high).append(pins[name])
        return low, high


def set_rtc(device_time):
    """The clock as the hub's SET_TIME says (seconds since 2000-01-01 UTC)."""
    t = time.gmtime(device_time + hw._EPOCH_SHIFT)
    machine.RTC().datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))


def main():
    with open("/config.json") as f:
        raw = json.load(f)
    cfg = DeviceConfig(raw, "/config.json")
    board = hw.load_board()
    lock = SmartLock(cfg, raw, board, storage.FileStorage("/data"))
    lock.send(frame.T_BOOT, frame.boot_body(hw.reset_cause(), 1, 0))
    lock.report_state(force=True)
    while True:
        lock.tick()


main()
