"""Frame sources: failures and stalls are reported and retried, never raised."""

import asyncio
import shutil
import threading

import numpy as np
import pytest

from hub.face.errors import SourceError
from hub.face.sources import ImageFolderSource, OpenCVSource, SupervisedSource, make_source


async def collect(source, limit=100):
    frames = []
    async for frame in source.frames():
        frames.append(frame)
        if len(frames) >= limit:
            break
    return frames


def test_folder_source_skips_a_corrupt_image_and_reports_it(tmp_path, face_data):
    shutil.copyfile(face_data / "images" / "obama" / "obama.jpg", tmp_path / "a.jpg")
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8\xff garbage")
    shutil.copyfile(face_data / "images" / "biden" / "biden.jpg", tmp_path / "c.jpg")
    reports = []
    frames = asyncio.run(collect(SupervisedSource(lambda: ImageFolderSource(tmp_path), lambda n, m: reports.append(m))))
    assert len(frames) == 2 and frames[0].ndim == 3
    assert len(reports) == 1 and "b.jpg" in reports[0] and "frame skipped" in reports[0]


def test_missing_folder_and_unopenable_camera_are_reported_and_retried(tmp_path):
    reports = []
    source = SupervisedSource(lambda: ImageFolderSource(tmp_path / "absent"), lambda n, m: reports.append(m),
                              backoff_s=(0.01, 0.02), max_failures=3)
    assert asyncio.run(collect(source)) == []
    assert source.failures == 3 and all("not a folder" in r for r in reports)
    reports.clear()
    cam = SupervisedSource(lambda: OpenCVSource(str(tmp_path / "no-such-video.mp4"), live=True),
                           lambda n, m: reports.append(m), backoff_s=(0.01, 0.02), max_failures=2)
    assert asyncio.run(collect(cam)) == [] and len(reports) == 2 and "cannot open" in reports[0]


class StallingSource:
    name = "stalling"

    def __init__(self, release: threading.Event):
        self.release, self.reads = release, 0

    def open(self):
        pass

    def read(self):
        self.reads += 1
        if self.reads == 1:
            return np.zeros((4, 4, 3), np.uint8)
        self.release.wait(5)        # a camera that stops delivering
        return None

    def close(self):
        self.release.set()


def test_a_stalled_source_is_reported_and_reopened_while_the_loop_stays_responsive():
    release = threading.Event()
    reports = []
    source = SupervisedSource(lambda: StallingSource(release), lambda n, m: reports.append(m),
                              read_timeout_s=0.2, backoff_s=(0.01, 0.02), max_failures=2)

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)
        task = asyncio.create_task(ticker())
        frames = await collect(source)
        task.cancel()
        return frames, ticks

    frames, ticks = asyncio.run(main())
    assert len(frames) == 2 and ticks > 20
    assert [r.startswith("stalled") for r in reports] == [True, True]


@pytest.mark.parametrize("spec,kind", [("folder:/x", ImageFolderSource), ("v4l2:0", OpenCVSource),
                                       ("rtsp://cam/stream", OpenCVSource), ("file:/a.mp4", OpenCVSource)])
def test_make_source(spec, kind):
    assert isinstance(make_source(spec), kind)


def test_unknown_source_spec():
    with pytest.raises(SourceError, match="unknown frame source"):
        make_source("ftp://x")


def test_video_file_source(tmp_path, face_data):
    import cv2
    from hub.face.images import load_image
    rgb = cv2.resize(load_image(face_data / "images" / "obama" / "obama.jpg"), (320, 400))
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (320, 400))
    for _ in range(4):
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    frames = asyncio.run(collect(SupervisedSource(lambda: make_source(f"file:{path}"), lambda n, m: None)))
    assert len(frames) == 4 and frames[0].shape == (400, 320, 3)


def test_picamera_without_picamera2_is_a_clear_source_error():
    import importlib.util
    if importlib.util.find_spec("picamera2") is not None:
        pytest.skip("picamera2 is installed here; this test covers machines without it")
    with pytest.raises(SourceError, match="picamera2 is not installed"):
        make_source("picamera").open()
