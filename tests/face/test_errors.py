"""Bad input gives clear, typed errors: images, models, runtimes, enrollment."""

import numpy as np
import pytest

from hub.face import api
from hub.face.detect import FaceDetector, SHORT_RANGE
from hub.face.embed import Embedder
from hub.face.errors import (EnrollmentRefused, FaceError, ImageError, ModelError, RuntimeUnavailableError)
from hub.face.gallery import Gallery
from hub.face.images import decode_image, load_image
from hub.face.models import blazeface_path
from hub.face.runtime import select_runtime


@pytest.mark.parametrize("data,message", [
    (b"", "empty image"),
    (b"\xff\xd8\xff\xe0 definitely not a jpeg body", "not a decodable image"),
    (b"GIF89a" + bytes(40), "not a decodable image"),
])
def test_corrupt_image_bytes(data, message):
    with pytest.raises(ImageError, match=message):
        decode_image(data, "upload")


def test_truncated_jpeg_file_and_missing_file(tmp_path, face_data):
    good = (face_data / "images" / "obama" / "obama.jpg").read_bytes()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good[:200])
    with pytest.raises(ImageError, match="broken.jpg"):
        load_image(broken)
    with pytest.raises(ImageError, match="cannot read"):
        load_image(tmp_path / "absent.jpg")


def test_missing_model_path(runtime, tmp_path):
    with pytest.raises(ModelError, match="embedding model not found: .*nowhere.tflite"):
        Embedder(runtime, tmp_path / "nowhere.tflite")


def test_wrong_model_input_shape(runtime):
    # The BlazeFace model as the embedding model: [1,128,128,3] is not [N,112,112,3].
    with pytest.raises(ModelError, match=r"input shape \[1, 128, 128, 3\], expected \[None, 112, 112, 3\]"):
        Embedder(runtime, blazeface_path("short"))
    with pytest.raises(ModelError, match="input shape"):
        FaceDetector(runtime, blazeface_path("full"), SHORT_RANGE)


def test_not_a_model_file(runtime, tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 1024)
    with pytest.raises(ModelError, match="cannot be loaded"):
        Embedder(runtime, junk)


def test_runtime_selection_reports_why_each_runtime_was_rejected():
    with pytest.raises(RuntimeUnavailableError) as info:
        select_runtime(blazeface_path("short"), prefer=["tflite-runtime"])
    # installed but built for NumPy 1.x, or not installed at all: either way named with its reason
    assert set(info.value.reasons) == {"tflite-runtime"} and info.value.reasons["tflite-runtime"]
    with pytest.raises(RuntimeUnavailableError, match="unknown runtime"):
        select_runtime(blazeface_path("short"), prefer=["onnx"])
    chosen = select_runtime(blazeface_path("short"), prefer=["tflite-runtime", "litert"])
    assert chosen.name == "litert" and "tflite-runtime" in chosen.rejected


def test_enrollment_of_a_photo_without_a_face_is_refused(pipeline, tmp_path, face_data):
    rgb = np.ascontiguousarray(load_image(face_data / "images" / "obama" / "obama.jpg")[700:])
    with pytest.raises(EnrollmentRefused) as info:
        pipeline.enroll_vector(rgb)
    assert info.value.reason == "no_face"
    gallery = Gallery(tmp_path / "g.db")
    import cv2
    ok, jpeg = cv2.imencode(".jpg", rgb)
    status, body = api.enroll(pipeline, gallery, {"id": "r1", "name": "R", "photos": [jpeg.tobytes()]}, now=0.0)
    assert status == 422 and body["reason"] == "no_face"
    assert gallery.list() == []            # nothing stored on refusal


def test_enrollment_refuses_a_too_small_face_and_a_corrupt_photo(pipeline, tmp_path, face_data):
    gallery = Gallery(tmp_path / "g.db")
    small = (face_data / "images" / "singles" / "Bryan.png").read_bytes()
    status, body = api.enroll(pipeline, gallery, {"id": "r1", "name": "R", "photos": [small]}, now=0.0)
    assert (status, body["reason"]) == (422, "face_too_small")
    status, body = api.enroll(pipeline, gallery, {"id": "r1", "name": "R", "photos": [b"junk"]}, now=0.0)
    assert (status, body["error"]) == (422, "bad_image")
    assert gallery.list() == []


def test_every_error_derives_from_the_root():
    import hub.face as face
    for name in face.__all__:
        assert issubclass(getattr(face, name), FaceError)
