"""Gate reader and barrier messages (hub/visitors/readers.py): a report is
used only when its MAC, counter, clock, kind and fields are right; the hub's
answer is signed with the reader's key."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from hub.visitors import readers
from hub.visitors.settings import Reader

KEY = bytes(range(32))
QR = Reader("gate-north-qr", "qr_reader", "gate-north", KEY)
NOW = 1_796_000_000


def report(**kw: object) -> dict:
    doc = {"reader": QR.id, "counter": 7, "at": NOW, "kind": "qr", "value": "AV1X",
           "direction": "in"}
    doc.update(kw)
    doc["mac"] = readers.sign(KEY, readers.REPORT_LABEL, doc)
    return doc


def raw(doc: dict) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def test_a_genuine_report() -> None:
    assert readers.parse_report(QR, raw(report()), 6, NOW + 30)["value"] == "AV1X"


@pytest.mark.parametrize(("payload", "last", "reason"), [
    (raw(dict(report(), value="AV1Y")), 0, "forged"),               # changed after signing
    (raw(dict(report(), mac="00" * 16)), 0, "forged"),
    (raw(report()), 7, "replayed"),
    (raw(report()), 9, "replayed"),
    (raw(report(at=NOW - 61)), 0, "stale"),
    (raw(report(kind="plate")), 0, "wrong_kind"),                   # a QR reader sends QR
    (raw(report(direction="sideways")), 0, "malformed"),
    (raw(report(reader="barrier-east")), 0, "malformed"),
    (raw(report(counter="7")), 0, "malformed"),
    (raw({k: v for k, v in report().items() if k != "at"}), 0, "malformed"),
    (b"not json", 0, "malformed"),
    (b"x" * 2000, 0, "too_long"),
])
def test_reports_that_change_nothing(payload: bytes, last: int, reason: str) -> None:
    with pytest.raises(readers.ReportRejected) as err:
        readers.parse_report(QR, payload, last, NOW)
    assert err.value.reason == reason


def test_the_answer_is_signed_with_the_readers_key() -> None:
    doc = json.loads(readers.command(QR, 99, 7, NOW, True, "ok"))
    assert doc["open"] is True and doc["ref"] == 7 and doc["valid_s"] == readers.OPEN_VALID_S
    body = json.dumps({k: v for k, v in doc.items() if k != "mac"}, sort_keys=True,
                      separators=(",", ":")).encode()
    want = hmac.new(KEY, b"anju-visitor-cmd\x00" + body, hashlib.sha256).digest()[:16]
    assert bytes.fromhex(doc["mac"]) == want


@pytest.mark.parametrize(("section", "where"), [
    ({"retention_days": 0}, "retention_days"),
    ({"retention_dayz": 9}, "unknown keys"),
    ({"auto_approve": {"visits": -1}}, "auto_approve.visits"),
    ({"overstay_after": "soon"}, "overstay_after"),
    ({"upstream_full_id": ["police"]}, "upstream_full_id"),
    ({"readers": [{"id": "r1", "kind": "turnstile", "entrance": "e", "key": "00" * 32}]},
     "readers[0].kind"),
    ({"readers": [{"id": "r1", "kind": "barrier", "entrance": "e", "key": "00" * 16}]},
     "readers[0].key"),
])
def test_settings_errors_name_the_key(section: dict, where: str) -> None:
    from hub import ConfigError
    from hub.visitors import settings
    with pytest.raises(ConfigError) as err:
        settings.parse(section)
    assert where in str(err.value)


def test_a_reader_may_not_take_a_device_id() -> None:
    from hub import ConfigError
    from hub.config import site, yamlfile
    text = """
site: {id: s}
buildings: [{id: b1, flats: [{id: f1}]}]
devices:
  - {id: lock-1, kind: smart_lock, board: esp32c3, entrance: gate, transport: mqtt}
visitors:
  readers: [{id: lock-1, kind: qr_reader, entrance: gate, key: "%s"}]
""" % ("00" * 32)
    with pytest.raises(ConfigError) as err:
        site.parse_site(yamlfile.loads(text, "site.yaml"), require_keys=False)
    assert "lock-1" in str(err.value) and "site.yaml:" in str(err.value)
