"""Crash soak: the hub is SIGKILLed at random points of a 10,000-frame run while
inactivity alarms are raised, escalated and acknowledged by the platform, and
restarted on the same database each time.

At the end, against what the publisher and the platform recorded:
  - every frame the site broker acknowledged is in the events table exactly once;
  - every alarm version in the store arrived upstream, each alarm's versions in
    seq order (a re-send after a crash is allowed only as an exact duplicate);
  - no two alarms for one silence period of a flat (no alarm raised twice);
  - every platform command took effect once.
The seed is printed (and can be forced with ANJU_SOAK_SEED) to replay a failure.
"""
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from anju import frame

REPO = Path(__file__).resolve().parents[2]
KEY = bytes(range(32))
SITE = "soak"
N_DEVICES = 50
ALONE = {i: 1 + i % 3 for i in range(0, N_DEVICES, 5)}  # device index -> inactivity threshold (s)
TOTAL = 10_000
DURATION_S = 22.0
KILLS = 6
BROKER_CONFIG = ("max_queued_messages 0",)  # keep every frame queued for the hub's session

pytestmark = [pytest.mark.slow, pytest.mark.broker]


def dev(i):
    return "door-%02d" % i


def site_yaml():
    lines = ["site: {id: %s, name: Soak Gardens}" % SITE,
             "rules: {escalation: {after: 1s}}",
             "buildings:", "  - id: b1", "    flats:"]
    for i in range(N_DEVICES):
        lines.append("      - id: f-%02d" % i)
        if i in ALONE:
            lines.append("        inactivity: %ds" % ALONE[i])
        lines.append("        residents: [{id: r-%02d, name: R %d, lives_alone: %s}]"
                     % (i, i, "true" if i in ALONE else "false"))
    lines.append("devices:")
    for i in range(N_DEVICES):
        lines.append("  - {id: %s, kind: door_sensor, board: esp32c3, flat: f-%02d, transport: mqtt,"
                     " frame_key: %s}" % (dev(i), i, KEY.hex()))
    return "\n".join(lines) + "\n"


def schedule(rng):
    """[(t, device index)] over DURATION_S: lives-alone sensors in pairs of frames
    separated by silences longer than their threshold, the rest spread evenly."""
    plan = []
    for i, threshold in ALONE.items():
        t = rng.uniform(0, 1)
        while t < DURATION_S - 1:
            plan += [(t, i), (t + 0.2, i)]
            t += 0.2 + threshold + rng.uniform(0.3, 1.2)
    busy = [i for i in range(N_DEVICES) if i not in ALONE]
    rest = TOTAL - len(plan)
    plan += [(k * DURATION_S / rest, busy[k % len(busy)]) for k in range(rest)]
    plan.sort()
    return plan


class Publisher(threading.Thread):
    """Publishes the schedule at QoS 1; records the frames the broker acknowledged."""

    def __init__(self, broker, plan):
        super().__init__(daemon=True)
        self.plan = plan
        self.sent = {}  # mid -> (device, counter)
        self.acked_mids = set()
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="soak-devices")
        self.c.max_inflight_messages_set(100)
        self.c.on_publish = self._on_publish
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()

    def _on_publish(self, c, u, mid, rc, props):
        self.acked_mids.add(mid)  # (paho's thread; no lock shared with publish())

    @property
    def acked(self):
        return {self.sent[mid] for mid in self.acked_mids}

    def run(self):
        counters = defaultdict(int)
        t0 = time.monotonic()
        for t, i in self.plan:
            delay = t0 + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            counters[i] += 1
            did = dev(i)
            data = frame.encode(KEY, did.encode(), frame.T_DOOR, counters[i], 0,
                                frame.door_body(counters[i] % 2 == 1))
            info = self.c.publish("anju/%s/%s/event" % (SITE, did), data, qos=1)
            self.sent[info.mid] = (did, counters[i])

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


class Platform:
    """The upstream platform: a persistent-session subscriber recording every
    alarm document in arrival order, and sending dispatch + acknowledge for
    every other alarm on the hub's command topic (when the hub has one)."""

    def __init__(self, upstream, commands):
        self.received = []  # (alarm id, seq, payload bytes)
        self.commanded = set()
        self.commands = commands
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="soak-platform",
                             clean_session=False)
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe("anju/upstream/%s/alarms" % SITE, 1)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.ready.set()
        self.c.on_message = self._on_message
        self.c.connect(upstream.host, upstream.port)
        self.c.loop_start()
        assert self.ready.wait(10)

    def _on_message(self, c, u, m):
        doc = json.loads(m.payload)
        with self.lock:
            self.received.append((doc["id"], doc["seq"], bytes(m.payload)))
        if self.commands and doc["seq"] == 1 and int(doc["id"].replace("-", ""), 16) % 2 == 0:
            self.commanded.add(doc["id"])
            for action in ("dispatch", "acknowledge"):
                cmd = {"schema": "anju.command/1", "command_id": "%s:%s" % (doc["id"], action),
                       "alarm_id": doc["id"], "action": action, "actor": "soak-platform"}
                c.publish("anju/upstream/%s/commands" % SITE, json.dumps(cmd), qos=1)

    def snapshot(self):
        with self.lock:
            return list(self.received)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def start_hub(tmp_path, broker, upstream):
    with open(tmp_path / "hub.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "host_tools.cli", "hub", "run", "--config",
             str(tmp_path / "site.yaml"), "--db", str(tmp_path / "hub.db"),
             "--mqtt", "%s:%d" % (broker.host, broker.port),
             "--upstream", "%s:%d" % (upstream.host, upstream.port)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)


def query(tmp_path, sql):
    db = sqlite3.connect("file:%s?mode=ro" % (tmp_path / "hub.db"), uri=True, timeout=10)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def wait_online(broker, timeout=30):
    seen = threading.Event()
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="soak-watch")
    c.on_connect = lambda c, u, f, rc, p: c.subscribe("anju/%s/hub/availability" % SITE, 1)
    c.on_message = lambda c, u, m: seen.set() if m.payload == b"online" else None
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        assert seen.wait(timeout), "the hub did not come online"
    finally:
        c.disconnect()
        c.loop_stop()


def hub_has_commands():
    return (REPO / "hub" / "commands.py").exists()


def settled(tmp_path, platform):
    """Outbox empty, every alarm at its last version, and all of them upstream."""
    if query(tmp_path, "SELECT COUNT(*) FROM outbox")[0][0]:
        return False
    open_ = query(tmp_path, "SELECT COUNT(*) FROM alarms WHERE state IN ('raised','dispatched')"
                            " AND escalation < 2")[0][0]
    if open_:
        return False
    want = set(query(tmp_path, "SELECT alarm_id, seq FROM alarm_transitions"))
    return want <= {(a, s) for a, s, _ in platform.snapshot()}


def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path, make_broker):
    seed = int(os.environ.get("ANJU_SOAK_SEED", random.SystemRandom().randrange(1 << 30)))
    print("crash soak seed: %d (replay with ANJU_SOAK_SEED=%d)" % (seed, seed))
    rng = random.Random(seed)
    (tmp_path / "site.yaml").write_text(site_yaml())
    broker = make_broker("site", persistence=True, extra_config=BROKER_CONFIG)
    upstream = make_broker("upstream", persistence=True)
    platform = Platform(upstream, hub_has_commands())
    plan = schedule(rng)
    kill_at = sorted(rng.uniform(1.5, DURATION_S - 1) for _ in range(KILLS))
    hub = start_hub(tmp_path, broker, upstream)
    # the hub's persistent session must exist before the first frame (later it
    # outlives every kill)
    wait_online(broker)
    publisher = Publisher(broker, plan)
    kills = 0
    try:
        t0 = time.monotonic()
        publisher.start()
        for at in kill_at:
            time.sleep(max(0.0, t0 + at - time.monotonic()))
            if hub.poll() is not None:
                pytest.fail("the hub exited by itself (code %s); see %s" % (hub.returncode,
                                                                            tmp_path / "hub.log"))
            hub.send_signal(signal.SIGKILL)
            hub.wait(10)
            kills += 1
            time.sleep(rng.uniform(0, 0.5))  # frames queue at the broker meanwhile
            hub = start_hub(tmp_path, broker, upstream)
        publisher.join(DURATION_S + 30)
        assert not publisher.is_alive()
        end = time.monotonic() + 40
        while time.monotonic() < end:
            if (query(tmp_path, "SELECT COUNT(*) FROM events")[0][0] >= len(plan)
                    and settled(tmp_path, platform)):
                break
            time.sleep(0.2)
        # the last silence of every lives-alone flat has had time to alarm and escalate
        time.sleep(max(ALONE.values()) + 2.5)
        end = time.monotonic() + 20
        while time.monotonic() < end and not settled(tmp_path, platform):
            time.sleep(0.2)
        time.sleep(1.0)  # a late second copy would arrive now
        assert hub.poll() is None, "the hub died; see %s" % (tmp_path / "hub.log")
    finally:
        publisher.close()
        if hub.poll() is None:
            hub.send_signal(signal.SIGTERM)
            try:
                hub.wait(10)
            except subprocess.TimeoutExpired:
                hub.kill()
        platform.close()
    assert kills >= 5

    # ---- every acknowledged frame stored exactly once, nothing rejected as a replay
    assert len(publisher.acked) == len(plan) == TOTAL
    events = query(tmp_path, "SELECT device_id, counter FROM events")
    assert len(events) == len(set(events)) == TOTAL
    assert set(events) == publisher.acked
    replayed = query(tmp_path, "SELECT COALESCE(SUM(count), 0) FROM rejections WHERE reason != 'duplicate'")
    assert replayed[0][0] == 0
    redelivered = query(tmp_path, "SELECT COALESCE(SUM(count), 0) FROM rejections WHERE reason = 'duplicate'")

    # ---- every alarm version upstream, in order; re-sends only as exact copies
    transitions = defaultdict(list)
    for alarm_id, seq in query(tmp_path, "SELECT alarm_id, seq FROM alarm_transitions ORDER BY alarm_id, seq"):
        transitions[alarm_id].append(seq)
    alarms = {r[0]: r[1:] for r in query(tmp_path, "SELECT id, cause_key, flat_id, state, doc FROM alarms")}
    assert len(alarms) >= 2 * len(ALONE), "too few alarms raised to prove anything"
    assert set(transitions) == set(alarms)
    arrived = defaultdict(list)
    first_copy = {}
    duplicates = 0
    for alarm_id, seq, payload in platform.snapshot():
        if (alarm_id, seq) in first_copy:
            assert first_copy[(alarm_id, seq)] == payload, "a re-send differs from the first copy"
            duplicates += 1
            continue
        first_copy[(alarm_id, seq)] = payload
        arrived[alarm_id].append(seq)
    assert set(arrived) == set(alarms), "alarms in the store never arrived upstream (or vice versa)"
    for alarm_id, seqs in transitions.items():
        assert seqs == list(range(1, len(seqs) + 1)), (alarm_id, seqs)
        assert arrived[alarm_id] == seqs, (alarm_id, arrived[alarm_id], seqs)
        last = json.loads(first_copy[(alarm_id, seqs[-1])])
        assert last == json.loads(alarms[alarm_id][3])  # the platform has the final version
        assert len(seqs) >= 3, "every alarm escalates or is dispatched and acknowledged"

    # ---- one alarm per silence period: causes unique, and activity between two alarms of a flat
    causes = [a[0] for a in alarms.values()]
    assert len(causes) == len(set(causes))
    by_flat = defaultdict(list)
    for alarm_id, (cause, flat, state, doc) in alarms.items():
        doc = json.loads(doc)
        if doc["type"] == "inactivity":
            by_flat[flat].append(doc["last_event"]["counter"])
    assert set(by_flat) == {"f-%02d" % i for i in ALONE}
    for flat, counters in by_flat.items():
        assert len(counters) == len(set(counters)), "two alarms after the same last event: " + flat

    # ---- platform commands took effect (through hub/alarms/commands.py)
    commanded = platform.commanded
    for alarm_id in commanded:
        assert alarms[alarm_id][2] == "acknowledged", alarm_id
    print("kills: %d, frames: %d, broker re-deliveries dropped as duplicates: %d, alarms: %d, "
          "versions upstream: %d, exact re-sends upstream: %d, acknowledged by the platform: %d"
          % (kills, len(events), redelivered[0][0], len(alarms), len(first_copy), duplicates,
             len(commanded)))
