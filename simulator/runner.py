"""Runs a scenario: real Mosquitto brokers, the hub, the simulated community,
a printed timeline, and the expectations checked at the end.

The hub runs in this process on the virtual clock, so 12 hours take seconds;
devices run the unmodified firmware (simulator.device); BLE advertisements
reach the hub through bleak with the virtual-radio backend; alarms are read
back from the upstream broker as the platform would see them.
"""
import asyncio
import contextlib
import json
import os
import tempfile
import threading
from pathlib import Path

import paho.mqtt.client as paho

from hub.ingest.login import hub_username
from hub.verify import frames as hubframes
from hub.service import HubService
from simulator import reader_steps
from simulator import scenario as scn
from simulator import scenario_readers as rdr
from simulator import visits
from simulator.forge import UNKNOWN_DEVICE
from simulator.clock import VirtualClock, fmt_offset
from simulator.radio import VirtualRadio
from simulator.world import Simulation

FIRMWARE_ROOT = Path(__file__).resolve().parent.parent / "firmware"
# simulator/forge.py's unknown device: the broker has an account for it (one
# left behind after its device was removed from the site), the hub does not
INTRUDER = UNKNOWN_DEVICE
APP_FOR_KIND = {"door_sensor": "door_sensor", "smoke_sensor": "smoke_sensor",
                "smart_lock": "smart_lock"}
# a person at a lock, in virtual seconds: a key held, the gap to the next one,
# a card or a finger held to the reader
KEY_DOWN_S = 0.1
KEY_GAP_S = 0.25
HOLD_S = 1.5
LOCK_QUEUE_BYTES = 65536
DEMO_ACCOUNT = "demo"  # docs/smart_lock.md, "Event log": 1,110 ACCESS frames


class Observer:
    """A plain MQTT client watching the brokers: device frames on the site
    broker, alarm documents on the upstream broker."""

    def __init__(self, clock, host, port, topics, name, login=None):
        self.clock = clock
        self.messages = []
        # a persistent session: what arrives while the observer reconnects is kept for it
        self._c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="anju-sim-" + name,
                              clean_session=False)
        if login:
            self._c.username_pw_set(login["username"], login["password"])
        self._host, self._port = host, port
        self._topics = topics
        self._ready = None
        self.on_message = None  # called from paho's thread after each message

    def _on_connect(self, client, userdata, flags, rc, props):
        client.subscribe([(t, 1) for t in self._topics])

    def _on_subscribe(self, client, userdata, mid, rcs, props):
        self._ready.set()

    def _on_message(self, client, userdata, msg):
        self.messages.append((self.clock.now(), msg.topic, bytes(msg.payload), msg.retain))
        if self.on_message is not None:
            self.on_message()

    def start(self, host, port):
        self._ready = threading.Event()
        self._c.on_connect = self._on_connect
        self._c.on_subscribe = self._on_subscribe
        self._c.on_message = self._on_message
        self._c.reconnect_delay_set(min_delay=0.1, max_delay=1)
        self._c.connect(host, port)
        self._c.loop_start()
        if not self._ready.wait(10):
            raise RuntimeError("observer could not subscribe on %s:%d" % (host, port))

    def wait_connected(self, timeout=15.0):
        import time
        end = time.monotonic() + timeout
        while not self._c.is_connected():
            if time.monotonic() > end:
                raise RuntimeError("observer did not reconnect")
            time.sleep(0.05)

    def publish(self, topic, payload, login=None):
        """Publish with the observer's own login, or as `login` (a device's:
        on a broker with the site's ACL, a bad frame on a device's topic can
        only come from a holder of that device's password)."""
        if not login:
            self._c.publish(topic, payload, qos=1).wait_for_publish(5)
            return
        c = paho.Client(paho.CallbackAPIVersion.VERSION2,
                        client_id="anju-sim-as-" + login["username"])
        c.username_pw_set(login["username"], login["password"])
        ready = threading.Event()
        c.on_connect = lambda cl, u, f, rc, p: rc.is_failure or ready.set()
        c.connect(self._host, self._port)
        c.loop_start()
        try:
            if not ready.wait(5):
                raise RuntimeError("the broker refused %s" % login["username"])
            c.publish(topic, payload, qos=1).wait_for_publish(5)
        finally:
            c.disconnect()
            c.loop_stop()

    def stop(self):
        self._c.disconnect()
        self._c.loop_stop()


class ScenarioRun(visits.VisitSteps, reader_steps.ReaderSteps):
    def __init__(self, sc, workdir, out=print, pace=0.0, on_start=None, console=None):
        self.sc = sc
        self.on_start = on_start  # fn(run, sim) before power-on (benchmarks attach probes)
        self.workdir = Path(workdir)
        self.out = out
        self.pace = pace  # wall seconds per simulated hour (0: as fast as possible)
        # the hub's HTTP API and console (hub.http), with a demo account made at start
        self.console = console
        self.clock = VirtualClock()
        self.t0 = self.clock.now()
        self.failures = []
        self.lost_positions = []  # responders' reports the hub never showed
        self.fault_brokers = {}
        self._printed_events = 0
        self._printed_alarms = 0
        self._printed_frames = 0
        self.phones = {}  # (lock, phone name) -> the credential id the hub gave it
        self.visitor_codes = {}  # (lock, code name) -> passcode.Code the hub made
        self.visits = {}  # visit name -> the visit id the hub's visitor service gave it
        self.visit_passes = {}  # visit name -> {lock: (digits, valid_from)} of its pass
        self.visit_qrs = {}  # visit name -> the QR text of its pass, once approved
        self.step_errors = []  # a visitor step the hub refused (simulator/visits.py)

    def say(self, who, what, t=None):
        t = self.clock.now() if t is None else t
        self.out("%s  %-14s %s" % (fmt_offset(t - self.t0), who, what))

    async def run(self, site_broker, upstream_broker):
        sc = self.sc
        site = sc.site
        radio = VirtualRadio()
        from bleak import BleakScanner
        from simulator.bleak_backend import VirtualScannerBackend

        def scanner_factory(callback):
            return BleakScanner(detection_callback=callback, backend=VirtualScannerBackend,
                                radio=radio)

        # on a broker with the site's generated configuration (run_scenario)
        # the hub and the devices log in with their own passwords
        logins = getattr(site_broker, "login", lambda user: {})
        self.logins = logins
        hub_login = logins(hub_username(site.site_id))

        if site.visitors is not None:
            self.use_test_kek(site)

        def new_hub():
            extra = {}
            if self.console is not None:
                from hub.clock import SystemClock
                extra = {"http": self.console, "auth_clock": SystemClock()}
            return HubService(site, self.workdir / "hub.db", self.clock,
                              {"host": site_broker.host, "port": site_broker.port, **hub_login},
                              {"host": upstream_broker.host, "port": upstream_broker.port},
                              ble_scanner_factory=scanner_factory, **extra)

        self.new_hub = new_hub
        self.upstream_broker = upstream_broker
        hub = new_hub()
        self.hub = hub
        frames_seen = Observer(self.clock, site_broker.host, site_broker.port,
                               ["anju/%s/+/event" % site.site_id], "frames", login=hub_login)
        alarms_seen = Observer(self.clock, upstream_broker.host, upstream_broker.port,
                               ["anju/upstream/#"], "upstream")
        self.frames = frames_seen
        self.alarms = alarms_seen
        frames_seen.start(site_broker.host, site_broker.port)
        alarms_seen.start(upstream_broker.host, upstream_broker.port)
        await hub.start()
        if self.console is not None:
            self.open_console(hub)
        sim = Simulation(self.clock, FIRMWARE_ROOT, self.workdir,
                         {"host": site_broker.host, "port": site_broker.port}, radio)
        sim.hub = hub
        loop = asyncio.get_running_loop()
        frames_seen.on_message = alarms_seen.on_message = lambda: sim.poke_threadsafe(loop)
        # The upstream broker acknowledges the hub before it hands the document
        # to the observer, which stamps it with the virtual time it arrives at:
        # the clock must not move on in between.
        self._alarms_base = 0
        # Likewise the frames observer stamps each device frame as it arrives.
        sim.also_settled = lambda: (len(self.alarms.messages)
                                    >= self._alarms_base + self.hub.forwarder.delivered
                                    and len(self.frames.messages) >= sim.events_sent)
        self.sim = sim
        self.radio = radio
        try:
            self.say("sim", "scenario '%s': %d device(s), %d step(s)"
                     % (sc.name, len(sc.device_specs), len(sc.steps)))
            await self.start_readers(site_broker.host, site_broker.port)
            for did, spec in sc.device_specs.items():
                dev = site.devices[did]
                cfg = {"device_id": did, "site": site.site_id, "kind": dev.kind,
                       "transport": dev.transport, "frame_key": dev.frame_key.hex(),
                       "bind_key": dev.bind_key.hex(), "heartbeat_s": spec["heartbeat_s"],
                       # a broker on loopback answers in microseconds: 2 s is
                       # generous, and a hung broker costs less wall time
                       "mqtt": {"host": site_broker.host, "port": site_broker.port,
                                "timeout_ms": 2000, **_device_login(logins(did))},
                       "wifi": {"ssid": sim.wifi_ssid, "password": "sim"}}
                ota = (getattr(site, "hub", None) or {}).get("ota")
                if ota is not None and dev.transport == "mqtt":
                    # the site's release key (docs/ota.md): the device takes updates
                    cfg["release_pubkey"] = ota["release_pubkey"]
                if spec.get("kind") == "smoke_sensor":
                    cfg["smoke"] = spec.get("smoke", {})
                if spec.get("kind") == "smart_lock":
                    cfg["lock"] = spec.get("lock", {})
                    cfg["queue_bytes"] = LOCK_QUEUE_BYTES
                mac = bytes.fromhex(dev.ble_address.replace(":", ""))
                sim.add_device(did, APP_FOR_KIND[dev.kind], spec["board"], cfg, mac)
                if spec.get("kind") == "smoke_sensor":
                    from simulator import chamber
                    sim.add_chamber(did, chamber.Chamber(seed=len(sim.devices), born=self.clock.now()))
                    sim.set_input(did, "test_button", True)
                elif spec.get("kind") == "smart_lock":
                    self.add_lock_hardware(did, spec)
                else:
                    sim.set_input(did, "reed", spec["door"] == "open")
                    sim.set_input(did, "tamper", spec["case"] == "open")
                sim.set_battery(did, spec["battery_mv"])
            if self.on_start is not None:
                self.on_start(self, sim)
            for did in sc.device_specs:
                self.say(did, "powered on (%s, %s over %s)" % (
                    sc.device_specs[did]["board_name"], site.devices[did].kind,
                    site.devices[did].transport))
                await sim.power_on(did)
                self.report()
            sim.plan_inputs(
                {did: [self.t0 + st.at for st in sc.steps
                       if st.action is not None and st.device == did] for did in sim.devices},
                # a reader is no simulated device: its steps act on the site
                [self.t0 + st.at for st in sc.steps if st.action is not None
                 and (st.device is None or st.device not in sim.devices)],
                self.t0 + sc.end + 1, command_sources(site), self._pin_steps())
            for step in sc.steps:
                await self.advance_to(self.t0 + step.at)
                if step.action is not None:
                    await self.apply(step)
                self.report()
            await self.advance_to(self.t0 + sc.end + 1)
            self.report()
            return self.check()
        finally:
            sim.shutdown()
            self.stop_readers()
            await self.hub.stop()
            frames_seen.stop()
            alarms_seen.stop()

    def use_test_kek(self, site):
        """The visitor service seals personal data with the KEK: a fresh one in
        the run's directory, unless the scenario's `hub.kek_file` names one."""
        from hub.registry import kek
        if (site.hub or {}).get("kek_file"):
            return
        path = self.workdir / "kek"
        if not path.exists():
            kek.create(path)
        site.hub = dict(site.hub or {}, kek_file=str(path))

    def open_console(self, hub):
        """A demo-only account for the console, its password made now and shown
        once (the demo's hub database is thrown away with the run)."""
        import secrets
        password = secrets.token_urlsafe(12)
        if hub.accounts.account(DEMO_ACCOUNT) is None:
            hub.accounts.add(DEMO_ACCOUNT, "staff", password, "demo")
        else:
            hub.accounts.set_password(DEMO_ACCOUNT, password, "demo")
        self.out("console: http://%s:%d/  log in as %s / %s  (this demo only)"
                 % (hub.http.host, hub.http.port, DEMO_ACCOUNT, password))

    def add_lock_hardware(self, did, spec):
        """The lock's chips (simulator/chips/) and switches as the board wires them."""
        from simulator.chips import bolt, keypad
        sim = self.sim
        dev = sim.devices[did]
        pins = dev.board["pins"]
        dev.add_chip("bolt", bolt.Chip.for_board(dev.board,
                                                  pos=1.0 if spec["bolt"] == "locked" else 0.0))
        if "kp_rows" in pins:
            dev.add_chip("keypad", keypad.Chip.for_board(dev.board))
        if "rfid_cs" in pins:
            from simulator.chips import mfrc522
            dev.add_chip("rfid", mfrc522.Chip.for_board(dev.board))
        if "fp_tx" in pins:
            from simulator.chips import r503
            chip = r503.Chip.for_board(dev.board)
            for page, finger in enumerate(spec.get("fingers", ()), start=1):
                chip.enrolled(page, finger)  # enrolled at installation
            dev.add_chip("finger", chip)
        sim.set_input(did, "reed", spec["door"] == "open")
        sim.set_input(did, "tamper", spec["case"] == "open")
        sim.set_input(did, "handle", True)  # released (the button pulls it low)

    def lock_action(self, did, action, value):
        """A person at the lock: keys typed, a card or a finger held, the
        mechanical key turned, the inside handle, an obstruction."""
        dev = self.sim.devices[did]
        now = self.clock.now()
        has_keypad = "keypad" in dev.periph

        def typed(keys_, t0):
            def press(chip, now_, levels):
                for i, key in enumerate(keys_):
                    at = t0 + i * (KEY_DOWN_S + KEY_GAP_S)
                    chip.press(key, now_, at + KEY_DOWN_S, since=at)
            dev.change_chip("keypad", press)
            return t0 + len(keys_) * (KEY_DOWN_S + KEY_GAP_S)

        if action == "pin":
            typed(value + "#", now)
        elif action == "visitor" and isinstance(value, dict):
            digits = self.visit_digits(value["visit"], did)
            if digits is None:
                self.say(did, "visit %s has no code for this lock: nothing typed" % value["visit"])
            else:
                typed(digits + "#", now)
        elif action == "visitor":
            code = self.visitor_codes.get((did, value))
            typed((code.digits if code is not None else value) + "#", now)
        elif action == "card":
            uid = scn.card_uid(value)
            # a tap on the keypad wakes the reader (docs/smart_lock.md, "Power and waking")
            t = typed("D", now) if has_keypad else now
            dev.change_chip("rfid", lambda c, now_, lv: c.present(uid.hex(), t, t + HOLD_S))
        elif action == "finger":
            dev.change_chip("finger", lambda c, now_, lv: c.touch(value, now_, now_ + HOLD_S))
        elif action == "key":
            dev.change_chip("bolt", lambda c, now_, lv: c.key_turn(now_, value))
        elif action == "jam":
            dev.change_chip("bolt", lambda c, now_, lv: c.obstruct(now_, now_ + value))
        elif action == "handle":
            self.sim.press(did, "handle")

    async def phone(self, did, name):
        """A phone held to the lock: `host_tools/lock_ble.unlock`, the code that
        runs against BlueZ, through bleak's backend on the virtual radio. A
        phone the hub never registered answers with a key of its own."""
        from host_tools import lock_ble
        from simulator.bleak_backend import VirtualClientBackend, drive
        dev = self.sim.devices[did]
        cred = self.phones.get((did, name), "c-unknown")
        try:
            _, seq = await drive(self.sim, lock_ble.unlock(
                dev.mac_str, cred, scn.phone_key(name), lock_ble.ACTION_UNLOCK,
                backend=VirtualClientBackend, radio=self.radio, sim=self.sim, lock_id=did))
            self.say(did, "phone %s: unlocked (log #%d)" % (name, seq))
        except lock_ble.LockBleError as exc:
            self.say(did, "phone %s: refused (%s)" % (name, exc))

    async def tenant(self, did, action, value):
        """A clerk registers (or removes) a tenant's credential for the lock at
        the hub: the same book and sender as `POST /api/locks/<id>/credentials`
        (hub/locks/api.py). The hub queues the commands; the lock confirms."""
        from hub.locks import book
        hub = self.hub
        site = self.sc.site
        kind = next(k for k in scn.CREDENTIAL_KINDS if k in value)
        now = self.clock.now()
        with hub.store.transaction() as tx:
            if action == "tenant_add":
                if kind == "card":
                    secret = scn.card_uid(value["card"])
                elif kind == "pin":
                    secret = value["pin"]
                elif kind == "phone":
                    secret = scn.phone_key(value["phone"])
                else:
                    secret = self.finger_page(did, value["finger"])
                rec, _ = book.add_credential(tx, site, did, value["resident"],
                                             "fingerprint" if kind == "finger" else kind,
                                             secret, now, "scenario", value["type"],
                                             value.get("schedule"))
                if kind == "phone":
                    self.phones[(did, value["phone"])] = rec["credential"]
            else:
                for rec in book.credentials(tx, did):
                    if (rec["resident"] == value["resident"] and rec["state"] != "removed"
                            and rec["kind"] == ("fingerprint" if kind == "finger" else kind)):
                        book.remove_credential(tx, site, did, rec["credential"], now, "scenario")
        sender = getattr(hub, "lock_sender", None)
        if sender is not None:
            sender.wake()

    def make_visitor_code(self, did, value):
        """The hub makes a visitor code for the lock (hub/visitors/passcode.py,
        with the lock's frame key), for the window it can carry inside
        [start + from, start + until); the code's other live codes are `taken`."""
        from hub.visitors import passcode
        key = self.sc.site.devices[did].frame_key
        taken = [c.digits for (d, _), c in self.visitor_codes.items() if d == did]
        code = passcode.make(key, self.t0 + value["from"], self.t0 + value["until"],
                             value["one_time"], self.clock.now(), taken)
        self.visitor_codes[(did, value["name"])] = code
        self.say(did, "visitor code %s: %s, valid %s .. %s%s" % (
            value["name"], passcode.ident(code.start_slot, code.check),
            fmt_offset(code.valid_from - self.t0), fmt_offset(code.valid_until - self.t0),
            ", one-time" if code.one_time else ""))

    def finger_page(self, did, finger):
        """The template page a finger was enrolled at in the lock's module."""
        fingers = self.sc.device_specs[did].get("fingers", [])
        if finger not in fingers:
            raise ValueError("finger %s is not enrolled in %s's module" % (finger, did))
        return fingers.index(finger) + 1

    def _pin_steps(self):
        """Device id -> {time: (pin, level)} of the steps that only drive one
        switch of a device (the only step for it at that time)."""
        switches = {"open": ("reed", 1), "close": ("reed", 0),
                    "case_open": ("tamper", 1), "case_close": ("tamper", 0)}
        at = {}
        for st in self.sc.steps:
            if st.device in self.sim.devices and st.action is not None:
                at.setdefault(st.device, {}).setdefault(self.t0 + st.at, []).append(st.action)
        out = {}
        for did, times in at.items():
            pins = self.sim.devices[did].board["pins"]
            for t, actions in times.items():
                if len(actions) == 1 and actions[0] in switches:
                    name, level = switches[actions[0]]
                    out.setdefault(did, {})[t] = (pins[name], level)
        return out

    async def advance_to(self, t):
        while self.clock.now() < t:
            if self.pace:
                nxt = self.sim.next_time()
                target = t if nxt is None else min(t, max(nxt, self.clock.now()))
                await asyncio.sleep((target - self.clock.now()) / 3600.0 * self.pace)
            else:
                target = t
            await self.sim.run_until(target)
            self.report()

    async def apply(self, step):
        sim = self.sim
        did = step.device
        if step.action == "position":
            await self.position(step.value)
            return
        shown = (reader_steps.step_value(step) if step.action in rdr.READER_ACTIONS
                 else visits.step_value(step))
        self.say(did or "sim", scn.ACTIONS[step.action] +
                 ("" if step.value is None else " (%s)" % shown))
        if step.action == "hub_restart":
            await self.hub.stop()
            self._alarms_base = len(self.alarms.messages)  # the new hub counts from 0
            self.hub = self.new_hub()
            # before it starts: the frames sent while the hub was down reach it
            # as soon as it subscribes, and the world waits for those very frames
            sim.hub = self.hub
            await self.hub.start()
            await sim.settle()
            return
        if step.action == "upstream_down":
            await asyncio.to_thread(self.upstream_broker.stop)
            loop = asyncio.get_running_loop()
            end = loop.time() + 15
            while self.hub.forwarder.connected.is_set() and loop.time() < end:
                await asyncio.sleep(0.01)  # real time: the hub noticing the lost link
            return
        if step.action == "upstream_up":
            await asyncio.to_thread(self.upstream_broker.start)
            await asyncio.to_thread(self.alarms.wait_connected)
            await asyncio.to_thread(self.hub.forwarder.connected.wait, 30)
            await sim.settle()
            return
        if step.action in rdr.READER_ACTIONS:
            await self.reader_step(did, step.action, step.value)
        elif step.action in ("open", "close"):
            sim.set_input(did, "reed", step.action == "open")
        elif step.action in ("case_open", "case_close"):
            sim.set_input(did, "tamper", step.action == "case_open")
        elif step.action == "battery":
            sim.set_battery(did, step.value)
        elif step.action == "remove":
            await sim.power_off(did)
        elif step.action == "insert":
            await sim.power_on(did)
        elif step.action == "flash_cut":
            sim.devices[did].cut_power_at_flash_op(step.value)
        elif step.action == "link_down":
            sim.devices[did].wifi_ok = False
        elif step.action == "link_up":
            sim.devices[did].wifi_ok = True
        elif step.action == "broker":
            # new connections meet it; a session already open is kept
            sim.devices[did].broker_fault = None if step.value == "ok" else self.fault_broker(step.value)
        elif step.action == "smoke":
            params = {k: v for k, v in step.value.items() if k != "profile"}
            sim.chambers[did].add_smoke(step.value["profile"], self.clock.now(), **params)
        elif step.action == "dust":
            sim.chambers[did].set_dust(self.clock.now(), step.value / 3600.0)
        elif step.action in ("hush", "test_button"):
            sim.press(did, "test_button")
        elif step.action == "inject":
            await self.inject(did, step.value)
        elif step.action in ("tenant_add", "tenant_remove"):
            await self.tenant(did, step.action, step.value)
        elif step.action == "phone":
            await self.phone(did, step.value)
        elif step.action == "visitor_code":
            self.make_visitor_code(did, step.value)
        elif step.action in scn.VISIT_ACTIONS:
            self.visit_step(step.action, step.value)
        elif step.action == "visitor_revoke":
            # the visitor service's path: HubService.revoke_visitor_code
            self.hub.revoke_visitor_code(did, self.visitor_codes[(did, step.value)].digits,
                                         "scenario")
        elif step.action == "face":
            # what the face service does on a match (hub/face/service.py)
            self.hub.face_unlock(did, step.value)
        elif step.action in scn.LOCK_ACTIONS:
            self.lock_action(did, step.action, step.value)
        await sim.step()
        await sim.settle()

    async def position(self, value):
        """A responder's phone reports where it is: its JSON on its own position
        topic of the site broker, with its own login (the ACL lets it write only
        there), which the hub's ResponderPositions reads (docs/console.md,
        "Responders"). Waits (real time, bounded) until the hub's board has it,
        so the console shows the move at this virtual time."""
        rid, x, y = value["responder"], value["x"], value["y"]
        self.say(rid, "%s (%g, %g)" % (scn.ACTIONS["position"], x, y))
        topic = "anju/%s/responders/%s/position" % (self.sc.site.site_id, rid)
        body = json.dumps({"x": x, "y": y}).encode()
        await asyncio.to_thread(self.frames.publish, topic, body, self.logins(rid))
        board = getattr(self.hub, "responder_board", None)
        if board is None:
            return  # a hub without the board (no console) drops positions
        loop = asyncio.get_running_loop()
        end = loop.time() + 5
        while loop.time() < end:
            doc = board.doc(rid)
            if doc is not None and (doc["x"], doc["y"]) == (x, y):
                return
            await asyncio.sleep(0.01)
        self.lost_positions.append("the hub did not take %s's position (%g, %g)" % (rid, x, y))

    def fault_broker(self, mode):
        """One misbehaving broker per mode for the whole run (simulator/fault_broker.py)."""
        from simulator.fault_broker import FaultBroker
        if mode not in self.fault_brokers:
            self.fault_brokers[mode] = FaultBroker(mode)
        return self.fault_brokers[mode]

    async def inject(self, did, kind):
        from simulator import forge
        site = self.sc.site
        dev = site.devices[did]
        if kind in ("forged_command", "copied_command"):
            await self.inject_command(did, kind)
            return
        if dev.transport == "ble":
            raw = forge.bad_advertisement(kind, dev, [m for m in self.radio_log()])
            self.radio.inject(dev.ble_address if kind != "unknown_device" else "A4:C1:38:FF:FF:FF",
                              raw)
            return
        sent = [p for (_, topic, p, _) in self.frames.messages
                if topic == "anju/%s/%s/event" % (site.site_id, did)]
        topic, payload = forge.bad_frame(kind, site.site_id, dev, sent)
        self.sim.frame_sent(topic, payload)
        # as the device itself (a stolen password), or as an account the
        # broker still has for a device the site no longer lists
        as_user = INTRUDER if kind == "unknown_device" else did
        await asyncio.to_thread(self.frames.publish, topic, payload, self.logins(as_user))

    async def inject_command(self, did, kind):
        """A hub -> device interconnect command the device must refuse: signed
        with a made-up key, or a genuine command for another device."""
        import os
        from hub.forward.interconnect import T_INTERCONNECT, encode_command
        site = self.sc.site
        if kind == "forged_command":
            payload = encode_command(os.urandom(32), did, T_INTERCONNECT, 1 << 30, 0, b"\x01\x00")
        else:
            other = next(d for d in sorted(site.devices) if d != did)
            payload = encode_command(site.devices[other].frame_key, other, T_INTERCONNECT,
                                     1 << 30, 0, b"\x01\x00")
        await asyncio.to_thread(self.frames.publish,
                                "anju/%s/%s/cmd" % (site.site_id, did), payload)

    def radio_log(self):
        return []

    # ---- output ---------------------------------------------------------------------
    def report(self):
        """Print what happened since the last report, merged in time order."""
        lines = []
        msgs = self.frames.messages
        while self._printed_frames < len(msgs):
            t, topic, payload, _ = msgs[self._printed_frames]
            self._printed_frames += 1
            did = topic.split("/")[2]
            try:
                _, counter, _, _ = _peek(payload)
                what = "frame #%d %s" % (counter, _frame_type(payload))
            except ValueError:
                what = "frame of %d bytes (malformed)" % len(payload)
            lines.append((t, 0, did, "→ broker " + what))
        # only what was stored since the last report (the store keeps growing)
        for ev in self.hub.store.events_since(self._printed_events):
            self._printed_events = ev["id"]
            lines.append((ev["received_at"], 1, "hub", "stored %s #%d %s %s" % (
                ev["device"], ev["counter"], ev["type"], _values(ev["values"]))))
        alarms = self.alarms.messages
        while self._printed_alarms < len(alarms):
            t, topic, payload, _ = alarms[self._printed_alarms]
            self._printed_alarms += 1
            doc = json.loads(payload)
            if doc.get("type") == "visit":
                lines.append((t, 2, "upstream", "VISIT record %s flat %s, ID number %s" % (
                    doc["id"][:14], doc.get("flat"), (doc.get("visitor") or {}).get("id_number"))))
                continue
            res = doc.get("resident") or {}
            where = ("flat %s" % doc["flat"] if doc.get("flat") else
                     "entrance %s" % doc.get("entrance") if doc.get("entrance") else "site")
            lines.append((t, 2, "upstream", "ALARM %s %s %s resident %s (id %s…)" % (
                doc["severity"].upper(), doc["type"], where, res.get("name", "-"),
                doc["id"][:8])))
        rejected = self.hub.pipeline.stats["rejected"]
        if rejected != getattr(self, "_printed_rejected", 0):
            lines.append((self.clock.now(), 1, "hub", "rejected frames so far: %s" % _values(
                self.hub.store.rejection_counts())))
            self._printed_rejected = rejected
        for t, _, who, what in sorted(lines, key=lambda x: (x[0], x[1])):
            self.say(who, what, t)

    # ---- expectations --------------------------------------------------------------
    def upstream_alarms(self):
        out = []
        for t, _, payload, _ in self.alarms.messages:
            out.append((t - self.t0, json.loads(payload)))
        return out

    def check(self):
        ok = not self.lost_positions and not self.step_errors
        for what in self.lost_positions:
            self.out("FAIL  %s" % what)
            self.failures.append(what)
        received = self.upstream_alarms()
        for e in self.sc.expectations:
            spec = e.spec
            if e.kind in ("alarm", "no_alarm"):
                lo, hi = spec["window"] or (0.0, float("inf"))
                ids = set()
                for t, doc in received:
                    if doc["type"] != spec["what"] or not lo <= t <= hi:
                        continue
                    if "flat" in spec and doc.get("flat") != spec["flat"]:
                        continue
                    if "resident" in spec and (doc.get("resident") or {}).get("id") != spec["resident"]:
                        continue
                    if "device" in spec and doc.get("device") != spec["device"]:
                        continue
                    ids.add(doc["id"])
                want = spec["count"] if e.kind == "alarm" else 0
                good = len(ids) == want
                what = "%s %s%s between %s and %s: %d (want %d)" % (
                    e.kind, spec["what"], " flat " + spec["flat"] if "flat" in spec else "",
                    fmt_offset(lo), fmt_offset(hi) if hi != float("inf") else "end", len(ids), want)
            elif e.kind in ("siren", "silent"):
                lo, hi = spec["window"]
                on = self.sim.siren_on_between(spec["what"], self.t0 + lo, self.t0 + hi)
                good = on if e.kind == "siren" else not on
                what = "%s %s between %s and %s: sounded %s" % (
                    e.kind, spec["what"], fmt_offset(lo), fmt_offset(hi), on)
            elif e.kind == "delivered":
                evs = [ev for ev in self.hub.store.events(spec["what"]) if ev["type"] == spec["type"]]
                counters = [ev["counter"] for ev in evs]
                in_order = counters == sorted(set(counters))
                good = len(evs) == spec["count"] and in_order
                what = "delivered %s %s: %d (want %d), in order and once: %s" % (
                    spec["what"], spec["type"], len(evs), spec["count"], in_order)
            elif e.kind == "access":
                lo, hi = spec["window"] or (0.0, float("inf"))
                want = {k: spec[k] for k in ("outcome", "method", "reason", "credential")
                        if k in spec}
                if "visit" in spec:
                    want["credential"] = self.visit_ident(spec["visit"], spec["what"])
                elif "code" in spec:
                    from hub.visitors import passcode
                    code = self.visitor_codes.get((spec["what"], spec["code"]))
                    want["credential"] = None if code is None else passcode.ident(
                        code.start_slot, code.check)
                evs = [ev for ev in self.hub.store.events(spec["what"])
                       if ev["type"] == "access" and lo <= ev["received_at"] - self.t0 <= hi
                       and all(ev["values"].get(k) == v for k, v in want.items())]
                good = len(evs) == spec["count"]
                what = "access %s %s: %d (want %d)" % (spec["what"], " ".join(
                    "%s=%s" % (k, spec[k]) for k in ("outcome", "method", "reason", "credential",
                                                     "code", "visit")
                    if k in spec), len(evs), spec["count"])
            elif e.kind == "bolt":
                last = None
                for ev in self.hub.store.events(spec["what"]):
                    if ev["type"] == "lock_state" and ev["received_at"] - self.t0 <= spec["at"]:
                        last = ev["values"].get("bolt")
                good = last == spec["state"]
                what = "bolt %s at %s: %s (want %s), as the hub heard it" % (
                    spec["what"], fmt_offset(spec["at"]), last, spec["state"])
            elif e.kind in ("visit", "visit_record"):
                good, what = self.check_visit(e.kind, spec, received)
            elif e.kind == "gate":
                good, what = self.check_gate(spec)
            elif e.kind == "visitor_log":
                good, what = self.check_visitor_log(spec)
            elif e.kind == "watchdog":
                n = self.sim.devices[spec["what"]].resets.get("WDT_RESET", 0)
                good = n == spec["count"]
                what = "watchdog resets of %s: %d (want %d)" % (spec["what"], n, spec["count"])
            else:
                n = self.hub.store.rejection_counts().get(spec["what"], 0)
                good = n == spec["count"]
                what = "rejected %s: %d (want %d)" % (spec["what"], n, spec["count"])
            ok = ok and good
            self.out("%s  %s  (%s:%d)" % ("PASS" if good else "FAIL", what, self.sc.file, e.line))
            if not good:
                self.failures.append(what)
        # a watchdog reset is firmware that hung: it fails the run unless expected
        expected = {e.spec["what"] for e in self.sc.expectations if e.kind == "watchdog"}
        for did, dev in sorted(self.sim.devices.items()):
            n = dev.resets.get("WDT_RESET", 0)
            if n and did not in expected:
                what = "%s was reset by its watchdog %d time(s): its firmware hung" % (did, n)
                self.out("FAIL  %s" % what)
                self.failures.append(what)
                ok = False
        return ok


def _peek(payload):
    import struct
    if len(payload) < hubframes.MIN_LEN:
        raise ValueError("short")
    return struct.unpack_from(">BIIB", payload, 1)


def _frame_type(payload):
    return hubframes.TYPES.get(payload[1], "type 0x%02x" % payload[1])


def _device_login(login):
    """config.json's `mqtt.password` (the user name is the device id)."""
    return {"password": login["password"]} if login else {}


def _values(values):
    return " ".join("%s=%s" % (k, v) for k, v in sorted(values.items()))


def command_sources(site):
    """Device id -> the devices whose frames can make the hub command it. The
    hub commands a device only for the smoke interconnect (hub/rules/smoke.py:
    a smoke sensor's alarm sounds the others in scope; the widest scope is the
    site), for a face unlock, which an entrance camera causes, not a
    simulated device, and for a lock: the time, in answer to the lock's own
    frames (the lock hands over after publishing: _sim.published), and
    tenants' credentials, which the lock's own steps cause. A new kind of
    hub -> device command must be added here, or the simulator lets a
    listening device run past the moment it comes."""
    from hub.rules import smoke
    out = {did: () for did in site.devices}
    for did, dev in site.devices.items():
        if dev.kind == "smoke_sensor":
            for target in smoke.in_scope(site, dev, "site"):
                out[target] = out[target] + (did,)
    return out


RAM_DIR = "/dev/shm"


def scratch_dir():
    """Where a run without a working directory keeps its files: in RAM when the
    machine has a tmpfs at /dev/shm (the hub's ~1 ms fsync per commit is the
    disk's, not the simulation's), else the system's temporary directory."""
    return RAM_DIR if os.path.isdir(RAM_DIR) and os.access(RAM_DIR, os.W_OK) else None


async def run_scenario(path, out=print, workdir=None, pace=0.0, on_start=None, console=None):
    """Run one scenario file; (True when every expectation held, the run).
    `on_start(run, sim)` is called once the devices are built, before power-on."""
    from host_tools import boards
    from host_tools.mosquitto import Mosquitto
    sc = scn.load(path, boards_loader=lambda name, kind: boards.load(name, kind))
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="anju-sim-",
                                                                      dir=scratch_dir()))
        workdir = Path(workdir)
        # the site broker runs what `anju broker config` makes for the site:
        # logins and the ACL (docs/broker.md)
        site_broker = stack.enter_context(
            Mosquitto.for_site(workdir / "broker-site", sc.site, name="site",
                               extra_devices=(INTRUDER,)).start())
        upstream = stack.enter_context(
            Mosquitto(workdir / "broker-upstream", persistence=True, name="upstream").start())
        run = ScenarioRun(sc, workdir, out, pace, on_start=on_start, console=console)
        try:
            return await run.run(site_broker, upstream), run
        finally:
            for broker in run.fault_brokers.values():
                broker.close()


