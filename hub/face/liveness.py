"""Liveness evidence: the FaceAntiSpoofing model and a multi-frame motion check.

What this stops and what it does not is stated, with measured figures, in
docs/face_access.md. In short: the motion check refuses a face whose landmark
geometry does not change at all over the agreement window (a still picture
held still, a frozen or injected still frame); the anti-spoofing model adds a
per-frame score. Neither stops a video replayed on a screen, a photo that is
bent or tilted in front of the camera, or a mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hub.face.detect import KP_LEFT_EYE, KP_RIGHT_EYE, Detection
from hub.face.runtime import Runtime, TFLiteModel


def normalise_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """Remove translation, rotation and scale: eyes on the x axis, one unit apart."""
    kps = np.asarray(keypoints, dtype=np.float64)
    r_eye, l_eye = kps[KP_RIGHT_EYE], kps[KP_LEFT_EYE]
    axis = l_eye - r_eye
    dist = float(np.hypot(*axis)) or 1.0
    c, s = axis / dist
    rot = np.array([[c, s], [-s, c]])
    return ((kps - (r_eye + l_eye) / 2.0) @ rot.T) / dist


def motion_score(history: list[np.ndarray]) -> float:
    """Largest mean landmark displacement (in eye distances) between any frame and the first."""
    if len(history) < 2:
        return 0.0
    base = history[0]
    return float(max(np.abs(h - base).mean() for h in history[1:]))


@dataclass(frozen=True)
class SpoofResult:
    score: float   # higher = more likely a presentation attack
    live: bool


class AntiSpoof:
    """FaceAntiSpoofing.tflite (256x256 RGB in [0,1]; outputs class scores and a leaf-node mask).

    The spoof score is sum(|class score| * leaf mask); below ``threshold`` is live.
    """

    def __init__(self, runtime: Runtime, model_path, threshold: float = 0.2, num_threads: int = 2):
        self.model = TFLiteModel(runtime, model_path, (1, 256, 256, 3), num_threads, role="anti-spoofing")
        self.threshold = threshold
        names = [o["name"] for o in self.model.outputs]
        # Output order in the file: class scores first, then the leaf-node mask.
        self._order = np.argsort(names)

    @property
    def version(self) -> str:
        return self.model.version

    def crop(self, rgb: np.ndarray, det: Detection) -> np.ndarray:
        h, w = rgb.shape[:2]
        x0, y0, x1, y1 = (int(round(v)) for v in det.box)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        face = rgb[y0:y1, x0:x1]
        if face.size == 0:
            face = rgb
        return cv2.resize(face, (256, 256), interpolation=cv2.INTER_LINEAR)

    def score(self, rgb: np.ndarray, det: Detection) -> SpoofResult:
        tensor = (self.crop(rgb, det).astype(np.float32) / 255.0)[None]
        outputs = self.model.run(tensor)
        clss, mask = outputs[self._order[0]].reshape(-1), outputs[self._order[1]].reshape(-1)
        value = float((np.abs(clss) * mask).sum())
        return SpoofResult(value, value < self.threshold)
