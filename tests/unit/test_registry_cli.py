"""`anju registry ...` and `anju keys kek` on a real database and KEK file
(direct mode; the HTTP mode is the API tested in tests/integration)."""
import pytest

from host_tools.cli import main
from tests.unit.test_registry import FRAME_KEY, SITE


@pytest.fixture
def env(tmp_path):
    kek = tmp_path / "kek"
    assert main(["keys", "kek", "--out", str(kek)]) == 0
    assert kek.stat().st_mode & 0o777 == 0o600
    (tmp_path / "site.yaml").write_text(SITE)
    base = ["registry", "--db", str(tmp_path / "hub.db"), "--kek", str(kek)]
    assert main(base + ["import", str(tmp_path / "site.yaml")]) == 0
    return tmp_path, base


def test_kek_is_not_overwritten(env, capsys):
    tmp_path, _ = env
    before = (tmp_path / "kek").read_bytes()
    assert main(["keys", "kek", "--out", str(tmp_path / "kek")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "kek").read_bytes() == before


def test_add_update_remove_and_export(env, capsys):
    tmp_path, base = env
    assert main(base + ["add", "device", "door-9", "kind=door_sensor", "board=esp32c3",
                        "flat=b1-101", "transport=mqtt", "heartbeat=10m",
                        "frame_key=" + FRAME_KEY.hex()]) == 0
    assert main(base + ["update", "flat", "b1-101", "inactivity=2h"]) == 0
    assert main(base + ["add", "resident", "r-9", "flat=b1-101", "name=Zhou", "phone=13800000000",
                        "lives_alone=true"]) == 0
    capsys.readouterr()
    assert main(base + ["export", "--format", "csv", "--out", str(tmp_path / "out")]) == 0
    devices = (tmp_path / "out" / "devices.csv").read_text()
    assert "door-9,door_sensor,esp32c3,b1-101,,mqtt,10m" in devices and "frame_key" not in devices
    residents = (tmp_path / "out" / "residents.csv").read_text()
    assert "b1,b1-101,r-9,Zhou,13800000000,true" in residents
    assert main(base + ["export", "--with-keys"]) == 0
    out = capsys.readouterr().out
    assert FRAME_KEY.hex() in out and "inactivity: 2h" in out
    assert main(base + ["remove", "device", "door-9"]) == 0
    assert main(base + ["show", "device", "door-9"]) == 1
    assert "no device 'door-9'" in capsys.readouterr().err


@pytest.mark.parametrize("args, code, message", [
    (["add", "device", "door-9", "kind=door_sensor", "board=esp32c3", "flat=b1-101",
      "transport=mqtt", "frame_key=12"], 2, "registry devices[door-9]: key 'frame_key'"),
    (["add", "device", "door-101"], 1, "already exists"),
    (["add", "gadget", "x"], 2, "unknown kind 'gadget'"),
    (["update", "flat", "b1-101", "inactivity"], 2, "expected key=value"),
    (["remove", "building", "b1"], 1, "still has flats"),
])
def test_refusals_exit_with_the_reason(env, capsys, args, code, message):
    _, base = env
    capsys.readouterr()
    assert main(base + args) == code
    assert message in capsys.readouterr().err


def test_csv_import_errors_name_the_row(env, capsys):
    tmp_path, base = env
    (tmp_path / "devices.csv").write_text("device_id,kind,board,flat,transport\n"
                                          "door-1,door_sensor,esp32c3,nowhere,mqtt\n")
    assert main(base + ["import", str(tmp_path / "devices.csv")]) == 2
    assert "devices.csv row 2, column flat" in capsys.readouterr().err


def test_keys_only_with_the_database(tmp_path, capsys):
    assert main(["registry", "--hub", "127.0.0.1:1", "export", "--with-keys"]) == 2
    assert "--with-keys needs --db and --kek" in capsys.readouterr().err
    assert main(["registry", "--db", str(tmp_path / "x.db"), "export"]) == 2
    assert "--db and --kek go together" in capsys.readouterr().err


@pytest.mark.parametrize("make_kek, message", [
    (lambda p: None, "does not exist; create one with `anju keys kek --out"),
    (lambda p: (p.write_bytes(bytes(32)), p.chmod(0o644)), "accessible by other users"),
])
def test_hub_in_registry_mode_refuses_to_start_without_a_usable_kek(tmp_path, capsys, make_kek,
                                                                     message):
    (tmp_path / "site.yaml").write_text(SITE + "hub: {registry: true}\n")
    make_kek(tmp_path / "kek")
    assert main(["hub", "run", "--config", str(tmp_path / "site.yaml"), "--db",
                 str(tmp_path / "hub.db"), "--kek", str(tmp_path / "kek")]) == 2
    assert message in capsys.readouterr().err
