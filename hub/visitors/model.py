"""A visit's states, who may move it, and the decisions made about it. Pure.

    requested ──approve──▶ approved ──revoke──▶ revoked
        │  ╲                   └──(window over)──▶ expired
        │   ╲─refuse─▶ refused
        └─(watch-list hit)─▶ flagged ──refuse──▶ refused
                 (also from approved, when the watch list grows)
                                 └──approve (with a note)──▶ approved

A visit not yet over whose visitor is put on the watch list later is
flagged too, an approved one losing its pass. A flagged visit is never
approved automatically and gets no pass until a clerk approves it with a
note saying why; a resident may withdraw (revoke) a
visit of its own flat that is requested or approved.
"""
from hub.visitors import VisitConflict, VisitForbidden

STATES = ("requested", "approved", "refused", "flagged", "revoked", "expired")
CLOSED = ("refused", "revoked", "expired")

# action -> (states it applies to, the state it leads to)
ACTIONS = {
    "approve": (("requested", "flagged"), "approved"),
    "refuse": (("requested", "flagged"), "refused"),
    "revoke": (("requested", "approved"), "revoked"),
    "expire": (("approved",), "expired"),
}
CLERK_ACTIONS = ("approve", "refuse", "revoke")
RESIDENT_ACTIONS = ("revoke",)


def next_state(state, action, by_resident=False, note=None):
    """The state `action` leads to from `state`, or VisitConflict/VisitForbidden."""
    if action not in ACTIONS:
        raise VisitConflict("unknown action %r" % action)
    if by_resident and action not in RESIDENT_ACTIONS:
        raise VisitForbidden("a resident may only withdraw a visit; the property office "
                             "approves and refuses")
    sources, target = ACTIONS[action]
    if state not in sources:
        raise VisitConflict("a %s visit cannot be %s" % (state, _done(action)))
    if state == "flagged" and action == "approve" and not (note and note.strip()):
        raise VisitConflict("a visit flagged by the watch list is approved only with a note "
                            "saying why")
    return target


def _done(action):
    return {"approve": "approved", "refuse": "refused", "revoke": "revoked",
            "expire": "expired"}[action]


def repeat_visitor(history, flat, id_hash, now, visits, within_s):
    """Whether a visit is approved without a clerk: the same ID number was
    approved by a clerk (not automatically) for the same flat at least
    `visits` times within `within_s` before now. `history` holds dicts with
    flat, id_hash, approved_at and auto (bool). `visits` 0 turns it off."""
    if visits <= 0:
        return False
    count = sum(1 for h in history
                if h["flat"] == flat and h["id_hash"] == id_hash and not h["auto"]
                and h["approved_at"] is not None and now - within_s <= h["approved_at"] <= now)
    return count >= visits


def watch_hits(id_hash, plate_hash, watched, face_hit=None):
    """The watch-list entries a visit hits: [(kind, reason)], empty = none.
    `watched` is a set of (kind, hash); `face_hit` a watch-list person id or None."""
    hits = []
    if ("id", id_hash) in watched:
        hits.append(("id", "ID number on the watch list"))
    if plate_hash is not None and ("plate", plate_hash) in watched:
        hits.append(("plate", "number plate on the watch list"))
    if face_hit is not None:
        hits.append(("face", "face matches watch-list entry %s" % face_hit))
    return hits


# what a gate or barrier is told, with the reason logged
def admit(visit, credential, entrance, now, spent):
    """Whether a pass opens `entrance` now: (True, "ok") or (False, reason).
    `visit` has state, valid_from, valid_until, one_time, entrances; `spent`
    whether this credential of a one-time pass was already used to enter."""
    if visit is None:
        return False, "unknown"
    if visit["state"] != "approved":
        return False, visit["state"]
    if entrance not in visit["entrances"]:
        return False, "entrance_not_covered"
    if now < visit["valid_from"]:
        return False, "not_yet"
    if now >= visit["valid_until"]:
        return False, "expired"
    if visit["one_time"] and spent:
        return False, "spent"
    return True, "ok"


def overstayed(entered_at, exited, valid_until, now, grace_s):
    """A visitor who entered and has not left `grace_s` after the window."""
    return entered_at is not None and not exited and now >= valid_until + grace_s
