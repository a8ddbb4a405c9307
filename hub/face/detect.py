"""BlazeFace face detection: letterbox, SSD anchor decoding, weighted NMS.

Written against the MediaPipe face detection model outputs: ``regressors``
[1, N, 16] (box centre offset, box size, then 6 keypoints as x, y pairs, all in
input pixels relative to the anchor centre) and ``classificators`` [1, N, 1]
(logits). Anchors have a fixed size of 1, so box sizes are not scaled by them.
Keypoint order is the model's: subject's right eye, left eye, nose tip, mouth
centre, right ear tragion, left ear tragion.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from hub.face.runtime import Runtime, TFLiteModel

KP_RIGHT_EYE, KP_LEFT_EYE, KP_NOSE, KP_MOUTH, KP_RIGHT_EAR, KP_LEFT_EAR = range(6)


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    input_size: int
    # (stride, anchors per cell) per feature map, in output order
    layers: tuple[tuple[int, int], ...]


SHORT_RANGE = DetectorSpec("short", 128, ((8, 2), (16, 6)))
FULL_RANGE = DetectorSpec("full", 192, ((4, 1),))
SPECS = {"short": SHORT_RANGE, "full": FULL_RANGE}


@dataclass(frozen=True)
class Detection:
    box: np.ndarray         # (4,) x0, y0, x1, y1 in image pixels
    keypoints: np.ndarray   # (6, 2) x, y in image pixels
    score: float

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])


def make_anchors(spec: DetectorSpec) -> np.ndarray:
    """Anchor centres (N, 2) in normalised [0, 1] input coordinates."""
    parts = []
    for stride, per_cell in spec.layers:
        cells = spec.input_size // stride
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        cy, cx = np.meshgrid(grid, grid, indexing="ij")
        centres = np.stack([cx.ravel(), cy.ravel()], axis=1)
        parts.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(parts, axis=0)


def letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """Pad to a centred square and resize; returns (tensor, scale, pad_x, pad_y).

    Image coordinates = normalised * scale - pad.
    """
    h, w = rgb.shape[:2]
    side = max(h, w)
    pad_x, pad_y = (side - w) / 2.0, (side - h) / 2.0
    square = cv2.copyMakeBorder(rgb, int(pad_y), side - h - int(pad_y), int(pad_x), side - w - int(pad_x),
                                cv2.BORDER_CONSTANT, value=(0, 0, 0))
    small = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
    tensor = (small.astype(np.float32) / 127.5 - 1.0)[None]
    return tensor, float(side), float(int(pad_x)), float(int(pad_y))


def decode(regressors: np.ndarray, logits: np.ndarray, anchors: np.ndarray, size: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode raw outputs to (boxes (N,4) normalised x0y0x1y1, keypoints (N,6,2), scores (N,))."""
    reg = regressors.reshape(-1, 16) / float(size)
    centre = reg[:, 0:2] + anchors
    half = reg[:, 2:4] / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = reg[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1), -80.0, 80.0)))
    return boxes, keypoints, scores


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float
                 ) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe-style blending NMS: overlapping candidates are averaged by score."""
    order = np.argsort(-scores)
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    remaining = np.ones(len(scores), dtype=bool)
    result = []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        overlap = remaining & (iou(boxes[i], boxes) >= iou_threshold)
        weights = scores[overlap][:, None]
        total = float(weights.sum())
        box = (boxes[overlap] * weights).sum(axis=0) / total
        kps = (keypoints[overlap] * weights[:, :, None]).sum(axis=0) / total
        result.append((box, kps, float(scores[i])))
        remaining &= ~overlap
    return result


class FaceDetector:
    """BlazeFace over an RGB uint8 image; returns detections sorted by score."""

    def __init__(self, runtime: Runtime, model_path, spec: DetectorSpec = SHORT_RANGE,
                 score_threshold: float = 0.5, iou_threshold: float = 0.3, num_threads: int = 2):
        self.spec = spec
        self.model = TFLiteModel(runtime, model_path, (1, spec.input_size, spec.input_size, 3),
                                 num_threads, role=f"BlazeFace {spec.name}-range")
        self.anchors = make_anchors(spec)
        shapes = {o["name"]: tuple(o["shape"]) for o in self.model.outputs}
        if sorted(s[-1] for s in shapes.values()) != [1, 16] or any(s[1] != len(self.anchors) for s in shapes.values()):
            from hub.face.errors import ModelError
            raise ModelError(f"{self.model.path}: outputs {shapes} do not match {len(self.anchors)} anchors")
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold

    @property
    def version(self) -> str:
        return self.model.version

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        tensor, side, pad_x, pad_y = letterbox(rgb, self.spec.input_size)
        outputs = self.model.run(tensor)
        regressors = next(o for o in outputs if o.shape[-1] == 16)
        logits = next(o for o in outputs if o.shape[-1] == 1)
        boxes, keypoints, scores = decode(regressors, logits, self.anchors, self.spec.input_size)
        keep = scores >= self.score_threshold
        found = weighted_nms(boxes[keep], keypoints[keep], scores[keep], self.iou_threshold)
        offset = np.array([pad_x, pad_y], dtype=np.float32)
        return [
            Detection(box * side - np.tile(offset, 2), kps * side - offset, score)
            for box, kps, score in found
        ]
