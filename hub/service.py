"""The hub service: wires transports, pipeline, rules and forwarding on one
asyncio loop, with an injected clock.

Tasks:
  ingest    takes frames from the MQTT and BLE queues through the pipeline,
            what is queued under one commit; acknowledges an MQTT frame only
            after its commit (the MQTT client runs in a thread, or in a
            receiver process: `mqtt["ingest"]`, hub/ingest/mqtt.py)
  rules     sleeps on the clock until the earliest rule deadline (recomputed
            from the store), or until an event changes the deadlines
  forward   drains the outbox to the upstream broker
  face-*    one per entrance camera, when the site file has a `face:` section
            (hub/face/host.py; the face packages are imported only then)
The local HTTP API (hub/web/server.py, aiohttp), with the console's pages
(hub/console) and its live alarm stream, runs on this loop when
`hub.http` is configured or `http=` is given; its accounts live in their own
database beside the store (hub/auth/accounts.py). Every subscription and task is collected and
undone in `stop()`.
"""
import asyncio
import logging
import time
from pathlib import Path

from hub import ConfigError, HubError
from hub.forward.outbox import Wakeups
from hub.forward.targets import build_forwarders
from hub.ingest.login import parse_login
from hub.ingest.mqtt import INGEST_MODES, MqttIngest, MqttIngestProcess
from hub.pipeline import Pipeline
from hub.store import Store

log = logging.getLogger("anju.hub")

INGEST_BATCH = 500  # frames applied under one commit at most (the site broker's
#                    max_inflight_messages 1000 lets a backlog fill it)
SLOW_BATCH_S = 0.1  # a batch (with its commit) slower than this is logged


def _same_broker(upstream, mqtt):
    """Whether the upstream target is the site broker itself (host and port)."""
    try:
        return (upstream.get("host"), int(upstream.get("port") or 0)) == (mqtt["host"],
                                                                           int(mqtt["port"]))
    except (TypeError, ValueError):
        return False


# a face unlock the lock hears later than this is refused by the lock (timed invoke)
FACE_UNLOCK_VALID_S = 10

class HubService:
    def __init__(self, site, db_path, clock, mqtt, upstream, ble_scanner_factory=None,
                 enable_ble=False, http=None, registry=None, webhook=None, auth_clock=None):
        # face section and HTTP API: validated before anything is opened
        self._face_cfg = None
        if getattr(site, "face", None) is not None:
            from hub.face import host as face_host
            self._face_cfg = face_host.load(site.face)
        http = http if http is not None else (getattr(site, "hub", None) or {}).get("http")
        if http is not None:
            from hub.web.http import parse_config
            http = parse_config(http)
        self._http_cfg = http
        # registry mode (hub/registry/db.py): its HTTP routes change the running site
        self.registry = registry
        if registry is not None:
            registry.guard = self._check_reload
        self.site = site
        self.clock = clock
        self.store = Store(db_path)
        prefix = upstream.get("topic_prefix", "anju/upstream")
        self.pipeline = Pipeline(site, self.store, prefix, clock=clock)
        # "thread": paho in a thread of this process; "process": in a child
        # process, so MQTT parsing and the pipeline use two cores (hub/ingest/mqtt.py)
        ingest = mqtt.get("ingest", "thread")
        if ingest not in INGEST_MODES:
            raise ConfigError("hub.mqtt: key 'ingest': '%s'; allowed: %s"
                              % (ingest, ", ".join(INGEST_MODES)))
        make = MqttIngestProcess if ingest == "process" else MqttIngest
        # the hub's own login (hub/ingest/login.py): every client it opens on
        # the site broker uses it, through `self.mqtt.login`
        login = parse_login(mqtt, site.site_id)
        self.mqtt = make(site.site_id, mqtt["host"], int(mqtt["port"]), login=login)
        self._outbox_wakeup = Wakeups()  # one event per forwarding target
        if login is not None and _same_broker(upstream, mqtt):
            upstream = {**upstream, "login": login}  # the hub's account has its upstream topics
        # MQTT upstream and/or webhook (hub/forward/outbox.py, hub/forward/webhook.py)
        self.forwarders = build_forwarders(self.store, site, upstream, clock,
                                           self._outbox_wakeup, webhook=webhook)
        self.forwarder = self.forwarders[0]
        self.enable_ble = enable_ble or ble_scanner_factory is not None
        self._ble_scanner_factory = ble_scanner_factory
        self.ble = None
        self._queue = asyncio.Queue()
        self._rules_changed = asyncio.Event()
        self._tasks = []
        self._cleanups = []
        self.frames_seen = 0
        self.mqtt_frames_seen = 0
        # called with each MQTT payload taken in (stored, rejected or failed), on
        # the loop: the simulator tells by it which frames the hub has had
        self.on_mqtt_payload = None
        self.ingest_errors = 0
        # optional parts (hub/components.py): started after the core, stopped before it
        from hub import components
        self.visitors = None  # hub/visitors/component.py, when the site has `visitors:`
        self.ota = None  # hub/ota/server.py, when the site file has `hub.ota`
        self.components = components.build(self)
        self._busy = False
        # called (on the loop) after every ingest batch and every rules pass: the
        # simulator waits on it for the hub to become idle
        self.on_progress = None
        self.on_command_sent = None  # fn(device id) once the broker has a hub command (the simulator)
        self._rules_waiting_until = "running"
        # ---- face access and the HTTP API (hub/face/host.py, hub/web/http.py) ----
        self.alarm_topic = self.pipeline.alarm_topic
        self._mqtt_address = (mqtt["host"], int(mqtt["port"]))
        self._async_cleanups = []
        self.face = None
        self.http = None
        self.alarm_streams = None  # the console's live alarm streams (hub/web/alarm_stream.py)
        self.accounts = None
        self.lock_sender = None  # hub/locks/sender.py, when the site has smart locks
        # sessions, tokens and login throttling run on real time: a simulation's
        # fast clock (the demo) must not end a session in a second
        self.auth_clock = auth_clock or clock
        if http is not None:
            from hub.auth.accounts import AccountStore, path_for
            self.accounts = AccountStore(path_for(db_path), self.auth_clock)

    # ---- life cycle ---------------------------------------------------------
    async def start(self, connect_timeout=10.0):
        """Start everything and wait up to `connect_timeout` for the device
        broker. A start that fails stops what it had started (the receiver
        child included) before raising, so a hub that cannot work leaves
        nothing behind that could later claim it is online."""
        try:
            await self._start(connect_timeout)
        except BaseException:
            await self.stop()
            raise

    async def _start(self, connect_timeout):
        loop = asyncio.get_running_loop()
        self.store.start_checkpointer()
        self._cleanups.append(self.store.stop_checkpointer)
        self.mqtt.start(loop, self._queue)
        self._cleanups.append(self.mqtt.stop)
        for forwarder in self.forwarders:
            forwarder.start(loop)
            self._cleanups.append(forwarder.stop)
        if self.enable_ble:
            from hub.ingest.ble import BleReceiver

            def on_result(result):
                loop.call_soon_threadsafe(self._queue.put_nowait, ("ble", result))

            kwargs = {}
            if self._ble_scanner_factory is not None:
                kwargs["scanner_factory"] = self._ble_scanner_factory
            self.ble = BleReceiver(self._ble_lookup, on_result, clock=self.clock, **kwargs)
            await self.ble.start()
        self._tasks = [asyncio.create_task(self._ingest(), name="ingest"),
                       asyncio.create_task(self._rules(), name="rules"),
                       *[asyncio.create_task(f.run(), name="forward-" + f.target)
                         for f in self.forwarders]]
        if self.store.outbox_depth():
            self._outbox_wakeup.set()
        await self._start_face_and_http(loop)
        for component in self.components:
            await component.start()
            self._async_cleanups.append(component.stop)
        await self.mqtt.wait_connected(connect_timeout)
        log.info("hub started", extra={"site": self.site.site_id,
                                       "devices": len(self.site.devices)})

    async def stop(self):
        while self._async_cleanups:
            await self._async_cleanups.pop()()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except asyncio.CancelledError:
                pass
        if self.ble is not None:
            await self.ble.stop()
        while self._cleanups:
            self._cleanups.pop()()
        self.store.close()
        if self.accounts is not None:
            self.accounts.close()

    def notify_outbox(self):
        """Wake the forwarder after a commit added outbox rows, and the rules loop,
        whose deadlines (escalation of a new alarm) may have moved (loop thread only)."""
        self._outbox_wakeup.set()
        self._rules_changed.set()

    def links(self):
        """Connection states of the device broker and the upstream (any thread)."""
        return {"mqtt": self.mqtt.connected.is_set(),
                "upstream": self.forwarder.connected.is_set()}

    async def _start_face_and_http(self, loop):
        if self._face_cfg is None and self._http_cfg is None:
            return
        from hub.face.sinks import HubAlarmSink, HubEventSink, LoopBridge
        bridge = LoopBridge(loop)
        self._cleanups.append(bridge.close)
        events = HubEventSink(self.store, self.clock, bridge)
        if self._face_cfg is not None:
            from hub.face.host import FaceAccessHost
            alarms = HubAlarmSink(self.site, self.store, self.clock, self.alarm_topic, bridge,
                                  self.notify_outbox)
            self.face = FaceAccessHost(self._face_cfg, self.site, self.clock, *self._mqtt_address,
                                       alarms, events, login=self.mqtt.login,
                                       lock_ctl=lambda lock, person: bridge.call(
                                           self.face_unlock, lock, person))
            self._async_cleanups.append(self.face.stop)
            await self.face.start()
        if self._http_cfg is not None:
            from hub.web import auth_routes
            from hub.web.http import HubApi
            from hub.web.server import HubHttpServer
            api = HubApi(self.store, self.clock, bridge, self.links, self.face, events)
            auth_routes.mount(api, self.accounts, self.auth_clock)
            from hub.console import files as console_files
            from hub.web import alarm_stream
            self.alarm_streams = alarm_stream.mount(api, self.store)
            self._cleanups.append(self.alarm_streams.unsubscribe)
            console_files.mount(api, lambda: self.site, registry=self.registry is not None)
            from hub.console import plan as console_plan
            from hub.responders.board import board_for
            console_plan.mount(api, self, Path(self.store.path).resolve().parent / "console")
            self.alarm_streams.attach_responders(board_for(self))
            if any(d.kind == "smart_lock" for d in self.site.devices.values()):
                from hub.locks import api as locks_api
                locks_api.mount(api, self)
            if self.visitors is not None:
                from hub.visitors import routes as visitor_routes
                visitor_routes.mount(api, self)
                from hub.console import passqr
                passqr.mount(api, self)
            if self.registry is not None:
                from hub.registry import routes as registry_api
                registry_api.mount(api, self)
            if self.ota is not None:
                from hub.ota import api as ota_api
                ota_api.mount(api, self)
            self.http = HubHttpServer.from_config(api, self.accounts, self._http_cfg)
            self._async_cleanups.append(await self.http.start())

    def _check_reload(self, site):
        if site.site_id != self.site.site_id:
            from hub.registry.db import RegistryConflict
            raise RegistryConflict("this hub serves site '%s'; a registry for site '%s' needs a "
                                   "restart of the hub" % (self.site.site_id, site.site_id))

    def reload_site(self, site):
        """Swap the site configuration everywhere it is referenced: pipeline,
        rule engine and rules (rebuilt; their state is in the store), the BLE
        key lookup and components that offer `reload_site`. Call it on the
        loop thread: the ingest task applies frames between awaits, so the
        swap falls between two events. Connections and the `hub:`, `face:`
        sections are not re-read (they need a restart)."""
        self._check_reload(site)
        from hub.pipeline import default_rules
        from hub.rules.engine import RuleEngine
        engine = RuleEngine(site, default_rules(site))
        self.site = site
        self.pipeline.site = site
        self.pipeline.engine = engine
        for component in self.components:
            if hasattr(component, "reload_site"):
                component.reload_site(site)
        self._rules_changed.set()  # thresholds may have moved: recompute the deadlines
        log.info("site configuration reloaded", extra={"site": site.site_id,
                                                        "devices": len(site.devices)})

    def _ble_lookup(self, address):
        did = self.site.by_address.get(address.upper())
        if did is None:
            return None
        dev = self.site.devices[did]
        from hub.ingest.ble import DeviceKeys
        return DeviceKeys(dev.id, dev.bind_key)

    # ---- tasks -------------------------------------------------------------------
    async def _ingest(self):
        while True:
            items = [await self._queue.get()]
            self._busy = True
            try:
                # what is already queued is applied as one batch: one commit
                # (one fsync), and the PUBACKs only after it
                while len(items) < INGEST_BATCH and not self._queue.empty():
                    items.append(self._queue.get_nowait())
                stats = self.pipeline.stats
                before = (stats["accepted"], stats["alarms"])
                acks = self._apply_batch(items)
                for ack in acks:
                    ack()  # only after the commit
                if (stats["accepted"], stats["alarms"]) != before:
                    # deadlines move with events and alarms; rejections move none
                    # (a flood of junk does not wake the time-driven rules)
                    self._rules_changed.set()
                    if self.store.outbox_depth():
                        self._outbox_wakeup.set()
            finally:
                self._busy = self._queue.qsize() > 0
                if self.on_progress is not None:
                    self.on_progress()
            await asyncio.sleep(0)  # let the rules and the forwarder run between batches

    def _apply_batch(self, items):
        """Apply `items` under one commit; the acknowledgements of what is now
        durable. When the batch fails as a whole (its commit, or the write of
        its rows), it is rolled back, memory included, and the frames are
        applied again one commit each, so one frame the store cannot take
        costs only its own acknowledgement."""
        acks, _ = self._try_batch(items)
        if acks is not None:
            return acks
        if len(items) > 1:
            log.warning("batch not stored; applying its frames one at a time",
                        extra={"frames": len(items)})
        acks = []
        for item in items:
            mine, error = self._try_batch([item])
            if mine is None:
                # the store failed on this frame: it is not acknowledged, so the
                # broker offers it again after a reconnect; keep serving
                self.frames_seen += 1
                self.mqtt_frames_seen += item[0] == "mqtt"
                self._payload_taken(item)
                self.ingest_errors += 1
                log.error("frame not stored", extra={"source": item[0], "error": str(error)})
            else:
                acks.extend(mine)
        return acks

    def _try_batch(self, items):
        """One commit for `items`: (their acknowledgements, None), or (None, the
        error) when it failed (the store and the counters are then as before)."""
        stats = dict(self.pipeline.stats)
        seen = (self.frames_seen, self.mqtt_frames_seen, self.ingest_errors)
        acks = []
        started = time.monotonic()
        try:
            with self.store.batch():
                for item in items:
                    self._apply(item, acks)
            for item in items:
                self._payload_taken(item)  # once each, when committed
            took = time.monotonic() - started
            if took > SLOW_BATCH_S:
                log.warning("slow ingest batch", extra={"frames": len(items),
                                                        "ms": round(took * 1e3, 1)})
            return acks, None
        except HubError as exc:
            self.pipeline.stats.update(stats)
            self.frames_seen, self.mqtt_frames_seen, self.ingest_errors = seen
            return None, exc

    def _apply(self, item, acks):
        now = self.clock.now()
        try:
            if item[0] == "mqtt":
                _, topic, payload, retained, ack, redelivered = item
                self.pipeline.handle_mqtt(topic, payload, now, retained, redelivered)
                acks.append(ack)
            else:
                self.pipeline.handle_ble(item[1], now)
        except HubError:
            # the store failed on this frame: it is not acknowledged, so the
            # broker offers it again after a reconnect; keep serving
            self.ingest_errors += 1
            log.exception("frame not stored", extra={"source": item[0]})
        if item[0] == "mqtt":
            self.mqtt_frames_seen += 1
        self.frames_seen += 1

    def _payload_taken(self, item):
        if item[0] == "mqtt" and self.on_mqtt_payload is not None:
            self.on_mqtt_payload(item[2])

    async def _rules(self):
        deadline = None
        first = True
        while True:
            now = self.clock.now()
            # Time-driven rules run when a deadline comes (or on start, for what
            # came due while the hub was down). An event only moves deadlines:
            # what it triggers itself was decided in its own transaction.
            if first or (deadline is not None and deadline <= now):
                self.pipeline.evaluate(now)
                if self.store.outbox_depth():
                    self._outbox_wakeup.set()  # new alarms or escalations
                if self.lock_sender is not None:
                    self.lock_sender.wake()  # commands a timed rule queued (a tenancy ended)
            first = False
            deadline = self.pipeline.next_deadline()
            self._rules_changed.clear()
            self._rules_waiting_until = deadline
            if self.on_progress is not None:
                self.on_progress()
            waiters = [asyncio.ensure_future(self._rules_changed.wait())]
            if deadline is not None:
                waiters.append(asyncio.ensure_future(self.clock.sleep_until(deadline)))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
                self._rules_waiting_until = "running"

    # ---- for the simulator and tests -----------------------------------------------
    def face_unlock(self, lock, person_id, method="face"):
        """An entrance camera matched `person_id`: the LOCK_CTL unlock for the
        smart lock `lock`, queued and sent like every lock command (loop
        thread); the lock logs the opening as ACCESS face with the person's id,
        which unregistered_occupant judges. Returns the command's counter."""
        from hub.locks import book
        with self.store.transaction() as tx:
            cmd = book.lock_ctl(tx, self.site, lock, "unlock", self.clock.now(), "face",
                                method=method, who=person_id, valid_s=FACE_UNLOCK_VALID_S)
        if self.lock_sender is not None:
            self.lock_sender.wake()
        return cmd["counter"]

    def revoke_visitor_code(self, device_id, digits, actor):
        """Revoke the visitor code `digits` (its ten digits) on the smart lock
        `device_id`: VISITOR_REVOKE is stored and sent like every lock command
        and queued again until the lock confirms it or the code's window ends
        (a sleeping or offline lock gets it at its next contact). `actor` says
        who asked (recorded with the command). Loop thread. Returns the
        revocation (`state` requested, then confirmed); LockError names the
        field for a code that is not this lock's or whose window has ended."""
        from hub.locks import LockError, book
        if not isinstance(actor, str) or not actor:
            raise LockError("actor: who asks for the revocation is required")
        with self.store.transaction() as tx:
            rec, _ = book.revoke_visitor_code(tx, self.site, device_id, digits,
                                              self.clock.now(), actor)
        if self.lock_sender is not None:
            self.lock_sender.wake()
        return rec

    def command_sent(self, device_id):
        """A component's command for a device reached the broker (PUBACK)."""
        if self.on_command_sent is not None:
            self.on_command_sent(device_id)

    def is_idle(self):
        """Nothing queued, the rules waiting on a future deadline, and the
        outbox empty (or the upstream unreachable)."""
        if self._busy or not self._queue.empty() or self._rules_changed.is_set():
            return False
        waiting = self._rules_waiting_until
        if waiting == "running" or (waiting is not None and waiting <= self.clock.now()):
            return False
        if not all(c.idle() for c in self.components if hasattr(c, "idle")):
            return False
        return all(f.idle() for f in self.forwarders) and not self._outbox_wakeup.is_set()

