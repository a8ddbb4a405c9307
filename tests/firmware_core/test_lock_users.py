"""The lock's user and credential table (anju.lock.users): users, credentials,
results (duplicate, full, unknown_user), lookup, capacity, the flash files and
the detection of torn or corrupt ones, and the memory a full table holds.

Plain functions and asserts so the same file runs under CPython (pytest) and
under MicroPython (unix-port harness).
"""
import gc
import sys

from anju.lock import users, wire

CK = bytes(range(32))


def digest(i):
    return wire.pin_digest(CK, "%06d" % i)


def with_user(max_users=100, max_credentials=200):
    t = users.Table(max_users, max_credentials)
    assert t.set_user(1, wire.U_UNRESTRICTED) == wire.RES_OK
    return t


def test_record_sizes():
    assert users.USER_REC == 22 and users.CRED_REC == 35
    t = users.Table()
    assert len(t.users) == 100 * 22
    assert len(t.creds) == 200 * 35
    assert len(t.index) == 512 * 2
    assert t.record_bytes() == 2200 + 7000 + 1024
    assert len(t.dump_users()) == 2200 + 12
    assert len(t.dump_credentials()) == 7000 + 12
    small = users.Table(max_users=10, max_credentials=20)
    assert small.record_bytes() == 220 + 700 + 128


def test_users_set_read_remove():
    t = users.Table(max_users=5)
    assert t.user(1) is None and not t.has_user(1)
    assert t.set_user(2, wire.U_WEEK_DAY, 0x1F, 480, 1020, 10, 20, 0) == wire.RES_OK
    assert t.user(2) == (users.US_PRESENT, wire.U_WEEK_DAY, 0x1F, 480, 1020, 10, 20, 0, 0)
    assert t.set_user(6, wire.U_UNRESTRICTED) == wire.RES_BAD_VALUE
    assert t.set_user(0, wire.U_UNRESTRICTED) == wire.RES_BAD_VALUE
    assert t.user_count() == 1 and t.free_user() == 1
    assert t.remove_user(3) == (wire.RES_UNKNOWN_USER, 0)
    assert t.remove_user(2) == (wire.RES_OK, 0)
    assert t.user(2) is None


def test_replacing_a_user_keeps_one_time_use_unless_the_type_changes():
    t = with_user()
    t.set_user(1, wire.U_ONE_TIME)
    t.mark_used(1)
    t.set_user(1, wire.U_ONE_TIME, frm=5)
    assert t.user(1)[0] & users.US_USED
    t.set_user(1, wire.U_UNRESTRICTED)
    assert not t.user(1)[0] & users.US_USED
    t.set_user(1, wire.U_EXPIRING, expire_min=10)
    t.start_expiry(1, 12345)
    assert t.user(1)[0] & users.US_STARTED and t.user(1)[8] == 12345


def test_credentials_set_find_remove():
    t = with_user()
    assert t.set_credential(1, wire.K_PIN, b"p-1", digest(1)) == wire.RES_OK
    assert t.set_credential(1, wire.K_CARD, b"c-1", digest(1)) == wire.RES_OK  # other kind
    s = t.find(wire.K_PIN, digest(1))
    assert s >= 0 and t.credential(s) == (wire.K_PIN, 1, b"p-1")
    assert t.credential_data(s) == digest(1)
    assert t.find(wire.K_PIN, digest(2)) == -1
    assert t.find(wire.K_FINGERPRINT, digest(1)) == -1
    assert t.find_id(b"c-1") == t.find(wire.K_CARD, digest(1))
    assert t.remove_credential(b"p-1") == (wire.RES_OK, 1)
    assert t.find(wire.K_PIN, digest(1)) == -1
    assert t.find(wire.K_CARD, digest(1)) >= 0
    assert t.remove_credential(b"p-1") == (wire.RES_UNKNOWN_CREDENTIAL, 0)


def test_credential_results():
    t = with_user()
    assert t.set_credential(2, wire.K_PIN, b"p-1", digest(1)) == wire.RES_UNKNOWN_USER
    assert t.set_credential(1, wire.K_PIN, b"p-1", digest(1)) == wire.RES_OK
    assert t.set_credential(1, wire.K_PIN, b"p-2", digest(1)) == wire.RES_DUPLICATE
    # the same id again: a replacement, not a duplicate
    assert t.set_credential(1, wire.K_PIN, b"p-1", digest(1)) == wire.RES_OK
    assert t.set_credential(1, wire.K_PIN, b"p-1", digest(3)) == wire.RES_OK
    assert t.find(wire.K_PIN, digest(1)) == -1 and t.find(wire.K_PIN, digest(3)) >= 0
    assert t.credential_count() == 1
    assert t.set_credential(1, wire.K_FACE, b"f-1", bytes(16)) == wire.RES_BAD_VALUE
    assert t.set_credential(1, 9, b"x-1", bytes(16)) == wire.RES_BAD_VALUE
    assert t.set_credential(1, wire.K_PIN, b"", digest(4)) == wire.RES_BAD_VALUE
    assert t.set_credential(1, wire.K_PIN, b"p-4", digest(4)[:15]) == wire.RES_BAD_VALUE


def test_removing_a_user_removes_its_credentials():
    t = with_user()
    t.set_user(2, wire.U_UNRESTRICTED)
    for i in range(5):
        t.set_credential(1 + i % 2, wire.K_PIN, b"p-%d" % i, digest(i))
    assert t.remove_user(1) == (wire.RES_OK, 3)
    assert t.credential_count() == 2
    for i in range(5):
        assert (t.find(wire.K_PIN, digest(i)) >= 0) == (i % 2 == 1), i


def test_capacity_full_and_every_credential_found():
    t = users.Table(max_users=3, max_credentials=50)
    for u in (1, 2, 3):
        t.set_user(u, wire.U_UNRESTRICTED)
    assert t.free_user() == 0
    assert t.set_user(4, wire.U_UNRESTRICTED) == wire.RES_BAD_VALUE
    for i in range(50):
        assert t.set_credential(1 + i % 3, wire.K_PIN, b"p-%d" % i, digest(i)) == wire.RES_OK, i
    assert t.set_credential(1, wire.K_PIN, b"p-50", digest(50)) == wire.RES_FULL
    assert t.set_credential(1, wire.K_PIN, b"p-51", digest(0)) == wire.RES_DUPLICATE
    for i in range(50):
        assert t.credential(t.find(wire.K_PIN, digest(i)))[2] == b"p-%d" % i
    assert t.remove_credential(b"p-7")[0] == wire.RES_OK
    assert t.set_credential(2, wire.K_PIN, b"p-50", digest(50)) == wire.RES_OK
    for i in range(51):
        assert (t.find(wire.K_PIN, digest(i)) >= 0) == (i != 7), i


def test_fingerprint_ids_with_colliding_buckets_are_all_found():
    # template ids that share the first data byte land in neighbouring buckets
    t = with_user(max_credentials=20)
    for tid in range(0, 20 * 256, 256):
        assert t.set_credential(1, wire.K_FINGERPRINT, b"f-%d" % tid,
                                wire.fingerprint_data(tid)) == wire.RES_OK
    for tid in range(0, 20 * 256, 256):
        assert t.find(wire.K_FINGERPRINT, wire.fingerprint_data(tid)) >= 0
    assert t.find(wire.K_FINGERPRINT, wire.fingerprint_data(1)) == -1


def test_files_round_trip():
    t = with_user()
    t.set_user(7, wire.U_WEEK_DAY, 0x60, 600, 1200, 0, 0, 0)
    t.set_credential(7, wire.K_CARD, b"c-7", digest(7))
    t.set_credential(1, wire.K_PIN, b"p-1", digest(1))
    u, c = t.dump_users(), t.dump_credentials()
    t2 = users.Table()
    t2.load_users(u)
    t2.load_credentials(c)
    assert t2.users == t.users and t2.creds == t.creds
    assert t2.credential(t2.find(wire.K_CARD, digest(7))) == (wire.K_CARD, 7, b"c-7")
    # a bigger table loads the smaller file; a smaller one only if the rest is free
    big = users.Table(max_users=150, max_credentials=300)
    big.load_users(u)
    big.load_credentials(c)
    assert big.find(wire.K_PIN, digest(1)) >= 0
    small = users.Table(max_users=10, max_credentials=20)
    small.load_credentials(c)
    try:
        users.Table(max_users=5).load_users(u)
    except users.TableError as exc:
        assert exc.reason == "too_many_records"
    else:
        assert False, "user 7 loaded into a 5-user table"


def _reason(fn, blob):
    try:
        fn(blob)
    except users.TableError as exc:
        return exc.reason
    return None


def test_torn_and_corrupt_files_are_refused_and_leave_the_table_alone():
    t = with_user()
    t.set_credential(1, wire.K_PIN, b"p-1", digest(1))
    u, c = t.dump_users(), t.dump_credentials()
    target = users.Table()
    target.set_user(3, wire.U_DISABLED)
    before = bytes(target.users)
    flipped = bytearray(u)
    flipped[30] ^= 0x40
    bad_crc = bytearray(c)
    bad_crc[-1] ^= 1
    cases = (
        (target.load_users, None, "truncated"),
        (target.load_users, b"", "truncated"),
        (target.load_users, u[:-1], "truncated"),
        (target.load_users, u[:len(u) // 2], "truncated"),
        (target.load_users, u + b"\x00", "truncated"),
        (target.load_users, bytes(flipped), "bad_crc"),
        (target.load_users, c, "bad_magic"),
        (target.load_credentials, u, "bad_magic"),
        (target.load_credentials, bytes(bad_crc), "bad_crc"),
        (target.load_users, b"LKU1\x00\x01\x00\x23" + bytes(35 + 4), "bad_record_size"),
    )
    for fn, blob, reason in cases:
        assert _reason(fn, blob) == reason, reason
    assert bytes(target.users) == before


def test_records_that_pass_the_crc_but_make_no_sense_are_refused():
    import binascii
    import struct
    body = bytearray(22)
    body[0] = users.US_PRESENT
    body[1] = 9  # no such user type
    head = b"LKU1" + struct.pack(">HH", 1, 22)
    blob = head + bytes(body)
    blob += struct.pack(">I", binascii.crc32(blob) & 0xFFFFFFFF)
    assert _reason(users.Table().load_users, blob) == "bad_record"


def test_orphaned_credentials_are_dropped_after_a_users_fallback():
    t = with_user()
    t.set_user(2, wire.U_UNRESTRICTED)
    t.set_credential(1, wire.K_PIN, b"p-1", digest(1))
    t.set_credential(2, wire.K_PIN, b"p-2", digest(2))
    fresh = users.Table()
    fresh.set_user(2, wire.U_UNRESTRICTED)  # the users file fell back to an older copy
    fresh.load_credentials(t.dump_credentials())
    assert fresh.drop_orphans() == 1
    assert fresh.find(wire.K_PIN, digest(1)) == -1 and fresh.find(wire.K_PIN, digest(2)) >= 0


def test_a_full_default_table_fits_the_heap():
    """100 users and 200 credentials: what the table holds once built."""
    gc.collect()
    before = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    t = users.Table()
    for u in range(1, 101):
        t.set_user(u, wire.U_WEEK_DAY, 0x1F, 420, 1320, 0, 0, 0)
    for i in range(200):
        assert t.set_credential(1 + i % 100, wire.K_PIN, b"L:pin:%d" % i, digest(i)) == wire.RES_OK
    gc.collect()
    held = (gc.mem_alloc() - before) if hasattr(gc, "mem_alloc") else t.record_bytes()
    for i in range(0, 200, 7):
        assert t.find(wire.K_PIN, digest(i)) >= 0
    if sys.implementation.name == "micropython":
        # raw buffers cost the same on the 64-bit port as on the board
        assert held < 12 * 1024, held
    assert t.record_bytes() == 10224
