"""`anju release keygen/build/verify` as an operator runs them (subprocesses),
and the device's verifier on real MicroPython against what `cryptography`
signs: random messages verify, flipped bits, other keys, truncated and
non-canonical signatures do not; a release built by `anju release build` is
accepted by the device's checks and refused when signed by another key, older
than the running version, or with a file changed on the way."""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.firmware_core import mp_harness
from tests.firmware_core.test_ed25519 import RFC8032_7_1

REPO = Path(__file__).resolve().parents[2]
ANJU = REPO / ".venv" / "bin" / "anju"
L = 2 ** 252 + 27742317777372353535851937790883648493


def anju(*args, cwd=None):
    return subprocess.run([str(ANJU), *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=False, cwd=cwd)


def raw_pub(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A key and a door_sensor 1.2.0 release made with the CLI."""
    base = tmp_path_factory.mktemp("release")
    keys = base / "keys"
    out = anju("release", "keygen", "--out", keys)
    assert out.returncode == 0, out.stderr
    pub = out.stdout.strip().splitlines()[-1]
    rel = base / "rel"
    out = anju("release", "build", "--app", "door_sensor", "--version", "1.2.0",
               "--key", keys / "release.key", "--out", rel)
    assert out.returncode == 0, out.stderr
    return keys, pub, rel, out.stdout


def test_rfc8032_table_matches_cryptography():
    """The vectors the device tests use are the RFC's: cryptography derives the
    same public keys and (deterministic) signatures from the secrets."""
    for name, secret, public, message, signature in RFC8032_7_1:
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))
        assert raw_pub(key).hex() == public, name
        assert key.sign(bytes.fromhex(message)).hex() == signature, name


def test_keygen_writes_a_private_file_and_prints_only_the_public_key(released):
    keys, pub, _rel, _ = released
    key_file = keys / "release.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert raw_pub(key).hex() == pub == (keys / "release.pub").read_text().strip()
    assert len(pub) == 64
    private_raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
    # run it again into a new dir and look at everything it prints
    out = anju("release", "keygen", "--out", keys.parent / "keys2")
    text = out.stdout + out.stderr
    key2 = serialization.load_pem_private_key((keys.parent / "keys2" / "release.key").read_bytes(),
                                              password=None)
    secret2 = key2.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
    assert "PRIVATE" not in text and secret2.hex() not in text and private_raw.hex() not in text
    again = anju("release", "keygen", "--out", keys)
    assert again.returncode == 2 and "never overwritten" in again.stderr
    assert key_file.read_bytes() == serialization.load_pem_private_key(
        key_file.read_bytes(), password=None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def test_build_and_verify(released):
    keys, pub, rel, build_out = released
    assert "door_sensor 1.2.0" in build_out
    manifest = json.loads((rel / "manifest.json").read_text())
    paths = [f["path"] for f in manifest["files"]]
    assert "app.mpy" in paths and "lib/anju/door.mpy" in paths and "lib/anju/shell/hw.mpy" in paths
    assert manifest["mpy"] == "6.3" and manifest["ports"] == ["esp32", "rp2"]
    assert (rel / "files" / "app.mpy").read_bytes()[:2] == b"M\x06"
    out = anju("release", "verify", rel, "--pubkey", pub)
    assert out.returncode == 0, out.stderr
    assert "verified" in out.stdout
    assert pub in (rel / "manifest.json").read_text()
    # the same sources make the same files (only the signature is new)
    again = anju("release", "build", "--app", "door_sensor", "--version", "1.2.0",
                 "--key", keys / "release.key", "--out", rel.parent / "rel-again")
    assert again.returncode == 0, again.stderr
    assert json.loads((rel.parent / "rel-again" / "manifest.json").read_text()) == manifest
    busy = anju("release", "build", "--app", "door_sensor", "--version", "1.2.1",
                "--key", keys / "release.key", "--out", rel)
    assert busy.returncode == 2 and "not empty" in busy.stderr


def _copy(rel, tmp_path, name):
    dest = tmp_path / name
    shutil.copytree(rel, dest)
    return dest


@pytest.mark.parametrize("damage, reason", [
    ("file", "does not match its SHA-256"),
    ("truncated_file", "bytes, the manifest says"),
    ("missing_file", "No such file"),
    ("extra_file", "files not in the manifest"),
    ("manifest_bit", "signature does not verify"),
    ("truncated_manifest", "signature does not verify"),
    ("short_manifest", "truncated"),
    ("other_key", "signature does not verify"),
])
def test_verify_refuses_damage(released, tmp_path, damage, reason):
    _keys, pub, rel, _ = released
    bad = _copy(rel, tmp_path, damage)
    target = bad / "files" / "lib" / "anju" / "door.mpy"
    if damage == "file":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 1
        target.write_bytes(bytes(data))
    elif damage == "truncated_file":
        target.write_bytes(target.read_bytes()[:-1])
    elif damage == "missing_file":
        target.unlink()
    elif damage == "extra_file":
        (bad / "files" / "lib" / "anju" / "evil.mpy").write_bytes(b"M\x06")
    elif damage == "manifest_bit":
        data = bytearray((bad / "manifest.bin").read_bytes())
        data[40] ^= 0x10
        (bad / "manifest.bin").write_bytes(bytes(data))
    elif damage == "truncated_manifest":
        (bad / "manifest.bin").write_bytes((bad / "manifest.bin").read_bytes()[:-1])
    elif damage == "short_manifest":
        (bad / "manifest.bin").write_bytes((bad / "manifest.bin").read_bytes()[:40])
    elif damage == "other_key":
        pub = raw_pub(Ed25519PrivateKey.generate()).hex()
    out = anju("release", "verify", bad, "--pubkey", pub)
    assert out.returncode == 1, out
    assert "REFUSED" in out.stderr and reason in out.stderr


def test_build_refuses_a_key_others_can_read_and_bad_input(released, tmp_path):
    keys, _pub, _rel, _ = released
    loose = tmp_path / "loose.key"
    shutil.copy(keys / "release.key", loose)
    os.chmod(loose, 0o644)
    out = anju("release", "build", "--app", "door_sensor", "--version", "1.0.0", "--key", loose,
               "--out", tmp_path / "r1")
    assert out.returncode == 2 and "readable by others" in out.stderr
    assert not (tmp_path / "r1").exists()
    out = anju("release", "build", "--app", "door_sensor", "--version", "1.0", "--key",
               keys / "release.key", "--out", tmp_path / "r2")
    assert out.returncode == 2 and "version" in out.stderr
    out = anju("release", "verify", tmp_path, "--pubkey", "abc")
    assert out.returncode == 2 and "64 hex digits" in out.stderr


GUEST_TESTS = '''
from binascii import unhexlify
from anju.ota import ed25519, manifest
from cases import PUB, OTHER_PUB

DEVICE = {"app": "door_sensor", "port": "rp2", "runtime": (1, 27, 0), "mpy": (6, 3),
          "version": (1, 1, 0)}

def test_cryptography_signatures():
    good = bad = 0
    # one case a line, read as it goes: the whole set is larger than a board's heap
    with open("/input/cases.txt") as f:
        for line in f:
            pub, msg, sig, valid = line.split(" ")
            valid = valid.strip() == "1"
            got = ed25519.verify(unhexlify(pub), unhexlify(msg), unhexlify(sig))
            assert got == valid, (pub, msg, sig, valid)
            good += valid
            bad += not valid
    assert good >= 40 and bad >= 160, (good, bad)

def _blob():
    with open("/input/rel/manifest.bin", "rb") as f:
        return f.read()

def _refused(blob, pub, device):
    try:
        manifest.check_release(blob, unhexlify(pub), device)
    except manifest.ReleaseRefused as exc:
        return str(exc)
    raise AssertionError("accepted")

def test_cli_release_accepted_with_its_files():
    import hashlib
    m = manifest.check_release(_blob(), unhexlify(PUB), DEVICE)
    assert m.version == (1, 2, 0) and len(m.files) > 20
    for entry in m.files:
        with open("/input/rel/files/" + entry[0], "rb") as f:
            data = f.read()
        assert manifest.file_problem(entry, len(data), hashlib.sha256(data).digest()) is None

def test_cli_release_refusals():
    assert "signature refused" in _refused(_blob(), OTHER_PUB, DEVICE)
    newer = dict(DEVICE, version=(2, 0, 0))
    assert "older than the running 2.0.0" in _refused(_blob(), PUB, newer)
    assert "for app door_sensor" in _refused(_blob(), PUB, dict(DEVICE, app="smoke_sensor"))
    assert "this device is unix" in _refused(_blob(), PUB, dict(DEVICE, port="unix"))
    assert "truncated" in _refused(_blob()[:50], PUB, DEVICE)
'''


def _signature_cases(rng):
    """(pub, msg, sig, valid) hex rows: 40 good signatures by cryptography and,
    for each, 4 refusals (flipped bit, other key, truncated, S + L)."""
    rows = []
    other = raw_pub(Ed25519PrivateKey.generate()).hex()
    for i in range(40):
        key = Ed25519PrivateKey.generate()
        pub = raw_pub(key).hex()
        msg = rng.randbytes(rng.choice((0, 1, 31, 64, 111, 112, 128, 500, 1500)))
        sig = key.sign(msg)
        rows.append((pub, msg.hex(), sig.hex(), True))
        flipped = bytearray(sig)
        bit = rng.randrange(512)
        flipped[bit >> 3] ^= 1 << (bit & 7)
        rows.append((pub, msg.hex(), bytes(flipped).hex(), False))
        rows.append((other, msg.hex(), sig.hex(), False))
        rows.append((pub, msg.hex(), sig[:63].hex(), False))
        s = int.from_bytes(sig[32:], "little") + L
        rows.append((pub, msg.hex(), (sig[:32] + s.to_bytes(32, "little")).hex(), False))
    return rows


@pytest.mark.micropython
def test_device_verifier_on_micropython(released, tmp_path):
    _keys, pub, rel, _ = released
    rng = random.Random(20261203)
    module = tmp_path / "test_release_guest.py"
    module.write_text(textwrap.dedent(GUEST_TESTS))
    staged = tmp_path / "staged"
    staged.mkdir()
    mp_harness.stage(module, staged)
    other = raw_pub(Ed25519PrivateKey.generate()).hex()
    (staged / "cases.py").write_text("PUB = %r\nOTHER_PUB = %r\n" % (pub, other))
    (staged / "cases.txt").write_text("".join("%s %s %s %d\n" % (p, m or "", s, v)
                                              for p, m, s, v in _signature_cases(rng)))
    shutil.copytree(rel, staged / "rel")
    names = mp_harness.core_test_names(module)
    run = mp_harness.run_guest(mp_harness.driver_code(module.stem, names), readonly_dir=staged)
    summary = [json.loads(line[len(mp_harness.SUMMARY_PREFIX):]) for line in run.stdout.splitlines()
               if line.startswith(mp_harness.SUMMARY_PREFIX)]
    assert summary, run.stdout + run.stderr
    assert summary[0]["error"] is None and summary[0]["failed"] == [], summary[0]
    assert summary[0]["passed"] == names
