"""Requested is not confirmed: lock commands, users and credentials over a real
Store and Pipeline with real signed lock frames. A credential is active only
after the lock's CMD_RESULT ok for its command's counter; any other result
marks it failed with the reason; LOCAL_CHANGE records a credential no
resident holds; LOCK_STATE is the lock's state; SET_TIME is queued for a lock
without a clock. Alarms: duress, wrong code, jam, door ajar; tamper and low
battery from LOCK_STATE."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from hub.locks import LockError, book, wire
from hub.verify import frames_lock as fl
from tests.unit.ruleskit import T0, Hub, mp_time

LOCK = "lock-101"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = Hub(tmp_path / "hub.db")
    yield h
    h.close()


def add(h: Hub, kind: str = "pin", secret: object = "4711", resident: str = "r-101"):
    with h.store.transaction() as tx:
        return book.add_credential(tx, h.pipeline.site, LOCK, resident, kind, secret, T0,
                                   "office")


def result(h: Hub, cmd: dict, outcome: str = "ok", at: float = T0 + 5) -> str:
    body = fl.cmd_result_body(cmd["counter"], cmd["command"], outcome, cmd["user"] or 0,
                              cmd["credential"])
    return h.lock_frame(LOCK, fl.T_CMD_RESULT, body, at, mp_time(at))


def states(h: Hub) -> dict:
    return {c["credential"]: (c["state"], c["reason"]) for c in book.credentials(h.store, LOCK)}


def test_credential_is_pending_until_the_lock_confirms(hub: Hub) -> None:
    rec, cmds = add(hub)
    assert rec["state"] == "pending" and rec["resident"] == "r-101" and rec["kind"] == "pin"
    assert [c["command"] for c in cmds] == ["user_set", "cred_set"]
    assert cmds[0]["counter"] < cmds[1]["counter"]
    assert all(c["state"] == "queued" and c["requested_by"] == "office" for c in cmds)
    # sent is not confirmed either
    with hub.store.transaction() as tx:
        for c in cmds:
            book.mark_sent(tx, LOCK, c["counter"], T0 + 1)
    assert states(hub) == {rec["credential"]: ("pending", None)}
    assert result(hub, cmds[0]) == "accepted"
    assert book.users(hub.store, LOCK)[0]["state"] == "active"
    assert states(hub) == {rec["credential"]: ("pending", None)}
    assert result(hub, cmds[1]) == "accepted"
    assert states(hub) == {rec["credential"]: ("active", None)}
    assert book.command(hub.store, LOCK, cmds[1]["counter"])["state"] == "ok"
    # a second credential of the same resident reuses her user
    rec2, cmds2 = add(hub, "card", bytes.fromhex("04a1b2c3"))
    assert [c["command"] for c in cmds2] == ["cred_set"] and rec2["user"] == rec["user"]


@pytest.mark.parametrize("outcome", ["full", "duplicate", "expired", "no_clock", "bad_value"])
def test_a_failed_result_marks_the_credential_failed(hub: Hub, outcome: str) -> None:
    rec, cmds = add(hub)
    result(hub, cmds[1], outcome)
    assert states(hub) == {rec["credential"]: ("failed", outcome)}
    assert book.command(hub.store, LOCK, cmds[1]["counter"])["result"] == outcome


def test_a_result_for_an_unknown_counter_changes_nothing(hub: Hub) -> None:
    rec, cmds = add(hub)
    result(hub, dict(cmds[1], counter=cmds[1]["counter"] + 50))
    assert states(hub) == {rec["credential"]: ("pending", None)}


def test_removal_is_confirmed_too(hub: Hub) -> None:
    rec, cmds = add(hub)
    result(hub, cmds[1])
    with hub.store.transaction() as tx:
        _, cmd = book.remove_credential(tx, hub.pipeline.site, LOCK, rec["credential"], T0 + 9,
                                        "office")
    assert states(hub)[rec["credential"]][0] == "removing"
    result(hub, cmd, at=T0 + 10)
    assert states(hub) == {}
    with pytest.raises(LockError):
        with hub.store.transaction() as tx:
            book.remove_credential(tx, hub.pipeline.site, LOCK, rec["credential"], T0, "x")


def test_the_body_holds_the_digest_never_the_pin(hub: Hub) -> None:
    _, cmds = add(hub, "pin", "4711")
    body = hub.store.query("SELECT body FROM lock_commands WHERE counter=?",
                           (cmds[1]["counter"],))[0][0]
    key = hub.pipeline.site.devices[LOCK].frame_key
    assert body[-16:] == wire.pin_digest(key, "4711") and b"4711" not in body
    with hub.store.transaction() as tx:
        book.mark_sent(tx, LOCK, cmds[1]["counter"], T0)
    assert hub.store.query("SELECT body FROM lock_commands WHERE counter=?",
                           (cmds[1]["counter"],))[0][0] is None


@pytest.mark.parametrize(("resident", "kind", "secret"), [
    ("r-102", "pin", "4711"),         # lives in another flat
    ("r-999", "pin", "4711"),         # no such resident
    ("r-101", "pin", "12"),           # too short
    ("r-101", "face", b""),           # a face is not provisioned on the lock
])
def test_refused_before_anything_is_queued(hub: Hub, resident: str, kind: str,
                                           secret: object) -> None:
    with pytest.raises(LockError):
        add(hub, kind, secret, resident)
    assert hub.store.query("SELECT COUNT(*) FROM lock_commands")[0][0] == 0
    assert book.credentials(hub.store, LOCK) == []


def test_provisioned_credential_is_its_residents_for_unregistered_occupant(hub: Hub) -> None:
    rec, cmds = add(hub)
    hub.access(LOCK, T0 + 1, rec["credential"], method="pin")
    assert len(hub.alarms("unregistered_occupant")) == 1  # not yet confirmed
    result(hub, cmds[1], at=T0 + 2)
    hub.access(LOCK, T0 + 3, rec["credential"], method="pin")
    assert len(hub.alarms("unregistered_occupant")) == 1


def test_local_change_is_a_credential_no_resident_holds(hub: Hub) -> None:
    body = fl.local_change_body("credential_added", "pin", 9, "L:pin:3")
    assert hub.lock_frame(LOCK, fl.T_LOCAL_CHANGE, body, T0, mp_time(T0)) == "accepted"
    (rec,) = book.credentials(hub.store, LOCK)
    assert (rec["credential"], rec["source"], rec["resident"], rec["state"], rec["user"]) == (
        "L:pin:3", "lock", None, "active", 9)
    hub.access(LOCK, T0 + 1, "L:pin:3", method="pin")
    assert len(hub.alarms("unregistered_occupant")) == 1
    hub.lock_frame(LOCK, fl.T_LOCAL_CHANGE, fl.local_change_body("credential_removed", "pin", 9,
                                                                "L:pin:3"), T0 + 2, mp_time(T0))
    assert book.credentials(hub.store, LOCK) == []


def test_lock_state_is_stored(hub: Hub) -> None:
    body = fl.lock_state_body("unlocked", "open", percent=64, millivolts=5600, ops_left=3100)
    hub.lock_frame(LOCK, fl.T_LOCK_STATE, body, T0, mp_time(T0))
    st = book.lock_state(hub.store, LOCK)
    assert (st["bolt"], st["door"], st["percent"], st["ops_left"], st["clock_set"]) == (
        "unlocked", "open", 64, 3100, True)
    dev = hub.store.device_state(LOCK)
    assert (dev["door_open"], dev["battery_percent"]) == (1, 64)


def set_times(h: Hub) -> list:
    return [c for c in book.commands(h.store, LOCK) if c["command"] == "set_time"]


@pytest.mark.parametrize(("device_time", "clock_set", "sent"), [
    (0, True, True), (T0, False, True), (T0 + 61, True, True), (T0 - 61, True, True),
    (T0 + 30, True, False), (T0, True, False)])
def test_set_time_for_a_lock_without_a_good_clock(hub: Hub, device_time: float, clock_set: bool,
                                                  sent: bool) -> None:
    body = fl.lock_state_body(clock_set=clock_set)
    hub.lock_frame(LOCK, fl.T_LOCK_STATE, body, T0, mp_time(device_time) if device_time else 0)
    assert len(set_times(hub)) == (1 if sent else 0)
    if sent:
        cmd = set_times(hub)[0]
        assert (cmd["state"], cmd["requested_by"], cmd["valid_s"]) == ("queued", "hub:clock", None)


def test_set_time_is_not_repeated_for_every_frame(hub: Hub) -> None:
    for i in range(5):
        hub.lock_frame(LOCK, fl.T_LOCK_STATE, fl.lock_state_body(), T0 + i, 0)
    assert len(set_times(hub)) == 1
    hub.lock_frame(LOCK, fl.T_LOCK_STATE, fl.lock_state_body(), T0 + 301, 0)
    assert len(set_times(hub)) == 2


def test_set_time_body_is_the_site_offset(tmp_path: Path) -> None:
    h = Hub(tmp_path / "hub.db", timezone="Asia/Shanghai")
    try:
        h.lock_frame(LOCK, fl.T_LOCK_STATE, fl.lock_state_body(), T0, 0)
        counter = h.store.events(LOCK)[-1]["counter"]
        body = h.store.query("SELECT body FROM lock_commands")[0][0]
        assert body == wire.set_time(480, counter)  # it answers that frame
    finally:
        h.close()


# ---- alarms -------------------------------------------------------------------
def kinds(h: Hub) -> list:
    return sorted((a["type"], a["severity"]) for a in h.alarms())


def test_duress_is_critical_and_first_in_the_outbox(hub: Hub) -> None:
    hub.forced(LOCK, T0)
    hub.access(LOCK, T0 + 1, "card-0001", duress=True, user=5)
    assert kinds(hub) == [("duress", "critical"), ("forced_entry", "high")]
    assert '"duress"' in hub.store.outbox_head(1)[0][2]
    hub.access(LOCK, T0 + 2, "card-0001", duress=True)
    assert len(hub.alarms("duress")) == 1  # one open per lock


@pytest.mark.parametrize(("alarm", "rule", "severity"), [
    ("wrong_code_limit", "lock_wrong_code", "medium"), ("jammed", "lock_jammed", "medium"),
    ("door_ajar", "door_ajar", "low")])
def test_lock_alarms(hub: Hub, alarm: str, rule: str, severity: str) -> None:
    hub.lock_frame(LOCK, fl.T_LOCK_ALARM, fl.lock_alarm_body(alarm, False), T0)
    assert hub.alarms() == []  # cleared raises nothing
    hub.lock_frame(LOCK, fl.T_LOCK_ALARM, fl.lock_alarm_body(alarm, True, "pin", 5), T0 + 1)
    hub.lock_frame(LOCK, fl.T_LOCK_ALARM, fl.lock_alarm_body(alarm, True, "pin", 5), T0 + 2)
    assert kinds(hub) == [(rule, severity)]
    doc = hub.alarms(rule)[0]
    assert doc["device"] == LOCK and doc["flat"] == "b1-101" and doc["detail"]["alarm"] == alarm


def test_jammed_bolt_in_lock_state(hub: Hub) -> None:
    hub.lock_frame(LOCK, fl.T_LOCK_STATE, fl.lock_state_body("jammed"), T0, mp_time(T0))
    assert kinds(hub) == [("lock_jammed", "medium")]


def test_tamper_and_low_battery_apply_to_locks(hub: Hub) -> None:
    hub.lock_frame(LOCK, fl.T_LOCK_STATE, fl.lock_state_body(tamper=True, percent=12), T0,
                   mp_time(T0))
    assert kinds(hub) == [("low_battery", "low"), ("tamper", "high")]


def test_lock_alarms_can_be_switched_off(tmp_path: Path) -> None:
    h = Hub(tmp_path / "hub.db", rules="rules: {duress: {enabled: false}, door_ajar: "
                                       "{enabled: false}}")
    try:
        h.access(LOCK, T0, "card-0001", duress=True)
        h.lock_frame(LOCK, fl.T_LOCK_ALARM, fl.lock_alarm_body("door_ajar"), T0 + 1)
        assert h.alarms() == []
    finally:
        h.close()


def test_an_operators_remote_unlock_is_not_an_unregistered_occupant(hub: Hub) -> None:
    with hub.store.transaction() as tx:
        cmd = book.lock_ctl(tx, hub.pipeline.site, LOCK, "unlock", T0, "http:office")
    who = cmd["credential"]
    assert who.startswith("op-")
    hub.access(LOCK, T0 + 1, who, method="remote")
    assert len(hub.alarms("unregistered_occupant")) == 1  # not sent yet: not the hub's
    hub.resolve(hub.alarms("unregistered_occupant")[0], T0 + 1)
    with hub.store.transaction() as tx:
        book.mark_sent(tx, LOCK, cmd["counter"], T0 + 2)
    hub.access(LOCK, T0 + 3, who, method="remote")
    hub.access(LOCK, T0 + 4, "op-99", method="remote")  # an id the hub never issued
    assert sorted(a["detail"]["credential"] for a in hub.alarms("unregistered_occupant")) == [
        "op-1", "op-99"]  # op-1 only the once, before the command was sent
    with pytest.raises(LockError):
        with hub.store.transaction() as tx:
            book.lock_ctl(tx, hub.pipeline.site, LOCK, "unlock", T0, "x", who="op-5")


# ---- a tenancy that ends ---------------------------------------------------------------
ENDING = """
          - {id: r-101, name: Wang Lan, role: tenant, until: %s}
          - {id: r-109, name: Zhao Min, role: owner}"""


def test_the_end_of_a_tenancy_removes_her_credentials_from_the_lock(tmp_path: Path) -> None:
    import datetime
    last = datetime.datetime.fromtimestamp(T0, datetime.timezone.utc).date()
    h = Hub(tmp_path / "hub.db", residents_101=ENDING % last.isoformat())
    try:
        tenant, _ = add(h, "pin", "4711")
        owner, _ = add(h, "card", bytes.fromhex("04a1b2c3"), resident="r-109")
        # due at the start of the day after her last one (the site's time zone)
        end = book.local_midnight(h.pipeline.site, last, days_after=1)
        assert h.deadline("lock_tenancy") == end
        h.evaluate(end - 1)
        assert states(h)[tenant["credential"]][0] == "pending"
        h.evaluate(end)
        assert states(h)[tenant["credential"]][0] == "removing"
        assert states(h)[owner["credential"]][0] == "pending"  # the owner stays
        cmds = [c for c in book.commands(h.store, LOCK) if c["command"] == "cred_remove"]
        assert [(c["credential"], c["requested_by"]) for c in cmds] == [
            (tenant["credential"], "hub:tenancy-ended")]
        assert h.deadline("lock_tenancy") is None  # the owner's has no end; nothing else due
        h.evaluate(end + 86400)
        assert len([c for c in book.commands(h.store, LOCK) if c["command"] == "cred_remove"]) == 1
    finally:
        h.close()


def test_an_unregistered_residents_credentials_go_at_once(tmp_path: Path) -> None:
    h = Hub(tmp_path / "hub.db", residents_101="""
          - {id: r-101, name: Wang Lan, registered: false}""")
    try:
        rec, _ = add(h, "pin", "4711")
        assert h.deadline("lock_tenancy") == 0
        h.evaluate(T0)
        assert states(h)[rec["credential"]][0] == "removing"
    finally:
        h.close()


# ---- user types and schedules -------------------------------------------------------
def user_set_of(h: Hub, cmds: list) -> tuple:
    import struct
    body = h.store.query("SELECT body FROM lock_commands WHERE counter=?",
                         (cmds[0]["counter"],))[0][0]
    return struct.unpack(">HHBBHHIIH", body)  # valid_s, user, type, days, start, end, from, until, exp


def test_a_week_day_schedule_goes_to_the_lock(hub: Hub) -> None:
    with hub.store.transaction() as tx:
        _, cmds = book.add_credential(tx, hub.pipeline.site, LOCK, "r-101", "pin", "4711", T0,
                                      "office", "week_day_schedule",
                                      {"days": ["mon", "wed", "sun"], "start": "08:00",
                                       "end": "18:30"})
    _, _, utype, days, start, end, frm, until, exp = user_set_of(hub, cmds)
    assert (utype, days, start, end, exp) == (1, 0b1000101, 480, 1110, 0)


def test_an_expiring_user_and_a_window(hub: Hub) -> None:
    with hub.store.transaction() as tx:
        _, cmds = book.add_credential(tx, hub.pipeline.site, LOCK, "r-101", "pin", "4711", T0,
                                      "office", "expiring", {"expire_min": 90})
    assert user_set_of(hub, cmds)[2] == 4 and user_set_of(hub, cmds)[8] == 90
    with hub.store.transaction() as tx:
        _, cmds = book.add_credential(tx, hub.pipeline.site, LOCK, "r-101", "card",
                                      bytes.fromhex("04a1b2c3"), T0, "office", "year_day_window",
                                      {"from": "2026-12-01", "until": "2026-12-31"})
    f = user_set_of(hub, cmds)
    assert f[2] == 2 and f[7] - f[6] == 31 * 86400  # to the end of the last day


@pytest.mark.parametrize("user_type, schedule, field", [
    ("week_day_schedule", {"days": []}, "schedule.days"),
    ("week_day_schedule", {"days": ["mon"], "start": "18:00", "end": "08:00"}, "schedule.start"),
    ("week_day_schedule", {"days": ["mon"], "start": "8"}, "schedule.start"),
    ("expiring", {}, "schedule.expire_min"),
    ("unrestricted", {"days": ["mon"]}, "schedule.days"),
    ("year_day_window", {}, "year_day_window"),
    ("year_day_window", {"from": "2026-12-31", "until": "2026-12-01"}, "schedule.until"),
    ("unrestricted", {"from": "someday"}, "schedule.from"),
    ("unrestricted", {"colour": "red"}, "schedule.colour"),
    ("disabled", None, "user_type"),
])
def test_a_bad_schedule_is_refused_and_queues_nothing(hub: Hub, user_type, schedule,
                                                      field) -> None:
    with pytest.raises(LockError, match=field.replace(".", r"\.")):
        with hub.store.transaction() as tx:
            book.add_credential(tx, hub.pipeline.site, LOCK, "r-101", "pin", "4711", T0,
                                "office", user_type, schedule)
    assert book.commands(hub.store, LOCK) == [] and book.credentials(hub.store, LOCK) == []
