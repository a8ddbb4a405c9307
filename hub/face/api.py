"""HTTP handlers of face enrollment, as plain functions (the hub's web layer mounts them).

Each handler takes the parsed request (a dict; photos as bytes) and returns
``(status, body_dict)``. Errors come back as 4xx bodies with a stable ``error``
code, never as exceptions.

    POST   /api/face/persons                 enroll / re-enroll   -> enroll()
    GET    /api/face/persons[?list=watch]    list                 -> list_persons()
    DELETE /api/face/persons/<id>            delete               -> delete_person()
    POST   /api/face/identify                identify one photo   -> identify()
"""

from __future__ import annotations

from hub.face.errors import EnrollmentRefused, FaceError, GalleryError, ImageError
from hub.face.gallery import Gallery, LISTS
from hub.face.images import decode_image
from hub.face.pipeline import FacePipeline


def enroll(pipeline: FacePipeline, gallery: Gallery, request: dict, now: float) -> tuple[int, dict]:
    """request: {id, name, list?, entrances?, schedule?, replace?, photos: [bytes, ...]}.

    All photos are checked first; nothing is stored unless every photo passes.
    """
    person_id, name = request.get("id"), request.get("name")
    photos = request.get("photos") or []
    list_ = request.get("list", "resident")
    if not person_id or not name or not photos:
        return 400, {"error": "bad_request", "detail": "id, name and at least one photo are required"}
    if list_ not in LISTS:
        return 400, {"error": "bad_request", "detail": f"list must be one of {LISTS}"}
    vectors, qualities = [], []
    for i, data in enumerate(photos):
        try:
            vector, quality = pipeline.enroll_vector(decode_image(data, f"photo {i}"))
        except ImageError as exc:
            return 422, {"error": "bad_image", "photo": i, "detail": str(exc)}
        except EnrollmentRefused as exc:
            return 422, {"error": "refused", "reason": exc.reason, "photo": i, "detail": exc.detail}
        vectors.append(vector)
        qualities.append(quality)
    try:
        gallery.upsert_person(person_id, name, list_, request.get("entrances", ["*"]), request.get("schedule", []),
                              now=now, replace_embeddings=bool(request.get("replace", False)))
        gallery.add_embeddings(person_id, vectors, pipeline.embedder.version, now, qualities, list(photos))
    except GalleryError as exc:
        return 500, {"error": "gallery", "detail": str(exc)}
    person = gallery.get(person_id)
    return 201, {"id": person.id, "list": person.list, "embeddings": person.embeddings, "quality": qualities}


def list_persons(gallery: Gallery, request: dict) -> tuple[int, dict]:
    persons = gallery.list(request.get("list"))
    return 200, {"persons": [{"id": p.id, "name": p.name, "list": p.list, "entrances": p.entrances,
                              "schedule": p.schedule, "embeddings": p.embeddings} for p in persons]}


def delete_person(gallery: Gallery, request: dict) -> tuple[int, dict]:
    if gallery.delete(request.get("id", "")):
        return 200, {"deleted": request["id"]}
    return 404, {"error": "not_found", "detail": f"no person {request.get('id')!r}"}


def identify(pipeline: FacePipeline, gallery: Gallery, request: dict, threshold: float) -> tuple[int, dict]:
    try:
        rgb = decode_image(request.get("photo") or b"", "photo")
        vector, quality = pipeline.enroll_vector(rgb)
    except ImageError as exc:
        return 422, {"error": "bad_image", "detail": str(exc)}
    except EnrollmentRefused as exc:
        return 422, {"error": "refused", "reason": exc.reason, "detail": exc.detail}
    except FaceError as exc:
        return 500, {"error": "face", "detail": str(exc)}
    matches = gallery.match(vector)
    return 200, {name: {"id": m.person_id if m.score >= threshold else None, "best": m.person_id,
                        "score": round(m.score, 4)} for name, m in matches.items()} | {"quality": quality}
