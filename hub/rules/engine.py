"""The rule engine: runs every rule on each accepted event and when the clock
reaches a rule's deadline, and turns what they report into alarms.

A rule is a small object with a `name` and three pure-ish methods that read and
write only through the store transaction they are given:

    on_event(ctx, event) -> [Trigger]     an accepted event happened
    on_time(ctx, now) -> [Trigger]        the clock reached (or passed) a deadline
    on_rejection(ctx, device_id, reason)  optional: a frame was rejected; it may
                                          raise an alarm but never move a deadline
                                          (the hub recomputes deadlines only after
                                          events and alarms, not after junk)
    next_deadline(ctx) -> float | None    when the rule next needs to look

Rules keep their own state in the store (`ctx.tx.rule_get/rule_set`) so every
timer is rebuilt from stored state after a restart; none sleeps.
"""
from hub.rules import settings as rule_settings


class Trigger:
    """A rule's request to raise an alarm for `cause_key` with document `doc`."""

    __slots__ = ("cause_key", "doc")

    def __init__(self, cause_key, doc):
        self.cause_key = cause_key
        self.doc = doc


class Event:
    """An accepted event as the rules see it."""

    __slots__ = ("device", "flat", "reading", "event_id", "received_at", "previous")

    def __init__(self, device, flat, reading, event_id, received_at, previous):
        self.device = device
        self.flat = flat
        self.reading = reading
        self.event_id = event_id
        self.received_at = received_at
        self.previous = previous  # the device's stored state before this event, or None


class Context:
    def __init__(self, site, tx, now, cache=None):
        self.site = site
        self.tx = tx
        self.now = now
        self._cache = cache if cache is not None else {}

    def settings(self, rule, flat_id=None, building_id=None):
        # the site configuration is immutable (a reload builds a new engine), so
        # the resolved settings can be kept for the engine's lifetime
        key = (rule, flat_id, building_id)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = rule_settings.resolve(self.site, rule, flat_id,
                                                             building_id)
        return found


class RuleEngine:
    def __init__(self, site, rules):
        self.site = site
        self._settings = {}
        self.rules = list(rules)
        self._rejection_hooks = [r.on_rejection for r in self.rules if hasattr(r, "on_rejection")]
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError("rule names must be unique: %s" % names)

    def on_event(self, tx, event, now):
        ctx = Context(self.site, tx, now, self._settings)
        out = []
        for rule in self.rules:
            triggers = rule.on_event(ctx, event)
            if triggers:
                out.extend(triggers)
        return out

    def on_rejection(self, tx, device_id, reason, at):
        """A frame from `device_id` was rejected for `reason`; rules that define
        `on_rejection(ctx, device_id, reason)` see it (the others are skipped)."""
        if not self._rejection_hooks:
            return []
        ctx = Context(self.site, tx, at, self._settings)
        out = []
        for hook in self._rejection_hooks:
            out.extend(hook(ctx, device_id, reason))
        return out

    def on_time(self, tx, now):
        ctx = Context(self.site, tx, now, self._settings)
        out = []
        for rule in self.rules:
            out.extend(rule.on_time(ctx, now))
        return out

    def next_deadline(self, tx, now):
        ctx = Context(self.site, tx, now, self._settings)
        soonest = None
        for rule in self.rules:
            d = rule.next_deadline(ctx)
            if d is not None and (soonest is None or d < soonest):
                soonest = d
        return soonest

    def timers(self, tx, now):
        """{rule name: next deadline} for metrics and the health page."""
        ctx = Context(self.site, tx, now, self._settings)
        return {rule.name: rule.next_deadline(ctx) for rule in self.rules}
