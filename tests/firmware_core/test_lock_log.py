"""The lock's event log offline (docs/smart_lock.md, "Event log"): at the
lock's queue size (65,536 B) at least 1,000 ACCESS frames wait in flash, in
order, through a reboot, and each leaves the queue once; a full queue refuses
the next frame and keeps the oldest. Plain functions and asserts: runs under
CPython and real MicroPython."""
from anju import frame, pqueue
from anju.lock import wire

KEY = bytes(range(32))
DEV = b"lock-101"
LOCK_QUEUE_BYTES = 65536  # the simulator's and the deployed lock's queue_bytes


def access(n):
    body = wire.access_body(wire.M_CARD, wire.UNLOCKED, wire.R_OK, 0, 3, n, b"c-17")
    return frame.encode(KEY, DEV, wire.T_ACCESS, n, 849916800 + n, body)


def test_a_thousand_openings_wait_offline_in_order_and_leave_once():
    st = pqueue.MemoryStorage()
    q = pqueue.PersistentQueue(st, "q", max_bytes=LOCK_QUEUE_BYTES)
    n = 0
    while True:
        try:
            q.push(access(n + 1))
        except pqueue.QueueFull:
            break
        n += 1
    assert n >= 1000, n
    assert len(access(1)) == 54  # 11 header + 27 body + 16 tag
    q = pqueue.PersistentQueue(st, "q", max_bytes=LOCK_QUEUE_BYTES)  # a reboot
    assert len(q) == n
    seen = 0
    while len(q):
        for f in q.peek(8):
            seen += 1
            assert frame.header(f)[1] == seen  # the counter: in order, none twice
        q.pop(len(q.peek(8)))
    assert seen == n
    q.push(access(n + 1))  # room again once delivered
    assert len(q) == 1
