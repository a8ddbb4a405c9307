"""Visit fields: PRC ID numbers (MOD 11-2, birth date), civil and new-energy
plates, phones, windows and the registration body, each error naming its field."""

from __future__ import annotations

import datetime

import pytest

from hub.visitors import VisitInvalid, fields, model, pii, qr

TODAY = datetime.date(2026, 12, 4)
NOW = 1_796_000_000.0
GOOD_ID = "11010519491231002X"


def with_check(first17: str) -> str:
    return first17 + fields.id_check_char(first17)


@pytest.mark.parametrize("value", [GOOD_ID, GOOD_ID.lower(), " 440305199001011234 "[:0] +
                                   with_check("44030519900101123"), with_check("51010820000229001")])
def test_id_numbers_accepted(value: str) -> None:
    assert fields.id_number(value, TODAY) == value.strip().upper()


@pytest.mark.parametrize(("value", "why"), [
    ("11010519491231002", "18 characters"),
    ("11010519491231002Y", "17 digits"),
    ("110105194912310021", "check digit"),
    (with_check("11010519490231002"), "birth date"),      # 31 February
    (with_check("51010820010229001"), "birth date"),      # 2001 is not a leap year
    (with_check("11010520270101002"), "out of range"),    # born in the future
    (with_check("11010518991231002"), "out of range"),
    (None, "string"),
])
def test_id_numbers_refused_naming_the_field(value: object, why: str) -> None:
    with pytest.raises(VisitInvalid) as err:
        fields.id_number(value, TODAY)
    assert err.value.field == "id_number" and why in str(err.value)


@pytest.mark.parametrize(("value", "norm"), [
    ("粤B12345", "粤B12345"), ("粤b·12345", "粤B12345"), ("京A 1234学", "京A1234学"),
    ("粤BD12345", "粤BD12345"), ("沪AFA1234", "沪AFA1234"), ("苏E12345D", "苏E12345D"),
    ("川A8K2M9", "川A8K2M9"), ("粤B1234O", None),
])
def test_plates(value: str, norm: str | None) -> None:
    if norm is None:
        with pytest.raises(VisitInvalid) as err:
            fields.plate(value)
        assert err.value.field == "plate"
    else:
        assert fields.plate(value) == norm


@pytest.mark.parametrize("value", ["XB12345", "粤B1234I", "粤BO2345", "粤BA123456", "粤B123",
                                   "粤BX12345", 12345])
def test_plates_refused(value: object) -> None:
    with pytest.raises(VisitInvalid) as err:
        fields.plate(value)
    assert err.value.field == "plate"


@pytest.mark.parametrize(("value", "norm"), [("13812345678", "13812345678"),
                                             ("+86 138-1234-5678", "13812345678"),
                                             ("010-62345678", "01062345678"),
                                             ("0755 8765 4321", "075587654321")])
def test_phones(value: str, norm: str) -> None:
    assert fields.phone(value) == norm


@pytest.mark.parametrize("value", ["12812345678", "1381234567", "62345678", "abc", None])
def test_phones_refused(value: object) -> None:
    with pytest.raises(VisitInvalid) as err:
        fields.phone(value)
    assert err.value.field == "phone"


def body(**kw: object) -> dict:
    b = {"flat": "b1-101", "name": "张伟", "phone": "13812345678", "id_number": GOOD_ID,
         "plate": "粤BD12345", "purpose": "探亲", "valid_from": NOW, "valid_until": NOW + 7200,
         "entry": "single", "entrances": ["gate-north"]}
    b.update(kw)
    return {k: v for k, v in b.items() if v is not None or k == "plate"}


@pytest.mark.parametrize(("change", "field"), [
    ({"valid_until": NOW - 10}, "valid_until"),
    ({"valid_from": NOW + 7200, "valid_until": NOW + 3600}, "valid_until"),
    ({"valid_until": NOW + 40 * 86400}, "valid_until"),
    ({"valid_from": "tomorrow"}, "valid_from"),
    ({"flat": "b9-999"}, "flat"),
    ({"entrances": ["gate-south"]}, "entrances[0]"),
    ({"entrances": []}, "entrances"),
    ({"id_number": "110105194912310021"}, "id_number"),
    ({"plate": "粤B1234O"}, "plate"),
    ({"phone": "555"}, "phone"),
    ({"entry": "twice"}, "entry"),
    ({"name": ""}, "name"),
    ({"colour": "red"}, "colour"),
])
def test_registration_names_the_field(change: dict, field: str) -> None:
    with pytest.raises(VisitInvalid) as err:
        fields.registration(body(**change), {"b1-101", "b1-102"}, {"gate-north"}, NOW, TODAY)
    assert err.value.field == field


def test_registration_normalises() -> None:
    v = fields.registration(body(plate="粤bd 12345", valid_from="2026-12-04T08:00:00+08:00",
                                 valid_until="2026-12-04T10:00:00+08:00"),
                            {"b1-101"}, {"gate-north"}, NOW - 86400, TODAY)
    assert v["plate"] == "粤BD12345" and v["one_time"] is True
    assert v["valid_until"] - v["valid_from"] == 7200
    assert fields.registration(body(plate=None), {"b1-101"}, {"gate-north"}, NOW,
                               TODAY)["plate"] is None


def test_state_machine() -> None:
    assert model.next_state("requested", "approve") == "approved"
    assert model.next_state("flagged", "refuse") == "refused"
    assert model.next_state("approved", "revoke", by_resident=True) == "revoked"
    for state, action, kw in [("refused", "approve", {}), ("revoked", "approve", {}),
                              ("flagged", "approve", {}), ("approved", "approve", {})]:
        with pytest.raises(model.VisitConflict):
            model.next_state(state, action, **kw)
    assert model.next_state("flagged", "approve", note="police cleared him") == "approved"
    with pytest.raises(model.VisitForbidden):
        model.next_state("requested", "approve", by_resident=True)


def test_repeat_visitor_rule() -> None:
    h = [{"flat": "f", "id_hash": "x", "approved_at": NOW - d * 86400, "auto": False}
         for d in (1, 10, 20)]
    assert model.repeat_visitor(h, "f", "x", NOW, 3, 30 * 86400)
    assert not model.repeat_visitor(h, "f", "x", NOW, 3, 15 * 86400)   # one too old
    assert not model.repeat_visitor(h, "g", "x", NOW, 3, 30 * 86400)   # another flat
    assert not model.repeat_visitor(h, "f", "x", NOW, 0, 30 * 86400)   # turned off
    auto = [dict(x, auto=True) for x in h]
    assert not model.repeat_visitor(auto, "f", "x", NOW, 3, 30 * 86400)  # only clerks count


def test_admit() -> None:
    v = {"state": "approved", "valid_from": NOW, "valid_until": NOW + 60, "one_time": True,
         "entrances": ["gate-north"]}
    assert model.admit(v, "qr", "gate-north", NOW, False) == (True, "ok")
    assert model.admit(v, "qr", "gate-north", NOW - 1, False) == (False, "not_yet")
    assert model.admit(v, "qr", "gate-north", NOW + 60, False) == (False, "expired")
    assert model.admit(v, "qr", "car-east", NOW, False) == (False, "entrance_not_covered")
    assert model.admit(v, "qr", "gate-north", NOW, True) == (False, "spent")
    assert model.admit(dict(v, state="revoked"), "qr", "gate-north", NOW, False) == \
        (False, "revoked")
    assert model.admit(None, "qr", "gate-north", NOW, False) == (False, "unknown")


def test_masks() -> None:
    assert pii.mask("id_number", GOOD_ID) == "110***********002X"
    assert pii.mask("phone", "13812345678") == "138****5678"
    assert pii.mask("plate", "粤BD12345") == "粤B****45"
    assert pii.mask("name", "张伟") == "张*"


def test_qr_token_round_trip_and_forgery() -> None:
    key = bytes(range(32))
    token = qr.make(key, "sunrise", "ab" * 16, NOW, NOW + 60, True)
    assert len(token) == 71 and token.isalnum() and token.upper() == token
    assert qr.read(key, "sunrise", token) == ("ab" * 16, int(NOW), int(NOW + 60), True)
    for bad_key, site, tok in [(bytes(32), "sunrise", token), (key, "other", token),
                               (key, "sunrise", token[:-1] + ("A" if token[-1] != "A" else "B")),
                               (key, "sunrise", "AV1" + token[4:]), (key, "sunrise", "hello")]:
        with pytest.raises(qr.QrInvalid):
            qr.read(bad_key, site, tok)
