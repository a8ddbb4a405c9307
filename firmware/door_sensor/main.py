"""Door-magnet sensor app.

Runs at every boot and every deep-sleep wake: read the reed switch (debounced),
tamper switch and battery, let the core decide what to report, stamp each frame
with a counter that is never reused, queue it in flash, deliver over the board's
transport, then sleep until the next heartbeat or a change of the door.
"""
import json

from anju import bthome, counter, door, frame, pqueue
from anju.config import DeviceConfig
from anju.shell import hw, rtcstate, storage

CTR_FILE = "ctr"


class DoorSensor:
    def __init__(self, cfg, board, store):
        self.cfg = cfg
        self.board = board
        self.store = store
        self.inputs = hw.DoorInputs(board)
        bat = cfg.battery
        self.dcfg = door.DoorConfig(heartbeat_s=cfg.heartbeat_s,
                                    empty_mv=bat.get("empty_mv", 2200),
                                    full_mv=bat.get("full_mv", 3000),
                                    low_percent=bat.get("low_percent", 20))
        self.queue = pqueue.PersistentQueue(store, "q", cfg.queue_bytes)
        self.device_id = cfg.device_id.encode()
        saved = rtcstate.load()
        if saved is None:
            self.state = door.DoorState()
            rtc_last = None
        else:
            self.state = door.DoorState(*saved[0])
            rtc_last = saved[1]
        self.counter = counter.FrameCounter(store, rtc_last, CTR_FILE)
        self.dropped = 0
        self.feed = hw.watchdog(board)
        self.updater = None
        self.battery_mv = None
        if cfg.transport == "mqtt" and cfg.release_pubkey is not None:
            from anju.shell.ota.fetch import Updater
            self.updater = Updater(cfg, board["port"], self.next_counter, self.battery_percent,
                                   hw.device_time, self.feed)

    def battery_percent(self):
        return door.battery_percent(self.battery_mv or 0, self.dcfg)

    def next_counter(self):
        return self.counter.next()

    def cycle(self, booted):
        now = hw.device_time()
        actions = []
        if booted:
            self.state, acts = door.handle(self.state, ("boot", hw.reset_cause()), now, self.dcfg)
            actions.extend(acts)
        sample = self.inputs.sample(self.cfg.debounce_ms)
        self.battery_mv = sample[2]
        self.state, acts = door.handle(self.state, ("sample",) + sample, now, self.dcfg,
                                       len(self.queue))
        actions.extend(acts)
        sleep_s = self.dcfg.heartbeat_s
        sends = []
        for act in actions:
            if act[0] == "send":
                sends.append(act)
            elif act[0] == "sleep":
                sleep_s = act[1]
        if self.cfg.transport == "mqtt":
            if sends or len(self.queue):
                self.report_mqtt(sends, now)
            if len(self.queue):
                # frames still waiting for the broker: try again sooner than the heartbeat
                sleep_s = min(sleep_s, self.cfg.retry_s)
        elif sends:
            self.report_ble(sample)
        rtcstate.save(self.state.as_tuple(), self.counter.last)
        return sample, sleep_s

    def report_mqtt(self, sends, now):
        from anju.shell import mqtt_link
        state_frame = None
        for _, mtype, body in sends:
            f = frame.encode(self.cfg.frame_key, self.device_id, mtype, self.next_counter(),
                             now, body)
            if mtype == frame.T_HEARTBEAT:
                state_frame = f
                if len(self.queue):
                    # frames are already waiting: they prove we are alive
                    continue
            try:
                self.queue.push(f)
            except pqueue.QueueFull:
                self.dropped += 1
        exchange = self.updater.exchange if self.updater is not None else None
        mqtt_link.deliver(self.cfg, self.queue, state_frame, exchange)
        if self.updater is not None and self.updater.installed:
            rtcstate.save(self.state.as_tuple(), self.counter.last)
            hw.reset()  # into the new slot's trial (docs/ota.md)

    def report_ble(self, sample):
        from anju.shell import ble_adv
        is_open, case_open, mv = sample
        pct = door.battery_percent(mv, self.dcfg)
        adv = bthome.advertisement(
            ble_adv.mac(), self.cfg.bind_key, self.next_counter(),
            bthome.door_sensor_objects(is_open, case_open, pct, mv),
            "anju-" + self.cfg.device_id)
        ble_adv.burst(adv, self.cfg.adv_interval_ms, self.cfg.adv_window_ms)


def main():
    with open("/config.json") as f:
        cfg = DeviceConfig(json.load(f), "/config.json")
    board = hw.load_board()
    sensor = DoorSensor(cfg, board, storage.FileStorage("/data"))
    booted = not hw.woke_from_deepsleep()
    while True:
        sample, sleep_s = sensor.cycle(booted)
        booted = False
        sensor.feed()
        hw.sleep(board, sensor.inputs, sample[0], sample[1], sleep_s)


main()
