"""Quality gates on a detected face: size, sharpness, pose from keypoints.

Pure functions. A failed gate returns a stable reason code that is recorded
with the skipped frame (or returned to the operator on enrollment).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hub.face.detect import KP_LEFT_EYE, KP_MOUTH, KP_NOSE, KP_RIGHT_EYE, Detection


@dataclass(frozen=True)
class QualityConfig:
    min_face_px: float = 60.0      # detector box width in image pixels
    min_sharpness: float = 40.0    # variance of the Laplacian on the aligned grey crop
    max_yaw: float = 0.35          # nose offset from the eye midline / eye distance
    max_roll_deg: float = 25.0
    min_pitch: float = 0.35        # (nose - eyes) / (mouth - eyes) vertical ratio range
    max_pitch: float = 0.85
    min_score: float = 0.6


@dataclass(frozen=True)
class Quality:
    ok: bool
    reason: str | None
    metrics: dict


def pose(keypoints: np.ndarray) -> dict:
    """Yaw, roll and pitch proxies from eyes, nose and mouth (image coordinates)."""
    r_eye, l_eye = keypoints[KP_RIGHT_EYE], keypoints[KP_LEFT_EYE]
    nose, mouth = keypoints[KP_NOSE], keypoints[KP_MOUTH]
    axis = l_eye - r_eye
    eye_dist = float(np.hypot(*axis))
    if eye_dist < 1e-6:
        return {"yaw": 1.0, "roll_deg": 0.0, "pitch": 0.0, "eye_dist": 0.0}
    ux = axis / eye_dist
    uy = np.array([-ux[1], ux[0]])
    mid = (r_eye + l_eye) / 2.0
    yaw = float(np.dot(nose - mid, ux)) / eye_dist
    mouth_depth = float(np.dot(mouth - mid, uy))
    pitch = float(np.dot(nose - mid, uy)) / mouth_depth if abs(mouth_depth) > 1e-6 else 0.0
    roll = float(np.degrees(np.arctan2(axis[1], axis[0])))
    return {"yaw": yaw, "roll_deg": roll, "pitch": pitch, "eye_dist": eye_dist}


def sharpness(aligned_rgb: np.ndarray) -> float:
    grey = cv2.cvtColor(aligned_rgb, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def assess(det: Detection, aligned_rgb: np.ndarray, cfg: QualityConfig) -> Quality:
    metrics = {"face_px": round(det.width, 1), "score": round(det.score, 3),
               "sharpness": round(sharpness(aligned_rgb), 1)}
    metrics.update({k: round(v, 3) for k, v in pose(det.keypoints).items()})
    checks = (
        ("low_detection_score", det.score < cfg.min_score),
        ("face_too_small", det.width < cfg.min_face_px),
        ("pose_roll", abs(metrics["roll_deg"]) > cfg.max_roll_deg),
        ("pose_yaw", abs(metrics["yaw"]) > cfg.max_yaw),
        ("pose_pitch", not cfg.min_pitch <= metrics["pitch"] <= cfg.max_pitch),
        ("blurry", metrics["sharpness"] < cfg.min_sharpness),
    )
    for reason, failed in checks:
        if failed:
            return Quality(False, reason, metrics)
    return Quality(True, None, metrics)
