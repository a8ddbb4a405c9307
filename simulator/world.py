"""The simulated community: devices, their physical inputs, the radio, and the
scheduler that owns the virtual clock.

`run_until(t)` advances time event by event: wake every device whose sleep ends
or whose wake pin changed, let it run until it blocks, then wait until the hub
has taken in everything the devices sent and finished what that caused
(`settle`). Nothing runs concurrently with a device that could see it, so
runs are repeatable: a device is handed its next wake early (run ahead, on
another core) only when nothing can reach it before that wake, and what it
does is read in time order.
"""
import asyncio
import bisect
import logging
import threading

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
        self._hub = None
        self.commands_to = {}  # device id -> hub commands the broker acknowledged for it
        self.mqtt_frames_sent = 0
        # the frames sent that the hub has not taken in yet, by payload (a
        # count: a forged replay repeats one), and those it took in before
        # their sender's hook ran or more often than sent (broker re-deliveries)
        self._frames_lock = threading.Lock()
        self._frames_pending = {}
        self._frames_early = {}
        self.events_sent = 0  # of those, on event topics (what the runner's observer watches)
        self.adverts = 0
        self.trace = []  # (time, device, what) for the printed timeline
        self.chambers = {}  # smoke sensors: device id -> simulator.chamber.Chamber
        self._target = None  # run_until's target: no input from the world before it
        # more that must hold before the world moves on (the runner: every
        # document the hub delivered upstream has reached its observer)
        self.also_settled = None
        self._plan = None  # plan_inputs: when the world next changes, per device
        self._progress = None  # set when the hub applied a batch or an observer got a message
        self._plan_pins = {}
        self.run_ahead = True  # start timer wakes early where nothing can see it (_run_ahead)
        self.runs_ahead = 0    # wakes started early so far

    @property
    def hub(self):
        return self._hub

    @hub.setter
    def hub(self, hub):
        """The hub the world settles against; set it before the hub starts
        taking in frames (it reports each MQTT payload it takes in here)."""
        self._hub = hub
        if hub is not None:
            hub.on_mqtt_payload = self.frame_taken

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
        dev.chamber = (pins["photodiode_adc"], pins["ir_led"], chamber)

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
            self.frame_sent(topic, payload)

    def frame_sent(self, topic, payload):
        """A frame went to the broker (a device's, or one the runner forged):
        settle() waits until the hub has taken in this very payload."""
        payload = bytes(payload)
        with self._frames_lock:
            self.mqtt_frames_sent += 1
            self.events_sent += topic.endswith("/event")
            if self._frames_early.get(payload):
                _take(self._frames_early, payload)
            else:
                self._frames_pending[payload] = self._frames_pending.get(payload, 0) + 1

    def frame_taken(self, payload):
        """The hub took in `payload` (HubService.on_mqtt_payload; on the loop)."""
        payload = bytes(payload)
        with self._frames_lock:
            if self._frames_pending.get(payload):
                _take(self._frames_pending, payload)
            else:
                self._frames_early[payload] = self._frames_early.get(payload, 0) + 1

    def frames_outstanding(self):
        with self._frames_lock:
            return sum(self._frames_pending.values())

    def radio_start(self, dev, adv, interval_us, connectable=False):
        if self.radio is None:
            return
        self.radio.advertise(dev.mac_str, adv, interval_us, connectable=connectable)
        if connectable:
            self.ble_server(dev)  # a central may connect from now on

    def radio_stop(self, dev, elapsed_s):
        if self.radio is None:
            return
        self.adverts += 1
        self.radio.deliver_window(dev.mac_str, max(1, int(elapsed_s * 1000)))
        self.radio.stop(dev.mac_str)

    def ble_server(self, dev):
        """The radio's side of `dev`'s GATT server (None without a radio)."""
        if self.radio is None:
            return None
        return self.radio.peripheral(dev.mac_str, dev.ble_event)

    def ble_gone(self, dev):
        """`dev`'s BLE stack stopped with its boot: off the air, links dropped."""
        if self.radio is None:
            return
        self.radio.stop(dev.mac_str)
        server = self.radio.find_peripheral(dev.mac_str)
        if server is not None:
            server.gone()

    def _ble_reachable(self, dev):
        """A central can act on `dev` at any moment: a link is open, or (without
        a plan saying when centrals act) it advertises connectable."""
        if self.radio is None:
            return False
        server = self.radio.find_peripheral(dev.mac_str)
        if server is not None and server.connections:
            return True
        return self._plan is None and self.radio.is_connectable(dev.mac_str)

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

    def plan_inputs(self, by_device, common, end, command_sources=None, pins=None):
        """What the scenario will do, so a device can pass time on its own up
        to the next moment anything could reach it (horizon).

        by_device        device id -> times of the steps that act on it
        common           times of the steps that act on the whole site (a hub
                         restart, an upstream outage)
        end              when the run ends
        command_sources  device id -> the ids of the devices whose frames can
                         make the hub send it a command (None: any device)
        pins             device id -> {time: (pin, level)} of the steps that
                         only drive one of its pins (a reed or tamper switch)"""
        self._plan = ({did: sorted(ts) for did, ts in by_device.items()}, sorted(common), end,
                      command_sources)
        self._plan_pins = pins or {}

    def _next_step(self, did, now, h):
        """The first step at or after `now` that acts on `did`, if before `h`."""
        times = self._plan[0].get(did, ())
        i = bisect.bisect_left(times, now)
        return times[i] if i < len(times) and times[i] < h else h

    def _next_site_step(self, now):
        """The first step at or after `now` that acts on the whole site (or the end)."""
        _, common, end, _ = self._plan
        i = bisect.bisect_left(common, now)
        return common[i] if i < len(common) else end

    def horizon(self, dev):
        """Until when `dev` may pass time on its own, its sleeps needing no round
        trip through the scheduler: nothing that could reach it happens before.

        The world changes only at scenario steps. A device lets the clock catch
        up before it sends anything (simulator/mp/_sim.py), so every packet and
        advertisement happens in time order. Without a connection open a
        device hears nobody: it stops only at the next step that acts on it or
        on the whole site. What others send can reach `dev` only through the
        hub and an open connection: a device with a socket open also stops at
        the hub's next timer, and at the next wake and the next step of every
        device whose frames can make the hub command it.

        Without a plan (plan_inputs) every step and every device counts: the
        bound is run_until's target, and every other device's wake."""
        now = self.clock.now()
        if self._target is None or self._ble_reachable(dev):
            return now  # a BLE central acts at the scheduler's time: no sleep runs on
        if self._plan is None:
            h = self._target
            sources = None
        else:
            known = self._plan[3]
            h = self._next_step(dev.id, now, self._next_site_step(now))
            sources = None if known is None else known.get(dev.id, ())
        if not dev.listening:
            return max(h, now)
        for d in (self.devices.values() if sources is None
                  else [self.devices[did] for did in sources if did in self.devices]):
            if d is dev:
                continue
            if d.powered and d.wake_at is not None and d.wake_at < h:
                h = d.wake_at
            if self._plan is not None:
                h = self._next_step(d.id, now, h)
        deadline = self.clock.next_deadline()
        if deadline is not None and deadline < h:
            h = deadline
        return max(h, now)

    def _run_ahead(self, dev):
        """Start `dev`'s next wake early (SimDevice.run_ahead) when nothing can
        reach it before then: a timer wake from deep or light sleep, no
        connection open, and no step that acts on it or on the site before it."""
        if (not self.run_ahead or self._plan is None or self._target is None or dev.ahead
                or not dev.powered or dev.listening or dev.block is None
                or dev.block[0] not in ("deep", "light") or self._ble_reachable(dev)):
            return
        t, now = dev.wake_at, self.clock.now()
        site_step = self._next_site_step(now)
        step = self._next_step(dev.id, now, self._plan[2])
        if t is not None and now < t < step and t < site_step:
            dev.run_ahead()  # a timer wake before anything acts on it
            self.runs_ahead += 1
            return
        # or the wake its next step causes: a switch that ends its deep sleep
        pin = self._plan_pins.get(dev.id, {}).get(step)
        if (pin is not None and dev.block[0] == "deep" and now < step < site_step
                and (t is None or step < t) and dev.run_ahead_to_input(step, *pin)):
            self.runs_ahead += 1

    async def _run_device(self, dev, fn):
        # in the loop's thread: the device talks to the broker, never to the
        # hub directly, and what it hands to the radio is queued for the loop
        fn()
        self._run_ahead(dev)
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
                if dev.wake_at is None or dev.wake_at > self.clock.now():
                    continue  # run meanwhile by another caller of step (a BLE central)
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
        for dev in self.devices.values():
            self._run_ahead(dev)
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
        # what the radio handed over lands on the loop's next turns; when the
        # hub has caught up, a few more turns show nothing further is on its way
        mark = (self.mqtt_frames_sent, self.adverts)
        need = 1 if mark == getattr(self, "_settled_mark", None) else 3
        while True:
            await asyncio.sleep(0)
            if (not self._frames_pending and self.hub.is_idle()
                    and (self.also_settled is None or self.also_settled())):
                quiet += 1
                if quiet >= need:
                    self._settled_mark = mark
                    return
                continue
            quiet = 0
            if loop.time() > deadline:
                raise SettleTimeout(
                    "hub did not settle: %d of %d MQTT frames not taken in, idle=%s"
                    % (self.frames_outstanding(), self.mqtt_frames_sent, self.hub.is_idle()))
            # a frame still on its way wakes this at once (the hub's batch, an
            # observer's message: poke); anything else is polled
            await self._wait_progress(0.002)

    def command_sent(self, device_id):
        """The hub's command for `device_id` reached the broker (its PUBACK):
        a device listening on the broker waits (real time) for it at its next
        hand-over, so it reads it at the same virtual time on every run."""
        self.commands_to[device_id] = self.commands_to.get(device_id, 0) + 1

    def poke(self):
        """Something the settle waits for may have happened (on the loop)."""
        if self._progress is not None:
            self._progress.set()

    def poke_threadsafe(self, loop):
        loop.call_soon_threadsafe(self.poke)

    async def _wait_progress(self, timeout):
        if self._progress is None:
            self._progress = asyncio.Event()
        if self.hub is not None:
            self.hub.on_progress = self.poke
            self.hub.on_command_sent = self.command_sent
        self._progress.clear()
        try:
            await asyncio.wait_for(self._progress.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def shutdown(self):
        for dev in self.devices.values():
            dev.power_off()  # its worker, and every connection it held, end


def _take(counts, key):
    """One fewer of `key` in a {key: count} (the key goes at zero)."""
    n = counts[key] - 1
    if n:
        counts[key] = n
    else:
        del counts[key]
