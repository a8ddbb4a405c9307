"""Low battery: a device reports `battery_low` or a charge below
`below_percent` (default 20) → alarm `low_battery`, one open per device.

Event-driven only (no timer). After a person resolves the alarm, the next low
report raises a new one: the battery is still low. Never guesses a charge the
device did not report.
"""
from hub.alarms import documents as alarms
from hub.rules.engine import Trigger

NAME = "low_battery"


def is_low(values, below_percent):
    if values.get("battery_low"):
        return True
    pct = values.get("percent")
    return pct is not None and pct < below_percent


class LowBatteryRule:
    name = NAME

    def __init__(self, site):
        self.site = site

    def on_event(self, ctx, event):
        dev = event.device
        s = ctx.settings(NAME, dev.flat)
        values = event.reading.values
        if not s["enabled"] or not is_low(values, s["below_percent"]):
            return []
        detail = {"percent": values.get("percent"), "millivolts": values.get("millivolts"),
                  "battery_low_flag": bool(values.get("battery_low")),
                  "below_percent": s["below_percent"]}
        doc = alarms.device_alarm(self.site, "low_battery", "low", dev, detail, ctx.now)
        return [Trigger("low_battery:%s" % dev.id, doc)]

    def on_time(self, ctx, now):
        return []

    def next_deadline(self, ctx):
        return None
