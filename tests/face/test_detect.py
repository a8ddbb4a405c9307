"""BlazeFace decoding and detection on the shared photos."""

import numpy as np
import pytest

from hub.face.detect import (FULL_RANGE, KP_LEFT_EYE, KP_MOUTH, KP_NOSE, KP_RIGHT_EYE, SHORT_RANGE, decode,
                             make_anchors, weighted_nms)
from hub.face.images import load_image


def test_anchor_counts_and_centres():
    short, full = make_anchors(SHORT_RANGE), make_anchors(FULL_RANGE)
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    # first 512 anchors: 16x16 grid, 2 per cell, row-major
    assert np.allclose(short[0], [0.5 / 16, 0.5 / 16]) and np.allclose(short[1], short[0])
    assert np.allclose(short[2], [1.5 / 16, 0.5 / 16])
    assert np.allclose(short[512], [0.5 / 8, 0.5 / 8]) and np.allclose(short[512:518], short[512])
    assert np.allclose(full[48], [0.5 / 48, 1.5 / 48])


def test_decode_places_box_and_keypoints_relative_to_anchor():
    anchors = np.array([[0.25, 0.5], [0.75, 0.75]], dtype=np.float32)
    reg = np.zeros((1, 2, 16), dtype=np.float32)
    reg[0, 1, :4] = [12.8, -6.4, 32.0, 64.0]          # in 128-px input units
    reg[0, 1, 4:6] = [-12.8, 0.0]                      # first keypoint
    logits = np.array([[[-3.0], [2.0]]], dtype=np.float32)
    boxes, kps, scores = decode(reg, logits, anchors, 128)
    assert np.allclose(boxes[1], [0.85 - 0.125, 0.70 - 0.25, 0.85 + 0.125, 0.70 + 0.25])
    assert np.allclose(kps[1, 0], [0.65, 0.75])
    assert scores[1] == pytest.approx(1 / (1 + np.exp(-2.0))) and scores[0] < 0.05


def test_weighted_nms_merges_overlaps_and_keeps_separate_faces():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=np.float32)
    kps = np.zeros((3, 6, 2), dtype=np.float32)
    scores = np.array([0.9, 0.6, 0.8], dtype=np.float32)
    out = weighted_nms(boxes, kps, scores, 0.3)
    assert len(out) == 2
    assert out[0][2] == pytest.approx(0.9) and out[1][2] == pytest.approx(0.8)
    assert np.allclose(out[0][0], (boxes[0] * 0.9 + boxes[1] * 0.6) / 1.5)


def test_every_photo_has_one_face_with_keypoints_on_it(pipeline, photos):
    for paths in photos.values():
        for path in paths:
            rgb = load_image(path)
            faces = pipeline.detect(rgb)
            assert len(faces) == 1, f"{path.name}: {len(faces)} faces"
            det = faces[0]
            x0, y0, x1, y1 = det.box
            h, w = rgb.shape[:2]
            assert -0.05 * w <= x0 < x1 <= 1.05 * w and -0.05 * h <= y0 < y1 <= 1.05 * h, path.name
            assert 0.02 * max(h, w) < det.width, path.name
            kp = det.keypoints
            inside = (kp[:4, 0] > x0) & (kp[:4, 0] < x1) & (kp[:4, 1] > y0) & (kp[:4, 1] < y1)
            assert inside.all(), f"{path.name}: eyes/nose/mouth outside the box"
            # upright photos: eyes above the nose above the mouth; subject's right eye on the image left
            assert kp[KP_RIGHT_EYE, 0] < kp[KP_LEFT_EYE, 0], path.name
            assert max(kp[KP_RIGHT_EYE, 1], kp[KP_LEFT_EYE, 1]) < kp[KP_NOSE, 1] < kp[KP_MOUTH, 1], path.name


def test_short_range_finds_door_distance_faces(door_pipeline, photos):
    for name in ("obama", "biden", "paul_rudd"):
        for path in photos[name]:
            assert len(door_pipeline.detect(load_image(path))) == 1, path.name


def _no_face_images(face_data):
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    ramp = np.dstack([np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1))] * 3)
    # the lower part of a real photo: suit, shirt and background, no face
    obama = load_image(face_data / "images" / "obama" / "obama.jpg")
    torso = np.ascontiguousarray(obama[700:, :])
    return {"noise": noise, "ramp": ramp, "torso": torso}


def test_no_face_in_images_without_one(pipeline, face_data):
    for name, rgb in _no_face_images(face_data).items():
        assert pipeline.detect(rgb) == [], name
