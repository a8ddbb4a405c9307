"""The device side of an update over MQTT (docs/ota.md, "Offer and transfer").

`Updater.exchange(client)` runs on a connected client, once per wake: it
reports what the device runs, confirms a trial and forgets reported failures
once the hub acknowledged the report (anju.shell.ota.report). Then it takes
the hub's offer, if any, with the battery at `ota_min_battery_percent` or above:
the signed manifest is checked (anju.ota.manifest) before a byte of a file is
asked for; the files are fetched chunk by chunk, each request naming the
offset where the flash copy ends, so a reset or a power cut resumes there;
each file is checked against its SHA-256 as soon as it is complete; then
anju.ota.install writes the inactive slot and `installed` is set: the app
resets the board into the trial.

Every wait is bounded (`mqtt.timeout_ms` per answer; the socket's own timeout
below); a network error ends the exchange and the next wake goes on from the
flash copy. A refusal removes the staged files and is reported with its
reason; nothing is installed. Staging lives in /data/otadl: `manifest` and
`f<index>` per file (appends: LittleFS makes an append visible only whole, at
close, so a cut loses at most the chunk being written).
"""
import gc
import hashlib
import os
import sys

# all imported before the first chunk: an import after the chunks' churn
# scatters its objects through the heap
from anju.ota import install, manifest, slots, transfer
from anju.shell.ota import report
from anju.shell.storage import FileStorage

DL = "/data/otadl"
# chunk requests in flight: the hub's answers queue in the inbox (at most 8),
# so a round trip is not waited out per chunk
WINDOW = 4


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return 0


def _digest(path):
    h = hashlib.sha256()
    buf = bytearray(512)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(buf if n == len(buf) else buf[:n])
    return h.digest()


class Staged:
    """A staged file, open for install to check; SlotStore.write_file moves
    it into the slot (a rename) instead of copying it, so an update needs
    room for two copies of the release, not three (a Pico W's 848 KiB holds
    no third copy of the lock's)."""

    def __init__(self, path):
        self.path = path
        self._f = open(path, "rb")

    def readinto(self, buf):
        return self._f.readinto(buf)

    def seek(self, offset):
        return self._f.seek(offset)

    def close(self):
        self._f.close()


class Updater(report.Reporter):
    def __init__(self, cfg, port, next_counter, battery_percent, now, feed=None, max_chunks=None):
        report.Reporter.__init__(self, cfg, next_counter, now, feed, battery_percent)
        self.port = port
        self.installed = False
        # chunks per exchange (None: the whole release); an app whose loop
        # must keep sampling (the smoke sensor) takes a few per pass and
        # comes back while `more` is set
        self.max_chunks = max_chunks
        self.more = False

    def exchange(self, client):
        self.more = False
        report.Reporter.exchange(self, client)

    def offered(self, client, state, blob):
        self.take(client, state, blob)

    def _device(self):
        runtime, mpy = manifest.runtime_info(sys.implementation)
        return {"app": self.cfg.kind, "port": self.port, "runtime": runtime, "mpy": mpy}

    def _refuse(self, client, state, reason):
        self._clear()
        self.report(client, state, transfer.refusal_status(reason), 0, wait=False)

    def _clear(self):
        try:
            names = os.listdir(DL)
        except OSError:
            return
        for name in names:
            os.remove(DL + "/" + name)

    def take(self, client, state, blob):
        staging = FileStorage(DL)
        rid = transfer.release_id(blob)
        device = self._device()
        if staging.read("manifest") != blob:
            info = dict(device)
            info["version"] = manifest.parse_version(slots.running_version(state))
            self.feed()
            try:
                m = manifest.check_release(blob, self.cfg.release_pubkey, info)
            except manifest.ReleaseRefused as exc:
                self._refuse(client, state, str(exc))
                return
            self._clear()
            staging.write("manifest", blob)
        else:
            # checked when it was staged; install() checks it again
            m = manifest.decode_body(manifest.sign_split(blob)[0])
        files = m.files
        have = [_size(DL + "/f%d" % i) for i in range(len(files))]
        self.report(client, state, transfer.FETCHING, transfer.percent(files, have), wait=False)
        budget = self.max_chunks
        pending = []  # chunks asked for, answers not yet taken, in order
        cursor = list(have)  # where the next request starts, per file
        while True:
            self.feed()
            while len(pending) < WINDOW and (budget is None or budget > 0):
                req = transfer.next_request(files, cursor)
                if req is None:
                    break
                self._publish(client, transfer.T_CHUNK_REQ,
                              transfer.chunk_request_body(rid, req[0], req[1], req[2]))
                pending.append(req)
                cursor[req[0]] = req[1] + req[2]
                if budget is not None:
                    budget -= 1
            if not pending:
                if transfer.next_request(files, have) is not None:
                    self.more = True  # the rest at the app's next pass
                    return
                break
            index, offset, length = pending.pop(0)
            got = self._wait(client, lambda p: (p[0] == "data" and p[1] == rid and p[2] == index
                                                and p[3] == offset) or
                             (p[0] == "error" and p[1] == rid))
            if got is None:
                return  # no answer: the next wake resumes from here
            if got[0] == "error":
                self._refuse(client, state, "the hub withdrew the release: " + got[2])
                return
            data = got[4]
            if len(data) != length:
                # what was asked always lies inside the file: a shorter answer is a cut transfer
                self._refuse(client, state, "file %s: transfer truncated at %d of %d bytes"
                             % (files[index][0], offset + len(data), files[index][1])
                             if len(data) < length else
                             "file %s: chunk longer than asked for" % files[index][0])
                return
            path = DL + "/f%d" % index
            with open(path, "ab") as f:
                f.write(data)
            have[index] = offset + len(data)
            data = got = None
            if have[index] == files[index][1]:
                problem = manifest.file_problem(files[index], _size(path), _digest(path))
                if problem:
                    self._refuse(client, state, problem)
                    return
        self.install(client, state, blob, files, device)

    def install(self, client, state, blob, files, device):
        index = {}
        for i in range(len(files)):
            index[files[i][0]] = i

        def source(path):
            i = index.get(path)
            if i is None:
                return None
            try:
                return Staged(DL + "/f%d" % i)  # streamed, then moved: install closes it
            except OSError:
                return None

        self.feed()
        gc.collect()
        try:
            state = install.install(self.slots, state, blob, self.cfg.release_pubkey, device,
                                    source)
        except (manifest.ReleaseRefused, slots.SlotError) as exc:
            self._refuse(client, state, str(exc))
            return
        self._clear()
        self.installed = True
        self.report(client, state, transfer.INSTALLED, 100, wait=False)
