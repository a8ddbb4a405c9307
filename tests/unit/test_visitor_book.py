"""The visitor service over the hub's real Store: registration, approval, the
pass (lock codes the lock's own rule accepts, QR, plate), revocation, the
watch list and its alarm, the repeat-visitor rule, resident tokens bound to
one flat, entries and overstay, the upstream record, and the purge after
retention that leaves no personal byte in the database file."""

from __future__ import annotations

import hmac
import json
import secrets
from pathlib import Path
from typing import Iterator

import pytest

from hub.visitors import VisitConflict, VisitForbidden, VisitInvalid, VisitNotFound
from hub.visitors import passcode, pii, settings as vsettings
from hub.visitors.book import VisitorBook
from tests.unit.ruleskit import T0, Hub, key

GOOD_ID = "11010519491231002X"
OTHER_ID = "44030519900101123X"
D = 86400.0


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t


def reader_section() -> dict:
    return {"retention_days": 30, "auto_approve": {"visits": 2, "within_days": 60},
            "overstay_after": "1h",
            "readers": [{"id": "gate-north-qr", "kind": "qr_reader", "entrance": "gate-north",
                         "key": "11" * 32},
                        {"id": "barrier-east", "kind": "barrier", "entrance": "car-east",
                         "key": "22" * 32}]}


class Kit:
    def __init__(self, path: Path, **kw: object) -> None:
        self.hub = Hub(path)
        self.clock = Clock(T0)
        self.kek = secrets.token_bytes(32)
        self.settings = vsettings.parse(reader_section())
        self.book = VisitorBook(self.hub.store, self.hub.pipeline.site, self.settings,
                                pii.VisitorKeys(self.kek, "sunrise"), self.hub.pipeline.book,
                                self.clock, **kw)

    def body(self, **kw: object) -> dict:
        b = {"flat": "b1-101", "name": "张伟", "phone": "13812345678", "id_number": GOOD_ID,
             "plate": "粤BD12345", "purpose": "探亲", "valid_from": self.clock.t,
             "valid_until": self.clock.t + 4 * 3600, "entry": "single",
             "entrances": ["gate-north", "car-east"]}
        b.update(kw)
        return b

    def reader(self, rid: str) -> vsettings.Reader:
        return self.settings.readers[rid]


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[Kit]:
    k = Kit(tmp_path / "hub.db")
    yield k
    k.hub.close()


def lock_accepts(frame_key: bytes, digits: str, unix_now: float, used: set) -> bool:
    """The lock's rule (docs/visitors.md, "Offline codes"), as written there."""
    c = int(digits)
    check, payload = divmod(c, passcode.PAYLOAD_MOD)
    if check >= passcode.CHECK_MOD:
        return False
    s, d, one_time = payload % 2880, (payload // 2880) % 32, payload // 92160
    now = unix_now - passcode.MP_EPOCH_OFFSET
    now_slot = int(now // passcode.SLOT_S)
    start = now_slot - ((now_slot - s) % 2880)
    want = passcode.check_value(passcode.visit_key(frame_key), start, d, one_time)
    if not hmac.compare_digest(str(want), str(check)):
        return False
    if not start * 900 <= now < (start + passcode.DURATIONS[d]) * 900:
        return False
    return not (one_time and digits in used)


def test_register_approve_pass(kit: Kit) -> None:
    v = kit.book.register(kit.body(flat_lock=True), "http:clerk")
    assert v["state"] == "requested" and v["masked"]
    assert v["id_number"] == "110***********002X" and v["phone"] == "138****5678"
    with pytest.raises(VisitConflict):
        kit.book.pass_of(v["id"])
    v = kit.book.decide(v["id"], "approve", "http:clerk")
    assert v["state"] == "approved" and v["decided_by"] == "http:clerk"
    p = kit.book.pass_of(v["id"])
    assert [c["device"] for c in p["codes"]] == ["lock-101", "lock-gate"]
    for c in p["codes"]:
        assert len(c["digits"]) == 10 and c["one_time"]
        assert kit.clock.t <= c["valid_from"] and c["valid_until"] <= kit.clock.t + 4 * 3600
        fk = key(c["device"])
        assert lock_accepts(fk, c["digits"], c["valid_from"], set())
        assert not lock_accepts(fk, c["digits"], c["valid_until"], set())
        assert not lock_accepts(fk, c["digits"], c["valid_from"] - 1, set())
    assert p["qr"].startswith("AV1") and p["plate"] is True
    # the full record with the permission to see it; its history names who did what
    full = kit.book.show(v["id"], personal=True)
    assert full["id_number"] == GOOD_ID and full["plate"] == "粤BD12345"
    assert [h["action"] for h in full["history"]] == ["registered", "approved"]


def test_personal_values_never_in_the_database_in_clear(kit: Kit) -> None:
    kit.book.register(kit.body(), "http:clerk")
    path = Path(kit.hub.store.path)
    data = path.read_bytes() + Path(str(path) + "-wal").read_bytes()
    for value in (GOOD_ID, "13812345678", "粤BD12345"):
        assert value.encode() not in data


def test_two_passes_for_the_same_window_get_different_codes(kit: Kit) -> None:
    a = kit.book.register(kit.body(entrances=["gate-north"]), "c")
    b = kit.book.register(kit.body(entrances=["gate-north"], id_number=OTHER_ID), "c")
    kit.book.decide(a["id"], "approve", "c")
    kit.book.decide(b["id"], "approve", "c")
    ca, cb = kit.book.pass_of(a["id"])["codes"][0], kit.book.pass_of(b["id"])["codes"][0]
    assert ca["digits"] != cb["digits"]


@pytest.mark.parametrize("watch", [("id", GOOD_ID), ("plate", "粤bd12345")])
def test_a_watch_list_hit_flags_raises_an_alarm_and_issues_no_pass(kit: Kit, watch) -> None:
    kit.book.watch_add(watch[0], watch[1], "http:admin", "police notice 17")
    v = kit.book.register(kit.body(), "resident:b1-101")
    assert v["state"] == "flagged" and v["watch"] == [watch[0]]
    alarms = kit.hub.alarms("visitor_watchlist")
    assert len(alarms) == 1 and alarms[0]["flat"] == "b1-101"
    assert alarms[0]["detail"]["visit"] == v["id"]
    assert GOOD_ID not in json.dumps(alarms[0], ensure_ascii=False)
    assert kit.book.store.query("SELECT COUNT(*) FROM visit_codes")[0][0] == 0
    with pytest.raises(VisitConflict):
        kit.book.pass_of(v["id"])
    with pytest.raises(VisitConflict):  # approved only with a note
        kit.book.decide(v["id"], "approve", "c")
    assert kit.book.decide(v["id"], "refuse", "c")["state"] == "refused"


def test_a_watch_listed_face_flags(kit: Kit) -> None:
    v = kit.book.register(kit.body(), "c", face_hit="w-7")
    assert v["state"] == "flagged" and v["watch"] == ["face"]
    assert "w-7" in kit.hub.alarms("visitor_watchlist")[0]["detail"]["reasons"][0]


def test_repeat_family_visitor_is_approved_automatically(kit: Kit) -> None:
    for day in range(2):
        v = kit.book.register(kit.body(), "resident:b1-101")
        assert v["state"] == "requested"
        kit.book.decide(v["id"], "approve", "http:clerk")
        kit.clock.t += D
    v = kit.book.register(kit.body(), "resident:b1-101")
    assert v["state"] == "approved" and v["auto_approved"]
    assert kit.book.pass_of(v["id"])["codes"]
    # another flat, or a watch-list entry, never rides on that history
    assert kit.book.register(kit.body(flat="b1-102", entrances=["gate-north"]),
                             "c")["state"] == "requested"
    kit.book.watch_add("id", GOOD_ID, "admin")
    assert kit.book.register(kit.body(), "c")["state"] == "flagged"


def test_resident_token_is_bound_to_its_flat(kit: Kit) -> None:
    token = kit.book.resident_token("b1-101", "cli:admin")
    assert kit.book.flat_of_token(token) == "b1-101"
    assert kit.hub.store.query("SELECT COUNT(*) FROM visitor_tokens WHERE token_hash=?",
                               (token,))[0][0] == 0   # stored hashed
    flat = kit.book.flat_of_token(token)
    other = kit.book.register(kit.body(flat="b1-102"), "c")
    with pytest.raises(VisitForbidden):
        kit.book.register(kit.body(flat="b1-102"), "resident", flat=flat)
    with pytest.raises(VisitNotFound):
        kit.book.show(other["id"], flat=flat)
    with pytest.raises(VisitNotFound):
        kit.book.decide(other["id"], "revoke", "resident", flat=flat)
    mine = kit.book.register(kit.body(), "resident", flat=flat)
    with pytest.raises(VisitForbidden):
        kit.book.decide(mine["id"], "approve", "resident", flat=flat)
    assert [v["id"] for v in kit.book.list(flat=flat)] == [mine["id"]]
    assert kit.book.decide(mine["id"], "revoke", "resident", flat=flat)["state"] == "revoked"
    assert kit.book.revoke_resident_tokens("b1-101", "admin") == 1
    assert kit.book.flat_of_token(token) is None
    assert kit.book.flat_of_token("avr_forged") is None
    with pytest.raises(VisitInvalid):
        kit.book.resident_token("b9-999", "admin")


def test_gate_and_barrier(kit: Kit) -> None:
    v = kit.book.register(kit.body(), "c")
    kit.book.decide(v["id"], "approve", "c")
    token = kit.book.pass_of(v["id"])["qr"]
    gate, barrier = kit.reader("gate-north-qr"), kit.reader("barrier-east")
    assert kit.book.admit_qr(gate, token) == (True, "ok", v["id"])
    assert kit.book.admit_qr(gate, token)[:2] == (False, "spent")       # one-time
    assert kit.book.admit_qr(gate, token, "out")[:2] == (True, "ok")
    assert kit.book.admit_qr(gate, token[:-2] + "AA")[:2] == (False, "invalid")
    assert kit.book.admit_plate(barrier, "粤BD12345") == (True, "ok", v["id"])
    assert kit.book.admit_plate(barrier, "粤B99999")[:2] == (False, "unknown")
    unknown = kit.hub.store.access_log("visitor_plate_unknown")
    assert len(unknown) == 1 and "粤B99999" not in json.dumps(unknown, ensure_ascii=False)
    assert [(e["credential"], e["direction"]) for e in kit.book.entries(v["id"])] == \
        [("qr", "in"), ("qr", "out"), ("plate", "in")]


def test_a_qr_for_an_entrance_not_covered_or_outside_the_window(kit: Kit) -> None:
    v = kit.book.register(kit.body(entrances=["car-east"], entry="repeated",
                                   valid_from=T0 + 3600), "c")
    kit.book.decide(v["id"], "approve", "c")
    token = kit.book.pass_of(v["id"])["qr"]
    assert kit.book.admit_qr(kit.reader("gate-north-qr"), token)[:2] == \
        (False, "entrance_not_covered")
    assert kit.book.admit_plate(kit.reader("barrier-east"), "粤BD12345")[:2] == \
        (False, "not_yet")
    kit.clock.t = T0 + 3600
    assert kit.book.admit_plate(kit.reader("barrier-east"), "粤BD12345")[:2] == (True, "ok")
    kit.book.admit_plate(kit.reader("barrier-east"), "粤BD12345", "out")
    assert kit.book.admit_plate(kit.reader("barrier-east"), "粤BD12345")[:2] == (True, "ok")
    kit.clock.t = T0 + 5 * 3600
    assert kit.book.admit_plate(kit.reader("barrier-east"), "粤BD12345")[:2] == \
        (False, "expired")


def test_revoking_stops_qr_and_plate_at_once_and_lists_the_lock_codes(kit: Kit) -> None:
    calls = []
    kit.book.revoke_lock_code = lambda device, digits, actor: calls.append((device, digits,
                                                                            actor))
    v = kit.book.register(kit.body(entry="repeated"), "c")
    kit.book.decide(v["id"], "approve", "c")
    p = kit.book.pass_of(v["id"])
    kit.book.decide(v["id"], "revoke", "http:clerk")
    assert kit.book.admit_qr(kit.reader("gate-north-qr"), p["qr"])[:2] == (False, "revoked")
    assert kit.book.admit_plate(kit.reader("barrier-east"), "粤BD12345")[:2] == \
        (False, "revoked")
    assert calls == [(c["device"], c["digits"], "http:clerk") for c in p["codes"]]
    assert kit.book.pending_code_revocations() == []


def test_revocations_wait_when_no_lock_command_is_wired(kit: Kit) -> None:
    v = kit.book.register(kit.body(), "c")
    kit.book.decide(v["id"], "approve", "c")
    kit.book.decide(v["id"], "revoke", "c")
    assert [r["device"] for r in kit.book.pending_code_revocations()] == ["lock-gate"]


def test_a_failed_revocation_stays_pending_and_an_ended_code_needs_none(kit: Kit) -> None:
    from hub.locks import LockError
    v = kit.book.register(kit.body(), "c")
    kit.book.decide(v["id"], "approve", "c")

    def down(device, digits, actor):
        raise OSError("store busy")
    kit.book.revoke_lock_code = down
    kit.book.decide(v["id"], "revoke", "c")
    assert [r["device"] for r in kit.book.pending_code_revocations()] == ["lock-gate"]
    calls = []
    kit.book.revoke_lock_code = lambda device, digits, actor: calls.append(actor)
    kit.book.send_code_revocations()  # as the component does at start
    assert calls == ["hub:visitors"] and kit.book.pending_code_revocations() == []

    w = kit.book.register(kit.body(), "c")
    kit.book.decide(w["id"], "approve", "c")

    def ended(device, digits, actor):
        raise LockError("digits: the window has ended")
    kit.book.revoke_lock_code = ended
    kit.book.decide(w["id"], "revoke", "c")
    assert kit.book.pending_code_revocations() == []


def test_overstay_notice_once(kit: Kit) -> None:
    v = kit.book.register(kit.body(valid_until=T0 + 3600), "c")
    kit.book.decide(v["id"], "approve", "c")
    kit.book.admit_qr(kit.reader("gate-north-qr"), kit.book.pass_of(v["id"])["qr"])
    kit.clock.t = T0 + 3600 + 3599
    assert kit.book.tick() == {"expired": 1, "overstay": 0, "purged": 0}
    kit.clock.t = T0 + 3600 + 3600
    assert kit.book.tick() == {"expired": 0, "overstay": 1, "purged": 0}
    assert kit.book.tick()["overstay"] == 0
    notices = kit.hub.alarms("visitor_overstay")
    assert len(notices) == 1 and notices[0]["severity"] == "low"


def test_no_overstay_after_an_exit(kit: Kit) -> None:
    v = kit.book.register(kit.body(valid_until=T0 + 3600), "c")
    kit.book.decide(v["id"], "approve", "c")
    token = kit.book.pass_of(v["id"])["qr"]
    kit.book.admit_qr(kit.reader("gate-north-qr"), token)
    kit.book.admit_qr(kit.reader("gate-north-qr"), token, "out")
    kit.clock.t = T0 + 3 * 3600
    assert kit.book.tick()["overstay"] == 0


def test_purge_after_retention_leaves_nothing_recoverable(kit: Kit) -> None:
    v = kit.book.register(kit.body(), "c")
    kit.book.decide(v["id"], "approve", "c")
    sealed = kit.hub.store.query("SELECT id_sealed, phone_sealed, plate_sealed FROM visits")[0]
    end = T0 + 4 * 3600
    kit.clock.t = end + 30 * D - 1
    assert kit.book.tick()["purged"] == 0
    kit.clock.t = end + 30 * D
    assert kit.book.tick()["purged"] == 1
    with pytest.raises(VisitNotFound):
        kit.book.show(v["id"])
    assert kit.hub.store.query("SELECT COUNT(*) FROM visit_codes")[0][0] == 0
    path = Path(kit.hub.store.path)
    data = path.read_bytes() + Path(str(path) + "-wal").read_bytes()
    for blob in sealed:
        assert bytes(blob) not in data and bytes(blob)[12:28] not in data
    # what stays: who did what when, without the person
    assert [r[0] for r in kit.hub.store.query(
        "SELECT action FROM visit_events WHERE visit_id=? ORDER BY id", (v["id"],))] == \
        ["registered", "approved", "expired", "purged"]


def test_the_upstream_record_is_queued_once_with_the_id_masked(kit: Kit) -> None:
    v = kit.book.register(kit.body(), "c")
    kit.book.decide(v["id"], "approve", "http:clerk")
    rows = kit.hub.store.query("SELECT alarm_id, topic, payload, target FROM outbox "
                               "WHERE alarm_id LIKE 'visit-%'")
    assert len(rows) == 1
    doc = json.loads(rows[0][2])
    assert rows[0][0] == doc["id"] == "visit-" + v["id"]
    assert rows[0][1] == "anju/upstream/sunrise/visits"
    assert doc["visitor"]["id_number"] == "110***********002X"
    assert doc["flat"] == "b1-101" and doc["approved_by"] == "http:clerk"
    kit.book.decide(v["id"], "revoke", "c")
    assert len(kit.hub.store.query("SELECT 1 FROM outbox WHERE alarm_id LIKE 'visit-%'")) == 1


def test_a_target_allowed_the_full_id_number_gets_it(tmp_path: Path) -> None:
    k = Kit(tmp_path / "hub.db", full_id_targets=("mqtt",))
    try:
        v = k.book.register(k.body(), "c")
        k.book.decide(v["id"], "approve", "c")
        doc = json.loads(k.hub.store.query("SELECT payload FROM outbox WHERE alarm_id=?",
                                           ("visit-" + v["id"],))[0][0])
        assert doc["visitor"]["id_number"] == GOOD_ID
    finally:
        k.hub.close()


def test_bad_input_changes_nothing(kit: Kit) -> None:
    with pytest.raises(VisitInvalid) as err:
        kit.book.register(kit.body(id_number="110105194912310021"), "c")
    assert err.value.field == "id_number"
    assert kit.hub.store.query("SELECT COUNT(*) FROM visits")[0][0] == 0


def test_every_deadline_is_done_once(kit: Kit) -> None:
    """The clock task sleeps until next_deadline(): once a deadline has been
    handled it must move on, or the task would spin."""
    entered = kit.book.register(kit.body(valid_until=T0 + 3600), "c")
    kit.book.decide(entered["id"], "approve", "c")
    kit.book.admit_qr(kit.reader("gate-north-qr"), kit.book.pass_of(entered["id"])["qr"])
    never = kit.book.register(kit.body(valid_until=T0 + 3600, id_number=OTHER_ID), "c")
    kit.book.decide(never["id"], "approve", "c")
    kit.book.register(kit.body(valid_until=T0 + 1800, flat="b1-102"), "c")  # never decided
    seen = []
    for _ in range(10):
        deadline = kit.book.next_deadline()
        if deadline is None:
            break
        assert deadline > (seen[-1] if seen else 0)
        seen.append(deadline)
        kit.clock.t = max(kit.clock.t, deadline)
        kit.book.tick()
    assert deadline is None and len(seen) <= 5
    assert len(kit.hub.alarms("visitor_overstay")) == 1
    assert kit.hub.store.query("SELECT COUNT(*) FROM visits")[0][0] == 0


def test_a_reloaded_site_counts_at_once(tmp_path: Path) -> None:
    import types
    from hub.visitors.component import VisitorService
    from tests.unit.ruleskit import site
    h = Hub(tmp_path / "hub.db")
    try:
        h.pipeline.site.visitors = vsettings.parse({})
        hub = types.SimpleNamespace(site=h.pipeline.site, store=h.store, pipeline=h.pipeline,
                                    clock=Clock(T0), notify_outbox=lambda: None)
        svc = VisitorService(hub, kek=secrets.token_bytes(32))
        body = {"flat": "b1-101", "name": "张伟", "phone": "13812345678", "id_number": GOOD_ID,
                "purpose": "探亲", "valid_from": T0, "valid_until": T0 + 3600,
                "entrances": ["gate-west"]}
        with pytest.raises(VisitInvalid):
            svc.book.register(body, "c")
        moved = site()
        moved.devices["lock-gate"].entrance = "gate-west"
        moved.visitors = vsettings.parse({"retention_days": 7})
        svc.reload_site(moved)
        v = svc.book.register(body, "c")
        assert v["purge_after"] == T0 + 3600 + 7 * D
    finally:
        h.close()


def test_a_watch_list_entry_added_later_stops_a_live_pass(kit: Kit) -> None:
    calls = []
    kit.book.revoke_lock_code = lambda device, digits, actor: calls.append(device)
    live = kit.book.register(kit.body(entry="repeated"), "c")
    kit.book.decide(live["id"], "approve", "c")
    token = kit.book.pass_of(live["id"])["qr"]
    waiting = kit.book.register(kit.body(), "c")
    other = kit.book.register(kit.body(id_number=OTHER_ID, plate=None), "c")
    assert sorted(kit.book.watch_add("plate", "粤BD12345", "http:police")) == \
        sorted([live["id"], waiting["id"]])
    assert kit.book.show(live["id"])["state"] == "flagged"
    assert kit.book.show(other["id"])["state"] == "requested"
    assert kit.book.admit_qr(kit.reader("gate-north-qr"), token)[:2] == (False, "flagged")
    assert calls == ["lock-gate"]
    assert len(kit.hub.alarms("visitor_watchlist")) == 2


def test_a_watch_listed_plate_at_the_barrier_raises_an_alarm(kit: Kit) -> None:
    kit.book.watch_add("plate", "粤B99999", "http:police")
    barrier = kit.reader("barrier-east")
    assert kit.book.admit_plate(barrier, "粤B99999")[:2] == (False, "unknown")
    assert kit.book.admit_plate(barrier, "粤B99999")[:2] == (False, "unknown")
    (alarm,) = kit.hub.alarms("visitor_watchlist")       # one open per plate and entrance
    assert alarm["entrance"] == "car-east" and alarm["device"] == "barrier-east"
    assert "粤B99999" not in json.dumps(alarm, ensure_ascii=False)



def test_the_watch_list_shows_no_values_and_an_entry_comes_off_by_its_ref(kit: Kit) -> None:
    kit.book.watch_add("plate", "粤B99999", "http:police", "notice 17")
    kit.book.watch_add("id", OTHER_ID, "http:police")
    listed = kit.book.watch_list()
    assert [e["kind"] for e in listed] == ["id", "plate"]      # newest first
    text = json.dumps(listed, ensure_ascii=False)
    assert "粤B99999" not in text and OTHER_ID not in text
    plate = next(e for e in listed if e["kind"] == "plate")
    assert plate["note"] == "notice 17" and plate["added_by"] == "http:police"
    assert kit.book.watch_remove(plate["ref"], "http:police", "notice withdrawn") == \
        {"ref": plate["ref"], "kind": "plate", "listed": False}
    assert [e["kind"] for e in kit.book.watch_list()] == ["id"]
    # off the list, the plate is a plain unknown plate again: no alarm
    assert kit.book.admit_plate(kit.reader("barrier-east"), "粤B99999")[:2] == (False, "unknown")
    assert kit.hub.alarms("visitor_watchlist") == []
    log = kit.hub.store.query("SELECT actor, action, kind, note FROM visitor_watch_log ORDER BY id")
    assert [tuple(r) for r in log] == [("http:police", "added", "plate", "notice 17"),
                                       ("http:police", "added", "id", None),
                                       ("http:police", "removed", "plate", "notice withdrawn")]


@pytest.mark.parametrize("ref, field", [(0, "ref"), (-3, "ref"), ("1", "ref"), (True, "ref")])
def test_a_bad_watch_list_ref_is_refused_with_the_field(kit: Kit, ref, field) -> None:
    kit.book.watch_add("plate", "粤B99999", "http:police")
    with pytest.raises(VisitInvalid) as exc:
        kit.book.watch_remove(ref, "http:police")
    assert exc.value.field == field
    assert len(kit.book.watch_list()) == 1


def test_an_unknown_watch_list_ref_is_not_found_and_changes_nothing(kit: Kit) -> None:
    kit.book.watch_add("plate", "粤B99999", "http:police")
    with pytest.raises(VisitNotFound):
        kit.book.watch_remove(999, "http:police")
    assert len(kit.book.watch_list()) == 1


def test_a_lock_code_that_opened_is_an_entry_of_its_visit_and_not_judged_for_overstay(
        kit: Kit) -> None:
    v = kit.book.register(kit.body(flat_lock=True, valid_until=T0 + 3600), "c")
    kit.book.decide(v["id"], "approve", "c")
    code = {c["device"]: c for c in kit.book.pass_of(v["id"])["codes"]}["lock-gate"]
    check, start = passcode.parse(code["digits"])[0], int(
        code["valid_from"] - passcode.MP_EPOCH_OFFSET) // passcode.SLOT_S

    def reported(check):  # as hub.verify.frames_lock decodes the lock's ACCESS frame
        return {"start_slot": start, "check": check,
                "valid_from": start * passcode.SLOT_S + passcode.MP_EPOCH_OFFSET}

    gate = kit.hub.pipeline.site.devices["lock-gate"]
    with kit.hub.store.transaction() as tx:
        # another lock's code, and one of no visit: nothing recorded
        assert kit.book.record_lock_entry(tx, kit.hub.pipeline.site.devices["lock-101"],
                                          reported(check), T0) is None
        assert kit.book.record_lock_entry(tx, gate, reported((check + 1) % passcode.CHECK_MOD),
                                          T0) is None
        assert kit.book.record_lock_entry(tx, gate, reported(check), T0 + 60) == v["id"]
    assert kit.book.entries(v["id"]) == [{"at": T0 + 60, "entrance": gate.entrance,
                                          "reader": "lock-gate", "credential": "code",
                                          "direction": "in"}]
    # a lock reports no exits: a visitor who came in by code is not noticed as overstaying
    kit.clock.t = T0 + 3 * 3600
    assert kit.book.tick()["overstay"] == 0
