"""Fixtures of the face-access tests: test photos and models, the real pipeline.

Brokers come from tests/conftest.py (``make_broker``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests import facedata
from tests.facedata import EMBEDDING_MODEL, EMBEDDING_MODEL_BATCH1, FACE_DATA

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def pytest_configure(config):
    config.addinivalue_line("markers", "registry: needs the npm package registry (skipped without npm)")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.filterwarnings("error"))


@pytest.fixture(scope="session")
def face_data() -> Path:
    why = facedata.missing()
    if why:
        pytest.fail(why)
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
    cfg = PipelineConfig(EMBEDDING_MODEL, detector_ranges=("short", "full"))
    return FacePipeline(cfg, runtime)


@pytest.fixture(scope="session")
def door_pipeline(face_data, runtime):
    """What an entrance runs: short range only, batch-1 model."""
    from hub.face.pipeline import FacePipeline, PipelineConfig
    return FacePipeline(PipelineConfig(EMBEDDING_MODEL_BATCH1), runtime)


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
