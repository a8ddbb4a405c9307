"""One frame in, face observations out: detect, align, quality, embed, match, anti-spoof.

Synchronous and CPU-bound; the service calls it from a worker thread. Also the
enrollment path (one face per photo, quality gates enforced, refusals typed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hub.face.access import FaceObservation
from hub.face.align import align_face
from hub.face.detect import FULL_RANGE, SHORT_RANGE, Detection, FaceDetector
from hub.face.embed import Embedder
from hub.face.errors import EnrollmentRefused
from hub.face.gallery import Gallery
from hub.face.liveness import AntiSpoof, normalise_keypoints
from hub.face.models import blazeface_path
from hub.face.quality import QualityConfig, assess
from hub.face.runtime import Runtime, select_runtime


@dataclass(frozen=True)
class PipelineConfig:
    embedding_model: Path
    antispoof_model: Path | None = None
    detector_ranges: tuple[str, ...] = ("short",)   # tried in order until one finds a face
    runtime: tuple[str, ...] = ("litert", "tflite-runtime")
    num_threads: int = 2
    detection_threshold: float = 0.5
    # The anti-spoofing model costs ~30 ms; run it only on faces that could open the door.
    antispoof_min_score: float = 0.40
    quality: QualityConfig = field(default_factory=QualityConfig)
    enroll_quality: QualityConfig = field(default_factory=lambda: QualityConfig(min_face_px=80.0))


@dataclass
class FrameResult:
    faces: list[FaceObservation]
    detections: list[Detection]
    timings_ms: dict


class FacePipeline:
    def __init__(self, cfg: PipelineConfig, runtime: Runtime | None = None):
        self.cfg = cfg
        self.runtime = runtime or select_runtime(blazeface_path("short"), cfg.runtime)
        specs = {"short": SHORT_RANGE, "full": FULL_RANGE}
        self.detectors = [FaceDetector(self.runtime, blazeface_path(r), specs[r], cfg.detection_threshold,
                                       num_threads=cfg.num_threads) for r in cfg.detector_ranges]
        self.embedder = Embedder(self.runtime, cfg.embedding_model, cfg.num_threads)
        self.antispoof = (AntiSpoof(self.runtime, cfg.antispoof_model, num_threads=cfg.num_threads)
                          if cfg.antispoof_model else None)

    @property
    def versions(self) -> dict:
        out = {"runtime": f"{self.runtime.name} {self.runtime.version}",
               "detector": [d.version for d in self.detectors], "embedding": self.embedder.version}
        if self.antispoof:
            out["antispoof"] = self.antispoof.version
        return out

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        for detector in self.detectors:
            found = detector.detect(rgb)
            if found:
                return found
        return []

    def process(self, rgb: np.ndarray, gallery: Gallery) -> FrameResult:
        t0 = time.perf_counter()
        detections = self.detect(rgb)
        t1 = time.perf_counter()
        crops = [align_face(rgb, d.keypoints) for d in detections]
        qualities = [assess(d, c, self.cfg.quality) for d, c in zip(detections, crops)]
        t2 = time.perf_counter()
        good = [i for i, q in enumerate(qualities) if q.ok]
        vectors = self.embedder.embed(np.stack([crops[i] for i in good])) if good else np.zeros((0, 192), np.float32)
        t3 = time.perf_counter()
        matches = {i: gallery.match(v) for i, v in zip(good, vectors)}
        t4 = time.perf_counter()
        faces = []
        for i, (det, quality) in enumerate(zip(detections, qualities)):
            box = tuple(float(v) for v in det.box)
            if not quality.ok:
                faces.append(FaceObservation(box, False, quality.reason, index=i))
                continue
            m = matches[i]
            candidate = m["resident"].score >= self.cfg.antispoof_min_score
            spoof = self.antispoof.score(rgb, det) if self.antispoof and candidate else None
            faces.append(FaceObservation(
                box, True, None, m["resident"].person_id, m["resident"].score, m["watch"].person_id,
                m["watch"].score, normalise_keypoints(det.keypoints),
                spoof.score if spoof else None, spoof.live if spoof else None, i))
        t5 = time.perf_counter()
        timings = {"detect": (t1 - t0) * 1e3, "align_quality": (t2 - t1) * 1e3, "embed": (t3 - t2) * 1e3,
                   "match": (t4 - t3) * 1e3, "antispoof": (t5 - t4) * 1e3}
        return FrameResult(faces, detections, timings)

    def enroll_vector(self, rgb: np.ndarray) -> tuple[np.ndarray, dict]:
        """Embedding of the single face in an enrollment photo, or EnrollmentRefused."""
        detections = self.detect(rgb)
        if not detections:
            raise EnrollmentRefused("no_face", "no face found in the photo")
        if len(detections) > 1 and detections[1].score > 0.8 * detections[0].score:
            raise EnrollmentRefused("multiple_faces", f"{len(detections)} faces found; use a photo of one person")
        det = detections[0]
        crop = align_face(rgb, det.keypoints)
        quality = assess(det, crop, self.cfg.enroll_quality)
        if not quality.ok:
            raise EnrollmentRefused(quality.reason, str(quality.metrics))
        return self.embedder.embed(crop[None])[0], quality.metrics
