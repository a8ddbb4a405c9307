"""Site configuration errors (hub.config.parse_site over hub.yamlfile.loads):
each malformed input raises hub.ConfigError naming the file, the line and the
key; an unknown key at any level is refused with the closest known one as a
hint; the site files in docs/ and deploy/ load; durations parse as documented;
`anju config check` validates every section the hub validates when it starts
(hub/config/preflight.py), without a connection and without writing anything."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub import ConfigError
from hub.config import site as config
from hub.config import yamlfile
from hub.config import values

FRAME_KEY = "a1" * 32
BIND_KEY = "b2" * 16

# Line numbers matter: cases below replace a line by its number.
BASE_LINES = [
    "site:",                                  # 1
    "  id: sunrise",                          # 2
    "  name: Sunrise Gardens",                # 3
    "defaults:",                              # 4
    "  inactivity: 12h",                      # 5
    "buildings:",                             # 6
    "  - id: b1",                             # 7
    "    flats:",                             # 8
    "      - id: b1-101",                     # 9
    "        inactivity: 12h",                # 10
    "        residents:",                     # 11
    "          - id: r-101",                  # 12
    "            name: Wang Lan",             # 13
    "            lives_alone: true",          # 14
    "      - id: b1-102",                     # 15
    "        residents: []",                  # 16
    "devices:",                               # 17
    "  - id: door-101",                       # 18
    "    kind: door_sensor",                  # 19
    "    board: esp32c3",                     # 20
    "    flat: b1-101",                       # 21
    "    transport: mqtt",                    # 22
    f"    frame_key: \"{FRAME_KEY}\"",        # 23
    "    heartbeat: 1h",                      # 24
    "  - id: door-102",                       # 25
    "    kind: door_sensor",                  # 26
    "    board: esp32",                       # 27
    "    flat: b1-102",                       # 28
    "    transport: ble",                     # 29
    f"    frame_key: \"{FRAME_KEY}\"",        # 30
    f"    bind_key: \"{BIND_KEY}\"",          # 31
    "    ble_address: \"a4:c1:38:00:00:01\"",  # 32
]


def variant(changes: dict[int, str | None]) -> str:
    """BASE with line n replaced (None deletes it; text may hold several lines)."""
    out = []
    for n, line in enumerate(BASE_LINES, start=1):
        if n in changes:
            if changes[n] is not None:
                out.append(changes[n])
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def parse(text: str, name: str = "site.yaml") -> config.SiteConfig:
    return config.parse_site(yamlfile.loads(text, name))


def test_base_is_valid() -> None:
    site = parse(variant({}))
    assert site.site_id == "sunrise" and site.site_name == "Sunrise Gardens"
    assert list(site.flats) == ["b1-101", "b1-102"]
    assert site.flats["b1-101"].lives_alone and not site.flats["b1-102"].lives_alone
    assert site.flats["b1-101"].inactivity_s == 43200
    d1, d2 = site.devices["door-101"], site.devices["door-102"]
    assert d1.frame_key == bytes.fromhex(FRAME_KEY) and d1.bind_key is None and d1.heartbeat_s == 3600
    assert d2.bind_key == bytes.fromhex(BIND_KEY)
    assert d2.ble_address == "A4:C1:38:00:00:01"
    assert site.by_address == {"A4:C1:38:00:00:01": "door-102"}
    assert FRAME_KEY not in repr(d1)


CASES = [
    # (id, changes, expected line, substrings the message must contain)
    ("invalid_yaml", {5: "  inactivity: 12h: 5"}, 5, ["not valid YAML"]),
    ("invalid_yaml_unclosed_flow", {21: "    flat: [b1-101"}, 22, ["not valid YAML"]),
    ("duplicate_key", {24: "    kind: smoke_sensor"}, 24, ["duplicate key 'kind'"]),
    ("duplicate_top_key", {17: "site: {id: other}\ndevices:"}, 17, ["duplicate key 'site'"]),
    ("missing_site", {1: None, 2: None, 3: None}, 1, ["missing key 'site'"]),
    ("site_not_mapping", {1: "site: sunrise", 2: None, 3: None}, 1, ["'site'", "dict"]),
    ("missing_site_id", {2: None}, 2, ["missing key 'id'"]),
    ("bad_site_id_upper", {2: "  id: Sunrise"}, 2, ["'id'", "Sunrise"]),
    ("bad_site_id_slash", {2: "  id: sun/rise"}, 2, ["'id'"]),
    ("bad_site_id_type", {2: "  id: [a]"}, 2, ["'id'", "list"]),
    ("bad_building_id", {7: "  - id: B1"}, 7, ["'id'", "B1"]),
    ("bad_flat_id", {9: "      - id: -101"}, 9, ["'id'"]),
    ("bad_resident_id", {12: "          - id: r 101"}, 12, ["'id'"]),
    ("bad_device_id", {18: "  - id: door_101_" + "x" * 40}, 18, ["'id'"]),
    ("missing_device_id", {18: "  - kind: door_sensor", 19: None}, 18, ["missing key 'id'"]),
    # a device id is its topic level, broker user name and client id (docs/broker.md)
    ("device_id_hub", {18: "  - id: hub"}, 18, ["key 'id'", "'hub' is reserved", "hub's own topics"]),
    ("device_id_hub_user", {18: "  - id: hub-sunrise"}, 18, ["key 'id'", "reserved", "'hub-'"]),
    ("device_id_hub_client", {25: "  - id: anju-hub-sunrise"}, 25, ["key 'id'", "reserved",
                                                                    "'anju-'"]),
    ("device_id_wildcard", {18: "  - id: door+1"}, 18, ["'id'", "door+1"]),
    ("device_id_hash", {18: "  - id: \"door#1\""}, 18, ["'id'", "door#1"]),
    ("device_id_slash", {18: "  - id: door/1"}, 18, ["'id'", "door/1"]),
    ("duplicate_building", {17: "  - id: b1\ndevices:"}, 17, ["duplicate building id 'b1'"]),
    ("duplicate_flat", {15: "      - id: b1-101"}, 15, ["duplicate flat id 'b1-101'"]),
    ("duplicate_resident", {16: "        residents: [{id: r-101, name: X}]"}, 16,
     ["duplicate resident id 'r-101'"]),
    ("duplicate_device", {25: "  - id: door-101"}, 25, ["duplicate device id 'door-101'"]),
    ("buildings_not_list", {6: "buildings: 5", 7: None, 8: None, 9: None, 10: None, 11: None, 12: None,
                            13: None, 14: None, 15: None, 16: None}, 6, ["'buildings'", "list"]),
    ("flat_entry_not_mapping", {9: "      - b1-101", 10: None, 11: None, 12: None, 13: None, 14: None},
     8, ["'flats'", "mapping"]),
    ("resident_name_missing", {13: None}, 12, ["missing key 'name'"]),
    ("lives_alone_not_bool", {14: "            lives_alone: 1"}, 14, ["'lives_alone'", "bool"]),
    ("unknown_kind", {19: "    kind: camera"}, 19, ["'kind'", "camera", "door_sensor"]),
    ("kind_not_string", {19: "    kind: 3"}, 19, ["'kind'"]),
    ("missing_kind", {19: None}, 18, ["missing key 'kind'"]),
    ("unknown_transport", {22: "    transport: zigbee"}, 22, ["'transport'", "zigbee", "mqtt", "ble"]),
    ("missing_transport", {22: None}, 18, ["missing key 'transport'"]),
    ("unknown_flat", {21: "    flat: b9-999"}, 21, ["'flat'", "b9-999"]),
    ("missing_flat", {21: None}, 18, ["missing key 'flat'"]),
    ("missing_board", {20: None}, 18, ["missing key 'board'"]),
    ("frame_key_not_hex", {23: "    frame_key: \"" + "zz" * 32 + "\""}, 23, ["'frame_key'", "hex"]),
    ("frame_key_short", {23: "    frame_key: \"" + "ab" * 31 + "\""}, 23, ["'frame_key'", "32 bytes"]),
    ("frame_key_long", {23: "    frame_key: \"" + "ab" * 33 + "\""}, 23, ["'frame_key'", "32 bytes"]),
    ("frame_key_odd", {23: "    frame_key: \"" + "a" * 63 + "\""}, 23, ["'frame_key'"]),
    ("frame_key_number", {23: "    frame_key: 12"}, 23, ["'frame_key'", "str"]),
    ("frame_key_missing", {23: None}, 18, ["missing key 'frame_key'"]),
    ("bind_key_short", {31: "    bind_key: \"" + "ab" * 8 + "\""}, 31, ["'bind_key'", "16 bytes"]),
    ("bind_key_not_hex", {31: "    bind_key: \"" + "x" * 32 + "\""}, 31, ["'bind_key'", "hex"]),
    ("bind_key_missing_for_ble", {31: None}, 25, ["missing key 'bind_key'"]),
    ("ble_address_bad", {32: "    ble_address: \"a4:c1:38:00:00\""}, 32, ["'ble_address'"]),
    ("ble_address_not_hex", {32: "    ble_address: \"a4:c1:38:00:00:0g\""}, 32, ["'ble_address'"]),
    ("ble_address_missing_for_ble", {32: None}, 25, ["missing key 'ble_address'"]),
    ("ble_address_duplicate", {24: "    heartbeat: 1h\n    ble_address: \"A4:C1:38:00:00:01\""}, 33,
     ["'ble_address'", "door-101"]),
    ("flat_inactivity_unit", {10: "        inactivity: 12x"}, 10, ["'inactivity'", "12x"]),
    ("flat_inactivity_negative", {10: "        inactivity: -1h"}, 10, ["'inactivity'", "-1h"]),
    ("flat_inactivity_negative_number", {10: "        inactivity: -5"}, 10, ["'inactivity'", "positive"]),
    ("flat_inactivity_zero", {10: "        inactivity: 0s"}, 10, ["'inactivity'", "positive"]),
    ("flat_inactivity_bool", {10: "        inactivity: true"}, 10, ["'inactivity'"]),
    ("flat_inactivity_empty", {10: "        inactivity: \"\""}, 10, ["'inactivity'"]),
    ("flat_inactivity_list", {10: "        inactivity: [12h]"}, 10, ["'inactivity'"]),
    ("flat_inactivity_trailing_number", {10: "        inactivity: 12h5"}, 10, ["'inactivity'"]),
    ("heartbeat_unit", {24: "    heartbeat: 12x"}, 24, ["'heartbeat'", "12x"]),
    ("heartbeat_negative", {24: "    heartbeat: -1h"}, 24, ["'heartbeat'"]),
    ("heartbeat_bool", {24: "    heartbeat: true"}, 24, ["'heartbeat'"]),
    ("heartbeat_zero", {24: "    heartbeat: 0"}, 24, ["'heartbeat'", "positive"]),
]


@pytest.mark.parametrize(("changes", "line", "needles"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_site_names_file_line_and_key(changes: dict, line: int, needles: list[str]) -> None:
    text = variant(changes)
    with pytest.raises(ConfigError) as info:
        parse(text, "conf/site-a.yaml")
    msg = str(info.value)
    assert msg.startswith(f"conf/site-a.yaml:{line}:"), msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    assert FRAME_KEY not in msg and BIND_KEY not in msg
    assert "\n" not in msg


def test_bad_default_inactivity_names_its_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse(variant({5: "  inactivity: 12x"}))
    msg = str(info.value)
    assert "inactivity" in msg and "12x" in msg
    assert msg.startswith("site.yaml:5:"), msg


def test_defaults_not_a_mapping() -> None:
    with pytest.raises(ConfigError) as info:
        parse(variant({4: "defaults: 5", 5: None}))
    assert str(info.value).startswith("site.yaml:4:")
    assert "'defaults'" in str(info.value)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- site\n- devices\n", "just text\n"],
                         ids=["empty", "comment_only", "list", "scalar"])
def test_not_a_mapping_names_the_file(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text, "conf/site-a.yaml")
    assert str(info.value).startswith("conf/site-a.yaml"), str(info.value)


@pytest.mark.parametrize("value", [".nan", ".inf"])
def test_non_finite_durations_are_refused(value: str) -> None:
    with pytest.raises(ConfigError, match=r"site\.yaml:10: key 'inactivity'"):
        parse(variant({10: f"        inactivity: {value}"}))


def test_config_error_is_a_hub_error() -> None:
    from hub import HubError

    assert issubclass(ConfigError, HubError)


def test_load_site_names_a_missing_file(tmp_path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=re.escape(str(missing))):
        config.load_site(missing)


def test_load_site_refuses_non_utf8(tmp_path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("site: {id: s, name: Caf\u00e9}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=re.escape(str(path)) + ".*UTF-8"):
        config.load_site(path)


def test_load_site_reads_a_file(tmp_path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(variant({}), encoding="utf-8")
    assert config.load_site(path).site_id == "sunrise"
    path.write_text(variant({19: "    kind: camera"}), encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"{path}:19: key 'kind'")):
        config.load_site(path)


def test_numeric_ids_are_accepted_as_strings() -> None:
    site = parse(variant({9: "      - id: 101", 21: "    flat: 101"}))
    assert "101" in site.flats and site.devices["door-101"].flat == "101"


def test_ble_address_is_normalised_to_upper_case() -> None:
    site = parse(variant({32: "    ble_address: \"aa:bb:cc:dd:ee:0f\""}))
    assert site.devices["door-102"].ble_address == "AA:BB:CC:DD:EE:0F"


def test_keys_not_required_when_not_asked() -> None:
    site = config.parse_site(yamlfile.loads(variant({23: None, 30: None, 31: None, 32: None}), "s.yaml"),
                             require_keys=False)
    assert site.devices["door-101"].frame_key is None
    assert site.devices["door-102"].bind_key is None and site.devices["door-102"].ble_address is None


# ---- durations ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("12h", 43200), ("30m", 1800), ("45s", 45), ("1h30m", 5400), ("1.5d", 129600), ("250ms", 0.25),
        ("2d3h4m5s", 2 * 86400 + 3 * 3600 + 4 * 60 + 5), ("1h 30m", 5400), ("90", 90), ("0.5", 0.5),
        (12, 12), (1.5, 1.5), (43200, 43200), ("1m30s", 90), ("10ms", 0.01),
    ],
)
def test_parse_duration_accepts(value, seconds) -> None:
    result = values.parse_duration(value, "site.yaml:3", "inactivity")
    assert result == pytest.approx(seconds)
    assert isinstance(result, float)


@pytest.mark.parametrize(
    "value",
    ["12x", "-1h", "h", "", "12 h x", "1h-30m", "12hh", "1.h", ".5h", "12h5", "1e3", "twelve hours",
     True, False, None, [12], {"h": 12}, -1, -0.5, 0, "0s", "0"],
)
def test_parse_duration_refuses(value) -> None:
    with pytest.raises(ConfigError) as info:
        values.parse_duration(value, "site.yaml:3", "inactivity")
    assert str(info.value).startswith("site.yaml:3: key 'inactivity':"), str(info.value)


def test_parse_duration_zero_only_when_allowed() -> None:
    assert values.parse_duration("0s", "x:1", "at", allow_zero=True) == 0
    assert values.parse_duration(0, "x:1", "at", allow_zero=True) == 0
    with pytest.raises(ConfigError):
        values.parse_duration("-1s", "x:1", "at", allow_zero=True)


# ---- unknown keys ---------------------------------------------------------------------

UNKNOWN_KEYS = [
    # (id, level, changes, expected line, the unknown key, the hint or None)
    ("top", "top", {4: "default:"}, 4, "default", "defaults"),
    ("site", "site", {3: "  name: Sunrise Gardens\n  time_zone: Asia/Shanghai"}, 4, "time_zone", "timezone"),
    ("site_required_key_misspelt", "site", {2: "  code: sunrise"}, 2, "code", None),
    ("defaults", "defaults", {5: "  inactivty: 12h"}, 5, "inactivty", "inactivity"),
    ("building", "building", {7: "  - id: b1\n    nmae: Building 1"}, 8, "nmae", "name"),
    ("flat", "flat", {10: "        inactivty: 12h"}, 10, "inactivty", "inactivity"),
    ("resident", "resident", {14: "            lives_alon: true"}, 14, "lives_alon", "lives_alone"),
    ("resident_no_hint", "resident", {14: "            lives_alone: true\n            age: 81"}, 15, "age",
     None),
    ("device", "device", {24: "    hartbeat: 2h"}, 24, "hartbeat", "heartbeat"),
    ("device_scenario_key", "device", {24: "    heartbeat: 1h\n    door: open"}, 25, "door", None),
    ("top_scenario_key", "top", {17: "timeline: []\ndevices:"}, 17, "timeline", None),
]


@pytest.mark.parametrize(("level", "changes", "line", "key", "hint"), [c[1:] for c in UNKNOWN_KEYS],
                         ids=[c[0] for c in UNKNOWN_KEYS])
def test_unknown_key_names_file_line_key_and_hint(level: str, changes: dict, line: int, key: str,
                                                  hint: str | None) -> None:
    with pytest.raises(ConfigError) as info:
        parse(variant(changes), "conf/site-a.yaml")
    msg = str(info.value)
    place = "at the top level" if level == "top" else f"in {level}"
    assert msg.startswith(f"conf/site-a.yaml:{line}: unknown key '{key}' {place}; "), msg
    assert f"allowed: {', '.join(config.KEYS[level])}" in msg
    if hint is None:
        assert "did you mean" not in msg, msg
    else:
        assert msg.endswith(f"; did you mean '{hint}'?"), msg
    assert "\n" not in msg


def test_every_level_is_checked() -> None:
    assert {c[1] for c in UNKNOWN_KEYS} == set(config.KEYS)


def test_a_scenario_may_add_its_own_keys() -> None:
    from simulator import scenario

    text = variant({17: "timeline: []\ndevices:", 24: "    heartbeat: 1h\n    door: open"})
    site = config.parse_site(yamlfile.loads(text, "s.yaml"), extra_keys=scenario.SITE_EXTRA_KEYS)
    assert "door-101" in site.devices


def test_optional_fields_the_registry_keeps() -> None:
    site = parse(variant({9: "      - id: b1-101\n        name: Flat 101",
                          14: "            lives_alone: true\n            elderly: true",
                          18: "  - id: door-101\n    name: Front door"}))
    assert site.flats["b1-101"].lives_alone and "door-101" in site.devices
    with pytest.raises(ConfigError, match=r"^site\.yaml:15: key 'elderly': expected bool"):
        parse(variant({14: "            lives_alone: true\n            elderly: 1"}))


# ---- shipped and documented site files ----------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDERS = [(r"<64 hex[^>]*>", "a1" * 32), (r"<32 hex[^>]*>", "b2" * 16), (r"\[\.\.\.\]", "[]")]


def documented_site_files() -> list[tuple[str, str]]:
    """(name, text): every ```yaml block in docs/ that is a whole site file or
    scenario (it has `site:`), with its placeholders filled in; every YAML file in
    deploy/."""
    out = []
    for path in sorted((REPO / "docs").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"```ya?ml\n(.*?)```", text, re.S):
            block = m.group(1)
            if re.search(r"^site:", block, re.M):
                for pattern, value in PLACEHOLDERS:
                    block = re.sub(pattern, value, block)
                out.append(("%s:%d" % (path.relative_to(REPO), text[:m.start()].count("\n") + 2), block))
    for path in sorted((REPO / "deploy").rglob("*.y*ml")):
        out.append((str(path.relative_to(REPO)), path.read_text(encoding="utf-8")))
    return out


DOCUMENTED = documented_site_files()  # scenarios/*.yaml: test_scenario_errors.py runs `anju sim check`


def test_the_documented_site_files_are_found() -> None:
    names = [name.split(":")[0] for name, _ in DOCUMENTED]
    assert {"docs/deploy-pi.md", "docs/scenarios.md", "docs/face_access.md"} <= set(names)


@pytest.mark.parametrize(("name", "text"), DOCUMENTED, ids=[n for n, _ in DOCUMENTED])
def test_documented_site_files_load(name: str, text: str, tmp_path) -> None:
    from host_tools import boards
    from hub.config import preflight
    from simulator import scenario

    # the hub's broker password file (docs/broker.md) lives on the Pi: a stand-in here
    (tmp_path / "hub.password").write_text("documented-password\n")
    text = text.replace("/etc/anju/broker/hub.password", str(tmp_path / "hub.password"))
    doc = yamlfile.loads(text, name)
    if "timeline" in doc:
        scenario.parse(doc, boards_loader=boards.load)
        return
    site = config.parse_site(doc)
    if site.face is not None:
        pytest.importorskip("hub.face.config")
    preflight.check(site)  # its `hub:` and `face:` sections too (none names another file)


# ---- anju config check: every section the hub validates when it starts --------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    from host_tools import certs

    d = tmp_path_factory.mktemp("pki")
    certs.make_ca(d)
    certs.make_client(d, "hub-sunrise")
    (d / "webhook.key").write_bytes(b"k" * 32)
    (d / "hub.pw").write_text("s3cret-hub-password\n")
    (d / "empty.pw").write_text("\n")
    return d


def full_site(pki: Path) -> str:
    """BASE with every section `anju config check` validates (face only if the face
    packages are installed)."""
    face = ""
    try:
        import hub.face.config  # noqa: F401
    except ImportError:
        pass
    else:
        face = ("face:\n"
                f"  models_dir: {pki / 'models'}\n"
                "  match_threshold: 0.45\n"
                "  entrances:\n"
                "    - {id: b1-main, building: b1, camera: \"folder:/nonexistent\", lock: lock-1,\n"
                f"       lock_key_hex: \"{'cd' * 32}\"}}\n")
    return variant({}) + (
        "hub:\n"                                                     # 33
        "  upstream:\n"                                              # 34
        "    host: platform.example.net\n"                           # 35
        "    port: 8883\n"                                           # 36
        "    topic_prefix: anju/upstream\n"                          # 37
        "    tls:\n"                                                 # 38
        f"      ca: {pki / 'ca.pem'}\n"                              # 39
        f"      cert: {pki / 'hub-sunrise.pem'}\n"                   # 40
        f"      key: {pki / 'hub-sunrise.key'}\n"                    # 41
        "  webhook:\n"                                               # 42
        "    url: https://platform.example.net/anju/alarms\n"        # 43
        f"    secret_file: {pki / 'webhook.key'}\n"                  # 44
        "    timeout: 10\n"                                          # 45
        f"    ca: {pki / 'ca.pem'}\n"                                # 46
        "  home_assistant: {enabled: true, discovery_prefix: ha}\n"  # 47
        "  http: {host: 127.0.0.1, port: 8080}\n"                    # 48
    ) + face                                                         # 49: face:


@pytest.fixture
def no_network(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("anju config check opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def config_check(path: Path, capsys) -> tuple[int, str, str]:
    from host_tools.cli import main

    code = main(["config", "check", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_config_check_accepts_a_full_site_file(tmp_path, monkeypatch, capsys, pki, no_network) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "site.yaml"
    path.write_text(full_site(pki), encoding="utf-8")
    code, out, err = config_check(path, capsys)
    assert code == 0, err
    assert out.startswith(f"{path}: valid: site sunrise, 1 building(s), 2 flat(s)"), out
    assert "checked hub, hub.upstream (TLS), hub.webhook, hub.home_assistant, hub.http" in out
    assert err == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.yaml"]  # no database, nothing written


WEBHOOK_SECTION = re.compile(r"  webhook:\n(?:    .*\n)+")


def replace(old: str, new: str):
    def edit(text: str, pki: Path) -> str:
        o, n = old.replace("{pki}", str(pki)), new.replace("{pki}", str(pki))
        assert o in text, o
        return text.replace(o, n)
    return edit


CHECK_CASES = [
    # (id, edit of full_site's text, expected line, substrings)
    ("webhook_http_url", replace("url: https://platform", "url: http://platform"), 43,
     ["hub.webhook: key 'url'", "https://"]),
    ("webhook_secret_missing", replace("webhook.key", "missing.key"), 44,
     ["hub.webhook: key 'secret_file'", "missing.key"]),
    ("webhook_unknown_key", replace("    timeout: 10", "    secret: x"), 45,
     ["unknown key 'secret' in hub.webhook", "did you mean 'secret_file'?"]),
    ("webhook_not_mapping", lambda text, pki: WEBHOOK_SECTION.sub("  webhook: yes\n", text), 42,
     ["hub.webhook", "mapping"]),
    ("tls_ca_missing", replace("ca: {pki}/ca.pem\n      cert", "ca: {pki}/missing-ca.pem\n      cert"), 39,
     ["hub.upstream.tls: key 'ca': cannot read", "missing-ca.pem"]),
    ("tls_ca_not_pem", replace("ca: {pki}/ca.pem\n      cert", "ca: {pki}/webhook.key\n      cert"), 39,
     ["hub.upstream.tls: key 'ca'", "webhook.key"]),
    ("tls_cert_without_key", replace("      key: {pki}/hub-sunrise.key\n", ""), 39,
     ["hub.upstream.tls", "'cert' and 'key'"]),
    ("tls_unknown_key", replace("      key: ", "      keyfile: "), 41, ["unknown key 'keyfile' in hub.upstream.tls"]),
    ("upstream_port", replace("port: 8883", "port: \"8883x\""), 36, ["hub.upstream: key 'port'"]),
    ("upstream_unknown_key", replace("    tls:", "    tsl:"), 38,
     ["unknown key 'tsl' in hub.upstream", "did you mean 'tls'?"]),
    ("no_target", lambda text, pki: replace("    host: platform", "    enabled: false\n    host: platform")(
        WEBHOOK_SECTION.sub("", text), pki), 34, ["no forwarding target"]),
    ("home_assistant_enabled", replace("enabled: true, discovery_prefix", "enabled: yes please, discovery_prefix"),
     47, ["hub.home_assistant: key 'enabled'"]),
    ("home_assistant_wildcard", replace("discovery_prefix: ha", "discovery_prefix: ha/#"), 47,
     ["hub.home_assistant: key 'discovery_prefix'"]),
    ("http_port", replace("port: 8080", "port: 80800"), 48, ["hub.http.port"]),
    ("hub_unknown_key", replace("  home_assistant: {", "  home_asistant: {"), 47,
     ["unknown key 'home_asistant' in hub", "did you mean 'home_assistant'?"]),
    ("mqtt_port", replace("  http: {host", "  mqtt: {port: 0}\n  http: {host"), 48,
     ["hub.mqtt: key 'port'"]),
    ("mqtt_unknown_key", replace("  http: {host", "  mqtt: {hots: broker}\n  http: {host"), 48,
     ["unknown key 'hots' in hub.mqtt", "did you mean 'host'?"]),
    ("ble_enabled", replace("  http: {host", "  ble: {enabled: 1}\n  http: {host"), 48,
     ["hub.ble: key 'enabled'"]),
    # the hub's login to the site broker (hub/ingest/login.py)
    ("mqtt_password_and_file", replace("  http: {host", "  mqtt: {password: x, password_file: "
                                       "{pki}/hub.pw}\n  http: {host"), 48,
     ["hub.mqtt: keys 'password' and 'password_file'"]),
    ("mqtt_password_file_missing", replace("  http: {host", "  mqtt: {password_file: "
                                           "{pki}/missing.pw}\n  http: {host"), 48,
     ["hub.mqtt: key 'password_file': cannot read", "missing.pw"]),
    ("mqtt_password_file_empty", replace("  http: {host", "  mqtt: {password_file: "
                                         "{pki}/empty.pw}\n  http: {host"), 48,
     ["hub.mqtt: key 'password_file'", "one line"]),
    ("mqtt_password_empty", replace("  http: {host", "  mqtt: {password: ''}\n  http: {host"), 48,
     ["hub.mqtt: key 'password'"]),
    ("mqtt_password_number", replace("  http: {host", "  mqtt: {password: 1234}\n  http: {host"),
     48, ["hub.mqtt: key 'password'", "string"]),
    ("mqtt_username_wildcard", replace("  http: {host", "  mqtt: {username: 'hub/#', password: x}"
                                       "\n  http: {host"), 48, ["hub.mqtt: key 'username'"]),
    ("mqtt_username_alone", replace("  http: {host", "  mqtt: {username: hub-sunrise}\n  http: {host"),
     48, ["hub.mqtt: key 'username'", "needs 'password'"]),
    ("mqtt_tls_ca_missing", replace("  http: {host", "  mqtt: {password: x, tls: {ca: "
                                    "{pki}/missing-ca.pem}}\n  http: {host"), 48,
     ["hub.mqtt.tls: key 'ca': cannot read", "missing-ca.pem"]),
    ("mqtt_login_unknown_key", replace("  http: {host", "  mqtt: {user: hub-sunrise, password: x}"
                                       "\n  http: {host"), 48,
     ["unknown key 'user' in hub.mqtt", "did you mean 'username'?"]),
]


@pytest.mark.parametrize(("edit", "line", "needles"), [c[1:] for c in CHECK_CASES],
                         ids=[c[0] for c in CHECK_CASES])
def test_config_check_validates_the_hub_sections(tmp_path, monkeypatch, capsys, pki, no_network, edit,
                                                 line: int, needles: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "site.yaml"
    path.write_text(edit(full_site(pki), pki), encoding="utf-8")
    code, out, err = config_check(path, capsys)
    assert code == 2, (out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"anju: error: {path}:{line}: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.yaml"]


def test_config_check_accepts_the_hubs_login_and_never_prints_it(tmp_path, monkeypatch, capsys, pki,
                                                                no_network) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "site.yaml"
    text = full_site(pki).replace("  http: {host", "  mqtt: {host: 127.0.0.1, username: hub-sunrise, "
                                  f"password_file: {pki}/hub.pw, tls: {{ca: {pki}/ca.pem}}}}\n"
                                  "  http: {host")
    path.write_text(text, encoding="utf-8")
    code, out, err = config_check(path, capsys)
    assert code == 0, err
    assert "hub.mqtt (login hub-sunrise, TLS)" in out
    assert "s3cret" not in out + err


def test_config_check_validates_the_face_section(tmp_path, monkeypatch, capsys, pki, no_network) -> None:
    pytest.importorskip("hub.face.config")
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "site.yaml"
    path.write_text(full_site(pki).replace("  match_threshold: 0.45", "  match_treshold: 0.45"),
                    encoding="utf-8")
    code, out, err = config_check(path, capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"anju: error: {path}:50: face: unknown keys ['match_treshold']"), err
    path.write_text(full_site(pki).replace("cd" * 32, "cd" * 16), encoding="utf-8")
    code, out, err = config_check(path, capsys)
    assert code == 2
    assert err.startswith(f"anju: error: {path}:50: face.entrances[0].lock_key_hex: must be 32 bytes"), err
    assert "cd" * 16 not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.yaml"]
