"""The console's browser tests: a real hub (HubService with the HTTP API, real
Mosquitto brokers, its own asyncio loop in a thread, so that Selenium's
blocking calls never stall it) and Debian's Chromium driven through Debian's
chromedriver, headless. Selenium is given both paths and never downloads
anything (SE_OFFLINE)."""
import asyncio
import os
import threading
import time
import uuid

from anju import frame
from hub.config import site as config
from hub.config import yamlfile
from tests.integration import hubkit

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PASSWORD = "lantern-orchard-42"
TIMEZONE = "Asia/Shanghai"

SITE_YAML = """
site: {id: sunrise, name: 朝阳花园, timezone: %(tz)s}
buildings:
  - id: b1
    flats:
      - id: b1-101
        residents: [{id: r-101, name: 王兰, lives_alone: true}]
      - id: b1-102
        residents: [{id: r-102, name: Li Wei, lives_alone: true}]
devices:
  - {id: door-101, kind: door_sensor, board: esp32c3, flat: b1-101, transport: mqtt, frame_key: %(key)s}
  - {id: door-102, kind: door_sensor, board: esp32c3, flat: b1-102, transport: mqtt, frame_key: %(key)s}
"""


# the plan's site: two buildings placed on a 1000 x 600 plan, a rental flat,
# residents living alone, devices, and responders on duty
PLAN_YAML = """
site: {id: sunrise, name: 朝阳花园, timezone: %(tz)s, plan: {width: 1000, height: 600}}
buildings:
  - id: b1
    name: "1"
    plan: {x: 60, y: 80, w: 320, h: 240}
    flats:
      - id: b1-101
        residents: [{id: r-101, name: 王兰, lives_alone: true}]
      - id: b1-102
        residents: [{id: r-102, name: Li Wei, role: tenant, from: 2026-01-01}]
      - id: b1-201
        residents: [{id: r-201, name: 陈明}]
      - id: b1-202
  - id: b2
    name: "2"
    outline: [[560, 120], [900, 120], [900, 420], [730, 420], [730, 300], [560, 300]]
    flats:
      - id: b2-101
        residents: [{id: r-211, name: 赵强, role: tenant}]
      - id: b2-201
devices:
  - {id: door-101, kind: door_sensor, board: esp32c3, flat: b1-101, transport: mqtt, frame_key: %(key)s}
  - {id: door-102, kind: door_sensor, board: esp32c3, flat: b1-102, transport: mqtt, frame_key: %(key)s}
  - {id: smoke-211, kind: smoke_sensor, board: esp32c3, flat: b2-101, transport: mqtt, frame_key: %(key)s}
responders:
  - {id: p-zhang, name: 张警官, kind: police}
  - {id: g-wu, name: 吴网格, kind: grid_worker}
  - {id: v-li, name: 李阿姨, kind: volunteer, on_duty: false}
"""


# registry mode (docs/registry.md): the plan's site, made into the hub's registry
REGISTRY_YAML = PLAN_YAML.replace("site: {id: sunrise,", "hub: {registry: true, http: true}\nsite: {id: sunrise,")


def site(text=SITE_YAML):
    text = text % {"tz": TIMEZONE, "key": hubkit.KEY.hex()}
    return config.parse_site(yamlfile.loads(text, "site.yaml"))


def plan_site():
    return site(PLAN_YAML)


class HubThread:
    """A running hub on its own loop; `call(fn, *args)` runs `fn` on that loop."""

    def __init__(self, db, site_broker, upstream, site_cfg=None, registry_yaml=None):
        """`registry_yaml`: run in registry mode, the registry made from that site file."""
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="hub-loop", daemon=True)
        self._thread.start()
        self.registry = None
        if registry_yaml is not None:
            self.registry, site_cfg = open_registry(db, registry_yaml)
        self.db, self.site_cfg = db, site_cfg or site()
        self.hub = self.run(start_on_port(db, site_broker, upstream, self.site_cfg, 0,
                                          self.registry))
        self.port = self.hub.http.port
        self.base = "http://127.0.0.1:%d" % self.port
        self.broker = site_broker
        self.upstream = upstream
        self.counters = {}
        self.running = True

    def run(self, coro, timeout=20):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn, *args):
        async def on_loop():
            return fn(*args)
        return self.run(on_loop())

    def stop_hub(self):
        """Stop the hub (its HTTP server too: the page loses its stream); the
        loop stays, so `start_hub` can run a new HubService on the same store."""
        self.run(self.hub.stop())
        self.running = False

    def start_hub(self):
        """A new HubService on the same database, brokers and HTTP port, as
        after a restart of the hub's process (sessions live in the database)."""
        self.hub = self.run(start_on_port(self.db, self.broker, self.upstream, self.site_cfg,
                                          self.port, self.registry))
        self.running = True

    def stop(self):
        try:
            if self.running:
                self.run(self.hub.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    def account(self, name, role):
        self.call(self.hub.accounts.add, name, role, PASSWORD, "test")
        return name

    def publish_tamper(self, device="door-101"):
        """A real TAMPER frame (case open) from the device, through the site broker:
        the hub's ingest, verification, store and tamper rule raise the alarm."""
        counter = self.counters.get(device, 0) + 1
        self.counters[device] = counter
        data = frame.encode(hubkit.KEY, device.encode(), frame.T_TAMPER, counter, 0, b"\x01")
        hubkit.publish_frame(self.broker, device, data)

    def raise_alarm(self, cause, resident=None, flat="b1-101"):
        """An alarm raised through the hub's alarm book, as a rule does (on the loop)."""
        return self.call(raise_on_loop, self.hub, cause, resident, flat)

    def alarm(self, alarm_id):
        return self.call(self.hub.store.alarm, alarm_id)

    def transitions(self, alarm_id):
        return self.call(self.hub.store.transitions, alarm_id)

    def alarms(self):
        return self.call(self.hub.store.alarms)

    def site_now(self):
        """The running hub's site configuration (a registry change swaps it)."""
        return self.call(lambda: self.hub.site)

    def report_position(self, responder, x, y):
        """A responder's position, as its phone's report does (on the hub's loop)."""
        return self.call(self.hub.responder_board.report, responder, {"x": x, "y": y}, "http")


def open_registry(db, text):
    """A registry (hub/registry/db.py) made from the site file `text`, beside `db`."""
    from hub.clock import SystemClock
    from hub.registry import kek
    from hub.registry.db import open_for_hub
    folder = db.parent
    (folder / "site.yaml").write_text(text % {"tz": TIMEZONE, "key": hubkit.KEY.hex()},
                                      encoding="utf-8")
    return open_for_hub(folder / "site.yaml", db, SystemClock(), kek.create(folder / "kek"))


async def start_on_port(db, site_broker, upstream, site_cfg, port, registry=None):
    """hubkit.start_hub with the API on a given port (0: any; after a restart
    the one the page has open), in registry mode with `registry`."""
    from hub.clock import SystemClock
    from hub.ingest.login import hub_username
    from hub.service import HubService
    hub = HubService(site_cfg, db, SystemClock(),
                     {"host": site_broker.host, "port": site_broker.port,
                      **site_broker.login(hub_username(site_cfg.site_id))},
                     {"host": upstream.host, "port": upstream.port}, http={"port": port},
                     registry=registry)
    await hub.start(connect_timeout=10)
    hub.site_broker = site_broker
    await hubkit.commands_component(hub).wait_ready(10)
    await hubkit.wait_for(lambda: hub.links()["upstream"])
    return hub


def raise_on_loop(hub, cause, resident=None, flat="b1-101"):
    from hub.alarms import documents
    now = hub.clock.now()
    doc = documents.generic(hub.site, "inactivity" if resident else "tamper", "high",
                            {"building": "b1", "flat": flat, "device": "door-101"},
                            {"cause": cause}, now)
    doc["resident"] = resident
    with hub.store.transaction() as tx:
        raised = hub.pipeline.book.raise_alarm(tx, cause or uuid.uuid4().hex, doc, now)
    hub.notify_outbox()
    return raised


def browser(width=1280, height=900):
    """Headless Chromium from Debian, through /usr/bin/chromedriver."""
    os.environ["SE_OFFLINE"] = "true"       # Selenium Manager: never download
    os.environ["SE_AVOID_STATS"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps", "--lang=zh-CN",
                "--window-size=%d,%d" % (width, height)):
        options.add_argument(arg)
    service = Service(executable_path=CHROMEDRIVER)
    return webdriver.Chrome(options=options, service=service)


def wait(driver, condition, timeout=5.0, what="condition"):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.02).until(
        lambda d: condition(d), message="timed out waiting for %s" % what)


def wait_until(pred, timeout=5.0, what="condition"):
    """For conditions on the hub's side (the store), polled from the test thread."""
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out waiting for %s" % what
        threading.Event().wait(0.02)
    return True
