"""Installing a signed release into the inactive slot (docs/ota.md).

`install` is the whole device side of an update once its bytes are at hand:
check the manifest (anju.ota.manifest: signature, app, port, runtime, version),
empty the inactive slot, write each file after checking its size and SHA-256,
read every file back from flash and check it again, write the manifest into
the slot last, and only then commit the slot state (anju.ota.slots) in one atomic
write. A refusal at any step raises `manifest.ReleaseRefused` with the reason
and leaves the state record untouched, so the device boots what it ran before;
the files already written to the inactive slot are removed.

`store` is the slot storage: read(name), write(name, data) (atomic replace),
remove(name), files(prefix) -> names under prefix. `source(path)` returns the
bytes of a release file (from the transfer), or an open file to stream it
from (then the store also has write_file(name, f) and digest(name) -> (size,
SHA-256) or None, and no whole file is ever held in RAM: a device's heap has
no room for its largest module twice). Nothing here imports hardware.
"""
import hashlib

from anju.ota import manifest, slots

MANIFEST_NAME = "manifest"


def _sha256(data):
    return hashlib.sha256(data).digest()


def _streamed(data):
    return hasattr(data, "readinto")


def _file_digest(f):
    """(size, SHA-256) of an open file from its start; leaves it at the start."""
    h = hashlib.sha256()
    buf = bytearray(512)
    size = 0
    f.seek(0)
    while True:
        n = f.readinto(buf)
        if not n:
            break
        size += n
        h.update(buf if n == len(buf) else buf[:n])
    f.seek(0)
    return size, h.digest()


def clear_slot(store, slot):
    base = slots.slot_dir(slot) + "/"
    for name in store.files(base):
        store.remove(name)


def install(store, state, blob, public_key, device, source):
    """The new slot state (already saved) after staging `blob`'s files.

    `device` as for manifest.check_release, without "version": the running
    version comes from the slot state."""
    info = dict(device)
    info["version"] = manifest.parse_version(slots.running_version(state))
    m = manifest.check_release(blob, public_key, info)
    target = slots.install_target(state)
    base = slots.slot_dir(target) + "/"
    clear_slot(store, target)
    try:
        for entry in m.files:
            data = source(entry[0])
            if data is None:
                raise manifest.ReleaseRefused("file %s is missing from the transfer" % entry[0])
            if _streamed(data):
                try:
                    problem = manifest.file_problem(entry, *_file_digest(data))
                    if problem:
                        raise manifest.ReleaseRefused(problem)
                    store.write_file(base + entry[0], data)
                finally:
                    data.close()
            else:
                problem = manifest.file_problem(entry, len(data), _sha256(data))
                if problem:
                    raise manifest.ReleaseRefused(problem)
                store.write(base + entry[0], data)
            data = None
        for entry in m.files:
            if hasattr(store, "digest"):
                got = store.digest(base + entry[0])
                problem = "file %s did not reach flash" % entry[0] if got is None else \
                    manifest.file_problem(entry, got[0], got[1])
            else:
                data = store.read(base + entry[0])
                problem = "file %s did not reach flash" % entry[0] if data is None else \
                    manifest.file_problem(entry, len(data), _sha256(data))
                data = None
            if problem:
                raise manifest.ReleaseRefused("read back from flash: " + problem)
        store.write(base + MANIFEST_NAME, blob)
    except manifest.ReleaseRefused:
        clear_slot(store, target)
        raise
    new = slots.commit_install(state, target, manifest.version_text(m.version))
    slots.save(store, new)
    return new
