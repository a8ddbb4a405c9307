"""Supervision: a device silent for longer than its heartbeat interval × `grace`
(default 2.5) is offline → one alarm per silence.

Silence is measured from the last time the hub heard the device (any accepted
frame, `device_state.last_seen`); a device never heard is measured from the
first time this rule saw it configured, an instant kept in rule state so a
restart does not reset it. Hearing the device again does not resolve the alarm
(a person does) and the open alarm keeps a second one from being raised.
Never reads a wall clock: `now` comes from the caller.
"""
from hub.alarms import documents as alarms
from hub.rules.engine import Trigger

NAME = "offline"


def silence_deadline(last_seen, first_seen, heartbeat_s, grace):
    basis = last_seen if last_seen is not None else first_seen
    return basis, basis + heartbeat_s * grace


class OfflineRule:
    name = NAME

    def __init__(self, site):
        self.site = site
        self.devices = dict(site.devices)

    def _watched(self, ctx, now):
        state = ctx.tx.rule_fields(NAME, ("first_seen", "alarmed_basis"))
        heard = ctx.tx.last_seen_all()
        settings = {}
        for dev in self.devices.values():
            if dev.flat not in settings:
                settings[dev.flat] = ctx.settings(NAME, dev.flat)
            s = settings[dev.flat]
            if not s["enabled"]:
                continue
            mine = state.get(dev.id) or {}
            last_seen = heard.get(dev.id)
            first_seen = mine.get("first_seen", now)
            basis, deadline = silence_deadline(last_seen, first_seen, dev.heartbeat_s, s["grace"])
            alarmed = mine.get("alarmed_basis")
            # (SQLite's JSON number parsing may differ from Python's in the last bit)
            if alarmed is not None and basis is not None and abs(alarmed - basis) < 1e-3:
                continue  # this silence already raised its alarm
            yield dev, mine, basis, deadline, last_seen

    def on_event(self, ctx, event):
        return []

    def on_time(self, ctx, now):
        out = []
        for dev, mine, basis, deadline, last_seen in list(self._watched(ctx, now)):
            if "first_seen" not in mine:
                mine = dict(mine, first_seen=now)
                ctx.tx.rule_set(NAME, dev.id, mine)
            if now < deadline:
                continue
            ctx.tx.rule_set(NAME, dev.id, dict(mine, alarmed_basis=basis))
            detail = {"last_seen_at": alarms.iso(last_seen) if last_seen is not None else None,
                      "silent_for_s": int(now - basis),
                      "heartbeat_s": int(dev.heartbeat_s),
                      "threshold_s": int(deadline - basis)}
            doc = alarms.device_alarm(self.site, "offline", "medium", dev, detail, now)
            out.append(Trigger("offline:%s" % dev.id, doc))
        return out

    def next_deadline(self, ctx):
        return min((d for _, _, _, d, _ in self._watched(ctx, ctx.now)), default=None)
