"""Access decisions from per-frame face observations. Pure: no I/O, no clock reads.

``decide(state, entrance, faces, directory, now, cfg) -> (state, decisions)``.
A decision needs ``agree_frames`` consecutive frames of the same track that
agree on the same label (a resident, a watch-list entry, or unknown). A
watch-list label always wins over a resident label of lower score, and a
watch-list decision never produces an unlock. Visitor attempts are rate-limited
per track; unlocks have a cool-down per (resident, entrance).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Mapping
from zoneinfo import ZoneInfo

import numpy as np

from hub.face.liveness import motion_score


@dataclass(frozen=True)
class AccessConfig:
    match_threshold: float = 0.40
    watch_threshold: float = 0.40
    agree_frames: int = 3
    track_gap_s: float = 2.0
    track_iou: float = 0.3
    visitor_interval_s: float = 60.0
    unlock_cooldown_s: float = 10.0
    unlock_duration_s: int = 5
    require_motion: bool = True
    min_motion: float = 0.01
    require_antispoof: bool = False
    timezone: str = "UTC"


@dataclass(frozen=True)
class FaceObservation:
    """One face in one frame, as measured by the pipeline."""
    box: tuple[float, float, float, float]
    quality_ok: bool
    quality_reason: str | None
    resident_id: str | None = None
    resident_score: float = -1.0
    watch_id: str | None = None
    watch_score: float = -1.0
    keypoints_norm: np.ndarray | None = None
    spoof_score: float | None = None
    spoof_live: bool | None = None
    index: int = 0   # position in the frame's face list, for snapshots


@dataclass(frozen=True)
class PersonPolicy:
    entrances: tuple[str, ...] = ("*",)
    schedule: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Track:
    id: str
    box: tuple[float, float, float, float]
    last_seen: float
    label: str | None = None
    streak: int = 0
    scores: tuple[float, ...] = ()
    history: tuple = ()            # normalised keypoints of the current streak
    spoof: tuple = ()              # per-frame live flags of the current streak
    decided: frozenset = frozenset()
    last_visitor: float | None = None


@dataclass(frozen=True)
class AccessState:
    tracks: Mapping[str, Track] = field(default_factory=dict)
    last_unlock: Mapping[tuple[str, str], float] = field(default_factory=dict)
    next_track: int = 1


@dataclass(frozen=True)
class Decision:
    kind: str            # unlock | visitor_attempt | watchlist_alarm | denied | skipped
    entrance: str
    track_id: str
    person_id: str | None
    score: float
    reason: str | None = None
    face_index: int = 0
    detail: dict = field(default_factory=dict)


def in_schedule(schedule, now: float, tz: str) -> bool:
    """Empty schedule = always. Windows: {"days": [0..6, Mon=0], "start": "HH:MM", "end": "HH:MM"},
    or an absolute one, {"from": epoch s, "until": epoch s} (a visitor's pass: from <= now < until)."""
    if not schedule:
        return True
    local = dt.datetime.fromtimestamp(now, ZoneInfo(tz))
    minute = local.hour * 60 + local.minute
    for window in schedule:
        if "from" in window or "until" in window:
            if window.get("from", 0) <= now < window.get("until", 0):
                return True
            continue
        start = _minutes(window.get("start", "00:00"))
        end = _minutes(window.get("end", "24:00"))
        days = window.get("days", list(range(7)))
        if start <= end:
            if local.weekday() in days and start <= minute < end:
                return True
        elif (local.weekday() in days and minute >= start) or ((local.weekday() - 1) % 7 in days and minute < end):
            return True   # window across midnight
    return False


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def label_of(face: FaceObservation, cfg: AccessConfig) -> tuple[str, str | None, float]:
    """(label, person id, score) for one good-quality face."""
    if face.watch_id is not None and face.watch_score >= cfg.watch_threshold and face.watch_score >= face.resident_score:
        return f"watch:{face.watch_id}", face.watch_id, face.watch_score
    if face.resident_id is not None and face.resident_score >= cfg.match_threshold:
        return f"resident:{face.resident_id}", face.resident_id, face.resident_score
    return "unknown", None, max(face.resident_score, face.watch_score)


def _assign(tracks: dict, face: FaceObservation, label: str | None, now: float, cfg: AccessConfig, used: set):
    best, best_iou = None, cfg.track_iou
    for track in tracks.values():
        if track.id in used:
            continue
        overlap = _iou(track.box, face.box)
        if overlap >= best_iou:
            best, best_iou = track, overlap
    if best is None and label is not None and label != "unknown":
        # The same known person seen again within the gap continues the track.
        best = next((t for t in tracks.values() if t.id not in used and t.label == label), None)
    return best


def decide(state: AccessState, entrance: str, faces: list[FaceObservation],
           directory: Mapping[str, PersonPolicy], now: float, cfg: AccessConfig
           ) -> tuple[AccessState, list[Decision]]:
    tracks = {k: t for k, t in state.tracks.items() if now - t.last_seen <= cfg.track_gap_s}
    last_unlock = dict(state.last_unlock)
    next_track = state.next_track
    decisions: list[Decision] = []
    used: set[str] = set()
    for face in faces:
        label, person_id, score = label_of(face, cfg) if face.quality_ok else (None, None, -1.0)
        track = _assign(tracks, face, label, now, cfg, used)
        if track is None:
            track = Track(f"t{next_track}", face.box, now)
            next_track += 1
        used.add(track.id)
        track = replace(track, box=face.box, last_seen=now)
        if not face.quality_ok:
            tracks[track.id] = track
            decisions.append(Decision("skipped", entrance, track.id, None, -1.0, face.quality_reason, face.index))
            continue
        if label == track.label:
            track = replace(track, streak=track.streak + 1, scores=track.scores + (score,),
                            history=track.history + (face.keypoints_norm,), spoof=track.spoof + (face.spoof_live,))
        else:
            track = replace(track, label=label, streak=1, scores=(score,), history=(face.keypoints_norm,),
                            spoof=(face.spoof_live,))
        if track.streak >= cfg.agree_frames:
            track, decision = _on_agreement(track, entrance, person_id, face, directory, last_unlock, now, cfg)
            if decision is not None:
                decisions.append(decision)
        tracks[track.id] = track
    return AccessState(tracks, last_unlock, next_track), decisions


def _on_agreement(track: Track, entrance: str, person_id, face: FaceObservation, directory, last_unlock: dict,
                  now: float, cfg: AccessConfig) -> tuple[Track, Decision | None]:
    window = cfg.agree_frames
    score = float(min(track.scores[-window:]))
    detail = {"frames": window, "scores": [round(s, 4) for s in track.scores[-window:]]}
    if track.label == "unknown":
        if track.last_visitor is not None and now - track.last_visitor < cfg.visitor_interval_s:
            return track, None
        return (replace(track, last_visitor=now),
                Decision("visitor_attempt", entrance, track.id, None, score, None, face.index, detail))
    if track.label in track.decided:
        return track, None
    if track.label.startswith("watch:"):
        track = replace(track, decided=track.decided | {track.label})
        return track, Decision("watchlist_alarm", entrance, track.id, person_id, score, None, face.index, detail)
    reason = _refusal(track, person_id, entrance, directory, now, cfg, detail)
    if reason is not None and reason.startswith("liveness"):
        # Not final: the same track may show liveness in later frames. Report it once.
        key = f"denied:{track.label}"
        if key in track.decided:
            return track, None
        return (replace(track, decided=track.decided | {key}),
                Decision("denied", entrance, track.id, person_id, score, reason, face.index, detail))
    track = replace(track, decided=track.decided | {track.label})
    if reason is None and now - last_unlock.get((person_id, entrance), -1e18) < cfg.unlock_cooldown_s:
        return track, None   # the door was opened for this resident moments ago
    if reason is not None:
        return track, Decision("denied", entrance, track.id, person_id, score, reason, face.index, detail)
    last_unlock[(person_id, entrance)] = now
    return track, Decision("unlock", entrance, track.id, person_id, score, None, face.index, detail)


def _refusal(track: Track, person_id, entrance, directory, now, cfg: AccessConfig, detail: dict) -> str | None:
    policy = directory.get(person_id)
    if policy is None:
        return "not_enrolled"
    if "*" not in policy.entrances and entrance not in policy.entrances:
        return "entrance_not_allowed"
    if not in_schedule(policy.schedule, now, cfg.timezone):
        return "outside_schedule"
    history = [h for h in track.history[-cfg.agree_frames:] if h is not None]
    detail["motion"] = round(motion_score(history), 4)
    if cfg.require_motion and detail["motion"] < cfg.min_motion:
        return "liveness_no_motion"
    spoof = track.spoof[-cfg.agree_frames:]
    if cfg.require_antispoof and not all(flag is True for flag in spoof):
        return "liveness_antispoof"
    return None
