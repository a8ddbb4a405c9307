"""The hub's Prometheus metrics (text exposition format 0.0.4), rendered from a
snapshot of the store and the running parts. The list is in docs/alarms.md.

`collect` reads the store and must run on the hub's loop thread (the HTTP API
calls it through its LoopBridge); `render` is pure. Written by hand rather than
with `prometheus_client`: a dozen gauges and counters read from SQLite on each
scrape need no registry, and the hub gains no dependency. Label values are
escaped; nothing secret is ever a label.
"""

from hub.rules import settings as rule_settings

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# name -> (type, help)
METRICS = {
    "anju_frames_accepted_total": ("counter", "Device frames verified and stored."),
    "anju_frames_rejected_total": ("counter", "Device frames rejected, by reason "
                                              "(duplicates included)."),
    "anju_alarms": ("gauge", "Alarms in the store, by lifecycle state and type."),
    "anju_outbox_depth": ("gauge", "Alarm documents waiting for the upstream PUBACK."),
    "anju_rule_next_deadline_seconds": ("gauge", "Seconds until the rule next needs to look "
                                                 "(negative: overdue); absent when it waits "
                                                 "for nothing."),
    "anju_escalations_total": ("counter", "Alarm escalations (severity raised, second target)."),
    "anju_upstream_connected": ("gauge", "1 when the hub's forwarder is connected upstream."),
    "anju_device_broker_connected": ("gauge", "1 when the hub is connected to the device broker."),
    "anju_commands_total": ("counter", "Lifecycle commands handled since start, by outcome."),
    "anju_ingest_store_errors_total": ("counter", "Frames the store could not take since start "
                                                  "(not acknowledged; the broker offers them "
                                                  "again)."),
    "anju_mqtt_receiver_restarts_total": ("counter", "MQTT receiver processes started again "
                                                     "after one ended, since start."),
    "anju_wal_pages": ("gauge", "Pages in SQLite's write-ahead log at the last checkpoint."),
}


def collect(store, pipeline, links, command_counts, now, ingest=None):
    """A snapshot dict for `render` (loop thread: reads the store). `ingest`:
    {"store_errors", "receiver_restarts", "wal_pages"} of the running hub."""
    counts = store.operations_counts()
    timers = pipeline.engine.timers(store, now)
    esc = rule_settings.resolve(pipeline.site, "escalation")
    if esc["enabled"]:
        timers["escalation"] = pipeline.book.next_escalation(store, esc["after"], esc["max_level"])
    return {"accepted": counts["accepted"], "rejected": store.rejection_counts(),
            "alarms": counts["alarms"], "outbox": store.outbox_depth(),
            "timers": {name: (None if t is None else t - now) for name, t in timers.items()},
            "escalations": counts["escalations"], "links": dict(links),
            "commands": dict(command_counts or {}), "ingest": dict(ingest or {})}


def _label(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def render(snap):
    samples = {name: [] for name in METRICS}
    samples["anju_frames_accepted_total"].append(({}, snap["accepted"]))
    for reason, n in sorted(snap["rejected"].items()):
        samples["anju_frames_rejected_total"].append(({"reason": reason}, n))
    for (state, type_), n in sorted(snap["alarms"].items()):
        samples["anju_alarms"].append(({"state": state, "type": type_}, n))
    samples["anju_outbox_depth"].append(({}, snap["outbox"]))
    for rule, seconds in sorted(snap["timers"].items()):
        if seconds is not None:
            samples["anju_rule_next_deadline_seconds"].append(({"rule": rule}, seconds))
    samples["anju_escalations_total"].append(({}, snap["escalations"]))
    samples["anju_upstream_connected"].append(({}, bool(snap["links"].get("upstream"))))
    samples["anju_device_broker_connected"].append(({}, bool(snap["links"].get("mqtt"))))
    for outcome, n in sorted(snap["commands"].items()):
        samples["anju_commands_total"].append(({"outcome": outcome}, n))
    ingest = snap.get("ingest") or {}
    for key, name in (("store_errors", "anju_ingest_store_errors_total"),
                      ("receiver_restarts", "anju_mqtt_receiver_restarts_total"),
                      ("wal_pages", "anju_wal_pages")):
        if ingest.get(key) is not None:
            samples[name].append(({}, ingest[key]))
    lines = []
    for name, (kind, help_text) in METRICS.items():
        lines.append("# HELP %s %s" % (name, help_text))
        lines.append("# TYPE %s %s" % (name, kind))
        for labels, value in samples[name]:
            text = ",".join('%s="%s"' % (k, _label(v)) for k, v in labels.items())
            lines.append("%s%s %s" % (name, "{%s}" % text if text else "", _number(value)))
    return "\n".join(lines) + "\n"
