"""The hub's MQTT client in a receiver process (`hub.mqtt.ingest: process`, what
`anju hub run` uses): frames arrive through it, a PUBACK leaves only after the
frame's commit, a receiver that dies is replaced without losing or doubling a
frame, and a receiver whose hub dies goes away so the broker publishes the
hub's will. Real Mosquitto, real child processes, SIGKILL."""
import asyncio
import os
import signal
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from anju import frame
from hub.config import site as config
from hub.config import yamlfile
from hub.clock import SystemClock
from hub.service import HubService
from tests.integration.test_hub_crash import start_hub

pytestmark = [pytest.mark.broker]

KEY = bytes(range(32))
DEVICES = ["door-%d" % i for i in range(1, 5)]
SITE = """
site: {id: sunrise}
buildings:
  - id: b1
    flats:
      - id: b1-101
        residents: [{id: r-101, name: Wang Lan}]
devices:
""" + "".join("  - {id: %s, kind: door_sensor, board: esp32c3, flat: b1-101, transport: mqtt,"
              " frame_key: %s}\n" % (d, KEY.hex()) for d in DEVICES)


def site():
    return config.parse_site(yamlfile.loads(SITE, "site.yaml"))


class Publisher:
    """Publishes door frames at QoS 1; `acked` holds what the broker accepted."""

    def __init__(self, broker):
        self._sent = []  # (MQTTMessageInfo, (device, counter))
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="pub-%d" % os.getpid())
        self.c.max_inflight_messages_set(100)
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()

    @property
    def acked(self):
        return {key for info, key in self._sent if info.is_published()}

    def send(self, device, counter):
        data = frame.encode(KEY, device.encode(), frame.T_DOOR, counter, 0,
                            frame.door_body(counter % 2 == 1))
        info = self.c.publish("anju/sunrise/%s/event" % device, data, qos=1)
        self._sent.append((info, (device, counter)))

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


async def wait_for(pred, timeout=15.0, what="condition"):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        assert loop.time() < end, "timed out waiting for " + what
        await asyncio.sleep(0.02)


def stored(hub):
    return {(e["device"], e["counter"]) for e in hub.store.events()}


def make_hub(tmp_path, broker, upstream):
    return HubService(site(), tmp_path / "hub.db", SystemClock(),
                      {"host": broker.host, "port": broker.port, "ingest": "process"},
                      {"host": upstream.host, "port": upstream.port})


async def test_frames_through_the_receiver_are_stored_once_and_acknowledged(tmp_path, make_broker):
    broker = make_broker("site")
    upstream = make_broker("upstream")
    hub = make_hub(tmp_path, broker, upstream)
    await hub.start()
    pub = Publisher(broker)
    try:
        assert hub.mqtt.pid() not in (None, os.getpid())
        sent = {(d, c) for c in range(1, 51) for d in DEVICES}
        for d, c in sorted(sent, key=lambda x: (x[1], x[0])):
            pub.send(d, c)
        await wait_for(lambda: stored(hub) == sent, what="every frame stored")
    finally:
        await hub.stop()
        pub.close()
    # every frame was acknowledged: a new session of the hub gets nothing again
    hub = make_hub(tmp_path, broker, upstream)
    await hub.start()
    try:
        await asyncio.sleep(1.0)
        assert hub.store.rejection_counts() == {}
        assert len(hub.store.events()) == len(sent)
    finally:
        await hub.stop()


async def test_a_frame_not_committed_is_not_acknowledged(tmp_path, make_broker):
    """The store refuses one device's frames: the receiver never sends their
    PUBACK, so the broker offers them to the hub's next session."""
    broker = make_broker("site", persistence=True)
    upstream = make_broker("upstream")
    hub = make_hub(tmp_path, broker, upstream)
    hub.store.db.execute("CREATE TRIGGER refuse BEFORE INSERT ON events WHEN "
                         "NEW.device_id = 'door-2' BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    await hub.start()
    pub = Publisher(broker)
    try:
        for d in DEVICES:
            pub.send(d, 1)
        await wait_for(lambda: len(stored(hub)) == 3 and hub.ingest_errors >= 1)
        assert ("door-2", 1) not in stored(hub)
    finally:
        await hub.stop()
        pub.close()
    hub = make_hub(tmp_path, broker, upstream)  # the trigger is gone with the old connection
    hub.store.db.execute("DROP TRIGGER refuse")
    await hub.start()
    try:
        await wait_for(lambda: ("door-2", 1) in stored(hub), what="the refused frame again")
        assert len(hub.store.events()) == 4
    finally:
        await hub.stop()


async def test_a_receiver_that_dies_is_replaced_and_nothing_is_lost(tmp_path, make_broker):
    broker = make_broker("site", persistence=True)
    upstream = make_broker("upstream")
    hub = make_hub(tmp_path, broker, upstream)
    await hub.start()
    pub = Publisher(broker)
    try:
        counter = 0
        for _ in range(3):
            for _ in range(40):
                counter += 1
                for d in DEVICES:
                    pub.send(d, counter)
            old = hub.mqtt.pid()
            os.kill(old, signal.SIGKILL)  # with frames in flight
            await wait_for(lambda: hub.mqtt.pid() != old and hub.mqtt.subscribed.is_set(),
                           what="a new receiver")
        counter += 1
        for d in DEVICES:
            pub.send(d, counter)
        await wait_for(lambda: len(pub.acked) == counter * len(DEVICES), what="broker acks")
        await wait_for(lambda: stored(hub) == pub.acked, timeout=30, what="every frame stored")
        assert hub.mqtt.restarts == 3
        events = [(e["device"], e["counter"]) for e in hub.store.events()]
        assert len(events) == len(set(events))
        assert "replayed" not in hub.store.rejection_counts()
    finally:
        await hub.stop()
        pub.close()


async def test_the_receiver_reconnects_after_the_broker_crashes(tmp_path, make_broker):
    broker = make_broker("site", persistence=True)
    upstream = make_broker("upstream")
    hub = make_hub(tmp_path, broker, upstream)
    await hub.start()
    try:
        pub = Publisher(broker)
        for c in range(1, 21):
            for d in DEVICES:
                pub.send(d, c)
        await wait_for(lambda: len(stored(hub)) == 80, what="the first frames")
        pub.close()
        receiver = hub.mqtt.pid()
        await asyncio.to_thread(broker.restart, crash=True, down_for=1.0)
        await wait_for(lambda: not hub.mqtt.connected.is_set() or hub.mqtt.subscribed.is_set())
        await wait_for(lambda: hub.mqtt.subscribed.is_set(), what="the receiver back")
        pub = Publisher(broker)
        for c in range(21, 41):
            for d in DEVICES:
                pub.send(d, c)
        await wait_for(lambda: len(pub.acked) == 80, what="broker acks")
        await wait_for(lambda: len(stored(hub)) == 160, what="frames after the restart")
        pub.close()
        assert hub.mqtt.pid() == receiver  # the same process reconnected
        assert "replayed" not in hub.store.rejection_counts()
    finally:
        await hub.stop()


def children_of(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path("/proc/%s/stat" % entry).read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its reaper is dead too
        return Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class HubProcess:
    """`anju hub run` (receiver process mode) with a watcher on its availability
    topic; `receivers` are its child processes once it is online."""

    def __init__(self, tmp_path, make_broker, **popen):
        self.tmp_path = tmp_path
        broker, upstream = make_broker("site"), make_broker("upstream")
        (tmp_path / "site.yaml").write_text(SITE)
        self.seen = []
        self.watch = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="watch")
        self.watch.on_connect = lambda c, u, f, rc, p: c.subscribe(
            "anju/sunrise/hub/availability", 1)
        self.watch.on_message = lambda c, u, m: self.seen.append(bytes(m.payload))
        self.watch.connect(broker.host, broker.port)
        self.watch.loop_start()
        self.hub = start_hub(tmp_path, broker, upstream, **popen)
        end = time.monotonic() + 30
        while b"online" not in self.seen:
            assert time.monotonic() < end, self.log()[-2000:]
            time.sleep(0.05)
        self.receivers = children_of(self.hub.pid)
        assert self.receivers, "anju hub run has no receiver process"
        self.seen.clear()

    def log(self):
        return (self.tmp_path / "hub.log").read_text()

    def wait_receivers_gone_and_offline(self):
        end = time.monotonic() + 10
        while any(alive(p) for p in self.receivers) or b"offline" not in self.seen:
            assert time.monotonic() < end, "receiver alive: %s, seen: %s" % (
                [p for p in self.receivers if alive(p)], self.seen)
            time.sleep(0.05)

    def close(self):
        if self.hub.poll() is None:
            self.hub.kill()
        self.watch.disconnect()
        self.watch.loop_stop()


def test_when_the_hub_is_killed_its_receiver_goes_and_the_will_says_offline(tmp_path,
                                                                             make_broker):
    run = HubProcess(tmp_path, make_broker)
    try:
        run.hub.send_signal(signal.SIGKILL)
        run.hub.wait(10)
        run.wait_receivers_gone_and_offline()
    finally:
        run.close()


def test_a_stop_signal_to_the_whole_group_stops_hub_and_receiver_cleanly(tmp_path, make_broker):
    """Ctrl-C in a terminal, or a service manager signalling the process group:
    the receiver leaves stopping to the hub, which publishes `offline` and exits 0."""
    run = HubProcess(tmp_path, make_broker, start_new_session=True)
    try:
        os.killpg(run.hub.pid, signal.SIGINT)
        assert run.hub.wait(20) == 0
        run.wait_receivers_gone_and_offline()
        assert "Traceback" not in run.log()
    finally:
        run.close()
