"""Inactivity quiet hours over a real Store and Pipeline: time inside the
site-local quiet hours does not count towards the silence, in the site's time
zone (DST followed), per flat, across a hub restart mid-timer; malformed
settings are configuration errors that name the line."""

from __future__ import annotations

import datetime
import zoneinfo
from pathlib import Path

import pytest

from hub import ConfigError
from hub.rules import inactivity
from tests.unit.ruleskit import H, T0, Hub, site

# T0 = 2026-11-18 11:06:40 UTC (19:06:40 in Shanghai); inactivity after 12 h


def inact(h: Hub, now: float) -> list[dict]:
    return [a for a in h.evaluate(now) if a["type"] == "inactivity"]


def make(tmp_path: Path, quiet: str, tz: str = "UTC", where: str = "site") -> Hub:
    setting = "{inactivity: {quiet_hours: \"%s\"}}" % quiet
    if where == "site":
        return Hub(tmp_path / "hub.db", rules="rules: " + setting, timezone=tz)
    return Hub(tmp_path / "hub.db", flat_rules=setting, timezone=tz)


@pytest.mark.parametrize(("quiet", "tz", "start", "expect"), [
    ("", "UTC", T0, T0 + 12 * H),
    ("22:00-06:00", "UTC", T0, T0 + 20 * H),       # one night skipped
    ("12:00-14:00", "UTC", T0, T0 + 14 * H),       # noon quiet, crossed once
    ("12:00-14:00", "Asia/Shanghai", T0, T0 + 12 * H),  # 19:06 local: no noon before 07:06
    ("22:00-06:00", "UTC", T0 + 12 * H - 400, T0 + 12 * H - 400 + 7 * H + 12 * H),  # 23:00, quiet until 06:00
], ids=["none", "night", "noon_utc", "noon_shanghai", "starts_in_quiet"])
def test_deadline(tmp_path: Path, quiet: str, tz: str, start: float, expect: float) -> None:
    h = make(tmp_path, quiet, tz)
    try:
        h.door("door-101", False, start)
        assert h.deadline("inactivity") == expect
        assert inact(h, expect - 1) == []
        assert [a["flat"] for a in inact(h, expect)] == ["b1-101"]
    finally:
        h.close()


def test_restart_in_the_middle_of_the_timer(tmp_path: Path) -> None:
    h = make(tmp_path, "22:00-06:00")
    try:
        h.door("door-101", True, T0)
        h.restart()
        assert inact(h, T0 + 13 * H) == []   # 12 h passed, but 2 of them quiet
        h.restart()
        assert inact(h, T0 + 20 * H - 1) == []
        h.restart()
        assert len(inact(h, T0 + 20 * H)) == 1
    finally:
        h.close()


def test_quiet_hours_only_for_the_flat_that_has_them(tmp_path: Path) -> None:
    h = make(tmp_path, "22:00-06:00", where="flat")  # b1-102: nobody lives alone there
    try:
        h.door("door-101", False, T0)
        h.door("door-201", False, T0)
        assert sorted(a["flat"] for a in inact(h, T0 + 12 * H)) == ["b1-101", "b2-201"]
    finally:
        h.close()


def test_quiet_intervals_follow_dst() -> None:
    tz = zoneinfo.ZoneInfo("America/New_York")  # DST ends 2026-11-01 02:00 local
    start = datetime.datetime(2026, 10, 31, 12, 0, tzinfo=tz).timestamp()
    gen = inactivity.quiet_intervals(start, ((22, 0), (6, 0)), tz)
    lengths = [(e - s) / H for s, e in (next(gen), next(gen))]
    assert lengths == [9.0, 8.0]


@pytest.mark.parametrize("bad", ["22:00", "25:00-06:00", "22:00-06:60", "06:00-06:00", "night"])
def test_malformed_quiet_hours_name_the_line(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"site\.yaml:2: key 'inactivity\.quiet_hours'"):
        site(rules="rules: {inactivity: {quiet_hours: \"%s\"}}" % bad)
