"""The hub is killed with SIGKILL after an alarm was raised but before the
upstream acknowledged it: after a restart the alarm is delivered exactly once,
with the id it was raised with, and frames the broker accepted while the hub
was dead are all stored, once."""
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho

from anju import frame

REPO = Path(__file__).resolve().parents[2]
KEY = bytes(range(32))


def site_yaml(tmp_path):
    text = """
site: {id: sunrise, name: Sunrise Gardens}
buildings:
  - id: b1
    flats:
      - id: b1-101
        inactivity: 3s
        residents: [{id: r-101, name: Wang Lan, lives_alone: true}]
devices:
  - id: door-101
    kind: door_sensor
    board: esp32c3
    flat: b1-101
    transport: mqtt
    frame_key: %s
""" % KEY.hex()
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return path


def start_hub(tmp_path, broker, upstream, **popen):
    """`anju hub run` on tmp_path's site.yaml and hub.db, logging to hub.log."""
    with open(tmp_path / "hub.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "host_tools.cli", "hub", "run", "--config",
             str(tmp_path / "site.yaml"), "--db", str(tmp_path / "hub.db"),
             "--mqtt", "%s:%d" % (broker.host, broker.port),
             "--upstream", "%s:%d" % (upstream.host, upstream.port)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, **popen)


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def db_query(tmp_path, sql):
    db = sqlite3.connect("file:%s?mode=ro" % (tmp_path / "hub.db"), uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


class Collector:
    def __init__(self, broker, topic, client_id):
        self.messages = []
        self.ready = threading.Event()
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, 1)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.ready.set()
        self.c.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()
        assert self.ready.wait(10)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def publish(broker, frames):
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="door-101")
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        for f in frames:
            info = c.publish("anju/sunrise/door-101/event", f, qos=1)
            info.wait_for_publish(5)
            assert info.is_published()
    finally:
        c.disconnect()
        c.loop_stop()


def door(counter, is_open):
    return frame.encode(KEY, b"door-101", frame.T_DOOR, counter, 0, frame.door_body(is_open))


def test_sigkill_before_upstream_ack_delivers_once(tmp_path, make_broker):
    site_yaml(tmp_path)
    broker = make_broker("site", persistence=True)
    upstream = make_broker("upstream", persistence=True)
    hub = start_hub(tmp_path, broker, upstream)
    try:
        online = Collector(broker, "anju/sunrise/hub/availability", "watch-1")
        wait_for(lambda: (("anju/sunrise/hub/availability", b"online") in online.messages),
                 20, "the hub to come online")
        online.close()
        upstream.stop()  # the platform is unreachable when the alarm is raised
        publish(broker, [door(1, True), door(2, False)])
        wait_for(lambda: db_query(tmp_path, "SELECT COUNT(*) FROM outbox")[0][0] == 1, 20,
                 "the inactivity alarm in the outbox")
        alarm_id = db_query(tmp_path, "SELECT id FROM alarms")[0][0]
        hub.send_signal(signal.SIGKILL)
        hub.wait(10)
        # frames the broker accepts while the hub is dead are kept for its session
        publish(broker, [door(3, True), door(4, False), door(5, True)])
        upstream.start()
        platform = Collector(upstream, "anju/upstream/#", "platform")
        hub = start_hub(tmp_path, broker, upstream)
        wait_for(lambda: len(platform.messages) >= 1, 30, "the alarm upstream")
        wait_for(lambda: db_query(tmp_path, "SELECT COUNT(*) FROM events")[0][0] == 5, 20,
                 "the frames sent while the hub was down")
        time.sleep(1.5)  # a second copy would have arrived by now
        docs = [json.loads(p) for _, p in platform.messages]
        assert [d["id"] for d in docs] == [alarm_id]
        assert docs[0]["type"] == "inactivity" and docs[0]["flat"] == "b1-101"
        counters = [r[0] for r in db_query(tmp_path, "SELECT counter FROM events ORDER BY id")]
        assert counters == [1, 2, 3, 4, 5]
        assert db_query(tmp_path, "SELECT COUNT(*) FROM outbox")[0][0] == 0
        platform.close()
    finally:
        if hub.poll() is None:
            hub.send_signal(signal.SIGTERM)
            try:
                hub.wait(10)
            except subprocess.TimeoutExpired:
                hub.kill()


def test_hub_stops_cleanly_on_sigterm(tmp_path, make_broker):
    site_yaml(tmp_path)
    broker = make_broker("site")
    upstream = make_broker("upstream")
    hub = start_hub(tmp_path, broker, upstream)
    watch = Collector(broker, "anju/sunrise/hub/availability", "watch-2")
    try:
        wait_for(lambda: ("anju/sunrise/hub/availability", b"online") in watch.messages, 20,
                 "the hub to come online")
        hub.send_signal(signal.SIGTERM)
        assert hub.wait(10) == 0
        wait_for(lambda: ("anju/sunrise/hub/availability", b"offline") in watch.messages, 10,
                 "the hub to say it is offline")
    finally:
        watch.close()
        if hub.poll() is None:
            hub.kill()


