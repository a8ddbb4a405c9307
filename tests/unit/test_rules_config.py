"""Site settings the rules depend on: the site's time zone, residents'
registration (role, `registered`, `from`/`until`, lock credentials) and smart
locks at an entrance; every bad value is an error naming file, line and key."""

from __future__ import annotations

import datetime

import pytest

from hub import ConfigError
from tests.unit.ruleskit import site

R = "\n          - {id: r-101, name: Wang Lan, %s}"


def test_defaults_and_values() -> None:
    s = site()
    assert s.timezone == "UTC"
    r = s.residents["r-101"]
    assert (r.role, r.registered, r.valid_from, r.valid_until) == ("owner", True, None, None)
    assert r.credentials == ("card-0001", "pin-7")
    s = site(timezone="Asia/Shanghai",
             residents_101=R % "role: visitor, from: 2026-11-18, until: '2026-11-20'")
    r = s.residents["r-101"]
    assert s.timezone == "Asia/Shanghai"
    assert (r.role, r.valid_from, r.valid_until) == (
        "visitor", datetime.date(2026, 11, 18), datetime.date(2026, 11, 20))
    assert [r.registered_on(datetime.date(2026, 11, d)) for d in (17, 18, 20, 21)] == [
        False, True, True, False]
    gate = s.devices["lock-gate"]
    assert (gate.flat, gate.entrance) == (None, "gate-north")


@pytest.mark.parametrize(("kw", "message"), [
    ({"timezone": "Mars/Olympus"}, r"site\.yaml:1: key 'timezone': 'Mars/Olympus' is not an IANA"),
    ({"timezone": "../etc"}, r"site\.yaml:1: key 'timezone'"),
    ({"residents_101": R % "role: landlord"}, r"site\.yaml:8: key 'role': 'landlord'; allowed"),
    ({"residents_101": R % "registered: yes please"}, r"site\.yaml:8: key 'registered': expected bool"),
    ({"residents_101": R % "from: '2026-13-01'"}, r"site\.yaml:8: key 'from': '2026-13-01' is not a date"),
    ({"residents_101": R % "from: 2026-11-20, until: 2026-11-18"},
     r"site\.yaml:8: key 'until': 2026-11-18 is before 'from'"),
    ({"residents_101": R % "credentials: card-1"}, r"site\.yaml:8: key 'credentials': expected list"),
    ({"residents_101": R % "credentials: ['bad id']"}, r"site\.yaml:8: key 'credentials': 'bad id'"),
    ({"residents_101": R % "credentials: [12345678901234567]"}, r"key 'credentials'"),
], ids=["tz_unknown", "tz_path", "role", "registered", "from", "until_before_from",
        "creds_not_list", "cred_chars", "cred_not_text"])
def test_bad_values_name_the_line(kw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        site(**kw)


def test_only_a_smart_lock_may_stand_at_an_entrance() -> None:
    from hub.config import site as config
    from hub.config import yamlfile
    from tests.unit.ruleskit import site_yaml
    text = site_yaml().replace("kind: door_sensor, board: esp32c3, flat: b1-101",
                               "kind: door_sensor, board: esp32c3, entrance: gate-north")
    with pytest.raises(ConfigError, match=r"site\.yaml:19: key 'entrance': only a smart_lock"):
        config.parse_site(yamlfile.loads(text, "site.yaml"))
    both = site_yaml().replace("entrance: gate-north", "entrance: gate-north, flat: b1-101")
    with pytest.raises(ConfigError, match=r"site\.yaml:\d+: key 'entrance': .* not both"):
        config.parse_site(yamlfile.loads(both, "site.yaml"))
