"""Alarm lifecycle: raised → dispatched → acknowledged → resolved, plus
cancelled and false_alarm. Pure.

A command that would move an alarm backwards, or touch a closed alarm, is
ignored (and reported as such), so duplicated and out-of-order commands from
the platform leave a consistent state. Every accepted transition bumps the
document's `seq`; the pair (`id`, `seq`) is unique upstream.
"""
import copy

STATES = ("raised", "dispatched", "acknowledged", "resolved", "cancelled", "false_alarm")
CLOSED = ("resolved", "cancelled", "false_alarm")
RANK = {"raised": 0, "dispatched": 1, "acknowledged": 2, "resolved": 3, "cancelled": 3,
        "false_alarm": 3}
SEVERITIES = ("low", "medium", "high", "critical")


class LifecycleError(ValueError):
    pass


def check_state(state):
    if state not in STATES:
        raise LifecycleError("unknown alarm state '%s'; allowed: %s" % (state, ", ".join(STATES)))


def decide(current, target):
    """'apply' when `target` moves the alarm forward, else why it is ignored."""
    check_state(target)
    if current in CLOSED:
        return "closed"
    if target == current:
        return "same_state"
    if RANK[target] < RANK[current]:
        return "out_of_order"
    return "apply"


def is_open(state):
    return state not in CLOSED


def escalated_severity(severity):
    i = SEVERITIES.index(severity) if severity in SEVERITIES else 1
    return SEVERITIES[min(i + 1, len(SEVERITIES) - 1)]


def transition_doc(doc, state, at_iso, actor, note=None, assignee=None):
    """The next version of an alarm document after a transition; a dispatch
    with an `assignee` (whom it sends) names it in the step and in the alarm."""
    new = copy.deepcopy(doc)
    new["seq"] = doc["seq"] + 1
    new["state"] = state
    history = new.setdefault("history", [])
    step = {"seq": new["seq"], "state": state, "at": at_iso, "actor": actor, "note": note}
    if assignee is not None:
        step["assignee"] = assignee
        new["assignee"] = assignee
    history.append(step)
    new["updated_at"] = at_iso
    return new


def escalation_doc(doc, at_iso, level, target=None):
    new = copy.deepcopy(doc)
    new["seq"] = doc["seq"] + 1
    new["severity"] = escalated_severity(doc["severity"])
    new["escalation"] = {"level": level, "at": at_iso, "target": target}
    new.setdefault("history", []).append({"seq": new["seq"], "state": doc["state"],
                                          "at": at_iso, "actor": "escalation",
                                          "note": "not acknowledged in time; severity %s"
                                                  % new["severity"]})
    new["updated_at"] = at_iso
    return new
