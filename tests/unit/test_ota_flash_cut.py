"""OTA slots on MicroPython's real LittleFS2: a power cut at every block
write of an update always leaves a slot that boots, and the boot selector runs
the chosen slot's app, rolling back one that crashes.

The guest (the MicroPython unix port, ESP32-sized heap) formats a LittleFS2
file system on a RAM block device with the boards' 4 KiB erase blocks cut
down to 512 B (so the image stays small), installs release 1.0.0 in slot a,
and keeps that image. Then, for n = 0, 1, 2, ...: a copy of the image gets a
power cut at its n-th block program or erase (that write is torn: only its
first half lands, as in the simulator's `flash_cut`), and the device runs the
update to 1.1.0 (anju.ota.install, signed here by `cryptography`), the boot
that starts the trial (anju.shell.ota.boot.select) and the app's confirm. The
file system is then mounted afresh and booted twice (no deep-sleep wake, so a
trial in progress rolls back); each boot must pick a slot whose manifest is
there and whose files all match it, with the version the state names, and a
device left on 1.0.0 must take the same update when it is offered again. The
loop ends at the first n the whole sequence survives; the last runs must end
on 1.1.0.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

from simulator import loader
from tests.firmware_core import mp_harness

# The RAM flash images live in the guest's heap (on a board the flash is not
# heap): the guest gets the board's heap plus room for them.
GUEST_HEAP = mp_harness.HEAP_BYTES + 160 * 1024

pytestmark = pytest.mark.micropython

REPO = Path(__file__).resolve().parents[2]
SHELL = REPO / "firmware" / "anju" / "shell"

GUEST = r'''
import json, os, vfs, hashlib
from binascii import unhexlify
from anju.ota import install as ota, manifest, slots
from anju.shell.ota import boot as slot_boot
from anju.shell.ota.store import SlotStore
from anju.shell.ota.fetch import Staged

BS = 512
NBLOCKS = 96

class PowerCut(Exception):
    pass

class RAMFlash:
    """A block device whose power goes at its `cut`-th program or erase."""
    def __init__(self, buf, cut=None):
        self.buf = buf  # used in place: the heap holds two images, not one per run
        self.cut = cut
        self.ops = 0
        self.dead = False

    def _op(self):
        if self.dead:
            raise PowerCut()
        self.ops += 1
        if self.cut is not None and self.ops >= self.cut:
            self.dead = True
            return True
        return False

    def readblocks(self, n, buf, off=0):
        start = n * BS + off
        buf[:] = self.buf[start:start + len(buf)]

    def writeblocks(self, n, buf, off=None):
        off = off or 0
        start = n * BS + off
        torn = self._op()
        data = bytes(buf)
        if torn:
            data = data[:len(data) // 2]
        self.buf[start:start + len(data)] = data
        if torn:
            raise PowerCut()

    def ioctl(self, op, arg):
        if op == 4:
            return NBLOCKS
        if op == 5:
            return BS
        if op == 6:
            torn = self._op()
            start = arg * BS
            end = start + (BS // 2 if torn else BS)
            for i in range(start, end):
                self.buf[i] = 0xFF
            if torn:
                raise PowerCut()
            return 0
        return 0

def read(path):
    with open(path, "rb") as f:
        return f.read()

def files_of(tag):
    out = {}
    for name in read("/input/files-%s.txt" % tag).decode().split():
        out[name] = read("/input/rel-%s/%s" % (tag, name))
    return out

PUB = unhexlify(read("/input/pub.txt").decode().strip())
DEVICE = {"app": "door_sensor", "port": "esp32", "runtime": (1, 27, 0), "mpy": (6, 3)}
OLD = files_of("old")
NEW = files_of("new")
NEW_BLOB = read("/input/rel-new.bin")

def mount(dev):
    fs = vfs.VfsLfs2(dev)
    vfs.mount(fs, "/flash")

def umount():
    try:
        vfs.umount("/flash")
    except OSError:
        pass

def factory_image():
    dev = RAMFlash(bytearray(b"\xff" * (BS * NBLOCKS)))
    vfs.VfsLfs2.mkfs(dev)
    mount(dev)
    store = SlotStore("/flash")
    for path, data in OLD.items():
        store.write("ota/a/" + path, data)
    store.write("ota/a/manifest", read("/input/rel-old.bin"))
    slots.save(store, slots.initial("1.0.0"))
    if MODE == "staged":
        stage()
    umount()
    return bytes(dev.buf)

def slot_good(store, state, slot):
    blob = store.read("ota/%s/manifest" % slot)
    if blob is None:
        return "no manifest in slot " + slot
    m = manifest.decode_body(manifest.sign_split(blob)[0])
    if manifest.version_text(m.version) != state["versions"][slot]:
        return "slot %s holds %s, state says %s" % (slot, m.version, state["versions"][slot])
    for entry in m.files:
        data = store.read("ota/%s/%s" % (slot, entry[0]))
        if data is None:
            return "missing " + entry[0]
        problem = manifest.file_problem(entry, len(data), hashlib.sha256(data).digest())
        if problem:
            return problem
    return None

NEW_NAMES = sorted(NEW)
DL = "/flash/data/otadl"

def stage():
    """What the fetch leaves in its staging folder (MODE "staged"): each file
    of the new release as f<index>; after a cut, only those not yet moved
    into the slot are there, and the rest is fetched again."""
    try:
        os.mkdir("/flash/data")
        os.mkdir(DL)
    except OSError:
        pass
    for i, name in enumerate(NEW_NAMES):
        path = DL + "/f%d" % i
        try:
            if os.stat(path)[6] == len(NEW[name]):
                continue
        except OSError:
            pass
        with open(path, "wb") as f:
            f.write(NEW[name])

def source(path):
    if MODE == "bytes":
        return NEW.get(path)
    return Staged(DL + "/f%d" % NEW_NAMES.index(path))

def update(store):
    if MODE == "staged":
        stage()
    state = ota.install(store, slots.load(store), NEW_BLOB, PUB, DEVICE, source)
    slot_boot.select(store, False)
    slot_boot.confirm("/flash")

image = factory_image()
work = bytearray(image)
results = []
n = 1
while True:
    work[:] = image
    dev = RAMFlash(work, cut=n)
    mount(dev)
    completed = True
    try:
        update(SlotStore("/flash"))
    except PowerCut:
        completed = False
    umount()
    # power back: a fresh mount of what reached the flash, two cold boots
    dev = RAMFlash(work)
    mount(dev)
    store = SlotStore("/flash")
    versions = []
    for _ in range(2):
        state, slot = slot_boot.select(store, False)
        if state is None:
            raise AssertionError("cut at write %d: slot state lost" % n)
        problem = slot_good(store, state, slot)
        if problem:
            raise AssertionError("cut at write %d: booted slot %s: %s" % (n, slot, problem))
        versions.append(state["versions"][slot])
    if versions[-1] != "1.1.0":
        # not wedged: the same update, offered again, goes through
        update(store)
        state, slot = slot_boot.select(store, False)
        if state["versions"][slot] != "1.1.0" or slot_good(store, state, slot):
            raise AssertionError("cut at write %d: the update cannot be installed again" % n)
    if completed and MODE == "staged":
        print("STAGED-LEFT " + json.dumps(sorted(os.listdir(DL))))
    umount()
    results.append([n, completed, versions[-1]])
    if completed:
        break
    n += 1
print("FLASH-CUT " + json.dumps(results))
'''


def _release(core, key, version, files):
    entries = [(p, len(d), hashlib.sha256(d).digest()) for p, d in sorted(files.items())]
    m = core.Manifest("door_sensor", core.parse_version(version), (1, 27, 0), (6, 3), ["esp32"],
                      entries)
    body = core.encode_body(m)
    return body + key.sign(body)


def _stage(tmp_path):
    """The manifest core, a fresh release key (and its public bytes), and a
    staging folder holding the firmware's core with only the shell modules the
    boot path uses (nothing that touches hardware)."""
    core = loader.core("anju.ota.manifest")
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    staged = tmp_path / "staged"
    staged.mkdir()
    shutil.copytree(REPO / "firmware" / "anju", staged / "anju",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.mpy"))
    for name in list((staged / "anju" / "shell").iterdir()):
        if name.name not in ("__init__.py", "storage.py", "ota"):
            shutil.rmtree(name) if name.is_dir() else name.unlink()
    return core, key, pub, staged


@pytest.mark.parametrize("mode", ["bytes", "staged"])
def test_power_cut_at_every_block_write_of_an_update(tmp_path, mode):
    """`bytes`: the files come from memory and are written; `staged`: they
    are on flash, staged as the fetch leaves them, and the install moves
    them into the slot (fetch.Staged); after a cut the ones moved already are
    staged again, as the next offer fetches them."""
    core, key, pub, staged = _stage(tmp_path)
    for tag, version in (("old", "1.0.0"), ("new", "1.1.0")):
        files = {"app.mpy": ("app %s " % version).encode() * 30,
                 "lib/anju/door.mpy": bytes(range(256)) * 6 + version.encode(),
                 "lib/anju/frame.mpy": ("frame %s" % version).encode() * 50}
        for path, data in files.items():
            dest = staged / ("rel-" + tag) / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        (staged / ("files-%s.txt" % tag)).write_text("\n".join(sorted(files)))
        (staged / ("rel-%s.bin" % tag)).write_bytes(_release(core, key, version, files))
    (staged / "pub.txt").write_text(pub.hex())
    run = mp_harness.run_guest("MODE = %r\n" % mode + GUEST, readonly_dir=staged,
                               heap_bytes=GUEST_HEAP)
    line = [ln for ln in run.stdout.splitlines() if ln.startswith("FLASH-CUT ")]
    assert line, run.stdout + run.stderr
    results = json.loads(line[0][len("FLASH-CUT "):])
    # every prefix ran: writes 1..N-1 were cut, the N-th run completed
    assert [r[0] for r in results] == list(range(1, len(results) + 1))
    assert results[-1][1] is True and all(not r[1] for r in results[:-1])
    assert len(results) > 30, results
    seen = {r[2] for r in results}
    assert seen == {"1.0.0", "1.1.0"}, results
    assert results[-1][2] == "1.1.0"
    # once the confirm's state write is complete the update sticks
    first_new = min(i for i, r in enumerate(results) if r[2] == "1.1.0")
    assert all(r[2] == "1.1.0" for r in results[first_new:]), results
    if mode == "staged":
        # every staged file was moved into the slot, none copied
        assert "STAGED-LEFT []" in run.stdout.splitlines(), run.stdout[-500:]


BOOT_GUEST = r'''
import json, os, sys, vfs
from binascii import unhexlify
from anju.ota import install as ota, slots
from anju.shell.ota import boot as slot_boot
from anju.shell.ota.store import SlotStore

def read(path):
    with open(path, "rb") as f:
        return f.read()

PUB = unhexlify(read("/input/pub.txt").decode().strip())
DEVICE = {"app": "door_sensor", "port": "esp32", "runtime": (1, 27, 0), "mpy": (6, 3)}
INDEX = json.loads(read("/input/index.json"))

def files(tag):
    return dict((p, read("/input/rel-%s/%s" % (tag, p))) for p in INDEX[tag])

class RAM:
    def __init__(self, n, bs=512):
        self.buf = bytearray(b"\xff" * (n * bs))
        self.n, self.bs = n, bs
    def readblocks(self, b, buf, off=0):
        s = b * self.bs + off
        buf[:] = self.buf[s:s + len(buf)]
    def writeblocks(self, b, buf, off=0):
        s = b * self.bs + (off or 0)
        self.buf[s:s + len(buf)] = buf
    def ioctl(self, op, arg):
        if op == 4:
            return self.n
        if op == 5:
            return self.bs
        if op == 6:
            s = arg * self.bs
            for i in range(s, s + self.bs):
                self.buf[i] = 0xFF
        return 0

dev = RAM(128)
vfs.VfsLfs2.mkfs(dev)
vfs.mount(vfs.VfsLfs2(dev), "/flash")
store = SlotStore("/flash")
for path, data in files("v1").items():
    store.write("ota/a/" + path, data)
store.write("ota/a/manifest", read("/input/rel-v1.bin"))
slots.save(store, slots.initial("1.0.0"))
BASE_PATH = list(sys.path)

def boot(woke=False):
    """One boot of the shim: returns what the app wrote, or the crash."""
    sys.path[:] = BASE_PATH
    for name in list(sys.modules):
        if name == "app" or name.startswith("anju"):
            del sys.modules[name]
    from anju.shell.ota import boot as shim
    store.remove("ran")
    try:
        shim.run(woke, root="/flash")
        outcome = "ok"
    except RuntimeError as exc:
        outcome = "crashed"
    return outcome, (store.read("ran") or b"").decode()

log = []
log.append(boot())
# 1.1.0 crashes on boot: tried once, rolled back at once, reported
state = ota.install(store, slots.load(store), read("/input/rel-v2.bin"), PUB, DEVICE, files("v2").get)
log.append(boot())
log.append(boot())
log.append(slots.load(store)["failed"])
# 1.2.0 works and confirms after "reaching the hub"
state = ota.install(store, slots.load(store), read("/input/rel-v3.bin"), PUB, DEVICE, files("v3").get)
log.append(boot())
log.append(boot())
log.append(slots.load(store)["active"])
print("BOOT-LOG " + json.dumps(log))
'''

APP = """
from anju import marker
from anju.shell.ota import boot as slot_boot
with open("/flash/ran", "w") as f:
    f.write(marker.VERSION)
if marker.CRASH:
    raise RuntimeError("release %s fails at boot" % marker.VERSION)
slot_boot.confirm("/flash")
"""


def test_boot_selector_runs_the_slot_app_and_rolls_back_a_crash(tmp_path):
    """slot_boot.run on MicroPython: the app is imported from the chosen slot
    with that slot's own runtime; a release that raises at boot is marked
    failed and the next boot runs the previous slot; a release that confirms
    becomes the active slot."""
    core, key, pub, staged = _stage(tmp_path)
    runtime = {"lib/anju/__init__.py": "", "lib/anju/ota/__init__.py": "",
               "lib/anju/ota/slots.py": None, "lib/anju/shell/__init__.py": "",
               "lib/anju/shell/storage.py": None, "lib/anju/shell/ota/__init__.py": "",
               "lib/anju/shell/ota/store.py": None,
               "lib/anju/shell/ota/boot.py": None}
    index = {}
    for tag, version, crash in (("v1", "1.0.0", False), ("v2", "1.1.0", True), ("v3", "1.2.0", False)):
        files = {"app.py": APP.encode(),
                 "lib/anju/marker.py": ("VERSION = %r\nCRASH = %r\n" % (version, crash)).encode()}
        for path, text in runtime.items():
            src = REPO / "firmware" / "anju" / path[len("lib/anju/"):]
            files[path] = src.read_bytes() if text is None else text.encode()
        for path, data in files.items():
            dest = staged / ("rel-" + tag) / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        index[tag] = sorted(files)
        (staged / ("rel-%s.bin" % tag)).write_bytes(_release(core, key, version, files))
    (staged / "index.json").write_text(json.dumps(index))
    (staged / "pub.txt").write_text(pub.hex())
    run = mp_harness.run_guest(BOOT_GUEST, readonly_dir=staged, heap_bytes=GUEST_HEAP)
    line = [ln for ln in run.stdout.splitlines() if ln.startswith("BOOT-LOG ")]
    assert line, run.stdout + run.stderr
    log = json.loads(line[0][len("BOOT-LOG "):])
    assert log[0] == ["ok", "1.0.0"]
    assert log[1] == ["crashed", "1.1.0"]
    assert log[2] == ["ok", "1.0.0"]
    assert log[3] == [{"version": "1.1.0",
                       "reason": "crashed: RuntimeError('release 1.1.0 fails at boot',)"}]
    assert log[4] == ["ok", "1.2.0"]
    assert log[5] == ["ok", "1.2.0"]
    assert log[6] == "b"
