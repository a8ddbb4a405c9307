"""Face access at a building entrance: detect, align, embed, match, decide.

Camera frames go through BlazeFace detection, landmark alignment to the ArcFace
template, a MobileFaceNet embedding and a vectorised 1:N match against the
enrolled residents and the watch list. ``access`` turns per-frame observations
into decisions (unlock, visitor attempt, watch-list alarm) as pure functions;
``service`` is the asyncio shell that runs inference in a worker thread and
publishes the decisions. Nothing here may block the hub's event loop, and an
unlock is never issued on a watch-list match.

Every error this package raises derives from one root, and errors from
OpenCV, SQLite, the TFLite runtimes and subprocesses are translated at the
boundary with ``raise ... from exc``::

    FaceError
    ├── ConfigError                the face configuration names a bad field or value
    ├── ModelError                 model file missing, unreadable or the wrong shape
    │   └── ModelIntegrityError    a fetched model's sha256 does not match
    ├── RuntimeUnavailableError    neither ai-edge-litert nor tflite-runtime loads
    ├── ImageError                 an image cannot be decoded
    ├── EnrollmentRefused          no face / quality gate failed (``reason`` attribute)
    ├── GalleryError               the embedding store failed or a resident is unknown
    └── SourceError                a camera / video / folder source failed or stalled
"""

from hub.face.errors import (
    ConfigError,
    EnrollmentRefused,
    FaceError,
    GalleryError,
    ImageError,
    ModelError,
    ModelIntegrityError,
    RuntimeUnavailableError,
    SourceError,
)

__all__ = [
    "ConfigError",
    "EnrollmentRefused",
    "FaceError",
    "GalleryError",
    "ImageError",
    "ModelError",
    "ModelIntegrityError",
    "RuntimeUnavailableError",
    "SourceError",
]
