"""Persistent frame queue (anju.pqueue) over MemoryStorage: order, reboots,
torn tails, the size limit and compaction.

Plain functions and asserts so the same file runs under CPython (pytest) and
under MicroPython (unix-port harness). A "reboot" is a new
PersistentQueue over the same storage object.
"""
import struct

from anju import pqueue


def frames(n, size=20, start=0):
    return [bytes([(start + i) & 0xFF]) * size for i in range(n)]


def fresh(max_bytes=16384):
    st = pqueue.MemoryStorage()
    return st, pqueue.PersistentQueue(st, "q", max_bytes=max_bytes)


def record_len(f):
    return 1 + len(f) + 4


def test_push_peek_pop_order():
    st, q = fresh()
    a, b, c = frames(3)
    assert len(q) == 0 and q.peek() == []
    for f in (a, b, c):
        q.push(f)
    assert len(q) == 3
    assert q.peek() == [a]
    assert q.peek(2) == [a, b]
    assert q.peek(10) == [a, b, c]
    q.pop()
    assert q.peek(10) == [b, c]
    q.pop(0)
    q.pop(-1)
    assert q.peek(10) == [b, c]
    q.pop(2)
    assert len(q) == 0


def test_push_copies_the_frame():
    st, q = fresh()
    buf = bytearray(b"abc")
    q.push(buf)
    buf[0] = 0x7A
    assert q.peek() == [b"abc"]


def test_survives_reboot_in_order():
    st, q = fresh()
    fs = frames(5, size=30)
    for f in fs:
        q.push(f)
    q2 = pqueue.PersistentQueue(st, "q")
    assert len(q2) == 5
    assert q2.peek(10) == fs


def test_pop_persists_the_head():
    st, q = fresh()
    fs = frames(4)
    for f in fs:
        q.push(f)
    q.pop(2)
    assert struct.unpack(">I", st.read("q.h"))[0] == 2 * record_len(fs[0])
    q2 = pqueue.PersistentQueue(st, "q")
    assert q2.peek(10) == fs[2:]
    q2.pop()
    q3 = pqueue.PersistentQueue(st, "q")
    assert q3.peek(10) == fs[3:]


def test_queues_with_different_names_are_separate():
    st = pqueue.MemoryStorage()
    a = pqueue.PersistentQueue(st, "a")
    b = pqueue.PersistentQueue(st, "b")
    a.push(b"one")
    b.push(b"two")
    assert pqueue.PersistentQueue(st, "a").peek(5) == [b"one"]
    assert pqueue.PersistentQueue(st, "b").peek(5) == [b"two"]


def test_partial_record_at_tail_is_dropped_on_load():
    fs = frames(3)
    for cut in (1, 2, record_len(fs[0]) - 1):
        st, q = fresh()
        for f in fs:
            q.push(f)
        # a power cut in the middle of the next append
        st.append("q.d", pqueue.encode_record(b"\x99" * 20)[:cut])
        q2 = pqueue.PersistentQueue(st, "q")
        assert q2.peek(10) == fs, cut
        # the torn bytes are gone from flash
        assert st.read("q.d") == b"".join(pqueue.encode_record(f) for f in fs)
        q2.push(b"new")
        q3 = pqueue.PersistentQueue(st, "q")
        assert q3.peek(10) == fs + [b"new"], cut


def test_corrupt_crc_ends_queue_and_keeps_valid_prefix():
    fs = frames(4)
    st, q = fresh()
    for f in fs:
        q.push(f)
    data = bytearray(st.read("q.d"))
    # last byte of the third record's CRC
    pos = 3 * record_len(fs[0]) - 1
    data[pos] ^= 0xFF
    st.write("q.d", data)
    q2 = pqueue.PersistentQueue(st, "q")
    assert q2.peek(10) == fs[:2]
    q2.push(b"after")
    assert pqueue.PersistentQueue(st, "q").peek(10) == fs[:2] + [b"after"]


def test_corrupt_frame_byte_is_detected_by_crc():
    fs = frames(2)
    st, q = fresh()
    for f in fs:
        q.push(f)
    data = bytearray(st.read("q.d"))
    data[record_len(fs[0]) + 5] ^= 0x01  # inside the second frame
    st.write("q.d", data)
    assert pqueue.PersistentQueue(st, "q").peek(10) == fs[:1]


def test_torn_tail_after_pops_keeps_unsent_frames_only():
    fs = frames(4)
    st, q = fresh()
    for f in fs:
        q.push(f)
    q.pop(1)
    st.append("q.d", b"\x14\x01\x02")
    q2 = pqueue.PersistentQueue(st, "q")
    assert q2.peek(10) == fs[1:]
    q2.push(b"x")
    assert pqueue.PersistentQueue(st, "q").peek(10) == fs[1:] + [b"x"]


def test_head_beyond_data_resends_everything_rather_than_losing_frames():
    st, q = fresh()
    q.push(b"abc")
    st.write("q.h", struct.pack(">I", 10000))
    q2 = pqueue.PersistentQueue(st, "q")
    # a corrupt head must not drop a stored frame: the hub de-duplicates by counter
    assert q2.peek(5) == [b"abc"]
    q2.push(b"def")
    assert pqueue.PersistentQueue(st, "q").peek(5) == [b"abc", b"def"]


def test_queue_full_keeps_everything_stored():
    f = bytes(95)  # 100-byte records
    st, q = fresh(max_bytes=350)
    for _ in range(3):
        q.push(f)
    before = st.read("q.d")
    try:
        q.push(f)
    except pqueue.QueueFull:
        pass
    else:
        raise AssertionError("pushed beyond max_bytes")
    assert len(q) == 3
    assert st.read("q.d") == before
    assert pqueue.PersistentQueue(st, "q", max_bytes=350).peek(5) == [f, f, f]
    # a record that exactly fills the limit still fits
    q.push(bytes(45))
    assert len(q) == 4


def test_queue_full_counts_only_unsent_bytes():
    f = bytes(95)
    st, q = fresh(max_bytes=300)
    for _ in range(3):
        q.push(f)
    q.pop(2)
    # two records were sent: room for two more (compaction drops the sent ones)
    q.push(b"\x01" * 95)
    q.push(b"\x02" * 95)
    assert q.peek(5) == [f, b"\x01" * 95, b"\x02" * 95]
    assert pqueue.PersistentQueue(st, "q", max_bytes=300).peek(5) == q.peek(5)


def test_compaction_bounds_flash_and_keeps_content():
    st, q = fresh(max_bytes=400)
    expected = []
    biggest = 0
    n = 0
    for round_no in range(60):
        for _ in range(3):
            f = bytes([n & 0xFF]) * 15
            n += 1
            q.push(f)
            expected.append(f)
        # keep a backlog of two unsent frames across rounds
        q.pop(len(expected) - 2)
        del expected[:-2]
        biggest = max(biggest, len(st.read("q.d")))
        assert q.peek(100) == expected, round_no
    # 180 records of 20 bytes went through a 400-byte queue
    assert biggest <= 400, biggest
    assert expected == [bytes([178]) * 15, bytes([179]) * 15]
    rebooted = pqueue.PersistentQueue(st, "q", max_bytes=400)
    assert rebooted.peek(100) == expected


def test_empty_queue_removes_its_files():
    st, q = fresh()
    q.push(b"a")
    q.push(b"b")
    assert "q.d" in st.files
    q.pop(1)
    assert "q.h" in st.files
    q.pop(1)
    assert "q.d" not in st.files and "q.h" not in st.files
    assert len(pqueue.PersistentQueue(st, "q")) == 0
    # popping more than stored empties the queue too
    q.push(b"c")
    q.pop(5)
    assert st.files == {}


def test_record_encoding():
    rec = pqueue.encode_record(b"hello")
    assert rec[0] == 5 and rec[1:6] == b"hello"
    assert struct.unpack(">I", rec[6:])[0] == 0x3610A686  # CRC-32 of "hello"
    assert len(pqueue.encode_record(bytes(255))) == 260


def test_record_encode_rejects_empty_and_long_frames():
    for bad in (b"", bytes(256), bytes(300)):
        try:
            pqueue.encode_record(bad)
        except ValueError:
            pass
        else:
            raise AssertionError("encoded a %d-byte frame" % len(bad))
    st, q = fresh()
    try:
        q.push(b"")
    except ValueError:
        pass
    else:
        raise AssertionError("pushed an empty frame")
    assert len(q) == 0 and st.files == {}


def test_scan_stops_at_zero_length_record():
    data = pqueue.encode_record(b"ab") + b"\x00" + pqueue.encode_record(b"cd")
    records, end = pqueue.scan(data, 0)
    assert records == [(0, b"ab")]
    assert end == record_len(b"ab")
    # zeroed flash: a zero length followed by the (valid) CRC-32 of nothing
    zeroed = pqueue.encode_record(b"ab") + bytes(5) + pqueue.encode_record(b"cd")
    assert pqueue.scan(zeroed, 0) == ([(0, b"ab")], record_len(b"ab"))


def test_scan_from_an_offset():
    data = pqueue.encode_record(b"ab") + pqueue.encode_record(b"cde")
    assert pqueue.scan(data, record_len(b"ab")) == ([(record_len(b"ab"), b"cde")], len(data))
    assert pqueue.scan(data, len(data)) == ([], len(data))


class _SecondWriteCut(pqueue.MemoryStorage):
    """Flash where power is lost between the two file replacements of a
    compaction: the head is rewritten, the new data file never replaces the old."""

    def __init__(self):
        pqueue.MemoryStorage.__init__(self)
        self.cut = False

    def rename(self, old, new):
        if self.cut:
            raise OSError(5, "power lost")
        pqueue.MemoryStorage.rename(self, old, new)


def test_power_cut_during_compaction_loses_nothing():
    st = _SecondWriteCut()
    q = pqueue.PersistentQueue(st, "q", max_bytes=300)
    frames = [bytes([1]) * 95, bytes([2]) * 40, bytes([3]) * 95]
    for f in frames:
        q.push(f)
    q.pop(1)
    st.cut = True  # power lost in the middle of the compaction the next push starts
    try:
        q.push(bytes([4]) * 95)
    except OSError:
        pass
    else:
        raise AssertionError("the cut write should have failed")
    st.cut = False
    after = pqueue.PersistentQueue(st, "q", max_bytes=300).peek(10)
    # nothing unsent is lost; the acknowledged first frame may come again
    assert after[-2:] == frames[1:], after
