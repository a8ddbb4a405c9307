"""The ``face:`` section of the hub configuration, validated, and building the services from it.

Errors name the field and the allowed values. Example (YAML)::

    face:
      models_dir: /var/lib/anju/models
      gallery: /var/lib/anju/face/gallery.db
      snapshots: /var/lib/anju/face/snapshots
      timezone: Asia/Shanghai
      entrances:
        - id: b1-main
          building: b1
          camera: rtsp://10.0.0.21/stream1
          lock: b1-main-lock
          lock_key_hex: "<64 hex, the lock's command key>"
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from hub.face.access import AccessConfig
from hub.face.errors import ConfigError
from hub.face.models import ANTISPOOF, DEFAULT_MODELS_DIR, MOBILEFACENET, MOBILEFACENET_BATCH1

RUNTIME_NAMES = ("litert", "tflite-runtime")
RANGES = ("short", "full")
TOP_KEYS = {"models_dir", "embedding_model", "antispoof_model", "runtime", "num_threads", "detector_ranges",
            "gallery", "store_photos", "snapshots", "entrances"}


@dataclass(frozen=True)
class EntranceSpec:
    id: str
    camera: str
    lock: str
    lock_key: bytes = field(repr=False)
    building: str | None = None
    fps: float = 10.0


@dataclass(frozen=True)
class FaceConfig:
    models_dir: Path
    embedding_model: Path
    antispoof_model: Path | None
    runtime: tuple[str, ...]
    num_threads: int
    detector_ranges: tuple[str, ...]
    gallery: Path
    store_photos: bool
    snapshots: Path
    access: AccessConfig
    entrances: tuple[EntranceSpec, ...]


def _get(data: dict, key: str, kind, default, where: str = "face"):
    value = data.get(key, default)
    if value is not None and not isinstance(value, kind):
        raise ConfigError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _entrance(data, n: int) -> EntranceSpec:
    where = f"face.entrances[{n}]"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping")
    for key in ("id", "camera", "lock"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{where}.{key}: required string")
    # a smart lock of the site (docs/smart_lock.md) takes the hub's LOCK_CTL and
    # needs no key here; a lock of the JSON protocol (docs/face_access.md) does
    key = None
    if data.get("lock_key_hex") is not None:
        if not isinstance(data["lock_key_hex"], str):
            raise ConfigError(f"{where}.lock_key_hex: expected 64 hex digits")
        try:
            key = bytes.fromhex(data["lock_key_hex"])
        except ValueError as exc:
            raise ConfigError(f"{where}.lock_key_hex: not hex") from exc
        if len(key) != 32:
            raise ConfigError(f"{where}.lock_key_hex: must be 32 bytes (64 hex digits), got {len(key)} bytes")
    return EntranceSpec(data["id"], data["camera"], data["lock"], key, _get(data, "building", str, None, where),
                        float(_get(data, "fps", (int, float), 10.0, where)))


def load_face_config(data: dict, base: Path = DEFAULT_MODELS_DIR.parent) -> FaceConfig:
    if not isinstance(data, dict):
        raise ConfigError("face: expected a mapping")
    models_dir = Path(_get(data, "models_dir", str, str(DEFAULT_MODELS_DIR)))
    runtime = tuple(_get(data, "runtime", list, list(RUNTIME_NAMES)))
    ranges = tuple(_get(data, "detector_ranges", list, ["short"]))
    for name, values, allowed in (("runtime", runtime, RUNTIME_NAMES), ("detector_ranges", ranges, RANGES)):
        bad = [v for v in values if v not in allowed]
        if bad or not values:
            raise ConfigError(f"face.{name}: {bad or values} not allowed; choose from {list(allowed)}")
    embedding = _get(data, "embedding_model", str, None)
    if embedding is None:
        batch1 = models_dir / MOBILEFACENET_BATCH1
        embedding = batch1 if batch1.is_file() else models_dir / MOBILEFACENET
    antispoof = _get(data, "antispoof_model", str, None)
    if antispoof is None and (models_dir / ANTISPOOF).is_file():
        antispoof = models_dir / ANTISPOOF
    defaults = AccessConfig()
    access_keys = {f.name for f in dataclasses.fields(AccessConfig)}
    unknown = sorted(set(data) - access_keys - TOP_KEYS)
    if unknown:
        raise ConfigError(f"face: unknown keys {unknown}; allowed: {sorted(access_keys | TOP_KEYS)}")
    access_args = {}
    for key in access_keys & set(data):
        kind = type(getattr(defaults, key))
        kinds = (int, float) if kind is float else kind
        access_args[key] = kind(_get(data, key, kinds, None))
    access = AccessConfig(**access_args)
    entrances = tuple(_entrance(e, n) for n, e in enumerate(_get(data, "entrances", list, [])))
    if len({e.id for e in entrances}) != len(entrances):
        raise ConfigError("face.entrances: entrance ids must be unique")
    return FaceConfig(models_dir, Path(embedding), Path(antispoof) if antispoof else None, runtime,
                      int(_get(data, "num_threads", int, 2)), ranges,
                      Path(_get(data, "gallery", str, str(base / "face" / "gallery.db"))),
                      bool(_get(data, "store_photos", bool, False)),
                      Path(_get(data, "snapshots", str, str(base / "face" / "snapshots"))), access, entrances)


def build_services(cfg: FaceConfig, site: str, clock, alarms, events, publisher, report,
                   lock_ctl=None):
    """One (service, frame source) per entrance, sharing the pipeline and the gallery.

    ``publisher`` is a started ``LockPublisher``; ``report(source, message)`` receives
    camera failures; ``lock_ctl(lock, person_id)`` queues the hub's LOCK_CTL for an
    entrance whose lock is a smart lock of the site (no ``lock_key_hex``). The
    caller runs ``service.run(source.frames())`` as a task each.
    """
    from hub.face.gallery import Gallery
    from hub.face.pipeline import FacePipeline, PipelineConfig
    from hub.face.service import EntranceConfig, FaceAccessService, SnapshotStore
    from hub.face.sources import SupervisedSource, make_source

    for spec in cfg.entrances:
        if spec.lock_key is None and lock_ctl is None:
            raise ConfigError(f"face entrance {spec.id}: lock {spec.lock} is not a smart lock of the "
                              f"site; give lock_key_hex for a lock of the JSON protocol")
    pipeline = FacePipeline(PipelineConfig(cfg.embedding_model, cfg.antispoof_model, cfg.detector_ranges,
                                           cfg.runtime, cfg.num_threads))
    gallery = Gallery(cfg.gallery, cfg.store_photos)
    snapshots = SnapshotStore(cfg.snapshots)
    out = []
    for spec in cfg.entrances:
        entrance = EntranceConfig(site, spec.id, spec.lock, spec.lock_key, spec.building,
                                  lock_ctl=lock_ctl if spec.lock_key is None else None)
        service = FaceAccessService(pipeline, gallery, entrance, cfg.access, clock, publisher, alarms, events,
                                    snapshots)
        source = SupervisedSource(lambda camera=spec.camera: make_source(camera), report, fps=spec.fps)
        out.append((service, source))
    return out
