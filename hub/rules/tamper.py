"""Tamper: a device reports its case open (door-sensor TAMPER frames, the
heartbeat's case flag, BTHome `case_open`) → alarm `tamper`, one open per device.

Event-driven only. A case still open after a person resolved the alarm raises a
new one with the next report. Never raises on a case-closed report.
"""
from hub.alarms import documents as alarms
from hub.rules.engine import Trigger

NAME = "tamper"


class TamperRule:
    name = NAME

    def __init__(self, site):
        self.site = site

    def on_event(self, ctx, event):
        dev = event.device
        if not event.reading.values.get("case_open"):
            return []
        if not ctx.settings(NAME, dev.flat)["enabled"]:
            return []
        detail = {"report": event.reading.type, "counter": event.reading.counter}
        doc = alarms.device_alarm(self.site, "tamper", "high", dev, detail, ctx.now)
        return [Trigger("tamper:%s" % dev.id, doc)]

    def on_time(self, ctx, now):
        return []

    def next_deadline(self, ctx):
        return None
