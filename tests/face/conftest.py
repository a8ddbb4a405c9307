"""Fixtures of the face-access tests: test photos and models, the real pipeline.

Brokers come from tests/conftest.py (``make_broker``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FACE_DATA = Path(os.environ.get("ANJU_FACE_DATA", REPO.parent / "shared" / "face"))


def pytest_configure(config):
    config.addinivalue_line("markers", "registry: needs the npm package registry (skipped without npm)")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.filterwarnings("error"))


@pytest.fixture(scope="session")
def face_data() -> Path:
    if not (FACE_DATA / "images").is_dir():
        pytest.fail(f"face test data not found at {FACE_DATA}; set ANJU_FACE_DATA to the shared/face folder")
    return FACE_DATA


@pytest.fixture(scope="session")
def photos(face_data) -> dict[str, list[Path]]:
    """identity -> photos; each single in singles/ is its own identity."""
    out: dict[str, list[Path]] = {}
    for path in sorted((face_data / "images").glob("*/*")):
        identity = path.stem if path.parent.name == "singles" else path.parent.name
        out.setdefault(identity, []).append(path)
    return out


@pytest.fixture(scope="session")
def runtime():
    from hub.face.models import blazeface_path
    from hub.face.runtime import select_runtime
    return select_runtime(blazeface_path("short"))


@pytest.fixture(scope="session")
def pipeline(face_data, runtime):
    from hub.face.pipeline import FacePipeline, PipelineConfig
    cfg = PipelineConfig(face_data / "models" / "mobilefacenet.tflite", detector_ranges=("short", "full"))
    return FacePipeline(cfg, runtime)


@pytest.fixture(scope="session")
def door_pipeline(face_data, runtime):
    """What an entrance runs: short range only, batch-1 model."""
    from hub.face.pipeline import FacePipeline, PipelineConfig
    return FacePipeline(PipelineConfig(face_data / "models" / "mobilefacenet_batch1.tflite"), runtime)


class FakeClock:
    def __init__(self, start: float = 1_790_000_000.0):
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
