"""The simulated gate reader's side of the protocol (simulator/readers.py,
docs/visitors.md "Gate readers and barriers"): what it signs, which of the
hub's answers it acts on, and that its own implementation and the hub's
(hub/visitors/readers.py) agree on real bytes in both directions. A forged,
tampered, replayed, mismatched or stale answer is ignored and counted, and
never opens."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from hub.visitors import readers as hub_readers
from hub.visitors.settings import Reader
from simulator import readers

KEY = bytes(range(200, 232))
BARRIER = Reader("barrier-east", "barrier", "car-east", KEY)
NOW = 1_764_003_600


def command(**kw: object) -> dict:
    doc = {"reader": BARRIER.id, "counter": 41, "ref": 7, "at": NOW, "open": True,
           "reason": "ok", "valid_s": 10}
    doc.update(kw)
    doc["mac"] = readers.sign(KEY, readers.COMMAND_LABEL, doc)
    return doc


def raw(doc: object) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def test_mac_is_hmac_sha256_over_label_zero_canonical_truncated() -> None:
    """A known answer, written out by hand from docs/visitors.md."""
    doc = {"reader": "barrier-east", "counter": 3, "at": NOW, "kind": "plate",
           "value": "粤BD12345", "direction": "in"}
    text = ('{"at":%d,"counter":3,"direction":"in","kind":"plate","reader":"barrier-east",'
            '"value":"粤BD12345"}' % NOW).encode("utf-8")
    want = hmac.new(KEY, b"anju-visitor-report\x00" + text, hashlib.sha256).digest()[:16].hex()
    assert readers.canonical(dict(doc, mac="x")) == text
    assert readers.sign(KEY, readers.REPORT_LABEL, doc) == want
    assert json.loads(readers.report(BARRIER.id, KEY, 3, NOW + 0.7, "plate", "粤BD12345")) == \
        dict(doc, mac=want)


def test_the_hub_takes_the_peers_report() -> None:
    payload = readers.report(BARRIER.id, KEY, 8, NOW, "plate", "粤BD12345", "out")
    doc = hub_readers.parse_report(BARRIER, payload, 7, NOW + 5)
    assert (doc["counter"], doc["value"], doc["direction"]) == (8, "粤BD12345", "out")
    with pytest.raises(hub_readers.ReportRejected) as exc:
        hub_readers.parse_report(BARRIER, readers.report(BARRIER.id, bytes(32), 9, NOW, "plate",
                                                         "粤BD12345"), 7, NOW)
    assert exc.value.reason == "forged"


def test_the_peer_takes_the_hubs_command() -> None:
    payload = hub_readers.command(BARRIER, 42, 8, NOW + 0.4, True, "ok")
    doc = readers.check_answer(KEY, BARRIER.id, payload, 8, 41, NOW + 3)
    assert (doc["open"], doc["reason"], doc["ref"], doc["counter"]) == (True, "ok", 8, 42)


def test_valid_s_is_honoured_to_the_second() -> None:
    payload = raw(command())
    assert readers.check_answer(KEY, BARRIER.id, payload, 7, 40, NOW + 10)["open"] is True
    with pytest.raises(readers.AnswerIgnored) as exc:
        readers.check_answer(KEY, BARRIER.id, payload, 7, 40, NOW + 10.5)
    assert exc.value.reason == "stale"


def _tampered() -> bytes:
    doc = command(open=False, reason="expired")
    doc["open"], doc["reason"] = True, "ok"  # flipped after signing
    return raw(doc)


@pytest.mark.parametrize(("payload", "pending", "last", "now", "reason"), [
    (raw(dict(command(), mac="00" * 16)), 7, 40, NOW, "forged"),
    (raw(dict(command(), mac=readers.sign(bytes(32), readers.COMMAND_LABEL, command()))),
     7, 40, NOW, "forged"),                                              # another key
    (_tampered(), 7, 40, NOW, "forged"),
    (raw(command()), 7, 41, NOW, "replayed"),                            # the same counter again
    (raw(command()), 7, 50, NOW, "replayed"),                            # an older one
    (raw(command(ref=6)), 7, 40, NOW, "mismatched"),                     # to another report
    (raw(command()), None, 40, NOW, "mismatched"),                       # no report awaits one
    (raw(command(reader="gate-north-qr")), 7, 40, NOW, "mismatched"),
    (raw(command()), 7, 40, NOW + 11, "stale"),
    (raw(command(at=NOW + 30)), 7, 40, NOW, "stale"),                    # stamped in the future
    (b"not json", 7, 40, NOW, "malformed"),
    (raw([1, 2]), 7, 40, NOW, "malformed"),
    (raw({k: v for k, v in command().items() if k != "valid_s"}), 7, 40, NOW, "malformed"),
    (raw(dict(command(), extra=1)), 7, 40, NOW, "malformed"),
    (raw(command(counter=True)), 7, 0, NOW, "malformed"),
    (raw(command(valid_s=3600)), 7, 40, NOW, "malformed"),
    (raw(command(open="yes")), 7, 40, NOW, "malformed"),
    (raw(command(reason="x" * 2000)), 7, 40, NOW, "malformed"),          # too long
])
def test_answers_the_reader_ignores(payload: bytes, pending: int | None, last: int, now: float,
                                    reason: str) -> None:
    with pytest.raises(readers.AnswerIgnored) as exc:
        readers.check_answer(KEY, BARRIER.id, payload, pending, last, now)
    assert exc.value.reason == reason
    assert reason in readers.IGNORE_REASONS


class FixedClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t


def test_the_peer_opens_once_per_report_and_counts_what_it_ignores() -> None:
    """The peer's state without a broker: a report awaits its answer; the
    hub's genuine answer is taken once; the same bytes again, a forged one
    and an answer to an older report are counted and change nothing."""
    clock = FixedClock(NOW)
    peer = readers.ReaderPeer(BARRIER, "lotus", clock, "127.0.0.1", 1, None)
    first = json.loads(peer.next_report("plate", "粤BD12345"))
    assert (first["counter"], peer.pending, peer.directions) == (1, 1, {1: "in"})
    good = hub_readers.command(BARRIER, 100, 1, NOW, True, "ok")
    peer._take(good)
    assert [doc["counter"] for _, doc in peer.answers] == [100] and peer.pending is None
    peer._take(good)                                                     # replayed
    peer.next_report("plate", "粤BD12345", "out")
    peer._take(hub_readers.command(BARRIER, 101, 1, NOW, True, "ok"))   # answers report 1
    forged = json.loads(hub_readers.command(BARRIER, 102, 2, NOW, True, "ok"))
    forged["mac"] = "ab" * 16
    peer._take(raw(forged))
    assert peer.ignored == {"replayed": 1, "mismatched": 1, "forged": 1}
    assert len(peer.answers) == 1 and peer.pending == 2
    clock.t = NOW + 60                                                   # the hub answered late
    peer._take(hub_readers.command(BARRIER, 103, 2, NOW, False, "expired"))
    assert peer.ignored["stale"] == 1 and len(peer.answers) == 1
    # a forged report uses the next counter without spending the reader's own
    assert json.loads(peer.forged_report("plate", "粤BD12345"))["counter"] == 3
    assert json.loads(peer.next_report("plate", "粤BD12345"))["counter"] == 3
