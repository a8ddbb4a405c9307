"""Frame sources behind one interface, and a supervisor that keeps them running.

A source is blocking (``open``, ``read`` -> RGB array or ``None`` at the end,
``close``); ``SupervisedSource`` runs it in its own thread, bounds every read
with a timeout, reports failures and stalls through a callback and reopens the
source with a capped back-off. A failing camera never raises into the hub.

Specs: ``folder:/path`` (images, sorted; ``folder+loop:`` to repeat),
``file:/clip.mp4``, ``v4l2:0`` or ``/dev/video0``, ``rtsp://...``, ``picamera``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from pathlib import Path
from typing import AsyncIterator, Callable, Protocol

import cv2
import numpy as np

from hub.face.errors import FaceError, SourceError
from hub.face.images import load_image

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class FrameSource(Protocol):
    name: str

    def open(self) -> None: ...
    def read(self) -> np.ndarray | None: ...
    def close(self) -> None: ...


class ImageFolderSource:
    """Images of a folder in name order; a corrupt file is reported and skipped."""

    def __init__(self, path: Path | str, loop: bool = False):
        self.path, self.loop, self.name = Path(path), loop, f"folder:{path}"
        self._files: list[Path] = []
        self._pos = 0

    def open(self) -> None:
        if not self.path.is_dir():
            raise SourceError(f"{self.name}: not a folder")
        self._files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise SourceError(f"{self.name}: no images")

    def read(self) -> np.ndarray | None:
        if self._pos >= len(self._files):
            if not self.loop:
                return None
            self._pos = 0
        path = self._files[self._pos]
        self._pos += 1
        return load_image(path)

    def close(self) -> None:
        self._files = []


class OpenCVSource:
    """V4L2/USB cameras, RTSP streams and video files through OpenCV."""

    def __init__(self, uri: str | int, live: bool):
        self.uri, self.live, self.name = uri, live, f"opencv:{uri}"
        self._cap = None

    def open(self) -> None:
        cap = cv2.VideoCapture(self.uri)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{self.name}: cannot open")
        self._cap = cap

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            raise SourceError(f"{self.name}: not open")
        ok, bgr = self._cap.read()
        if not ok:
            if self.live:
                raise SourceError(f"{self.name}: read failed")
            return None
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class PiCameraSource:
    """The Raspberry Pi camera through picamera2 (only present on a Pi)."""

    def __init__(self, size: tuple[int, int] = (640, 480)):
        self.size, self.name, self._cam = size, "picamera", None

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise SourceError("picamera: picamera2 is not installed (apt install python3-picamera2)") from exc
        try:
            cam = Picamera2()
            cam.configure(cam.create_video_configuration(main={"size": self.size, "format": "RGB888"}))
            cam.start()
        except (RuntimeError, OSError, IndexError) as exc:
            raise SourceError(f"picamera: cannot start: {exc}") from exc
        self._cam = cam

    def read(self) -> np.ndarray | None:
        # picamera2's "RGB888" is BGR byte order in memory.
        return cv2.cvtColor(self._cam.capture_array(), cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None


def make_source(spec: str) -> FrameSource:
    if spec.startswith("folder:"):
        return ImageFolderSource(spec[len("folder:"):])
    if spec.startswith("folder+loop:"):
        return ImageFolderSource(spec[len("folder+loop:"):], loop=True)
    if spec.startswith("file:"):
        return OpenCVSource(spec[len("file:"):], live=False)
    if spec.startswith("v4l2:"):
        return OpenCVSource(int(spec[5:]) if spec[5:].isdigit() else spec[5:], live=True)
    if spec.startswith("/dev/video") or spec.startswith(("rtsp://", "rtsps://", "http://", "https://")):
        return OpenCVSource(spec, live=True)
    if spec == "picamera":
        return PiCameraSource()
    raise SourceError(f"unknown frame source {spec!r}")


class SupervisedSource:
    """Async frames from a blocking source, with timeouts, reporting and reopening."""

    def __init__(self, factory: Callable[[], FrameSource], report: Callable[[str, str], None],
                 read_timeout_s: float = 5.0, fps: float | None = None,
                 backoff_s: tuple[float, float] = (0.5, 30.0), max_failures: int | None = None):
        self.factory, self.report = factory, report
        self.read_timeout_s, self.fps = read_timeout_s, fps
        self.backoff_s, self.max_failures = backoff_s, max_failures
        self.failures = 0

    async def _call(self, pool, fn):
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.run_in_executor(pool, fn), self.read_timeout_s)

    async def frames(self) -> AsyncIterator[np.ndarray]:
        delay = self.backoff_s[0]
        while self.max_failures is None or self.failures < self.max_failures:
            source = self.factory()
            pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="face-source")
            try:
                await self._call(pool, source.open)
                while True:
                    try:
                        frame = await self._call(pool, source.read)
                    except SourceError:
                        raise
                    except FaceError as exc:   # a corrupt image in a folder: report, go on
                        self.report(source.name, f"frame skipped: {exc}")
                        continue
                    if frame is None:
                        return
                    delay = self.backoff_s[0]
                    yield frame
                    if self.fps:
                        await asyncio.sleep(1.0 / self.fps)
            except asyncio.TimeoutError:
                self.failures += 1
                self.report(source.name, f"stalled: no frame within {self.read_timeout_s} s")
            except SourceError as exc:
                self.failures += 1
                self.report(source.name, str(exc))
            finally:
                pool.submit(source.close)
                pool.shutdown(wait=False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_s[1])
