"""Landmark alignment: BlazeFace keypoints -> similarity transform -> 112x112 crop.

The target is the ArcFace 112x112 template. BlazeFace gives no mouth corners,
so the mouth centre is matched to the midpoint of the template's corners.
"""

from __future__ import annotations

import cv2
import numpy as np

from hub.face.detect import KP_LEFT_EYE, KP_MOUTH, KP_NOSE, KP_RIGHT_EYE

CROP_SIZE = 112
# Subject's right eye appears on the image's left, as template point 0 does.
TEMPLATE = np.array([
    [38.2946, 51.6963],                           # subject's right eye
    [73.5318, 51.5014],                           # subject's left eye
    [56.0252, 71.7366],                           # nose tip
    [(41.5493 + 70.7299) / 2, (92.3655 + 92.2041) / 2],  # mouth centre
], dtype=np.float64)
KEYPOINTS_USED = (KP_RIGHT_EYE, KP_LEFT_EYE, KP_NOSE, KP_MOUTH)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) src -> dst, 2x3."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    # Closed form for 2-D: minimise |a*R(s) - d| with a*R = [[p, -q], [q, p]].
    denom = float((s ** 2).sum())
    if denom < 1e-9:
        raise ValueError("degenerate keypoints")
    p = float((s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum()) / denom
    q = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / denom
    rot = np.array([[p, -q], [q, p]])
    return np.hstack([rot, (mu_d - rot @ mu_s)[:, None]])


def align_face(rgb: np.ndarray, keypoints: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Warp the face to the template; returns an RGB uint8 (size, size, 3) crop."""
    matrix = similarity_transform(keypoints[list(KEYPOINTS_USED)], TEMPLATE * (size / CROP_SIZE))
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
