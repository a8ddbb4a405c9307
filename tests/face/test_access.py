"""Pure access decisions: agreement, watch list, rate limits, schedules, liveness."""

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from hub.face.access import AccessConfig, AccessState, FaceObservation, PersonPolicy, decide, in_schedule

T0 = 1_790_000_000.0
BOX = (100.0, 100.0, 200.0, 200.0)
CFG = AccessConfig()
DIRECTORY = {"r1": PersonPolicy(("*",)), "r2": PersonPolicy(("back-door",))}
BASE_KPS = np.array([[-0.5, 0], [0.5, 0], [0, 0.6], [0, 1.0], [-1, 0.2], [1, 0.2]])


def face(resident=None, rscore=-1.0, watch=None, wscore=-1.0, box=BOX, jitter=0.0, ok=True, reason=None):
    kps = BASE_KPS + jitter
    return FaceObservation(box, ok, reason, resident, rscore, watch, wscore, kps)


def run(frames, cfg=CFG, directory=DIRECTORY, dt_s=0.2, state=None, t0=T0):
    state = state or AccessState()
    out = []
    for n, faces in enumerate(frames):
        state, decisions = decide(state, "main", faces, directory, t0 + n * dt_s, cfg)
        out.extend(decisions)
    return state, out


def kinds(decisions):
    return [d.kind for d in decisions if d.kind != "skipped"]


def test_unlock_needs_agreeing_consecutive_frames():
    _, two = run([[face("r1", 0.7, jitter=0.0)], [face("r1", 0.7, jitter=0.03)]])
    assert kinds(two) == []
    _, three = run([[face("r1", 0.7, jitter=j)] for j in (0.0, 0.03, 0.0)])
    assert kinds(three) == ["unlock"] and three[0].person_id == "r1" and three[0].score == pytest.approx(0.7)


def test_a_disagreeing_frame_restarts_the_count():
    frames = [[face("r1", 0.7)], [face("r1", 0.7, jitter=0.03)], [face(None, 0.1)], [face("r1", 0.7)],
              [face("r1", 0.7, jitter=0.03)]]
    assert kinds(run(frames)[1]) == []


def test_one_unlock_per_track_and_cooldown_per_resident():
    frames = [[face("r1", 0.8, jitter=0.03 * (n % 2))] for n in range(12)]
    assert kinds(run(frames)[1]) == ["unlock"]


def test_below_threshold_is_unknown_and_visitor_attempt_is_rate_limited_per_track():
    frames = [[face("r1", CFG.match_threshold - 0.01)] for _ in range(20)]
    _, out = run(frames)
    assert kinds(out) == ["visitor_attempt"]
    _, out = run(frames * 20, dt_s=1.0)   # 400 s on one track -> one attempt per 60 s
    assert kinds(out).count("visitor_attempt") == 7


def test_watch_list_wins_and_never_unlocks():
    frames = [[face("r1", 0.6, "w1", 0.65, jitter=0.03 * (n % 2))] for n in range(6)]
    _, out = run(frames)
    assert kinds(out) == ["watchlist_alarm"] and out[-1].person_id == "w1"


def test_resident_scoring_above_watch_list_is_still_a_resident():
    frames = [[face("r1", 0.8, "w1", 0.5, jitter=0.03 * (n % 2))] for n in range(3)]
    assert kinds(run(frames)[1]) == ["unlock"]


def test_entrance_not_allowed_and_unknown_person_are_denied():
    frames = [[face("r2", 0.8, jitter=0.03 * (n % 2))] for n in range(3)]
    _, out = run(frames)
    assert kinds(out) == ["denied"] and out[0].reason == "entrance_not_allowed"
    frames = [[face("gone", 0.8, jitter=0.03 * (n % 2))] for n in range(3)]
    assert run(frames)[1][0].reason == "not_enrolled"


def test_a_still_face_is_refused_for_lack_of_motion_then_accepted_when_it_moves():
    frames = [[face("r1", 0.8)] for _ in range(5)] + [[face("r1", 0.8, jitter=j)] for j in (0.03, 0.0, 0.03)]
    _, out = run(frames)
    assert kinds(out) == ["denied", "unlock"] and out[0].reason == "liveness_no_motion"
    no_check = AccessConfig(require_motion=False)
    assert kinds(run([[face("r1", 0.8)] for _ in range(3)], cfg=no_check)[1]) == ["unlock"]


def test_antispoof_requirement():
    cfg = AccessConfig(require_antispoof=True)
    frames = [[FaceObservation(BOX, True, None, "r1", 0.8, None, -1, BASE_KPS + 0.03 * (n % 2), 0.5, False)]
              for n in range(3)]
    _, out = run(frames, cfg=cfg)
    assert out[0].reason == "liveness_antispoof"


def test_skipped_frames_carry_the_reason_and_do_not_count():
    frames = [[face("r1", 0.8)], [face(ok=False, reason="blurry")], [face("r1", 0.8, jitter=0.03)]]
    _, out = run(frames)
    assert [d.reason for d in out if d.kind == "skipped"] == ["blurry"] and kinds(out) == []


def test_two_faces_get_two_tracks():
    other = (400.0, 100.0, 500.0, 200.0)
    frames = [[face("r1", 0.8, jitter=0.03 * (n % 2)), face(None, 0.1, box=other)] for n in range(3)]
    _, out = run(frames)
    assert sorted(kinds(out)) == ["unlock", "visitor_attempt"]
    assert len({d.track_id for d in out}) == 2


def test_tracks_expire_after_the_gap():
    state, _ = run([[face(None, 0.1)] for _ in range(3)])
    assert list(state.tracks) == ["t1"]
    state, _ = decide(state, "main", [face(None, 0.1)], DIRECTORY, T0 + 100, CFG)
    assert list(state.tracks) == ["t2"]


def _epoch(tz, y, mo, d, h, mi):
    return dt.datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(tz)).timestamp()


@pytest.mark.parametrize("when,expected", [
    ((2026, 11, 23, 8, 0), True),      # Monday 08:00
    ((2026, 11, 23, 6, 59), False),
    ((2026, 11, 29, 8, 0), False),     # Sunday
    ((2026, 11, 24, 23, 30), True),    # Tuesday night window across midnight
    ((2026, 11, 25, 1, 30), True),     # ... continues into Wednesday
    ((2026, 11, 25, 2, 30), False),
])
def test_schedule_windows(when, expected):
    schedule = [{"days": [0, 1, 2, 3, 4], "start": "07:00", "end": "19:00"},
                {"days": [1], "start": "23:00", "end": "02:00"}]
    assert in_schedule(schedule, _epoch("Asia/Shanghai", *when), "Asia/Shanghai") is expected


def test_outside_schedule_is_denied():
    directory = {"r1": PersonPolicy(("*",), ({"days": [6], "start": "00:00", "end": "01:00"},))}
    frames = [[face("r1", 0.8, jitter=0.03 * (n % 2))] for n in range(3)]
    _, out = run(frames, directory=directory, t0=_epoch("UTC", 2026, 11, 23, 12, 0))
    assert out[0].reason == "outside_schedule"
