"""Rejection benchmark: junk frames/s beside valid frames/s, and a valid door
frame's latency during a flood of junk.

``run(results)`` measures, in one run on this machine:

  pipeline      the pipeline in this process over a real SQLite store, batches
                of 500 as the hub commits them: µs per valid door frame and per
                junk frame, for each kind of junk (median of REPEATS)
  hub           the real hub as a subprocess (`anju hub run`, MQTT receiver
                process, the mode a site runs), two private Mosquitto brokers;
                REPEATS times, alternating: a live stream of valid door frames
                (events/s until the events table holds them all) and a live
                stream of junk (rejections/s until the rejections table counts
                them all), each published at QoS 1 as fast as a publisher
                process can
  flood         a publisher process sends FLOOD_FRAMES junk frames as fast as
                it can while a device client publishes one valid door frame
                every PROBE_INTERVAL_S; latency = the row in the events table
                (polled read-only every POLL_S) - the publish; then again with
                the flood held to LIMITED_RATE

The junk mix (JUNK_KINDS): a forged tag and a replayed counter on configured
devices' topics, a truncated frame, an oversized one, a frame from an id the
site does not know, JSON where a frame belongs, a wrong version byte. Topics
outside `anju/<site>/+/event|state` are in the pipeline mix only: the broker
does not deliver them to the hub's subscription.

Keys added: hub_reject_events_per_s, hub_valid_events_per_s (the reference of
the same run), hub_reject_ratio (reject/s ÷ valid/s, target >= 1.0),
valid_during_flood_p50_ms, valid_during_flood_p99_ms, valid_during_flood_max_ms,
valid_during_flood_ratio (p99 ÷ 100 ms, target <= 1.0), flood_sent_per_s,
flood_rejected_per_s, flood_hub_cpu_us_per_frame, flood_receiver_cpu_us_per_frame,
valid_during_flood_samples, valid_during_flood_not_stored,
valid_during_limited_flood_p50_ms, valid_during_limited_flood_p99_ms,
limited_flood_per_s, pipeline_valid_us, pipeline_reject_us,
pipeline_reject_us_by_kind, reject_target_met, reject_slow_batches,
reject_bench_mode, reject_bench_machine.

    python -m bench reject                   (the receiver process: the headline)
    python -m bench.reject_bench thread      (paho in the hub's own process)
"""
from __future__ import annotations

import multiprocessing
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import hub_bench as hb

SITE = hb.SITE
KEY = hb.KEY
FORGED_KEY = bytes(32)
STREAM_FRAMES = 20000   # each valid and junk live stream
REPEATS = 3
FLOOD_FRAMES = 110000
LIMITED_RATE = 5000     # junk frames/s of the second, rate-limited flood
LIMITED_S = 10
# ANJU_BENCH_FLOOD_NICE=10: the flood's publisher yields the CPU to the hub and
# the broker, as a sender on another machine would (docs/performance.md)
FLOOD_NICE = int(os.environ.get("ANJU_BENCH_FLOOD_NICE") or 0)
WINDOW = 5000           # a publisher's frames not yet acknowledged by the broker, at most
# (paho numbers messages with 16 bits: more than 65,535 queued in it lose some)
# A site broker's logging: every packet in the log ("all", as the tests have it)
# would make the broker's disk the bottleneck of a flood.
BROKER_LOG = ("error", "warning", "notice", "information")
PROBE_INTERVAL_S = 0.02
POLL_S = 0.002
TARGET_REJECT_RATIO = 1.0
TARGET_P99_MS = 100.0
JUNK_KINDS = ("forged_tag", "replayed", "truncated", "oversized", "unknown_device", "json",
              "bad_version")


def junk_frame(kind, k, rnd):
    """One junk frame (topic, payload) of `kind`; k numbers it."""
    from anju import frame
    did = hb.dev_id(k % hb.N_DEVICES)
    topic = "anju/%s/%s/event" % (SITE, did)
    if kind == "forged_tag":
        return topic, frame.encode(FORGED_KEY, did.encode(), frame.T_DOOR, 10 ** 8 + k, 0,
                                   frame.door_body(True))
    if kind == "replayed":  # a real frame of the device, sent again (counter 1 is stored)
        return topic, frame.encode(KEY, did.encode(), frame.T_DOOR, 1, 0, frame.door_body(True))
    if kind == "truncated":
        return topic, frame.encode(KEY, did.encode(), frame.T_DOOR, 10 ** 8 + k, 0,
                                   frame.door_body(True))[:20]
    if kind == "oversized":
        return topic, b"\xa1" * (200 if k % 100 else 4096)
    if kind == "unknown_device":
        fake = "x-%08x" % rnd.getrandbits(32)
        return ("anju/%s/%s/event" % (SITE, fake),
                frame.encode(KEY, fake.encode(), frame.T_DOOR, 1, 0, frame.door_body(True)))
    if kind == "json":
        return topic, b'{"device": "%s", "open": true, "counter": %d}' % (did.encode(), k)
    if kind == "bad_version":
        good = frame.encode(KEY, did.encode(), frame.T_DOOR, 10 ** 8 + k, 0, frame.door_body(True))
        return topic, b"\x01" + good[1:]
    if kind == "topic_level":  # pipeline only: the broker does not deliver it to the hub
        return "anju/%s/%s/config" % (SITE, did), b"\x00" * 30
    raise ValueError(kind)


def encode_junk(n, seed=1, kinds=JUNK_KINDS):
    """n junk frames, the kinds in turn: [(topic, payload)]."""
    rnd = random.Random(seed)
    return [junk_frame(kinds[k % len(kinds)], k, rnd) for k in range(n)]


# ---- pipeline in this process --------------------------------------------------------------
def _pipeline_us(pipeline, store, frames, t0, batch=500):
    start = time.perf_counter()
    for i in range(0, len(frames), batch):
        with store.batch():
            for k, (topic, payload) in enumerate(frames[i:i + batch]):
                pipeline.handle_mqtt(topic, payload, t0 + (i + k) * 1e-4)
    return (time.perf_counter() - start) / len(frames) * 1e6


def measure_pipeline(workdir, repeats=REPEATS, n=20000):
    import logging
    from hub.config import site as config
    from hub.config import yamlfile
    from hub.pipeline import Pipeline
    from hub.store import Store
    logger = logging.getLogger("anju")  # rejections and alarms: not on this terminal
    quiet = logging.NullHandler()
    logger.addHandler(quiet)
    propagate, logger.propagate = logger.propagate, False
    site = config.parse_site(yamlfile.loads(hb.site_yaml(), "site.yaml"))
    store = Store(workdir / "pipeline.db")
    try:
        pipeline = Pipeline(site, store)
        t = 1_800_000_000.0
        valid, junk, by_kind = [], [], {k: [] for k in JUNK_KINDS + ("topic_level",)}
        for r in range(repeats):
            stream = hb.encode_stream(n, 1 + r * (n // hb.N_DEVICES))
            valid.append(_pipeline_us(pipeline, store, stream, t))
            t += 10_000
            junk.append(_pipeline_us(pipeline, store, encode_junk(n, seed=r), t))
            t += 10_000
            for kind in by_kind:
                by_kind[kind].append(_pipeline_us(pipeline, store,
                                                  encode_junk(n // 10, r, (kind,)), t))
                t += 10_000
    finally:
        store.close()
        logger.removeHandler(quiet)
        logger.propagate = propagate
    return (statistics.median(valid), statistics.median(junk),
            {k: round(statistics.median(v), 2) for k, v in by_kind.items()})


# ---- publisher process ---------------------------------------------------------------------
def _publisher(host, port, kind, first_counter, n, ready, go, done, sent_rate, rate=None,
               nice=0):
    if nice:
        os.nice(nice)
    stream = hb.encode_stream(n, first_counter) if kind == "valid" else encode_junk(n, first_counter)
    rate_seen = hb.publish_stream(host, port, stream, rate, ready, go,
                                  "bench-%s-%d" % (kind, os.getpid()), window=WINDOW, wait_s=300)
    if rate_seen is not None:
        sent_rate.value = rate_seen  # until the broker acknowledged them all
    done.set()


def start_publisher(broker, kind, first_counter, n, rate=None, nice=0):
    ctx = multiprocessing.get_context("spawn")
    ready, go, done = ctx.Event(), ctx.Event(), ctx.Event()
    sent = ctx.Value("d", 0.0)
    proc = ctx.Process(target=_publisher, args=(broker.host, broker.port, kind, first_counter, n,
                                                ready, go, done, sent, rate, nice),
                       daemon=True)
    proc.start()
    if not ready.wait(30):
        proc.kill()
        raise RuntimeError("publisher process did not connect")
    return proc, go, done, sent


# ---- the store, read-only from here ------------------------------------------------------------
def _ro(db_path):
    return sqlite3.connect("file:%s?mode=ro" % db_path, uri=True, timeout=5)


def rejected_count(db_path):
    try:
        db = _ro(db_path)
    except sqlite3.Error:
        return 0
    try:
        return db.execute("SELECT COALESCE(SUM(count), 0) FROM rejections").fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        db.close()


def measure_stream(workdir, broker, kind, first_counter, n):
    """events/s (valid) or rejections/s (junk) of a live stream through the hub."""
    db = workdir / "hub.db"
    count = hb.event_count if kind == "valid" else rejected_count
    base = count(db)
    proc, go, done, _ = start_publisher(broker, kind, first_counter, n)
    t0 = time.monotonic()
    go.set()
    hb.wait_until(lambda: count(db) >= base + n, 300, "the hub to take the %s stream" % kind,
                  step=0.02)
    elapsed = time.monotonic() - t0
    proc.join(30)
    return n / elapsed


def cpu_s(pid):
    """CPU seconds (user + system) of process `pid` and of its children's
    running threads ({pid: seconds}), from /proc."""
    out = {}
    try:
        pids = [pid] + [int(c) for c in Path("/proc/%d/task/%d/children" % (pid, pid))
                        .read_text().split()]
        for p in pids:
            fields = Path("/proc/%d/stat" % p).read_text().rsplit(")", 1)[1].split()
            out[p] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        pass
    return out


def measure_flood(workdir, broker, seed, hub_pid=None, frames=FLOOD_FRAMES, rate=None):
    """Valid door frames from probe sensors every PROBE_INTERVAL_S while a flood
    of junk runs: [latency ms], flood send rate, flood rejections/s, probes lost."""
    import paho.mqtt.client as paho
    from anju import frame
    db_path = workdir / "hub.db"
    pending = {}  # (device, counter) -> (monotonic, wall) publish time
    latencies = []
    to_apply = []  # publish -> the hub applied it (its received_at), ms
    lock = threading.Lock()
    stop = threading.Event()
    ro = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True, timeout=5,
                         check_same_thread=False)  # the watcher's, closed here after it
    last_id = ro.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]

    def watch():
        nonlocal last_id
        while not stop.is_set():
            rows = ro.execute("SELECT id, device_id, counter, received_at FROM events"
                              " WHERE id>?", (last_id,)).fetchall()
            now = time.monotonic()
            for event_id, device_id, counter, received_at in rows:
                last_id = max(last_id, event_id)
                with lock:
                    sent = pending.pop((device_id, counter), None)
                if sent is not None:
                    latencies.append((now - sent[0]) * 1e3)
                    to_apply.append((received_at - sent[1]) * 1e3)
            time.sleep(POLL_S)

    watcher = threading.Thread(target=watch, name="bench-store-watch", daemon=True)
    pub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-device")
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    base_rejected = rejected_count(db_path)
    proc, go, done, sent_rate = start_publisher(broker, "junk", seed, frames, rate,
                                                FLOOD_NICE)
    cpu_before = cpu_s(hub_pid) if hub_pid else {}
    probes = 0
    try:
        watcher.start()
        go.set()
        t_flood = time.monotonic()
        time.sleep(0.5)  # the flood reaches its rate first
        t0 = time.monotonic()
        while not done.is_set():
            if time.monotonic() > t0 + 300:
                raise RuntimeError("the flood publisher did not finish")
            did = hb.probe_id(probes % hb.PROBE_ALARMS)
            counter = seed * 1000 + 1 + probes // hb.PROBE_ALARMS
            payload = frame.encode(KEY, did.encode(), frame.T_DOOR, counter, 0,
                                   frame.door_body(counter % 2 == 1))
            with lock:
                pending[(did, counter)] = (time.monotonic(), time.time())
            pub.publish("anju/%s/%s/event" % (SITE, did), payload, qos=1)
            probes += 1
            delay = t0 + probes * PROBE_INTERVAL_S - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        hb.wait_until(lambda: rejected_count(db_path) >= base_rejected + frames, 300,
                      "the hub to reject the flood", step=0.02)
        flood_s = time.monotonic() - t_flood
        cpu_after = cpu_s(hub_pid) if hub_pid else {}
        hb.wait_until(lambda: not pending, 30, "the probe frames to be stored", step=0.02)
        proc.join(30)
    finally:
        stop.set()
        if watcher.is_alive():
            watcher.join(5)
        ro.close()
        pub.disconnect()
        pub.loop_stop()
    # µs of CPU per flood frame: the hub process, then its children (the receiver)
    used = {p: cpu_after[p] - cpu_before.get(p, 0.0) for p in cpu_after}
    cpu = [round(used.pop(hub_pid, 0.0) / frames * 1e6, 1),
           round(sum(used.values()) / frames * 1e6, 1)] if used else []
    print("  publish -> applied by the hub: p50 %.1f ms, p99 %.1f ms" % (
        hb.percentile(to_apply, 50), hb.percentile(to_apply, 99)))
    return latencies, sent_rate.value, frames / flood_s, len(pending), cpu


def site_yaml(mode):
    text = hb.site_yaml()
    if mode != "process":
        text = text.replace("rules:", "hub: {mqtt: {ingest: %s}}\nrules:" % mode, 1)
    return text


def run(results, mode="process"):
    from host_tools.mosquitto import Mosquitto
    with tempfile.TemporaryDirectory(prefix="anju-reject-bench-") as tmp:
        workdir = Path(tmp)
        p_valid, p_junk, p_kinds = measure_pipeline(workdir)
        print("pipeline, in process: valid %.1f µs/frame, junk %.1f µs/frame" % (p_valid, p_junk))
        print("  by kind (µs): " + ", ".join("%s %.1f" % kv for kv in p_kinds.items()))
        (workdir / "site.yaml").write_text(site_yaml(mode))
        broker = Mosquitto(workdir / "site", name="site", extra_config=hb.BROKER_CONFIG,
                           log_types=BROKER_LOG).start()
        upstream = Mosquitto(workdir / "upstream", name="upstream", log_types=BROKER_LOG).start()
        hub = None
        valid, junk = [], []
        try:
            hub = hb.start_hub(workdir, broker, upstream)
            watch = hb.Subscriber(broker, "anju/%s/hub/availability" % SITE, "bench-watch")
            got = []
            watch.c.on_message = lambda c, u, m: got.append(bytes(m.payload))
            try:
                hb.wait_until(lambda: b"online" in got, 30, "the hub to come online")
            except RuntimeError:
                print((workdir / "hub.log").read_text()[-3000:], file=sys.stderr)
                raise
            watch.close()
            per_dev = STREAM_FRAMES // hb.N_DEVICES
            for r in range(REPEATS):
                valid.append(measure_stream(workdir, broker, "valid", 1 + r * per_dev,
                                            STREAM_FRAMES))
                junk.append(measure_stream(workdir, broker, "junk", 100 + r, STREAM_FRAMES))
                print("  run %d: valid %6.0f events/s, junk %6.0f rejections/s"
                      % (r + 1, valid[-1], junk[-1]))
            lat, sent, flood_rejected, lost, cpu = measure_flood(workdir, broker, 7, hub.pid)
            # the same at a steady rate well below the flood client's best
            lat_r, sent_r, _, lost_r, _ = measure_flood(
                workdir, broker, 8, frames=int(LIMITED_RATE * LIMITED_S), rate=LIMITED_RATE)
            if hub.poll() is not None:
                raise RuntimeError("the hub exited during the benchmark (see its log)")
        finally:
            if hub is not None:
                hb.stop_hub(hub)
            broker.kill()
            upstream.kill()
            log_text = (workdir / "hub.log").read_text(errors="replace")
            if os.environ.get("ANJU_BENCH_KEEP_LOG"):
                Path(os.environ["ANJU_BENCH_KEEP_LOG"]).write_text(log_text)
    slow = log_text.count("slow ingest batch")
    v, j = statistics.median(valid), statistics.median(junk)
    ratio = j / v
    p50, p99 = hb.percentile(lat, 50), hb.percentile(lat, 99)
    p99_ratio = p99 / TARGET_P99_MS
    reject_met = ratio >= TARGET_REJECT_RATIO
    flood_met = lost == 0 and p99_ratio <= 1.0
    print()
    print("hub ingest mode: %s; median of %d runs; load average %s%s" % (
        mode, REPEATS, " ".join("%.2f" % x for x in os.getloadavg()),
        "; flood publisher at nice %d" % FLOOD_NICE if FLOOD_NICE else ""))
    print("%-44s %10s %12s %8s  %s" % ("", "measured", "reference", "ratio", "target"))
    print("%-44s %10.0f %12s" % ("valid door frames, events/s", v, ""))
    print("%-44s %10.0f %12.0f %8.2f  >= %.1f %s" % (
        "junk frames, rejections/s", j, v, ratio, TARGET_REJECT_RATIO,
        "yes" if reject_met else "NO"))
    print("%-44s %10.1f %12.0f %8.2f  <= 1.0 %s" % (
        "valid frame during flood p99 ms", p99, TARGET_P99_MS, p99_ratio,
        "yes" if flood_met else "NO"))
    print("  flood: %d junk frames sent at %.0f/s (broker-acknowledged), rejected at %.0f/s;"
          " valid frames: %d, p50 %.1f ms, max %.1f ms, not stored %d; poll %.0f ms"
          % (FLOOD_FRAMES, sent, flood_rejected, len(lat), p50, max(lat) if lat else float("nan"),
             lost, POLL_S * 1e3))
    print("  CPU per flood frame: hub %s µs, receiver %s µs" % (
        cpu[0] if cpu else "?", cpu[1] if len(cpu) > 1 else "?"))
    p99_r = hb.percentile(lat_r, 99)
    print("%-44s %10.1f %12.0f %8.2f  (p50 %.1f ms, %d frames, not stored %d)" % (
        "  the same, flood limited to %d/s: p99 ms" % LIMITED_RATE, p99_r, TARGET_P99_MS,
        p99_r / TARGET_P99_MS, hb.percentile(lat_r, 50), len(lat_r), lost_r))
    print("slow ingest batches (> 100 ms) in the hub's log: %d" % slow)
    results.update({
        "hub_reject_events_per_s": round(j, 1),
        "hub_valid_events_per_s": round(v, 1),
        "hub_reject_ratio": round(ratio, 3),
        "valid_during_flood_p50_ms": round(p50, 2),
        "valid_during_flood_p99_ms": round(p99, 2),
        "valid_during_flood_max_ms": round(max(lat), 2) if lat else None,
        "valid_during_flood_ratio": round(p99_ratio, 3),
        "valid_during_flood_samples": len(lat),
        "valid_during_flood_not_stored": lost,
        "flood_sent_per_s": round(sent, 1),
        "valid_during_limited_flood_p99_ms": round(p99_r, 2),
        "valid_during_limited_flood_p50_ms": round(hb.percentile(lat_r, 50), 2),
        "limited_flood_per_s": round(sent_r, 1),
        "flood_rejected_per_s": round(flood_rejected, 1),
        "flood_hub_cpu_us_per_frame": cpu[0] if cpu else None,
        "flood_receiver_cpu_us_per_frame": cpu[1] if len(cpu) > 1 else None,
        "pipeline_valid_us": round(p_valid, 2),
        "pipeline_reject_us": round(p_junk, 2),
        "pipeline_reject_us_by_kind": p_kinds,
        "reject_target_met": reject_met and flood_met,
        "reject_slow_batches": slow,
        "reject_bench_mode": mode,
        "reject_bench_flood_nice": FLOOD_NICE,
        "reject_bench_machine": hb.machine(),
    })


if __name__ == "__main__":
    import json
    out = {}
    run(out, *(sys.argv[1:2] or ()))
    print(json.dumps(out, indent=2))
