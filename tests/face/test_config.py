"""The face configuration section: validation messages and building the services."""

import pytest

from hub.face.config import build_services, load_face_config
from hub.face.errors import ConfigError
from tests.facedata import EMBEDDING_MODEL_BATCH1

KEY = "ab" * 32


def entrance(**over):
    e = {"id": "b1-main", "camera": "folder:/tmp/cam", "lock": "b1-main-lock", "lock_key_hex": KEY}
    e.update(over)
    return e


@pytest.mark.parametrize("data,message", [
    ({"runtime": ["onnx"]}, r"face.runtime: \['onnx'\] not allowed"),
    ({"detector_ranges": ["mid"]}, "face.detector_ranges"),
    ({"num_threads": "two"}, "face.num_threads: expected int"),
    ({"agree_frame": 3}, r"face: unknown keys \['agree_frame'\]"),
    ({"match_threshold": "high"}, "face.match_threshold: expected"),
    ({"match_threshold": 0.5, "entrances": [entrance(lock_key_hex="abcd")]},
     r"face.entrances\[0\].lock_key_hex: must be 32 bytes"),
    ({"entrances": [entrance(camera="")]}, r"face.entrances\[0\].camera: required"),
    ({"entrances": [entrance(), entrance()]}, "unique"),
])
def test_invalid_configs_name_the_field(data, message):
    with pytest.raises(ConfigError, match=message):
        load_face_config(data)


def test_key_is_not_in_the_repr():
    cfg = load_face_config({"entrances": [entrance()], "match_threshold": 0.45, "timezone": "Asia/Shanghai"})
    assert KEY not in repr(cfg) and cfg.access.match_threshold == 0.45


def test_build_services(tmp_path, face_data, clock, make_broker):
    from hub.face.service import LockPublisher
    from tests.face.standins import RecordingEvents
    cfg = load_face_config({
        "embedding_model": str(EMBEDDING_MODEL_BATCH1),
        "antispoof_model": None, "gallery": str(tmp_path / "g.db"), "snapshots": str(tmp_path / "s"),
        "entrances": [entrance(), entrance(id="b2-main", lock="b2-main-lock")]})
    broker = make_broker("site")
    publisher = LockPublisher(broker.host, broker.port, "face-config-test")
    publisher.start()
    try:
        built = build_services(cfg, "garden-court", clock, None, RecordingEvents(), publisher, lambda n, m: None)
        assert [s.entrance.entrance for s, _ in built] == ["b1-main", "b2-main"]
        assert built[0][0].pipeline is built[1][0].pipeline
        for service, _ in built:
            service.close()
    finally:
        publisher.stop()
