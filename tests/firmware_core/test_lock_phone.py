"""Phone unlock challenge-response (anju.lock.phone, docs/smart_lock.md "Phone
unlock over BLE"): known answers for both tags, the byte layouts, and every
refusal: a replayed answer, an expired nonce, a wrong key, a revoked or
unknown credential, a malformed answer; the nonce is used once whatever the
outcome. Plain functions and asserts, run under CPython and real MicroPython.
"""
import struct
from binascii import unhexlify

from anju.lock import phone

KEY = bytes(range(16))
OTHER = bytes(range(1, 17))
LOCK = "lock-101"
NONCE = bytes(range(100, 116))
NONCE2 = bytes(range(200, 216))


def keys(table):
    return lambda cred_id: table.get(cred_id)


def deciding(calls, result=0):
    def decide(action, cred_id):
        calls.append((action, cred_id))
        return result
    return decide


def auth(table=None):
    return phone.PhoneAuth(LOCK, keys({"c-17": KEY} if table is None else table))


def test_the_answer_tag_and_reply_tag_are_truncated_hmacs_over_the_documented_bytes():
    cred = phone.encode_cred("c-17")
    assert cred == b"\x04c-17" + bytes(12)
    assert phone.answer_tag(KEY, b"lock-101", NONCE, 2, cred) == unhexlify(
        "d0004e80ae755bc2d0ac654dcd46aeed")
    assert phone.reply_tag(KEY, b"lock-101", NONCE, 0, 7) == unhexlify(
        "13769d1ff9ca1c1b443a48b30eb98bb3")


def test_answer_layout_is_cred_action_nonce_tag():
    a = phone.make_answer(KEY, LOCK, NONCE, phone.ACTION_UNLOCK, "c-17")
    assert len(a) == phone.ANSWER_LEN == 50
    assert a[:17] == phone.encode_cred("c-17")
    assert a[17] == 2
    assert a[18:34] == NONCE
    assert a[34:] == unhexlify("d0004e80ae755bc2d0ac654dcd46aeed")


def test_a_fresh_authentic_answer_is_decided_and_the_reply_verifies():
    a = auth()
    calls = []
    a.challenge(NONCE, 1000)
    assert a.pending(1000)
    ans = phone.make_answer(KEY, LOCK, NONCE, phone.ACTION_UNLOCK, "c-17")
    result, action, cred_id, reply = a.answer(ans, 3000, deciding(calls))
    assert (result, action, cred_id) == (phone.R_OK, 2, "c-17")
    assert calls == [(2, "c-17")]
    assert len(reply) == phone.REPLY_LEN == 21
    res, seq, good = phone.read_reply(KEY, LOCK, NONCE, reply)
    assert (res, good) == (0, True)
    assert seq == 1
    assert not a.pending(3000)


def test_the_decision_may_give_the_seq_and_refuse():
    a = auth()
    a.challenge(NONCE, 0)
    ans = phone.make_answer(KEY, LOCK, NONCE, phone.ACTION_LOCK, "c-17")
    result, _, _, reply = a.answer(ans, 10, lambda action, cred: (2, 77))
    assert result == 2  # outside_schedule, as ACCESS reasons
    assert phone.read_reply(KEY, LOCK, NONCE, reply) == (2, 77, True)
    assert reply[:5] == struct.pack(">BI", 2, 77)


def test_a_recorded_answer_cannot_be_replayed():
    a = auth()
    calls = []
    a.challenge(NONCE, 0)
    ans = phone.make_answer(KEY, LOCK, NONCE, phone.ACTION_UNLOCK, "c-17")
    assert a.answer(ans, 100, deciding(calls))[0] == phone.R_OK
    assert a.answer(ans, 200, deciding(calls))[0] == phone.R_NO_CHALLENGE
    a.challenge(NONCE2, 300)  # a new challenge does not revive the old answer
    result, _, _, reply = a.answer(ans, 400, deciding(calls))
    assert result == phone.R_NO_CHALLENGE
    assert calls == [(2, "c-17")]
    # the refusal is the lock's (tagged over the nonce the phone sent)
    assert phone.read_reply(KEY, LOCK, NONCE, reply)[2]


def test_an_expired_nonce_is_refused_and_consumed():
    a = auth()
    calls = []
    a.challenge(NONCE, 5000)
    assert a.pending(14999)
    assert not a.pending(15000)
    ans = phone.make_answer(KEY, LOCK, NONCE, phone.ACTION_UNLOCK, "c-17")
    result, _, _, reply = a.answer(ans, 5000 + 11000, deciding(calls))
    assert result == phone.R_EXPIRED
    assert calls == []
    assert phone.read_reply(KEY, LOCK, NONCE, reply) == (phone.R_EXPIRED, 1, True)
    assert a.answer(ans, 5000 + 11001, deciding(calls))[0] == phone.R_NO_CHALLENGE


def test_expiry_is_measured_across_the_ticks_wrap():
    a = auth()
    start = (1 << 30) - 2000
    a.challenge(NONCE, start)
    assert a.pending(3000)           # 5 s later, after the wrap
    assert not a.pending(8000)       # 10 s later
    ans = phone.make_answer(KEY, LOCK, NONCE, phone.ACTION_UNLOCK, "c-17")
    assert a.answer(ans, 7999, deciding([]))[0] == phone.R_OK


def test_a_wrong_key_is_refused_untagged_and_consumes_the_nonce():
    a = auth()
    calls = []
    a.challenge(NONCE, 0)
    bad = phone.make_answer(OTHER, LOCK, NONCE, phone.ACTION_UNLOCK, "c-17")
    result, _, cred_id, reply = a.answer(bad, 10, deciding(calls))
    assert (result, cred_id) == (phone.R_BAD_TAG, "c-17")
    assert reply == struct.pack(">BI", phone.R_BAD_TAG, 0) + bytes(16)
    good = phone.make_answer(KEY, LOCK, NONCE, phone.ACTION_UNLOCK, "c-17")
    assert a.answer(good, 20, deciding(calls))[0] == phone.R_NO_CHALLENGE
    assert calls == []


def test_an_answer_for_another_lock_is_refused():
    a = auth()
    a.challenge(NONCE, 0)
    other = phone.make_answer(KEY, "lock-102", NONCE, phone.ACTION_UNLOCK, "c-17")
    assert a.answer(other, 10, deciding([]))[0] == phone.R_BAD_TAG


def test_a_tampered_action_or_credential_is_refused():
    a = auth({"c-17": KEY, "c-18": KEY})
    for i in (17, 1):
        a.challenge(NONCE, 0)
        ans = bytearray(phone.make_answer(KEY, LOCK, NONCE, phone.ACTION_LOCK, "c-17"))
        ans[i] = 2 if i == 17 else ord("c")
        if i == 1:
            ans[4] = ord("8")  # c-18: another credential with the same key
        assert a.answer(bytes(ans), 10, deciding([]))[0] == phone.R_BAD_TAG


def test_a_revoked_or_unknown_credential_is_refused():
    table = {"c-17": KEY}
    a = phone.PhoneAuth(LOCK, keys(table))
    a.challenge(NONCE, 0)
    del table["c-17"]  # revoked after the challenge
    ans = phone.make_answer(KEY, LOCK, NONCE, phone.ACTION_UNLOCK, "c-17")
    result, _, cred_id, reply = a.answer(ans, 10, deciding([]))
    assert (result, cred_id) == (phone.R_UNKNOWN_CREDENTIAL, "c-17")
    assert reply[5:] == bytes(16)
    assert not a.pending(10)


def test_malformed_answers_are_refused_and_consume_the_nonce():
    a = auth()
    good = phone.make_answer(KEY, LOCK, NONCE, phone.ACTION_UNLOCK, "c-17")
    bad_pad = bytearray(good)
    bad_pad[10] = 1
    bad_n = bytearray(good)
    bad_n[0] = 17
    bad_char = bytearray(good)
    bad_char[2] = ord("!")
    bad_action = bytearray(good)
    bad_action[17] = 3
    for data in (good[:-1], good + b"\x00", b"", bytes(bad_pad), bytes(bad_n),
                 bytes(bad_char), bytes(bad_action)):
        a.challenge(NONCE, 0)
        result, action, cred_id, reply = a.answer(data, 10, deciding([]))
        assert result == phone.R_BAD_FORMAT, data
        assert reply == struct.pack(">BI", phone.R_BAD_FORMAT, 0) + bytes(16)
        assert not a.pending(10)


def test_an_answer_without_a_challenge_is_refused():
    a = auth()
    ans = phone.make_answer(KEY, LOCK, NONCE, phone.ACTION_UNLOCK, "c-17")
    assert a.answer(ans, 0, deciding([]))[0] == phone.R_NO_CHALLENGE


def test_a_new_challenge_replaces_the_old_one():
    a = auth()
    a.challenge(NONCE, 0)
    a.challenge(NONCE2, 10)
    old = phone.make_answer(KEY, LOCK, NONCE, phone.ACTION_UNLOCK, "c-17")
    assert a.answer(old, 20, deciding([]))[0] == phone.R_NO_CHALLENGE
    a.challenge(NONCE2, 30)
    new = phone.make_answer(KEY, LOCK, NONCE2, phone.ACTION_UNLOCK, "c-17")
    assert a.answer(new, 40, deciding([]))[0] == phone.R_OK


def test_a_tampered_reply_does_not_verify():
    a = auth()
    a.challenge(NONCE, 0)
    ans = phone.make_answer(KEY, LOCK, NONCE, phone.ACTION_UNLOCK, "c-17")
    reply = bytearray(a.answer(ans, 10, deciding([]))[3])
    for i in (0, 4, 20):
        t = bytearray(reply)
        t[i] ^= 1
        assert not phone.read_reply(KEY, LOCK, NONCE, bytes(t))[2]
    assert not phone.read_reply(KEY, LOCK, NONCE2, bytes(reply))[2]  # another exchange's


def test_credential_ids_are_checked():
    for bad in ("", "a" * 17, "a b", "é"):
        try:
            phone.encode_cred(bad)
        except phone.PhoneError:
            continue
        raise AssertionError(bad)
    assert phone.decode_cred(phone.encode_cred("L:pin:3")) == "L:pin:3"
    assert phone.decode_cred(phone.encode_cred("A" * 16)) == "A" * 16
