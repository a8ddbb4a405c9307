"""Smart-lock rules over a real Store and Pipeline with real signed lock frames:
unregistered_occupant fires in the event's own transaction for an unlock by a
credential no resident registered for that flat (on that local date) holds,
and not for a registered one, a denied attempt or a mechanical key; an
entrance lock accepts any resident of the site; forced_entry fires on a
FORCED frame; per-flat settings; the inside handle and a mechanical key are
never judged, a face or remote unlock is judged by its who-id (decoders:
tests/unit/test_frames_lock.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.unit.ruleskit import H, T0, Hub

VALIDITY = """
          - {id: r-101, name: Wang Lan, credentials: [card-0001]}
          - {id: r-105, name: Zhao Min, role: visitor, from: 2026-11-18, until: 2026-11-20,
             credentials: [card-0099]}
          - {id: r-106, name: Sun Yi, role: tenant, registered: false, credentials: [card-0077]}"""
DAY = 24 * H
# T0 is 2026-11-18 11:06:40 UTC = 19:06:40 in Shanghai


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = Hub(tmp_path / "hub.db", residents_101=VALIDITY)
    yield h
    h.close()


def occupants(h: Hub) -> list[tuple]:
    return [(a["flat"], a["entrance"], a["detail"]["credential"])
            for a in h.alarms("unregistered_occupant")]


def test_registered_credential_is_quiet(hub: Hub) -> None:
    assert hub.access("lock-101", T0, "card-0001") == "accepted"
    assert occupants(hub) == []


def test_unknown_credential_fires_in_the_same_transaction(hub: Hub) -> None:
    before = hub.store.outbox_depth()
    assert hub.access("lock-101", T0, "card-6666") == "accepted"
    assert occupants(hub) == [("b1-101", None, "card-6666")]
    doc = hub.alarms("unregistered_occupant")[0]
    assert doc["cause"] == "unregistered_occupant:b1-101:card-6666"
    assert doc["severity"] == "high" and doc["raised_at"].startswith("2026-11-18T11:06:40")
    # already queued for upstream when handle_mqtt returned
    assert hub.store.outbox_depth() == before + 1


def test_another_flats_credential_fires(hub: Hub) -> None:
    hub.access("lock-101", T0, "card-0002")  # Li Wei lives in b1-102
    assert occupants(hub) == [("b1-101", None, "card-0002")]


@pytest.mark.parametrize(("at", "fires"), [
    (T0 - DAY, True),             # 2026-11-17: before `from`
    (T0, False),                  # 2026-11-18
    (T0 + 2 * DAY, False),        # 2026-11-20: `until` is inclusive
    (T0 + 2 * DAY + 13 * H, True),  # 2026-11-21 00:06 UTC
], ids=["before_from", "first_day", "last_day", "after_until"])
def test_validity_dates(hub: Hub, at: float, fires: bool) -> None:
    hub.access("lock-101", at, "card-0099")
    assert occupants(hub) == ([("b1-101", None, "card-0099")] if fires else [])


@pytest.mark.parametrize(("tz", "fires"), [("UTC", False), ("Asia/Shanghai", True)])
def test_validity_dates_are_in_the_site_time_zone(tmp_path: Path, tz: str, fires: bool) -> None:
    # 2026-11-20 16:06:40 UTC is already 2026-11-21 in Shanghai: past `until`
    h = Hub(tmp_path / "hub.db", residents_101=VALIDITY, timezone=tz)
    try:
        h.access("lock-101", T0 + 2 * DAY + 5 * H, "card-0099")
        if not fires:
            assert occupants(h) == []
            return
        assert occupants(h) == [("b1-101", None, "card-0099")]
        assert h.alarms("unregistered_occupant")[0]["detail"]["local_date"] == "2026-11-21"
    finally:
        h.close()


def test_unregistered_resident_fires(hub: Hub) -> None:
    hub.access("lock-101", T0, "card-0077")
    assert occupants(hub) == [("b1-101", None, "card-0077")]


@pytest.mark.parametrize(("method", "outcome", "cred"), [
    ("card", "denied", "card-6666"),
    ("mechanical_key", "unlocked", None),
    ("pin", "denied", None),
])
def test_not_an_entry_by_an_unknown_credential(hub: Hub, method: str, outcome: str,
                                               cred: str | None) -> None:
    assert hub.access("lock-101", T0, cred, method=method, outcome=outcome) == "accepted"
    assert occupants(hub) == []


def test_unlock_without_credential_id_fires(hub: Hub) -> None:
    hub.access("lock-101", T0, None, method="phone_ble")
    assert occupants(hub) == [("b1-101", None, None)]


def test_entrance_lock_accepts_any_registered_resident(hub: Hub) -> None:
    hub.access("lock-gate", T0, "card-0002")
    hub.access("lock-gate", T0 + 1, "card-0001")
    assert occupants(hub) == []
    hub.access("lock-gate", T0 + 2, "card-0077")
    assert occupants(hub) == [(None, "gate-north", "card-0077")]


def test_one_alarm_per_flat_and_credential_while_open(hub: Hub) -> None:
    hub.access("lock-101", T0, "card-6666")
    hub.restart()
    hub.access("lock-101", T0 + 60, "card-6666")
    hub.access("lock-101", T0 + 61, "card-5555")
    assert sorted(c for _, _, c in occupants(hub)) == ["card-5555", "card-6666"]


@pytest.mark.parametrize("cause", ["opened_without_unlock", "bolt_forced"])
def test_forced_entry(hub: Hub, cause: str) -> None:
    assert hub.forced("lock-101", T0, cause) == "accepted"
    docs = hub.alarms("forced_entry")
    assert [(a["device"], a["flat"], a["severity"], a["detail"]["forced"]) for a in docs] == [
        ("lock-101", "b1-101", "high", cause)]
    # forced entry is queued ahead of ordinary alarms
    assert hub.store.outbox_head(1)[0][2].find('"forced_entry"') > 0


def test_access_does_not_raise_forced_entry_and_vice_versa(hub: Hub) -> None:
    hub.access("lock-101", T0, "card-0001")
    assert hub.alarms("forced_entry") == []
    hub.forced("lock-101", T0 + 1)
    assert occupants(hub) == []


def test_per_flat_settings(tmp_path: Path) -> None:
    h = Hub(tmp_path / "hub.db", rules="rules: {forced_entry: {enabled: false}}")
    try:
        h.forced("lock-101", T0)
        h.access("lock-101", T0 + 1, "card-6666")
        assert h.alarms("forced_entry") == []
        assert len(h.alarms("unregistered_occupant")) == 1
    finally:
        h.close()


@pytest.mark.parametrize("method", ["inside", "mechanical_key"])
def test_inside_and_mechanical_key_are_never_judged(hub: Hub, method: str) -> None:
    assert hub.access("lock-101", T0, None, method=method) == "accepted"
    assert occupants(hub) == []


@pytest.mark.parametrize(("method", "cred", "fires"), [
    ("remote", "card-0001", False), ("face", "face-9", True), ("remote", None, True)])
def test_face_and_remote_are_judged_by_their_who_id(hub: Hub, method: str, cred: str | None,
                                                    fires: bool) -> None:
    hub.access("lock-101", T0, cred, method=method)
    assert occupants(hub) == ([("b1-101", None, cred)] if fires else [])


def test_new_layout_fields_reach_the_alarm(hub: Hub) -> None:
    hub.access("lock-101", T0, "card-6666", user=7, seq=42)
    assert hub.alarms("unregistered_occupant")[0]["detail"]["method"] == "card"
