"""The site registry on a real SQLite file and a real KEK file: sealed keys,
KEK checks, every operation, validation that changes nothing, CSV and YAML."""
import os
import sqlite3

import pytest

from hub.registry import kek
from hub.registry import csvfile as registry_csv
from hub.config import yamlfile
from hub.registry.db import (Registry, RegistryConflict, RegistryInvalid, RegistryNotFound,
                          open_for_hub)

FRAME_KEY = bytes(range(32))
BIND_KEY = bytes(range(100, 116))
SITE = """
site: {id: sunrise, name: Sunrise Gardens, timezone: Asia/Shanghai}
defaults: {inactivity: 12h}
buildings:
  - id: b1
    name: Building 1
    flats:
      - id: b1-101
        inactivity: 6h
        residents:
          - {id: r-101, name: Wang Lan, phone: "138", lives_alone: true, role: owner}
      - id: b1-102
        residents:
          - {id: r-102, name: Li Wei, role: tenant, from: 2026-01-01, until: 2026-12-31,
             credentials: [card-1, "pin:1234"]}
devices:
  - {id: door-101, kind: door_sensor, board: esp32c3, flat: b1-101, transport: mqtt,
     frame_key: %s}
  - {id: door-102, kind: door_sensor, board: esp32c3, flat: b1-102, transport: ble,
     ble_address: "A4:C1:38:00:00:02", frame_key: %s, bind_key: %s, heartbeat: 30m}
""" % (FRAME_KEY.hex(), FRAME_KEY[::-1].hex(), BIND_KEY.hex())


class Clock:
    def __init__(self):
        self.t = 1_800_000_000.0

    def now(self):
        return self.t


@pytest.fixture
def kek_file(tmp_path):
    return kek.create(tmp_path / "kek")


@pytest.fixture
def reg(tmp_path, kek_file):
    r = Registry.open(tmp_path / "hub.db", kek_file, Clock())
    r.import_document(yamlfile.loads(SITE, "site.yaml"), "test", "site.yaml")
    yield r
    r.close()


def db_bytes(tmp_path):
    return b"".join(p.read_bytes() for p in tmp_path.glob("hub.db*"))


def snapshot(r):
    return r.version(), r.document(with_keys=True), r.audit(1000)


# ---- keys at rest -----------------------------------------------------------------------
def test_database_copy_without_the_kek_holds_no_key(tmp_path, reg):
    reg.add("devices", {"id": "door-9", "kind": "door_sensor", "board": "esp32c3", "flat": "b1-101",
                        "transport": "mqtt", "frame_key": (b"\x5a" * 32).hex()}, "test")
    data = db_bytes(tmp_path)
    assert len(data) > 4096
    for key in (FRAME_KEY, FRAME_KEY[::-1], BIND_KEY, b"\x5a" * 32):
        for form in (key, key.hex().encode(), key.hex().upper().encode()):
            assert form not in data
    # ... but the registry with the KEK gives them back exactly
    site = reg.site()
    assert site.devices["door-101"].frame_key == FRAME_KEY
    assert site.devices["door-102"].bind_key == BIND_KEY
    assert site.devices["door-9"].frame_key == b"\x5a" * 32


def test_sealed_key_is_bound_to_its_device(tmp_path, reg):
    db = sqlite3.connect(tmp_path / "hub.db")
    sealed = db.execute("SELECT sealed FROM registry_keys WHERE device_id='door-101'").fetchone()[0]
    db.execute("UPDATE registry_keys SET sealed=? WHERE device_id='door-102' AND name='frame_key'",
               (sealed,))
    db.commit()
    db.close()
    with pytest.raises(kek.KekError, match="frame_key of device door-102"):
        reg.site()


def test_wrong_kek_is_refused_at_open(tmp_path, reg):
    other = kek.create(tmp_path / "other-kek")
    with pytest.raises(kek.KekError, match="does not open with this KEK"):
        Registry.open(tmp_path / "hub.db", other, Clock())


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "does not exist; create one with `anju keys kek --out"),
    (lambda p: (p.write_bytes(b"x" * 31), p.chmod(0o600)), "exactly 32 bytes"),
    (lambda p: (p.write_bytes(b"x" * 33), p.chmod(0o600)), "exactly 32 bytes"),
    (lambda p: (p.write_bytes(os.urandom(32)), p.chmod(0o644)), "accessible by other users"),
    (lambda p: (p.write_bytes(os.urandom(32)), p.chmod(0o602)), "accessible by other users"),
    (lambda p: p.mkdir(), "not a regular file"),
])
def test_unusable_kek_file_is_refused(tmp_path, setup, message):
    path = tmp_path / "kek"
    setup(path)
    with pytest.raises(kek.KekError, match=message):
        Registry.open(tmp_path / "hub.db", path, Clock())


def test_kek_file_is_created_0600_and_never_overwritten(tmp_path):
    path = tmp_path / "kek"
    os.umask(0o022)
    kek.create(path)
    assert (path.stat().st_mode & 0o777) == 0o600 and len(path.read_bytes()) == 32
    before = path.read_bytes()
    with pytest.raises(kek.KekError, match="already exists"):
        kek.create(path)
    assert path.read_bytes() == before


# ---- operations -------------------------------------------------------------------------------
def test_every_operation_changes_the_site_with_a_version_and_an_audit_row(reg):
    v0 = reg.version()
    reg.add("buildings", {"id": "b2", "name": "Building 2"}, "alice")
    reg.add("flats", {"id": "b2-201", "building": "b2", "inactivity": "8h"}, "alice")
    reg.add("residents", {"id": "r-201", "flat": "b2-201", "name": "Zhao", "lives_alone": True},
            "alice")
    _, site = reg.add("devices", {"id": "door-201", "kind": "door_sensor", "board": "esp32c3",
                                  "flat": "b2-201", "transport": "mqtt",
                                  "frame_key": FRAME_KEY.hex()}, "alice")
    assert site.flats["b2-201"].building == "b2" and site.flats["b2-201"].inactivity_s == 8 * 3600
    assert site.residents["r-201"].flat == "b2-201" and site.devices["door-201"].flat == "b2-201"
    _, site = reg.update("flats", "b2-201", {"inactivity": "2h"}, "bob")
    assert site.flats["b2-201"].inactivity_s == 7200
    _, site = reg.update("residents", "r-201", {"flat": "b1-101", "phone": "139"}, "bob")
    assert site.residents["r-201"].flat == "b1-101" and site.residents["r-201"].phone == "139"
    _, site = reg.update("devices", "door-201", {"flat": "b1-101", "heartbeat": "10m"}, "bob")
    assert site.devices["door-201"].heartbeat_s == 600
    assert site.devices["door-201"].frame_key == FRAME_KEY  # an update keeps the keys
    reg.remove("devices", "door-201", "carol")
    reg.remove("flats", "b2-201", "carol")
    _, site = reg.remove("buildings", "b2", "carol")
    assert "b2" not in site.buildings and "door-201" not in site.devices
    assert reg.version() == v0 + 10
    audit = reg.audit()
    assert [(a["actor"], a["action"], a["target"]) for a in audit[:3]] == [
        ("carol", "remove", "building b2"), ("carol", "remove", "flat b2-201"),
        ("carol", "remove", "device door-201")]
    assert [a["version"] for a in audit] == list(range(reg.version(), 0, -1))
    assert "frame_key" in audit[6]["detail"]["fields"]  # the add of door-201: names, not values
    assert FRAME_KEY.hex() not in repr(audit)


def test_views_never_carry_keys(reg):
    dev = reg.get("devices", "door-102")
    assert dev["keys"] == ["bind_key", "frame_key"] and "frame_key" not in dev
    assert reg.get("residents", "r-102")["flat"] == "b1-102"
    assert reg.get("flats", "b1-101")["residents"] == ["r-101"]
    assert [b["flats"] for b in reg.list("buildings")] == [["b1-101", "b1-102"]]
    assert "frame_key" not in repr(reg.document())

    # what GET shows can be sent back with PUT unchanged
    for kind, eid in (("flats", "b1-101"), ("residents", "r-101"), ("devices", "door-101"),
                      ("buildings", "b1")):
        shown = reg.get(kind, eid)
        reg.update(kind, eid, dict(shown, name="Renamed"), "t")
        assert reg.get(kind, eid) == dict(shown, name="Renamed")


@pytest.mark.parametrize("op, error, message", [
    (lambda r: r.add("devices", {"id": "door-101"}, "t"), RegistryConflict,
     "device 'door-101' already exists"),
    (lambda r: r.add("flats", {"id": "b1-101", "building": "b1"}, "t"), RegistryConflict,
     "flat 'b1-101' already exists"),
    (lambda r: r.add("devices", {"id": "door-9", "kind": "door_sensor", "board": "esp32c3",
                                 "flat": "b1-101", "transport": "mqtt", "frame_key": "ab" * 31},
                     "t"), RegistryInvalid,
     r"registry devices\[door-9\]: key 'frame_key': must be 32 bytes"),
    (lambda r: r.add("devices", {"id": "door-9", "kind": "fridge", "board": "esp32c3",
                                 "flat": "b1-101", "transport": "mqtt"}, "t"), RegistryInvalid,
     "key 'kind': unknown device kind 'fridge'"),
    (lambda r: r.add("flats", {"id": "x-1", "building": "nope"}, "t"), RegistryInvalid,
     "key 'building': no building 'nope'"),
    (lambda r: r.add("residents", {"id": "r-9", "name": "Q"}, "t"), RegistryInvalid,
     "key 'flat' is required"),
    (lambda r: r.add("residents", {"id": "r-9", "flat": "b1-101", "name": "Q", "role": "king"},
                     "t"), RegistryInvalid,
     r"residents\[r-9\]: key 'role': 'king'"),
    (lambda r: r.add("residents", {"id": "r-9", "flat": "b1-101", "name": "Q", "lives_alon": True},
                     "t"), RegistryInvalid,
     r"residents\[r-9\]: unknown key 'lives_alon' in resident; .*did you mean 'lives_alone'\?"),
    (lambda r: r.update("devices", "door-101", {"hartbeat": "2h"}, "t"), RegistryInvalid,
     r"registry devices\[door-101\]: unknown key 'hartbeat' in device"),
    (lambda r: r.import_document(yamlfile.loads(SITE.replace("inactivity: 6h", "inactivty: 6h"),
                                                "new.yaml"), "t"), RegistryInvalid,
     r"new.yaml:\d+: unknown key 'inactivty' in flat"),
    (lambda r: r.update("flats", "b1-101", {"inactivity": "soon"}, "t"), RegistryInvalid,
     r"registry buildings\[b1\].flats\[b1-101\]: key 'inactivity': 'soon' is not a duration"),
    (lambda r: r.update("devices", "door-102", {"frame_key": None}, "t"), RegistryInvalid,
     "missing key 'frame_key'"),
    (lambda r: r.update("devices", "door-101", {"id": "door-x"}, "t"), RegistryInvalid,
     "ids cannot be changed"),
    (lambda r: r.update("devices", "nope", {"board": "x"}, "t"), RegistryNotFound, "no device 'nope'"),
    (lambda r: r.update("buildings", "b1", {"flats": []}, "t"), RegistryInvalid,
     "key 'flats': change them through /api/registry/flats"),
    (lambda r: r.update("flats", "b1-101", {"building": "b7"}, "t"), RegistryInvalid,
     "key 'building': no building 'b7'"),
    (lambda r: r.update("residents", "r-101", {"building": "b7"}, "t"), RegistryInvalid,
     "move a resident by its 'flat'"),
    (lambda r: r.add("flats", [1, 2], "t"), RegistryInvalid, "must be a mapping"),
    (lambda r: r.add("gadgets", {"id": "x"}, "t"), RegistryNotFound, "no registry collection"),
    (lambda r: r.remove("residents", "nope", "t"), RegistryNotFound, "no resident 'nope'"),
    (lambda r: r.remove("flats", "b1-101", "t"), RegistryConflict, "still has residents"),
    (lambda r: r.remove("buildings", "b1", "t"), RegistryConflict, "still has flats"),
    (lambda r: (r.remove("residents", "r-101", "t"), r.remove("flats", "b1-101", "t")),
     RegistryConflict, r"still has devices \['door-101'\]"),
    (lambda r: r.import_document(yamlfile.loads(SITE.replace("b1-102, transport", "b9, transport"),
                                                "new.yaml"), "t"), RegistryInvalid,
     r"new.yaml:\d+: key 'flat': no flat 'b9'"),
])
def test_refused_change_changes_nothing(reg, op, error, message):
    before = snapshot(reg)
    with pytest.raises(error, match=message):
        op(reg)
    after = snapshot(reg)
    # the two-step case removed a resident first (a valid change of its own)
    if after[0] != before[0]:
        assert after[0] == before[0] + 1 and after[2][0]["target"] == "resident r-101"
        return
    assert after == before


def test_flat_moves_to_another_building_and_into_one_without_flats(reg):
    reg.import_document(yamlfile.loads(SITE.replace("    name: Building 1\n", "    name: B1\n"
                                                    "  - id: b2\n    flats: []\n  - id: b3\n"
                                                    "    name: Three\n", 1), "s.yaml"), "t")
    _, site = reg.update("flats", "b1-102", {"building": "b2"}, "t")
    assert site.flats["b1-102"].building == "b2"
    _, site = reg.add("flats", {"id": "b3-1", "building": "b3"}, "t")
    assert site.flats["b3-1"].building == "b3"
    assert reg.get("buildings", "b2")["flats"] == ["b1-102"]


def test_import_without_keys_keeps_the_stored_keys(reg):
    doc = reg.document()  # no keys: what `export` gives
    doc["buildings"][0]["name"] = "Block One"
    _, site = reg.import_document(doc, "t")
    assert site.buildings["b1"] == "Block One"
    assert site.devices["door-102"].bind_key == BIND_KEY


def test_yaml_round_trip(reg, tmp_path):
    import yaml
    text = yaml.safe_dump(reg.document(with_keys=True), sort_keys=False)
    other = Registry.open(tmp_path / "other.db", kek.create(tmp_path / "k2"), Clock())
    other.import_document(yamlfile.loads(text, "export.yaml"), "t")
    assert other.document(with_keys=True) == reg.document(with_keys=True)
    other.close()


# ---- CSV --------------------------------------------------------------------------------
def test_csv_round_trip(reg):
    before = reg.document(with_keys=True)
    files = registry_csv.export(before, with_keys=True)
    assert files["residents.csv"].splitlines()[0] == ",".join(registry_csv.RESIDENT_COLUMNS)
    reg.import_csv(files, "t")
    assert reg.document(with_keys=True) == before


def test_csv_import_replaces_people_and_devices_and_keeps_flat_settings(reg):
    residents = ("building,flat,resident_id,name,lives_alone,role,registered_from,credentials\n"
                 "b1,b1-101,r-1,Wang Lan,yes,owner,,\n"
                 "b1,b1-103,r-3,Sun,no,tenant,2026-02-01,card-9;card-10\n"
                 "b1,b1-102,,,,,,\n")
    devices = ("device_id,kind,board,flat,transport\n"
               "door-101,door_sensor,esp32c3,b1-101,mqtt\n")
    _, site = reg.import_csv({"residents.csv": residents, "devices.csv": devices}, "t")
    assert sorted(site.residents) == ["r-1", "r-3"] and sorted(site.flats) == ["b1-101", "b1-102",
                                                                                 "b1-103"]
    assert site.flats["b1-101"].inactivity_s == 6 * 3600  # kept from the stored flat
    assert site.residents["r-3"].credentials == ("card-9", "card-10")
    assert site.devices["door-101"].frame_key == FRAME_KEY and list(site.devices) == ["door-101"]


@pytest.mark.parametrize("name, text, message", [
    ("devices.csv", "device_id,kind,board,flat,transport,frame_key\n"
                    "door-101,door_sensor,esp32c3,b1-101,mqtt,abcd\n",
     "devices.csv row 2, column frame_key: key 'frame_key': must be 32 bytes"),
    ("devices.csv", "device_id,kind,board,flat,transport\n"
                    "door-101,door_sensor,esp32c3,b1-101,mqtt\n"
                    "door-7,door_sensor,esp32c3,b1-999,mqtt\n",
     "devices.csv row 3, column flat: key 'flat': no flat 'b1-999'"),
    ("devices.csv", "device_id,kind,board,flat,transport,colour\n",
     "devices.csv row 1, column 6: unknown column 'colour'"),
    ("devices.csv", "device_id,kind,flat,transport\n", "devices.csv row 1: missing column.* board"),
    ("residents.csv", "building,flat,resident_id,name,lives_alone\nb1,b1-101,r-1,W,perhaps\n",
     "residents.csv row 2, column lives_alone: 'perhaps' is not true or false"),
    ("residents.csv", "building,flat,resident_id,name,role\nb1,b1-101,r-1,W,owner\n"
                      "b1,b1-101,r-2,X,boss\n",
     "residents.csv row 3, column role: key 'role': 'boss'"),
    ("residents.csv", "building,flat,resident_id,name,registered_until\n"
                      "b1,b1-101,r-1,W,31/12/2026\n",
     "residents.csv row 2, column registered_until: key 'until': '31/12/2026' is not a date"),
    ("residents.csv", "building,flat,resident_id,name\nb1,b1-101,r-1,W\nb2,b1-101,r-2,X\n",
     "residents.csv row 3, column building: flat 'b1-101' is in building 'b1'"),
    ("residents.csv", "building,flat,resident_id,name\nb1,b1-101,,W\n",
     "residents.csv row 2, column resident_id: required"),
    ("residents.csv", "building,flat,resident_id,name\nb1,b1-101,r-1,W,extra\n",
     "residents.csv row 2: 5 cells, but the header has 4"),
    ("people.csv", "a\n", "people.csv: unknown CSV file"),
])
def test_csv_errors_name_file_row_and_column(reg, name, text, message):
    before = snapshot(reg)
    with pytest.raises(RegistryInvalid, match=message):
        reg.import_csv({name: text}, "t")
    assert snapshot(reg) == before


def test_csv_import_into_an_empty_registry_asks_for_the_site_file(tmp_path, kek_file):
    r = Registry.open(tmp_path / "empty.db", kek_file, Clock())
    with pytest.raises(RegistryInvalid, match="import the site's YAML file first"):
        r.import_csv({"devices.csv": "device_id,kind,board,transport\n"}, "t")
    assert r.is_empty()
    r.close()


# ---- hub start in registry mode ------------------------------------------------------------------
def test_open_for_hub_imports_the_file_once(tmp_path, kek_file):
    path = tmp_path / "site.yaml"
    path.write_text(SITE + "hub: {registry: true, kek_file: %s}\n" % kek_file)
    reg, site = open_for_hub(path, tmp_path / "hub.db", Clock())
    assert reg.version() == 1 and site.hub["registry"] is True
    reg.update("flats", "b1-101", {"inactivity": "1h"}, "t")
    reg.close()
    # the file changes, but the registry is now the source of truth
    path.write_text(SITE.replace("inactivity: 6h", "inactivity: 3h")
                    + "hub: {registry: true, kek_file: %s}\n" % kek_file)
    reg, site = open_for_hub(path, tmp_path / "hub.db", Clock())
    assert reg.version() == 2 and site.flats["b1-101"].inactivity_s == 3600
    reg.close()


@pytest.mark.parametrize("message, field", [
    ("registry buildings[b1].flats[b1-101].residents[r-9]: key 'from': '2026-13-01' is not a "
     "date like 2026-01-31", "from"),
    ("registry buildings[b1].flats[b1-101].residents[r-9]: key 'until': 2026-01-01 is before "
     "'from' 2026-05-01", "until"),
    ("registry buildings[b1].flats[b1-101].residents[r-9]: missing key 'name'", "name"),
    ("registry buildings[b1].flats[b1-101].residents[r-9]: unknown key 'colour' in resident; "
     "allowed: id, name", "colour"),
    ("resident: key 'flat': no flat 'b1-999' in this site", "flat"),
    ("the request body must be a mapping of fields", None),
    ("", None),
])
def test_the_field_an_invalid_change_names(message, field):
    from hub.registry.routes import invalid_field
    assert invalid_field(message) == field
