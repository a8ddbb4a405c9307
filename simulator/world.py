"""The simulated community: devices, their physical inputs, the radio, and the
scheduler that owns the virtual clock.

`run_until(t)` advances time event by event: wake every device whose sleep ends
or whose wake pin changed, let it run until it blocks, then wait until the hub
has taken in everything the devices sent and finished what that caused
(`settle`). Nothing runs concurrently with a device, so runs are repeatable.
"""
import asyncio
import logging

from simulator.device import SimDevice

log = logging.getLogger("anju.sim")

SETTLE_TIMEOUT_S = 15.0


class SettleTimeout(Exception):
    pass


class Simulation:
    def __init__(self, clock, firmware_root, workdir, mqtt=None, radio=None, wifi_ssid="anju-sim"):
        self.clock = clock
        self.firmware_root = str(firmware_root)
        self.workdir = workdir
        self.mqtt = mqtt
        self.radio = radio
        self.wifi_ssid = wifi_ssid
        self.devices = {}
        self.hub = None
        self.mqtt_frames_sent = 0
        self.adverts = 0
        self.trace = []  # (time, device, what) for the printed timeline
        self.chambers = {}  # smoke sensors: device id -> simulator.chamber.Chamber
        self._target = None  # run_until's target: no input from the world before it
        # more that must hold before the world moves on (the runner: every
        # document the hub delivered upstream has reached its observer)
        self.also_settled = None

    # ---- building the world --------------------------------------------------------
    def add_device(self, device_id, app, board, config, mac):
        dev = SimDevice(self, device_id, board, config,
                        str(self.workdir / "devices" / device_id), mac, app)
        dev.install(self.firmware_root)
        self.devices[device_id] = dev
        return dev

    def set_input(self, device_id, pin_name, level):
        dev = self.devices[device_id]
        dev.set_level(dev.board["pins"][pin_name], 1 if level else 0)

    def add_chamber(self, device_id, chamber):
        dev = self.devices[device_id]
        self.chambers[device_id] = chamber
        pins = dev.board["pins"]
        dev.adc_source[pins["photodiode_adc"]] = chamber.adc_source(pins["ir_led"])

    def press(self, device_id, pin_name):
        """A button press: the pin goes low (the interrupt fires) and is released."""
        self.set_input(device_id, pin_name, False)
        self.set_input(device_id, pin_name, True)

    def siren_timeline(self, device_id):
        dev = self.devices[device_id]
        return list(dev.pwm_log.get(dev.board["pins"]["siren"], []))

    def siren_on_between(self, device_id, t_from, t_to):
        """True when the siren's PWM was on at some moment in [t_from, t_to]."""
        level = 0
        for t, duty in self.siren_timeline(device_id):
            if t > t_to:
                break
            if t >= t_from and duty:
                return True
            level = duty
        return bool(level)

    def set_battery(self, device_id, millivolts):
        dev = self.devices[device_id]
        dev.adc_mv[dev.board["pins"]["battery_adc"]] = int(millivolts)

    # ---- hooks called by the shims (device thread) -------------------------------------
    def on_device_published(self, dev, topic, payload):
        if topic.endswith("/event") or topic.endswith("/state"):
            self.mqtt_frames_sent += 1

    def radio_start(self, dev, adv, interval_us):
        if self.radio is None:
            return
        self.radio.advertise(dev.mac_str, adv, interval_us)

    def radio_stop(self, dev, elapsed_s):
        if self.radio is None:
            return
        self.adverts += 1
        self.radio.deliver_window(dev.mac_str, max(1, int(elapsed_s * 1000)))
        self.radio.stop(dev.mac_str)

    # ---- scheduling --------------------------------------------------------------
    def _due_devices(self):
        now = self.clock.now()
        due = [d for d in self.devices.values()
               if d.powered and d.wake_at is not None and d.wake_at <= now]
        due.sort(key=lambda d: (d.wake_at, d.id))
        return due

    def next_time(self):
        times = [d.wake_at for d in self.devices.values() if d.powered and d.wake_at is not None]
        hub_deadline = self.clock.next_deadline()
        if hub_deadline is not None:
            times.append(hub_deadline)
        return min(times) if times else None

    def horizon(self, dev):
        """Until when `dev` may pass time on its own, its sleeps needing no round
        trip through the scheduler: nothing that could reach it happens before.

        The world changes only at scenario steps (run_until's target). A device
        lets the clock catch up before it sends anything (simulator/mp/_sim.py),
        so every packet and advertisement happens in time order. What others
        send can reach `dev` only through the hub and an open connection: a
        device with a socket open also stops at the hub's next timer and at
        every other device's next wake (each may send there)."""
        now = self.clock.now()
        if self._target is None:
            return now
        h = self._target
        if not dev.listening:
            return max(h, now)
        for d in self.devices.values():
            if d is not dev and d.powered and d.wake_at is not None and d.wake_at < h:
                h = d.wake_at
        deadline = self.clock.next_deadline()
        if deadline is not None and deadline < h:
            h = deadline
        return max(h, now)

    async def _run_device(self, dev, fn):
        # in the loop's thread: the device talks to the broker, never to the
        # hub directly, and what it hands to the radio is queued for the loop
        fn()
        await asyncio.sleep(0)

    async def power_on(self, device_id):
        dev = self.devices[device_id]
        if dev.powered:
            return  # a battery put into a device that has power changes nothing
        await self._run_device(dev, dev.power_on)
        await self.settle()

    async def power_off(self, device_id):
        dev = self.devices[device_id]
        await self._run_device(dev, dev.power_off)

    async def step(self):
        """Run every device that is due now; True if any ran."""
        ran = False
        while True:
            due = self._due_devices()
            if not due:
                return ran
            for dev in due:
                await self._run_device(dev, dev.resume)
                ran = True
            await self.settle()

    async def run_until(self, t):
        self._target = t
        try:
            await self._run_until(t)
        finally:
            self._target = None

    async def _run_until(self, t):
        await self.step()
        while True:
            nxt = self.next_time()
            if nxt is None or nxt > t:
                break
            if nxt > self.clock.now():
                self.clock.advance_to(nxt)
            await self.settle()
            await self.step()
        if t > self.clock.now():
            self.clock.advance_to(t)
        await self.settle()
        await self.step()

    async def settle(self, timeout=SETTLE_TIMEOUT_S):
        """Wait (real time) until the hub took in every frame and is idle."""
        if self.hub is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet = 0
        # frames handed over from device threads need a few loop turns to land
        mark = (self.mqtt_frames_sent, self.adverts)
        need = 1 if mark == getattr(self, "_settled_mark", None) else 3
        while True:
            await asyncio.sleep(0)
            if (self.hub.mqtt_frames_seen >= self.mqtt_frames_sent and self.hub.is_idle()
                    and (self.also_settled is None or self.also_settled())):
                quiet += 1
                if quiet >= need:
                    self._settled_mark = mark
                    return
            else:
                quiet = 0
            if loop.time() > deadline:
                raise SettleTimeout(
                    "hub did not settle: %d of %d MQTT frames seen, idle=%s"
                    % (self.hub.mqtt_frames_seen, self.mqtt_frames_sent, self.hub.is_idle()))
            await asyncio.sleep(0.002)

    def shutdown(self):
        for dev in self.devices.values():
            dev.power_off()  # its worker, and every connection it held, end
