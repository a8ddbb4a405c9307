"""`anju face ...` through argparse, on a temporary gallery."""

import argparse
import json

import pytest

from host_tools import face_cli
from tests.facedata import EMBEDDING_MODEL_BATCH1


def run(argv, capsys):
    parser = argparse.ArgumentParser(prog="anju")
    face_cli.register(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def base(tmp_path, face_data):
    return ["face", "--db", str(tmp_path / "g.db"), "--embedding-model",
            str(EMBEDDING_MODEL_BATCH1)]


def test_enroll_identify_list_watch_delete(base, photos, capsys):
    obama, paul = photos["obama"], photos["paul_rudd"]
    code, out, _ = run(base + ["enroll", "--resident", "r-101", "--name", "Resident", str(obama[0]), str(obama[1])],
                       capsys)
    assert code == 0 and json.loads(out)["embeddings"] == 2
    code, out, _ = run(base + ["watch", "add", "--id", "w-1", "--name", "Watched", str(paul[0])], capsys)
    assert code == 0
    code, out, _ = run(base + ["identify", str(obama[2])], capsys)
    assert code == 0 and json.loads(out)["resident"]["id"] == "r-101"
    code, out, _ = run(base + ["list"], capsys)
    assert [(p["id"], p["list"]) for p in json.loads(out)["persons"]] == [("r-101", "resident"), ("w-1", "watch")]
    code, out, _ = run(base + ["delete", "r-101"], capsys)
    assert code == 0
    code, out, _ = run(base + ["identify", str(obama[2])], capsys)
    assert json.loads(out)["resident"]["id"] is None


def test_enroll_refusal_and_missing_model_are_clear(base, tmp_path, face_data, capsys):
    code, out, _ = run(base + ["enroll", "--resident", "r", "--name", "R",
                               str(face_data / "images" / "singles" / "Bryan.png")], capsys)
    assert code == 1 and json.loads(out)["reason"] == "face_too_small"
    bad = ["face", "--db", str(tmp_path / "g.db"), "--embedding-model", str(tmp_path / "none.tflite")]
    code, _, err = run(bad + ["identify", str(face_data / "images" / "obama" / "obama.jpg")], capsys)
    assert code == 2 and "embedding model not found" in err
