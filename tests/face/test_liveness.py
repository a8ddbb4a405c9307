"""Liveness: landmark normalisation, motion score, and the anti-spoofing model when fetched."""

import numpy as np
import pytest

from hub.face.images import load_image
from hub.face.liveness import AntiSpoof, motion_score, normalise_keypoints
from hub.face.models import ANTISPOOF, DEFAULT_MODELS_DIR

KPS = np.array([[100, 100], [160, 100], [130, 140], [130, 170], [70, 110], [190, 110]], dtype=float)


def test_normalisation_removes_translation_rotation_and_scale():
    angle = np.radians(30)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = (KPS @ rot.T) * 1.7 + [40, -25]
    assert np.allclose(normalise_keypoints(moved), normalise_keypoints(KPS))
    assert np.allclose(normalise_keypoints(KPS)[:2], [[-0.5, 0], [0.5, 0]])


def test_motion_score_is_zero_for_a_rigid_move_and_positive_for_a_head_turn():
    history = [normalise_keypoints(KPS), normalise_keypoints(KPS * 2 + 5)]
    assert motion_score(history) == pytest.approx(0.0, abs=1e-9)
    turned = KPS.copy()
    turned[2, 0] += 12          # the nose moves relative to the eyes
    assert motion_score([normalise_keypoints(KPS), normalise_keypoints(turned)]) > 0.01
    assert motion_score([normalise_keypoints(KPS)]) == 0.0


ANTISPOOF_MODEL = DEFAULT_MODELS_DIR / ANTISPOOF


@pytest.mark.skipif(not ANTISPOOF_MODEL.is_file(),
                    reason="anti-spoofing model not fetched (`anju face fetch-models`, or `make face-extras`)")
def test_antispoof_model_scores_genuine_photos_as_live(runtime, pipeline, photos):
    model = AntiSpoof(runtime, ANTISPOOF_MODEL)
    live = []
    for path in photos["obama"] + photos["paul_rudd"]:
        rgb = load_image(path)
        result = model.score(rgb, pipeline.detect(rgb)[0])
        assert 0.0 <= result.score < 8.0
        live.append(result.live)
    assert all(live)
