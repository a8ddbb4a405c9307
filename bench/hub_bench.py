"""Hub ingest benchmark: events/s through verify → store → rules, and alarm latency.

``run(results)`` starts two private Mosquitto brokers (site and upstream) and
the real hub as a subprocess (`anju hub run`), then measures on this machine:

  raw ceiling   a plain paho-mqtt subscriber (QoS 1) draining the same stream
                of pre-encoded frames, published as fast as possible by a
                publisher process
  hub ingest    the same stream through the hub, timed from the first publish
                until the events table holds every frame
  backlog       both again with the frames queued at the broker first for a
                persistent session (the hub stopped meanwhile), timed from the
                CONNACK: the consumer's own capacity, no publisher competing
  alarm latency at a steady background load (2,000 events/s, rate-limited
                publisher process), one TAMPER frame (case open) every 100 ms,
                each from its own probe sensor so each raises a new `tamper`
                alarm (hub/rules/tamper.py, event-driven); latency = receipt of
                the alarm on the upstream broker - publish of the frame

Keys added: hub_ingest_events_per_s, raw_subscriber_events_per_s,
hub_ingest_ratio, hub_backlog_events_per_s, raw_backlog_events_per_s,
hub_backlog_ratio, hub_slow_batches, alarm_latency_p50_ms, alarm_latency_p99_ms, alarm_latency_max_ms,
alarm_latency_samples, alarm_background_events_per_s, hub_bench_machine.
It never touches a system broker; everything runs on 127.0.0.1 in a temp dir.

    python -m bench hub
"""
from __future__ import annotations

import json
import multiprocessing
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for p in (str(REPO), str(REPO / "firmware")):
    if p not in sys.path:
        sys.path.insert(0, p)

SITE = "bench"
KEY = bytes(range(32))
N_DEVICES = 50          # background door sensors, one flat each
INGEST_FRAMES = 20000
BACKGROUND_RATE = 2000  # events/s while measuring alarm latency
PROBE_ALARMS = 240      # one probe sensor each: tamper alarms are one open per device
PROBE_INTERVAL_S = 0.1
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
# The site broker must keep every QoS 1 frame queued for the hub's session
# (Mosquitto's default drops beyond 1000 queued messages per client).
BROKER_CONFIG = ("max_queued_messages 0", "max_inflight_messages 1000")


def dev_id(i):
    return "door-%03d" % i


def probe_id(i):
    return "probe-%03d" % i


def site_yaml():
    lines = ["site: {id: %s, name: Bench Gardens}" % SITE,
             "rules: {escalation: {enabled: false}}",
             "buildings:", "  - id: b1", "    flats:"]
    for i in range(N_DEVICES):
        alone = "true" if i % 5 == 0 else "false"  # every fifth flat: lives alone, 12 h default
        lines += ["      - id: f-%03d" % i,
                  "        residents: [{id: r-%03d, name: Resident %d, lives_alone: %s}]" % (i, i, alone)]
    for i in range(PROBE_ALARMS):
        lines += ["      - id: p-%03d" % i,
                  "        residents: [{id: rp-%03d, name: Probe %d, lives_alone: false}]" % (i, i)]
    lines.append("devices:")
    for i in range(N_DEVICES):
        lines += ["  - {id: %s, kind: door_sensor, board: esp32c3, flat: f-%03d, transport: mqtt,"
                  " frame_key: %s}" % (dev_id(i), i, KEY.hex())]
    for i in range(PROBE_ALARMS):
        lines += ["  - {id: %s, kind: door_sensor, board: esp32c3, flat: p-%03d, transport: mqtt,"
                  " frame_key: %s}" % (probe_id(i), i, KEY.hex())]
    return "\n".join(lines) + "\n"


def encode_stream(n, first_counter=1):
    """n door frames round robin over the background devices: [(topic, payload)]."""
    from anju import frame
    out = []
    for k in range(n):
        i = k % N_DEVICES
        counter = first_counter + k // N_DEVICES
        did = dev_id(i)
        out.append(("anju/%s/%s/event" % (SITE, did),
                    frame.encode(KEY, did.encode(), frame.T_DOOR, counter, 0,
                                 frame.door_body(counter % 2 == 1))))
    return out


# ---- publisher process ---------------------------------------------------------------
def publish_stream(host, port, stream, rate, ready, go, client_id, window=None, wait_s=120):
    """In a publisher process: connect, say `ready`, wait for `go`, then
    publish `stream` [(topic, payload)] at QoS 1 (rate=None: as fast as
    possible), with at most `window` unacknowledged when given. Returns the
    rate until the broker acknowledged the last one (None if it did not
    within `wait_s`)."""
    import paho.mqtt.client as paho
    n = len(stream)
    acked = [0]
    all_acked = threading.Event()
    room = threading.Condition()

    def on_publish(c, u, mid, rc, props):
        with room:
            acked[0] += 1
            room.notify()
        if acked[0] == n:
            all_acked.set()

    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
    c.max_inflight_messages_set(200)
    c.max_queued_messages_set(0)
    c.on_publish = on_publish
    c.connect(host, port)
    c.loop_start()
    ready.set()
    go.wait(60)
    t0 = time.monotonic()
    for k, (topic, payload) in enumerate(stream):
        if rate:
            delay = t0 + k / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if window is not None and k - acked[0] >= window:
            with room:
                room.wait_for(lambda: k - acked[0] < window, 60)
        c.publish(topic, payload, qos=1)
    sent_rate = n / (time.monotonic() - t0) if all_acked.wait(wait_s) else None
    c.disconnect()
    c.loop_stop()
    return sent_rate


def _publisher(host, port, first_counter, n, rate, ready, go, done):
    """Publish n pre-encoded frames at QoS 1 (rate=None: as fast as possible)."""
    publish_stream(host, port, encode_stream(n, first_counter), rate, ready, go,
                   "bench-pub-%d" % os.getpid())
    done.set()


def start_publisher(broker, first_counter, n, rate=None):
    ctx = multiprocessing.get_context("spawn")
    ready, go, done = ctx.Event(), ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_publisher, args=(broker.host, broker.port, first_counter, n, rate,
                                                ready, go, done), daemon=True)
    proc.start()
    if not ready.wait(30):
        proc.kill()
        raise RuntimeError("publisher process did not connect")
    return proc, go, done


def publish_all(broker, first_counter, n):
    """Publish n frames and return once the broker has acknowledged them all."""
    proc, go, done = start_publisher(broker, first_counter, n)
    go.set()
    if not done.wait(120):
        raise RuntimeError("the publisher did not finish")
    proc.join(30)


# ---- hub subprocess ----------------------------------------------------------------------
def start_hub(workdir, broker, upstream):
    log = open(workdir / "hub.log", "ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "host_tools.cli", "hub", "run", "--config",
             str(workdir / "site.yaml"), "--db", str(workdir / "hub.db"),
             "--mqtt", "%s:%d" % (broker.host, broker.port),
             "--upstream", "%s:%d" % (upstream.host, upstream.port)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def stop_hub(hub):
    if hub.poll() is None:
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(15)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait(5)


def event_count(db_path):
    try:
        db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True, timeout=5)
    except sqlite3.Error:
        return 0
    try:
        return db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        db.close()


class Subscriber:
    """A plain paho subscriber (QoS 1, auto-ack) counting or timing what arrives."""

    def __init__(self, broker, topic, client_id, on_message=None):
        import paho.mqtt.client as paho
        self.count = 0
        self.last_at = None
        self.ready = threading.Event()
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, 1)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.ready.set()
        self._user = on_message
        self.c.on_message = self._on_message
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()
        if not self.ready.wait(10):
            raise RuntimeError("subscriber %s did not subscribe" % client_id)

    def _on_message(self, c, u, m):
        self.count += 1
        self.last_at = time.monotonic()
        if self._user is not None:
            self._user(m)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def wait_until(pred, timeout, what, step=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(step)
    raise RuntimeError("timed out waiting for " + what)


# ---- the three measurements -----------------------------------------------------------------
def measure_raw(broker, n):
    sub = Subscriber(broker, "anju/%s/+/event" % SITE, "bench-raw")
    try:
        proc, go, done = start_publisher(broker, 1, n)
        t0 = time.monotonic()
        go.set()
        wait_until(lambda: sub.count >= n, 120, "the raw subscriber to drain the stream")
        elapsed = sub.last_at - t0
        proc.join(30)
        return n / elapsed
    finally:
        sub.close()


def measure_raw_backlog(broker, n):
    """The ceiling without the publisher in the race: n frames queued at the
    broker for a subscriber's persistent session, then drained from CONNACK."""
    import paho.mqtt.client as paho
    topic = "anju/%s/+/event" % SITE
    setup = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-raw-backlog",
                        clean_session=False)
    subscribed = threading.Event()
    setup.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, 1)
    setup.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    setup.connect(broker.host, broker.port)
    setup.loop_start()
    if not subscribed.wait(10):
        raise RuntimeError("backlog subscriber did not subscribe")
    setup.disconnect()
    setup.loop_stop()
    publish_all(broker, 1, n)
    state = {"count": 0, "t0": None, "last": None}

    def on_connect(c, u, f, rc, p):
        state["t0"] = time.monotonic()

    def on_message(c, u, m):
        state["count"] += 1
        state["last"] = time.monotonic()

    sub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-raw-backlog",
                      clean_session=False)
    sub.on_connect = on_connect
    sub.on_message = on_message
    sub.connect(broker.host, broker.port)
    sub.loop_start()
    try:
        wait_until(lambda: state["count"] >= n, 120, "the raw subscriber to drain its backlog")
        return n / (state["last"] - state["t0"])
    finally:
        sub.disconnect()
        sub.loop_stop()
        # a clean session ends the stored one: the broker must not go on queuing
        # every later frame for it while the hub is measured
        end = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-raw-backlog",
                          clean_session=True)
        end.connect(broker.host, broker.port)
        end.disconnect()


def measure_hub_backlog(workdir, broker, upstream, hub, n, first_counter):
    """The hub stopped, n frames queued for its persistent session, the hub
    started again: events/s from its CONNACK ("online" on its availability
    topic) until the events table holds them all. Returns (rate, new hub)."""
    db = workdir / "hub.db"
    stop_hub(hub)
    base = event_count(db)
    publish_all(broker, first_counter, n)
    online = []
    watch = Subscriber(broker, "anju/%s/hub/availability" % SITE, "bench-watch-backlog")
    watch.c.on_message = lambda c, u, m: (online.append(time.monotonic())
                                          if m.payload == b"online" else None)
    try:
        hub = start_hub(workdir, broker, upstream)
        wait_until(lambda: online, 60, "the hub to come back online")
        wait_until(lambda: event_count(db) >= base + n, 300, "the hub to drain its backlog",
                   step=0.02)
        return n / (time.monotonic() - online[0]), hub
    finally:
        watch.close()


def measure_hub(workdir, broker, n, first_counter):
    db = workdir / "hub.db"
    base = event_count(db)
    proc, go, done = start_publisher(broker, first_counter, n)
    t0 = time.monotonic()
    go.set()
    wait_until(lambda: event_count(db) >= base + n, 300, "the hub to store the stream", step=0.02)
    elapsed = time.monotonic() - t0
    proc.join(30)
    return n / elapsed


def measure_alarm_latency(workdir, broker, upstream, first_counter):
    """Tamper probes at PROBE_INTERVAL_S under BACKGROUND_RATE events/s of background."""
    import paho.mqtt.client as paho
    from anju import frame
    published = {}  # probe device -> monotonic publish time
    latencies = []
    lock = threading.Lock()

    def on_alarm(m):
        now = time.monotonic()
        doc = json.loads(m.payload)
        if doc.get("type") != "tamper" or doc.get("seq") != 1:
            return
        with lock:
            sent = published.pop(doc.get("device"), None)
        if sent is not None:
            latencies.append((now - sent) * 1e3)

    sub = Subscriber(upstream, "anju/upstream/#", "bench-platform", on_alarm)
    pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-probe")
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    seconds = PROBE_ALARMS * PROBE_INTERVAL_S + 3
    bg_n = int(BACKGROUND_RATE * seconds)
    proc, go, done = start_publisher(broker, first_counter, bg_n, rate=BACKGROUND_RATE)
    db = workdir / "hub.db"
    base = event_count(db)
    try:
        go.set()
        t_bg = time.monotonic()
        time.sleep(1.0)  # the background reaches its steady rate first
        probes = [(probe_id(k), frame.encode(KEY, probe_id(k).encode(), frame.T_TAMPER, 1, 0,
                                             b"\x01")) for k in range(PROBE_ALARMS)]
        t0 = time.monotonic()
        for k, (did, payload) in enumerate(probes):
            delay = t0 + k * PROBE_INTERVAL_S - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            with lock:
                published[did] = time.monotonic()
            pub.publish("anju/%s/%s/event" % (SITE, did), payload, qos=1)
        time.sleep(1.5)
        done.wait(60)
        bg_elapsed = time.monotonic() - t_bg
        stored = event_count(db) - base
        proc.join(30)
    finally:
        pub.disconnect()
        pub.loop_stop()
        sub.close()
    return latencies, len(published), stored / bg_elapsed


def percentile(values, q):
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))
    return s[k]


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mosq = subprocess.run([_mosquitto(), "-h"], capture_output=True, text=True).stdout.splitlines()
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "kernel": platform.release(), "mosquitto": mosq[0] if mosq else "?"}


def _mosquitto():
    from host_tools.mosquitto import find_mosquitto
    return find_mosquitto()


def run(results):
    from host_tools.mosquitto import Mosquitto
    with tempfile.TemporaryDirectory(prefix="anju-hub-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "site.yaml").write_text(site_yaml())
        broker = Mosquitto(workdir / "site", name="site", extra_config=BROKER_CONFIG).start()
        upstream = Mosquitto(workdir / "upstream", name="upstream").start()
        hub = None
        try:
            # the plain subscriber first, while no hub is subscribed to the stream
            raw = measure_raw(broker, INGEST_FRAMES)
            print("raw paho subscriber (QoS 1):     %8.0f events/s" % raw)
            raw_backlog = measure_raw_backlog(broker, INGEST_FRAMES)
            print("raw paho subscriber, backlog:    %8.0f events/s" % raw_backlog)
            hub = start_hub(workdir, broker, upstream)
            watch = Subscriber(broker, "anju/%s/hub/availability" % SITE, "bench-watch")
            got = []
            watch.c.on_message = lambda c, u, m: got.append(bytes(m.payload))
            try:
                wait_until(lambda: b"online" in got, 30, "the hub to come online")
            except RuntimeError:
                print((workdir / "hub.log").read_text()[-3000:], file=sys.stderr)
                raise
            watch.close()
            per_dev = INGEST_FRAMES // N_DEVICES
            ingest = measure_hub(workdir, broker, INGEST_FRAMES, 1 + per_dev)
            print("hub ingest (verify→store→rules): %8.0f events/s" % ingest)
            hub_backlog, hub = measure_hub_backlog(workdir, broker, upstream, hub, INGEST_FRAMES,
                                                   1 + 2 * per_dev)
            print("hub ingest, backlog:             %8.0f events/s" % hub_backlog)
            lat, missing, bg_rate = measure_alarm_latency(workdir, broker, upstream, 1 + 3 * per_dev)
            if hub.poll() is not None:
                raise RuntimeError("the hub exited during the benchmark (see its log)")
        finally:
            if hub is not None:
                stop_hub(hub)
            broker.kill()
            upstream.kill()
            log_text = (workdir / "hub.log").read_text(errors="replace")
    slow = log_text.count("slow ingest batch")
    ratio = ingest / raw
    backlog_ratio = hub_backlog / raw_backlog
    ingest_met = ratio >= TARGET_RATIO and backlog_ratio >= TARGET_RATIO
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    print()
    print("%-34s %12s %12s  %s" % ("", "measured", "target", "met"))
    print("live stream (publisher running):")
    print("%-34s %12.0f %12s" % ("  raw subscriber events/s (ceiling)", raw, ""))
    print("%-34s %12.0f %12s" % ("  hub ingest events/s", ingest, ""))
    print("%-34s %12.2f %12s  %s" % ("  hub / ceiling", ratio, ">= %.2f" % TARGET_RATIO,
                                     "yes" if ratio >= TARGET_RATIO else "NO"))
    print("backlog (queued at the broker, drained after CONNACK):")
    print("%-34s %12.0f %12s" % ("  raw subscriber events/s (ceiling)", raw_backlog, ""))
    print("%-34s %12.0f %12s" % ("  hub ingest events/s", hub_backlog, ""))
    print("%-34s %12.2f %12s  %s" % ("  hub / ceiling", backlog_ratio, ">= %.2f" % TARGET_RATIO,
                                     "yes" if backlog_ratio >= TARGET_RATIO else "NO"))
    print("%-34s %12.0f %12s" % ("background events/s (stored)", bg_rate, "%d" % BACKGROUND_RATE))
    print("%-34s %12.1f %12s" % ("alarm latency p50 ms", p50, ""))
    # a probe that never raised its alarm, or a background the hub did not
    # keep up with, makes the latency figure meaningless: the target is not met
    complete = missing == 0 and bg_rate >= 0.95 * BACKGROUND_RATE
    latency_met = complete and p99 < TARGET_P99_MS
    print("%-34s %12.1f %12s  %s" % ("alarm latency p99 ms", p99, "< %.0f" % TARGET_P99_MS,
                                     "yes" if latency_met else "NO"))
    print("slow ingest batches (> 100 ms) in the hub's log: %d" % slow)
    print("alarms measured: %d, probes without an alarm: %d%s" % (
        len(lat), missing, "" if complete else
        "  (INCOMPLETE: alarms missing or background not sustained; the hub stalled)"))
    results.update({
        "hub_ingest_events_per_s": round(ingest, 1),
        "raw_subscriber_events_per_s": round(raw, 1),
        "hub_ingest_ratio": round(ratio, 3),
        "raw_backlog_events_per_s": round(raw_backlog, 1),
        "hub_backlog_events_per_s": round(hub_backlog, 1),
        "hub_backlog_ratio": round(backlog_ratio, 3),
        "alarm_latency_p50_ms": round(p50, 2),
        "alarm_latency_p99_ms": round(p99, 2),
        "alarm_latency_max_ms": round(max(lat), 2) if lat else None,
        "alarm_latency_samples": len(lat),
        "alarm_probes_without_alarm": missing,
        "alarm_background_events_per_s": round(bg_rate, 1),
        "hub_ingest_target_met": ingest_met,
        "alarm_latency_target_met": latency_met,
        "hub_slow_batches": slow,
        "hub_bench_machine": machine(),
    })


if __name__ == "__main__":
    out = {}
    run(out)
    print(json.dumps(out, indent=2))


class UpstreamProbe:
    """A client of the upstream broker that hands every alarm document to
    `on_doc(doc)` (paho's thread) as it arrives; `with` subscribes first and
    lets late documents arrive before it disconnects."""

    def __init__(self, upstream, client_id, on_doc):
        import paho.mqtt.client as paho
        self._ready = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = lambda c, u, msg: on_doc(json.loads(msg.payload))
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("anju/upstream/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._ready.set()
        self.upstream = upstream

    def __enter__(self):
        self.client.connect(self.upstream.host, self.upstream.port)
        self.client.loop_start()
        if not self._ready.wait(10):
            raise RuntimeError("the upstream probe did not subscribe")
        return self

    def __exit__(self, *exc):
        time.sleep(0.5)  # what the hub forwarded last is still on its way
        self.client.disconnect()
        self.client.loop_stop()


def pct(values, p):
    """The p-th percentile of `values` (nearest rank); None for none."""
    v = sorted(values)
    if not v:
        return None
    return v[min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))]
