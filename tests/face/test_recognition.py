"""Recognition on the shared photos: alignment, embeddings, same vs different person."""

import itertools

import numpy as np
import pytest

from hub.face.access import AccessConfig
from hub.face.align import TEMPLATE, align_face, similarity_transform
from hub.face.embed import Embedder
from hub.face.errors import EnrollmentRefused
from hub.face.images import load_image
from tests.facedata import EMBEDDING_MODEL_BATCH1

THRESHOLD = AccessConfig().match_threshold


def test_similarity_transform_recovers_a_known_transform():
    angle, scale, shift = np.radians(20), 2.5, np.array([30.0, -12.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = TEMPLATE @ rot.T + shift
    matrix = similarity_transform(src, TEMPLATE)
    back = src @ matrix[:, :2].T + matrix[:, 2]
    assert np.allclose(back, TEMPLATE, atol=1e-6)


def test_alignment_puts_the_eyes_on_the_template(pipeline, photos):
    rgb = load_image(photos["obama"][0])
    det = pipeline.detect(rgb)[0]
    crop = align_face(rgb, det.keypoints)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    again = pipeline.detect(np.ascontiguousarray(np.pad(crop, ((56, 56), (56, 56), (0, 0)))))[0]
    eyes = again.keypoints[:2] - 56
    assert np.abs(eyes - TEMPLATE[:2]).max() < 6.0, eyes


@pytest.fixture(scope="module")
def enrolled_vectors(pipeline, photos):
    """identity -> embeddings of the photos that pass the enrollment gates; refused -> reason."""
    vectors, refused = {}, {}
    for identity, paths in photos.items():
        for path in paths:
            try:
                vec, _ = pipeline.enroll_vector(load_image(path))
            except EnrollmentRefused as exc:
                refused[path.name] = exc.reason
                continue
            vectors.setdefault(identity, []).append((path.name, vec))
    return vectors, refused


def test_embeddings_are_unit_vectors_and_batch_slots_independent(pipeline, face_data, runtime, photos):
    crops = np.stack([align_face(load_image(p), pipeline.detect(load_image(p))[0].keypoints)
                      for p in photos["obama"][:2] + photos["biden"][:1]])
    batch2 = pipeline.embedder.embed(crops)
    assert batch2.shape == (3, 192) and np.allclose(np.linalg.norm(batch2, axis=1), 1.0, atol=1e-5)
    batch1 = Embedder(runtime, EMBEDDING_MODEL_BATCH1).embed(crops)
    assert np.allclose(batch1, batch2, atol=1e-5)
    single = pipeline.embedder.embed(crops[2:3])
    assert np.allclose(single[0], batch2[2], atol=1e-5)


def test_threshold_separates_same_from_different_person(enrolled_vectors, capsys):
    vectors, refused = enrolled_vectors
    assert refused == {"008_B.jpg": "face_too_small", "Bryan.png": "face_too_small"}
    flat = [(identity, name, vec) for identity, items in vectors.items() for name, vec in items]
    genuine, impostor = [], []
    for (ia, na, va), (ib, nb, vb) in itertools.combinations(flat, 2):
        (genuine if ia == ib else impostor).append((float(va @ vb), na, nb))
    assert len(genuine) >= 15 and len(impostor) >= 100
    g = np.array([s for s, *_ in genuine])
    i = np.array([s for s, *_ in impostor])
    with capsys.disabled():
        print(f"\nsame person  ({len(g)} pairs): min {g.min():.3f} p5 {np.percentile(g, 5):.3f} "
              f"median {np.median(g):.3f} max {g.max():.3f}")
        print(f"different    ({len(i)} pairs): min {i.min():.3f} median {np.median(i):.3f} "
              f"p95 {np.percentile(i, 95):.3f} max {i.max():.3f}   threshold {THRESHOLD}")
    assert g.min() >= THRESHOLD, min(genuine)
    assert i.max() < THRESHOLD, max(impostor)
