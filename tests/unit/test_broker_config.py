"""`anju broker config` (host_tools/broker.py): the texts are pure functions of
the site, the passwords and the salts; the password file is Mosquitto's
`$7$` format (checked against a line mosquitto_passwd wrote); re-running keeps
every password and byte; --rotate changes one account; a removed device
loses its account; secrets are written 0600 and never printed unless asked.
The real Mosquitto running these files is tests/integration/test_broker_acl.py.
"""
import itertools
import json
import stat

import pytest

from host_tools import broker as gen
from host_tools.cli import main
from tests.integration import hubkit

# written by `mosquitto_passwd -b passwd alice secret` (Mosquitto 2.0.11)
MOSQUITTO_PASSWD_LINE = ("alice:$7$101$EAz1E7AZ8dcDzvvv$pfuAtBvVvwUCy00+FD4LePMx2iJj4O1zB3a7GkSyoUqS"
                         "8q5qipuWgBWTa45xt33gDZXdMR05hnuUZvhigqmpSQ==")


def counting(prefix):
    n = itertools.count(1)
    return lambda: "%s%d" % (prefix, next(n))


def salts():
    n = itertools.count(1)
    return lambda: bytes([next(n)]) * gen.SALT_BYTES


def render(earlier=None, hashes=None, rotate=(), devices=("door-101", "door-102")):
    return gen.render("sunrise", list(devices), earlier or {}, hashes or {}, set(rotate),
                      new_password=counting("pw"), new_salt=salts(), install_dir="/etc/mosquitto/anju",
                      listen=(None, 1883))


def test_hash_format_is_the_one_mosquitto_passwd_writes():
    user, encoded = MOSQUITTO_PASSWD_LINE.split(":", 1)
    assert gen.hash_matches(encoded, "secret")
    assert not gen.hash_matches(encoded, "Secret")
    assert not gen.hash_matches("$6$abc$def", "secret")
    parts = encoded.split("$")
    salt = __import__("base64").b64decode(parts[3])
    assert gen.hash_password("secret", salt) == encoded


def test_acl_confines_devices_and_lists_the_hubs_topics():
    acl = gen.acl_text("sunrise", "hub-sunrise")
    lines = [line for line in acl.splitlines() if line and not line.startswith("#")]
    # nothing before the first user line: anonymous clients get nothing
    assert lines[0] == "user hub-sunrise"
    assert "topic read anju/sunrise/+/event" in lines
    assert "topic write anju/sunrise/+/cmd" in lines
    assert "topic readwrite homeassistant/#" in lines
    assert "topic readwrite anju/upstream/sunrise/#" in lines
    patterns = [line for line in lines if line.startswith("pattern")]
    assert patterns == ["pattern write anju/sunrise/%u/event", "pattern write anju/sunrise/%u/state",
                        "pattern write anju/sunrise/%u/availability",
                        "pattern write anju/sunrise/%u/ack",
                        "pattern write anju/sunrise/%u/ota/up",
                        "pattern read anju/sunrise/%u/cmd",
                        "pattern read anju/sunrise/%u/ota/down",
                        "pattern write anju/sunrise/responders/%u/position"]
    # the hub reads the responders' positions (hub/responders/mqtt.py)
    assert "topic read anju/sunrise/responders/+/position" in lines
    assert not any("#" in p or "+" in p for p in patterns)
    # Home Assistant's account only when it is enabled, read-only on what the hub publishes
    with_ha = gen.acl_text("sunrise", "hub-sunrise", "ha", home_assistant=True)
    assert "user anju-homeassistant\ntopic read ha/#\ntopic write ha/status\n" in with_ha


def test_conf_refuses_anonymous_and_names_the_files():
    conf = gen.conf_text("sunrise", "/etc/mosquitto/anju", ("127.0.0.1", 1884), "/var/lib/x")
    lines = conf.splitlines()
    for line in ("allow_anonymous false", "password_file /etc/mosquitto/anju/anju.passwd",
                 "acl_file /etc/mosquitto/anju/anju.acl", "listener 1884 127.0.0.1",
                 "persistence true", "persistence_location /var/lib/x/", "max_queued_messages 0",
                 "max_inflight_messages 1000"):
        assert line in lines, line
    tls = gen.conf_text("sunrise", "/e", (None, 1883), tls={"port": 8883, "cafile": "/c/ca.pem",
                                                             "certfile": "/c/b.pem",
                                                             "keyfile": "/c/b.key"})
    assert "listener 8883\ncafile /c/ca.pem" in tls and "use_identity_as_username true" in tls


def test_render_is_pure_and_a_rerun_keeps_every_byte():
    files, passwords = render()
    assert passwords == {"hub-sunrise": "pw1", "door-101": "pw2", "door-102": "pw3"}
    assert files == render()[0]
    hashes = dict(line.split(":", 1) for line in files["anju.passwd"][0].splitlines())
    again, same = render(passwords, hashes)
    assert same == passwords and again == files
    assert files["hub.password"] == ("pw1\n", 0o600)
    assert {name for name, (_, mode) in files.items() if mode == 0o600} == {
        "anju.passwd", "passwords.json", "hub.password"}


def test_rotate_changes_one_account_and_a_removed_device_loses_its_own():
    files, passwords = render()
    hashes = dict(line.split(":", 1) for line in files["anju.passwd"][0].splitlines())
    rotated, after = render(passwords, hashes, rotate={"door-101"})
    assert after["door-101"] != passwords["door-101"]
    assert {k: v for k, v in after.items() if k != "door-101"} == {
        k: v for k, v in passwords.items() if k != "door-101"}
    new_hashes = dict(line.split(":", 1) for line in rotated["anju.passwd"][0].splitlines())
    assert new_hashes["door-102"] == hashes["door-102"] != new_hashes["door-101"]
    gone, left = render(passwords, hashes, devices=("door-102",))
    assert set(left) == {"hub-sunrise", "door-102"}
    assert "door-101" not in gone["anju.passwd"][0] + gone["passwords.json"][0]


def site_file(tmp_path, extra=""):
    path = tmp_path / "site.yaml"
    path.write_text(hubkit.SITE_YAML % {"inactivity": "12h", "key": hubkit.KEY.hex(), "extra": extra})
    return path


def test_cli_writes_the_directory_prints_where_and_no_secret(tmp_path, capsys):
    out = tmp_path / "broker"
    assert main(["broker", "config", str(site_file(tmp_path)), "--out", str(out),
                 "--listen", "127.0.0.1:1884"]) == 0
    printed = capsys.readouterr().out
    passwords = json.loads((out / "passwords.json").read_text())["passwords"]
    assert set(passwords) == {"hub-sunrise", "door-101", "door-102"}
    for name in ("mosquitto.conf", "anju.acl", "anju.passwd", "passwords.json", "hub.password"):
        assert "wrote %s" % (out / name) in printed
        mode = stat.S_IMODE((out / name).stat().st_mode)
        assert mode == (0o644 if name in ("mosquitto.conf", "anju.acl") else 0o600), name
    assert not any(pw in printed for pw in passwords.values())
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["broker", "config", str(site_file(tmp_path)), "--out", str(out),
                 "--listen", "127.0.0.1:1884"]) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # idempotent
    capsys.readouterr()
    assert main(["broker", "password", "door-101", "--out", str(out)]) == 0
    assert capsys.readouterr().out == passwords["door-101"] + "\n"  # only when asked


@pytest.mark.parametrize("args, needle", [
    (["--rotate", "door-999"], "no broker account door-999"),
    (["--listen", "127.0.0.1:0"], "port 1..65535"),
    (["--tls-port", "8883"], "--tls-port needs --cafile"),
])
def test_cli_bad_input_changes_nothing(tmp_path, capsys, args, needle):
    out = tmp_path / "broker"
    assert main(["broker", "config", str(site_file(tmp_path)), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(["broker", "config", str(site_file(tmp_path)), "--out", str(out)] + args) == 2
    assert needle in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_cli_refuses_to_mix_two_sites_in_one_directory(tmp_path, capsys):
    out = tmp_path / "broker"
    assert main(["broker", "config", str(site_file(tmp_path)), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    other = tmp_path / "other.yaml"
    other.write_text(site_file(tmp_path).read_text().replace("id: sunrise", "id: moonrise"))
    capsys.readouterr()
    assert main(["broker", "config", str(other), "--out", str(out)]) == 2
    assert "site 'sunrise', not 'moonrise'" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_cli_refuses_a_site_with_a_reserved_device_id(tmp_path, capsys):
    path = site_file(tmp_path, extra="  - {id: hub, kind: door_sensor, board: esp32c3, flat: b1-101, "
                                     "transport: mqtt, frame_key: %s}" % hubkit.KEY.hex())
    assert main(["config", "check", str(path)]) == 2
    assert "device id 'hub' is reserved" in capsys.readouterr().err
    assert main(["broker", "config", str(path), "--out", str(tmp_path / "b")]) == 2
    assert "device id 'hub' is reserved" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_cli_takes_the_site_from_the_registry(tmp_path, capsys):
    kek = tmp_path / "kek"
    assert main(["keys", "kek", "--out", str(kek)]) == 0
    db = tmp_path / "hub.db"
    assert main(["registry", "--db", str(db), "--kek", str(kek), "import",
                 str(site_file(tmp_path))]) == 0
    capsys.readouterr()
    out = tmp_path / "broker"
    assert main(["broker", "config", "--db", str(db), "--kek", str(kek), "--out", str(out)]) == 0
    assert "2 device(s)" in capsys.readouterr().out
    passwords = json.loads((out / "passwords.json").read_text())["passwords"]
    assert set(passwords) == {"hub-sunrise", "door-101", "door-102"}
    assert main(["broker", "config", "--db", str(db), "--out", str(out)]) == 2
    assert "--db and --kek go together" in capsys.readouterr().err
