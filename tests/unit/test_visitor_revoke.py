"""Visitor codes on the hub's side of a lock: revocation through the lock book
(requested → sent → confirmed, queued again while the lock is away), the
VISITOR_REVOKE body, the ACCESS a code causes decoded with its identity and
range-checked, and a visitor code's opening not judged as an unregistered
occupant. A real Store and Pipeline with real signed lock frames."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterator

import pytest

from hub.locks import LockError, book, wire
from hub.verify import frames_lock as fl
from hub.visitors import passcode
from tests.unit.ruleskit import T0, Hub, key, mp_time

LOCK = "lock-101"
H = 3600


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = Hub(tmp_path / "hub.db")
    yield h
    h.close()


def make(one_time: bool = False, start: float = T0 + H, hours: int = 2, lock: str = LOCK):
    return passcode.make(key(lock), start, start + hours * H, one_time, T0)


def revoke(h: Hub, digits: str, at: float = T0 + 10, by: str = "visitors:v-1"):
    with h.store.transaction() as tx:
        return book.revoke_visitor_code(tx, h.pipeline.site, LOCK, digits, at, by)


def answer(h: Hub, cmd: dict, outcome: str = "ok", at: float = T0 + 20) -> str:
    body = fl.cmd_result_body(cmd["counter"], "visitor_revoke", outcome, 0, cmd["credential"])
    return h.lock_frame(LOCK, fl.T_CMD_RESULT, body, at, mp_time(at))


def test_revocation_is_requested_then_confirmed(hub: Hub) -> None:
    code = make()
    rec, cmd = revoke(hub, code.digits)
    ident = "v:%d:%d" % (code.start_slot, code.check)
    assert rec["state"] == "requested" and rec["code"] == ident
    assert (rec["valid_from"], rec["valid_until"]) == (code.valid_from, code.valid_until)
    assert cmd["command"] == "visitor_revoke" and cmd["credential"] == ident
    assert cmd["state"] == "queued" and cmd["requested_by"] == "visitors:v-1"
    (row,) = [q for q in book.queued(hub.store) if q[1] == cmd["counter"]]
    body = bytes(row[3])
    assert body == struct.pack(">HIBBH", 600, code.start_slot, code.duration_index, 0,
                               code.check)
    with hub.store.transaction() as tx:
        book.mark_sent(tx, LOCK, cmd["counter"], T0 + 11)
    assert book.visitor_revocation(hub.store, LOCK, ident)["state"] == "requested"
    assert answer(hub, cmd) == "accepted"
    assert book.visitor_revocation(hub.store, LOCK, ident)["state"] == "confirmed"
    assert book.command(hub.store, LOCK, cmd["counter"])["state"] == "ok"


@pytest.mark.parametrize("outcome", ["expired", "no_clock"])
def test_a_lock_that_was_away_gets_it_again(hub: Hub, outcome: str) -> None:
    code = make(one_time=True)
    rec, cmd = revoke(hub, code.digits)
    with hub.store.transaction() as tx:
        book.mark_sent(tx, LOCK, cmd["counter"], T0 + 11)
    answer(hub, cmd, outcome, at=T0 + 2 * H)
    again = book.commands(hub.store, LOCK, open_only=True)
    assert [c["command"] for c in again] == ["visitor_revoke"]
    assert again[0]["counter"] > cmd["counter"] and again[0]["credential"] == rec["code"]
    assert book.visitor_revocation(hub.store, LOCK, rec["code"])["state"] == "requested"
    answer(hub, again[0], "ok", at=T0 + 2 * H + 5)
    assert book.visitor_revocation(hub.store, LOCK, rec["code"])["state"] == "confirmed"


def test_not_sent_in_time_is_queued_again_until_the_window_ends(hub: Hub) -> None:
    code = make(hours=1)
    rec, cmd = revoke(hub, code.digits)
    with hub.store.transaction() as tx:
        book.mark_not_sent(tx, LOCK, cmd["counter"], T0 + 700)
    (again,) = book.commands(hub.store, LOCK, open_only=True)
    with hub.store.transaction() as tx:
        book.mark_not_sent(tx, LOCK, again["counter"], code.valid_until + 1)
    assert book.commands(hub.store, LOCK, open_only=True) == []
    rev = book.visitor_revocation(hub.store, LOCK, rec["code"])
    assert rev["state"] == "failed" and rev["result"] == "not_sent"


def test_full_is_a_failure_the_operator_sees(hub: Hub) -> None:
    rec, cmd = revoke(hub, make().digits)
    answer(hub, cmd, "full")
    rev = book.visitor_revocation(hub.store, LOCK, rec["code"])
    assert rev["state"] == "failed" and rev["result"] == "full"
    assert book.commands(hub.store, LOCK, open_only=True) == []


@pytest.mark.parametrize("digits, why", [
    ("123", "ten digits"), ("12345678901", "ten digits"), ("12345abcde", "ten digits"),
    ("9999999999", "not a visitor code"), (None, "ten digits")])
def test_bad_digits_name_the_field_and_queue_nothing(hub: Hub, digits, why: str) -> None:
    with pytest.raises(LockError, match="digits: .*%s" % why):
        revoke(hub, digits)
    assert book.commands(hub.store, LOCK) == []


def test_another_locks_code_or_an_ended_one_is_refused(hub: Hub) -> None:
    with pytest.raises(LockError, match="digits: not a visitor code of this lock"):
        revoke(hub, make(lock="lock-gate").digits)
    code = make(start=T0 + H, hours=1)
    with pytest.raises(LockError, match="digits: this visitor code's window has ended"):
        revoke(hub, code.digits, at=code.valid_until)
    assert book.commands(hub.store, LOCK) == []


def test_a_code_for_a_later_window_resolves_to_it(hub: Hub) -> None:
    code = passcode.make(key(LOCK), T0 + 20 * 24 * H, T0 + 21 * 24 * H, False, T0)
    rec, _ = revoke(hub, code.digits)
    assert rec["start_slot"] == code.start_slot and rec["valid_until"] == code.valid_until


def test_revoke_body_range_checks() -> None:
    assert len(wire.visitor_revoke(1, 31, True, 54252)) == wire.BODY_LEN[wire.T_VISITOR_REVOKE]
    for args in ((-1, 0, 0, 0), (2 ** 32, 0, 0, 0), (1, 32, 0, 0), (1, 0, 2, 0),
                 (1, 0, 0, 54253)):
        with pytest.raises(LockError):
            wire.visitor_revoke(*args)


def _access(method, outcome, reason, cred, user=0, flags=0):
    return struct.pack(">BBBBHI", method, outcome, reason, flags, user, 1) + \
        fl.credential_field(cred)


def test_visitor_access_names_the_pass() -> None:
    v = fl.decode_access(_access(9, 1, 0, "v:944352:54252"))
    assert v["method"] == "visitor" and v["credential"] == "v:944352:54252"
    assert v["visitor_code"] == {"start_slot": 944352, "check": 54252,
                                 "valid_from": 944352 * 900 + passcode.MP_EPOCH_OFFSET}
    denied = fl.decode_access(_access(9, 2, 1, None))
    assert denied["visitor_code"] is None and denied["reason"] == "unknown_credential"
    for reason, name in ((10, "revoked"), (11, "no_clock"), (12, "list_full"), (13, "list_lost"),
                         (8, "used"),
                         (3, "expired"), (4, "not_yet_valid")):
        assert fl.decode_access(_access(9, 2, reason, "v:1:2"))["reason"] == name


@pytest.mark.parametrize("body", [
    _access(9, 1, 0, None),                 # an opening names its code
    _access(9, 1, 0, "c-17"),               # not an identity
    _access(9, 2, 8, "v:01:2"),             # leading zero
    _access(9, 2, 8, "v:1:54253"),          # check out of range
    _access(9, 2, 8, "v:4772186:1"),        # beyond a u32 device time
    _access(9, 2, 8, "v:1:2:3"),
    _access(9, 1, 0, "v:1:2", user=3),      # a code has no user
    _access(2, 2, 10, None),                # revoked is a visitor code's reason
    _access(10, 2, 1, None),                # no method 10
    _access(9, 2, 14, None),                # no reason 14
], ids=["open-no-id", "not-ident", "zero", "check", "slot", "parts", "user", "reason", "method",
        "reason-14"])
def test_visitor_access_out_of_range_is_refused(body: bytes) -> None:
    assert fl.decode_access(body) is None


def test_cmd_result_of_a_revocation_names_its_code() -> None:
    good = fl.cmd_result_body(5, "visitor_revoke", "full", 0, "v:10:20")
    assert fl.decode_cmd_result(good)["command"] == "visitor_revoke"
    assert fl.decode_cmd_result(fl.cmd_result_body(5, "visitor_revoke", "ok", 0, "c-1")) is None


def test_a_visitor_code_opening_is_not_an_unregistered_occupant(hub: Hub) -> None:
    assert hub.access(LOCK, T0 + 1, "v:944352:17", method="visitor") == "accepted"
    assert hub.alarms("unregistered_occupant") == []
    hub.access(LOCK, T0 + 2, "c-404", method="pin")
    assert len(hub.alarms("unregistered_occupant")) == 1
