"""Fixtures of the face-access tests: test photos and models, real pipeline, private Mosquitto brokers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FACE_DATA = Path(os.environ.get("ANJU_FACE_DATA", REPO.parent / "shared" / "face"))
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mosquitto(tmp_path):
    """Factory: start a private broker on a free loopback port; returns (host, port). Killed at teardown."""
    if not Path(MOSQUITTO).exists():
        pytest.fail(f"mosquitto not found at {MOSQUITTO} (apt-get install mosquitto)")
    procs = []

    def start(name: str = "broker"):
        port = _free_port()
        conf = tmp_path / f"{name}.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        log = open(tmp_path / f"{name}.log", "w")
        proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        procs.append((proc, log))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return "127.0.0.1", port
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"mosquitto exited: {(tmp_path / f'{name}.log').read_text()}")
                time.sleep(0.05)
        pytest.fail(f"mosquitto did not listen on {port} within 10 s")

    yield start
    for proc, log in procs:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()
