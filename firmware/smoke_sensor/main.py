"""Photoelectric smoke sensor app.

One loop, always running (the sensor samples its chamber every few seconds,
so it light-sleeps between samples instead of rebooting from deep sleep):
take the button, sample the chamber when due, let the core decide, sound the
siren at once, then stamp, queue and deliver frames; hear hub commands
(interconnect) on the kept MQTT session. The alarm never waits for the
network: the siren is started before any radio work and runs from a timer.
"""
import json
import struct
import time

from anju import command, counter, frame, pqueue, smoke
from anju.config import DeviceConfig
from anju.shell import hw, smoke_hw, storage

CTR_FILE = "ctr"
HUB_CTR_FILE = "hubctr"
INSTALL_FILE = "smoke"
OTA_CHUNKS_PER_PASS = 4


class SmokeSensor:
    def __init__(self, cfg, raw, board, store):
        self.cfg = cfg
        self.board = board
        self.store = store
        self.scfg, opts = smoke.config_from(raw, cfg.heartbeat_s, "/config.json")
        self.power = opts["power"]
        self.poll_ms = opts["cmd_poll_ms"]
        self.retry_s = opts["link_retry_s"]
        self.chamber = smoke_hw.Chamber(board)
        self.siren = smoke_hw.Siren(board)
        self.button = smoke_hw.Button(board)
        self.battery = smoke_hw.Battery(board)
        self.queue = pqueue.PersistentQueue(store, "q", cfg.queue_bytes)
        self.device_id = cfg.device_id.encode()
        inst = store.read(INSTALL_FILE)
        if inst is not None and len(inst) == 12:
            self.state = smoke.SmokeState(*struct.unpack(">iii", inst))
        else:
            self.state = smoke.SmokeState()
        self.counter = counter.FrameCounter(store, None, CTR_FILE)
        self.hub_counter = store.read_u32(HUB_CTR_FILE)
        self.next_sample = time.ticks_ms()
        self.next_try = time.ticks_ms()
        self.state_frame = None
        self.dropped = 0
        self.urgent = False  # a smoke frame waits for the broker
        self.rejected_cmds = 0
        self.link = None
        self.updater = None
        # esp32: a loop that hangs outside its light sleeps is reset (hw.loop_watchdog)
        self.feed = hw.loop_watchdog(board)
        self.ota_due = True  # report (and confirm a trial) once the link is up after boot
        if cfg.transport == "mqtt":
            from anju.shell import mqtt_link
            self.link = mqtt_link.Session(cfg, self.on_command)
            if cfg.release_pubkey is not None:
                from anju.shell.ota.fetch import Updater
                # a few chunks per pass: the chamber is sampled between them
                self.updater = Updater(cfg, board["port"], self.next_counter,
                                       self.battery_percent, hw.device_time, self.feed,
                                       max_chunks=OTA_CHUNKS_PER_PASS)

    def battery_percent(self):
        if self.power == "mains":
            return 100
        return smoke.battery_percent(self.battery.mv(), self.scfg)

    def next_counter(self):
        return self.counter.next()

    # ---- core ---------------------------------------------------------------
    def apply(self, event):
        now = hw.device_time()
        self.state, actions = smoke.handle(self.state, event, now, self.scfg, len(self.queue))
        sends = []
        for act in actions:
            kind = act[0]
            if kind == "siren":
                self.siren.play(act[1])  # before any radio work
            elif kind == "send":
                sends.append(act)
            elif kind == "next_sample":
                self.next_sample = time.ticks_add(time.ticks_ms(), act[1] * 1000)
            elif kind == "persist":
                self.store.write(INSTALL_FILE, struct.pack(">iii", *smoke.persisted(self.state)))
            elif kind == "self_test":
                self.self_test()
        if sends:
            self.report(sends, now)

    def report(self, sends, now):
        if self.link is None:
            self.report_ble(sends)
            return
        for _, mtype, body in sends:
            f = frame.encode(self.cfg.frame_key, self.device_id, mtype, self.next_counter(), now,
                             body)
            if mtype == smoke.T_SMOKE:
                self.urgent = True  # an alarm, a warning or their all-clear
            if mtype == smoke.T_SMOKE_STATUS:
                self.state_frame = f
                self.ota_due = True  # the heartbeat: ask the hub about updates too
                if len(self.queue):
                    continue  # waiting frames prove we are alive
            try:
                self.queue.push(f)
            except pqueue.QueueFull:
                self.dropped += 1
        self.next_try = time.ticks_ms()  # deliver now, whatever the backoff said

    def report_ble(self, sends):
        from anju import bthome
        from anju.shell import ble_adv
        s = self.state
        alarm = s.level == smoke.ALARM or s.interconnect
        pct = smoke.battery_percent(self.battery.mv(), self.scfg)
        objs = [bthome.battery(pct), (smoke.OBJ_SMOKE, b"\x01" if alarm else b"\x00")]
        adv = bthome.advertisement(ble_adv.mac(), self.cfg.bind_key, self.next_counter(), objs)
        ble_adv.burst(adv, self.cfg.adv_interval_ms, self.cfg.adv_window_ms)

    def self_test(self):
        """Chamber, siren and radio, each reported (the core sends SELF_TEST)."""
        self.siren.play("test")
        dark, lit = self.chamber.read()
        chamber_ok = dark + self.scfg.lit_min <= lit <= self.scfg.lit_max
        siren_ok = self.siren.busy()
        radio_ok = self.link.poll() if self.link is not None else True
        self.apply(("test_done", chamber_ok, siren_ok, radio_ok))

    # ---- hub commands ---------------------------------------------------------
    def on_command(self, payload):
        try:
            mtype, ctr, body = command.verify(self.cfg.frame_key, self.device_id, payload,
                                              self.hub_counter)
        except frame.FrameError:
            self.rejected_cmds += 1
            return
        self.hub_counter = ctr
        self.store.write_u32(HUB_CTR_FILE, ctr)  # a replay stays refused after a power cut
        if mtype == command.T_INTERCONNECT:
            self.apply(("interconnect", body[0]))

    # ---- loop -------------------------------------------------------------------
    def tick(self):
        self.feed()
        if self.button.take():
            self.apply(("button",))
        if time.ticks_diff(self.next_sample, time.ticks_ms()) <= 0:
            dark, lit = self.chamber.read()
            self.apply(("sample", dark, lit, self.battery.mv()))
        if self.link is not None:
            self.service_link()
        wait = time.ticks_diff(self.next_sample, time.ticks_ms())
        awake = self.siren.busy() or (self.link is not None and self.power == "mains")
        if self.link is not None and self.power == "mains":
            wait = min(wait, self.poll_ms)
        if wait > 0:
            smoke_hw.wait(wait, awake, lambda: self.button.pressed, self.board)

    def service_link(self):
        due = time.ticks_diff(self.next_try, time.ticks_ms()) <= 0
        pending = len(self.queue) or self.state_frame is not None
        if pending and due:
            self.link.deliver(self.queue, self.state_frame)
            if self.link.client is not None and not len(self.queue):
                self.state_frame = None
                self.urgent = False
            else:
                self.retry_later()
        if self.power == "mains" and (self.link.client is not None or due):
            if not self.link.poll():
                self.retry_later()
        elif self.power == "battery" and self.link.client is not None:
            self.link.poll()
        elif (self.power == "battery" and due and self.updater is not None and self.updater.more
              and self.ota_due and not self.link.up()):
            self.retry_later()  # a transfer under way: the next chunks at the next try
        if self.link.client is not None:
            self.service_ota()
        if self.power == "battery" and self.link.client is not None:
            self.link.down()  # battery: the radio is off between reports

    def service_ota(self):
        """The OTA exchange (docs/ota.md), never while the alarm is up or a
        smoke frame waits: a trial is confirmed at the first report the hub
        acknowledges; a transfer goes a few chunks per pass."""
        s = self.state
        if (self.updater is None or not self.ota_due or self.urgent or len(self.queue)
                or s.level != smoke.NORMAL or s.interconnect or self.siren.busy()):
            return
        try:
            self.updater.exchange(self.link.client)
        except OSError:
            self.link.down()
            self.retry_later()
            return
        self.ota_due = self.updater.more
        if self.updater.installed:
            hw.reset()  # into the new slot's trial


    def retry_later(self):
        """Back off while the link stays down, so the radio is not kept busy;
        while a smoke frame waits keep trying at the base interval (the siren
        draws far more than the radio, and the alarm must get out)."""
        from anju.shell import mqtt_link
        if self.urgent:
            wait_s = self.retry_s
        else:
            wait_s = mqtt_link.backoff_s(self.retry_s, max(self.link.failures - 1, 0))
        self.next_try = time.ticks_add(time.ticks_ms(), wait_s * 1000)


def main():
    with open("/config.json") as f:
        raw = json.load(f)
    cfg = DeviceConfig(raw, "/config.json")
    board = hw.load_board()
    sensor = SmokeSensor(cfg, raw, board, storage.FileStorage("/data"))
    sensor.apply(("boot", hw.reset_cause()))
    while True:
        sensor.tick()


main()
