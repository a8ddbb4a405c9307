"""The alarm book: raising alarms once per cause, moving them through their
lifecycle and escalating them, inside the caller's store transaction.

One open alarm per cause: a flapping sensor keeps one alarm open instead of
raising twenty; once that alarm is resolved (or cancelled, or marked false),
the same cause can raise a new one. Every change is stored with its actor,
time and note, and queued in the outbox as the next version of the document.
It never publishes anything itself.
"""
import logging

from hub.alarms import documents as docs
from hub.alarms import lifecycle

log = logging.getLogger("anju.hub.alarms")

PRIORITY = {"smoke": 100, "fire": 100, "duress": 100, "forced_entry": 50,
            "unregistered_occupant": 50, "watchlist_face": 50}


class AlarmBook:
    def __init__(self, topic):
        self.topic = topic
        self.stats = {"raised": 0, "suppressed": 0, "transitions": 0, "ignored": 0,
                      "escalated": 0}

    def raise_alarm(self, tx, cause_key, doc, now, actor="rules"):
        """Store `doc` as a new alarm unless `cause_key` already has an open one.

        Returns the new document, or None when an open alarm for the cause exists.
        """
        if cause_key is not None and tx.has_open_alarm(cause_key):
            self.stats["suppressed"] += 1
            return None
        doc.setdefault("cause", cause_key)
        tx.insert_alarm(doc, now, self.topic, actor=actor, cause_key=cause_key,
                        priority=PRIORITY.get(doc["type"], 0))
        self.stats["raised"] += 1
        log.warning("alarm raised", extra={"alarm": doc["id"], "type": doc["type"],
                                           "flat": doc.get("flat"), "cause": cause_key})
        return doc

    def transition(self, tx, alarm_id, state, actor, now, note=None, command_id=None,
                   assignee=None):
        """Apply a lifecycle command. Returns (outcome, doc or None).

        Outcomes: "applied", "duplicate" (command id seen before), "unknown_alarm",
        and the reasons from lifecycle.decide for ignored commands.
        """
        if command_id is not None and tx.command_seen(command_id):
            self.stats["ignored"] += 1
            return "duplicate", None
        doc = tx.alarm(alarm_id)
        if doc is None:
            return "unknown_alarm", None
        outcome = lifecycle.decide(doc["state"], state)
        if outcome == "apply":
            doc = lifecycle.transition_doc(doc, state, docs.iso(now), actor, note, assignee)
            tx.update_alarm(doc, now, actor, note, self.topic)
            self.stats["transitions"] += 1
            outcome = "applied"
            log.info("alarm transition", extra={"alarm": alarm_id, "state": state,
                                                "actor": actor})
        else:
            self.stats["ignored"] += 1
            doc = None
        if command_id is not None:
            tx.record_command(command_id, alarm_id, now, outcome)
        return outcome, doc

    def due_escalations(self, tx, now, after_s, max_level):
        """Open, unacknowledged alarms whose escalation time has come: [(doc, level)]."""
        due = []
        for doc, raised_at, level in tx.unacknowledged_alarms():
            if level < max_level and now >= raised_at + after_s * (level + 1):
                due.append((doc, level + 1))
        return due

    def next_escalation(self, tx, after_s, max_level):
        soonest = None
        for doc, raised_at, level in tx.unacknowledged_alarms():
            if level >= max_level:
                continue
            t = raised_at + after_s * (level + 1)
            if soonest is None or t < soonest:
                soonest = t
        return soonest

    def escalation_topic(self, target=None):
        """The second target of an escalation: the configured `escalation.target`
        topic, else `<prefix>/<site>/escalations` next to the alarms topic."""
        default = self.topic.rsplit("/", 1)[0] + "/escalations"
        if not target:
            return default
        if any(c in target for c in "+#\0") or len(target.encode()) > 65535:
            # a topic the forwarder could not publish would block the outbox
            log.error("escalation.target is not a topic name; using the default",
                      extra={"target": target[:200], "topic": default})
            return default
        return target

    def escalate(self, tx, doc, level, now, target=None):
        """The next version (severity up) on the alarms topic and, in the same
        transaction and right after it, on the escalation topic."""
        second = self.escalation_topic(target)
        new = lifecycle.escalation_doc(doc, docs.iso(now), level, second)
        tx.update_alarm(new, now, "escalation", "severity %s" % new["severity"], self.topic,
                        escalation=level, also_topics=(second,))
        self.stats["escalated"] += 1
        log.warning("alarm escalated", extra={"alarm": doc["id"], "level": level,
                                              "severity": new["severity"]})
        return new
