"""SQLite gallery and the vectorised matcher."""

import numpy as np
import pytest

from hub.face.gallery import Gallery, Matcher


def unit(rng, n):
    v = rng.normal(size=(n, 192)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_matcher_agrees_with_a_plain_search():
    rng = np.random.default_rng(1)
    vectors = unit(rng, 5000)
    owners = [f"p{i // 3}" for i in range(5000)]
    matcher = Matcher(vectors, owners)
    for q in unit(rng, 20):
        best = max(range(5000), key=lambda i: float(vectors[i] @ q))
        assert matcher.best(q) == (owners[best], pytest.approx(float(vectors[best] @ q), abs=1e-5))


def test_empty_gallery_matches_nothing(tmp_path):
    gallery = Gallery(tmp_path / "g.db")
    m = gallery.match(np.ones(192, np.float32) / np.sqrt(192))
    assert m["resident"].person_id is None and m["watch"].person_id is None


def test_enroll_list_reenroll_delete_cascade_and_persistence(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "g.db"
    gallery = Gallery(path)
    gallery.upsert_person("r-101", "Li Wei", "resident", ["main"], now=1.0)
    gallery.add_embeddings("r-101", unit(rng, 3), "m@1", now=1.0, photos=[b"x"] * 3)
    gallery.upsert_person("w-1", "Banned", "watch", now=1.0)
    gallery.add_embeddings("w-1", unit(rng, 1), "m@1", now=1.0)
    assert [(p.id, p.list, p.embeddings) for p in gallery.list()] == [("r-101", "resident", 3), ("w-1", "watch", 1)]
    assert gallery._exec("SELECT COUNT(*) FROM embedding WHERE photo IS NOT NULL")[0][0] == 0  # photos off
    gallery.close()

    gallery = Gallery(path)          # reopened: matcher rebuilt from SQLite
    probe = gallery._matchers["resident"].vectors[1]
    assert gallery.match(probe)["resident"].person_id == "r-101"
    gallery.upsert_person("r-101", "Li Wei", "resident", ["main"], now=2.0, replace_embeddings=True)
    assert gallery.embedding_count("r-101") == 0
    gallery.add_embeddings("r-101", unit(rng, 2), "m@1", now=2.0)
    assert gallery.delete("r-101") is True
    assert gallery._exec("SELECT COUNT(*) FROM embedding WHERE person_id = 'r-101'")[0][0] == 0
    assert gallery.match(probe)["resident"].person_id is None
    assert gallery.delete("r-101") is False


def test_photos_kept_only_when_configured(tmp_path):
    rng = np.random.default_rng(3)
    gallery = Gallery(tmp_path / "g.db", store_photos=True)
    gallery.upsert_person("r", "R", now=0)
    gallery.add_embeddings("r", unit(rng, 1), "m@1", now=0, photos=[b"jpeg"])
    assert gallery._exec("SELECT photo FROM embedding")[0][0] == b"jpeg"
