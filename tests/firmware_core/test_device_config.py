"""Device configuration (anju.config.DeviceConfig): valid files load, every
invalid value is refused with a message that names the key.

Plain functions and asserts so the same file runs under CPython (pytest) and
under MicroPython (unix-port harness).
"""
from binascii import unhexlify

from anju import config

FRAME_KEY = "00112233445566778899aabbccddeeff" * 2
BIND_KEY = "0f0e0d0c0b0a09080706050403020100"


def mqtt_doc(**changes):
    d = {
        "device_id": "door-101", "site": "sunrise", "kind": "door_sensor", "transport": "mqtt",
        "frame_key": FRAME_KEY,
        "mqtt": {"host": "192.168.1.2", "port": 1883},
        "wifi": {"ssid": "anju-site", "password": "x"},
    }
    for k, v in changes.items():
        if v is DROP:
            del d[k]
        else:
            d[k] = v
    return d


def ble_doc(**changes):
    d = {
        "device_id": "door-102", "site": "sunrise", "kind": "door_sensor", "transport": "ble",
        "frame_key": FRAME_KEY, "bind_key": BIND_KEY,
    }
    for k, v in changes.items():
        if v is DROP:
            del d[k]
        else:
            d[k] = v
    return d


DROP = object()


def error_of(doc, where="config.json"):
    try:
        config.DeviceConfig(doc, where)
    except config.ConfigError as exc:
        return str(exc)
    raise AssertionError("accepted %r" % (doc,))


def test_valid_mqtt_config_loads_with_defaults():
    c = config.DeviceConfig(mqtt_doc())
    assert c.device_id == "door-101" and c.site == "sunrise"
    assert c.kind == "door_sensor" and c.transport == "mqtt"
    assert c.frame_key == unhexlify(FRAME_KEY)
    assert len(c.frame_key) == 32 and c.frame_key[:2] == b"\x00\x11"
    assert c.bind_key is None
    assert (c.heartbeat_s, c.debounce_ms, c.retry_s) == (3600, 30, 300)
    assert c.mqtt["host"] == "192.168.1.2"
    assert c.wifi["ssid"] == "anju-site"
    assert c.topic("event") == "anju/sunrise/door-101/event"
    assert c.topic("state") == "anju/sunrise/door-101/state"


def test_valid_ble_config_loads_without_mqtt_or_wifi():
    c = config.DeviceConfig(ble_doc(heartbeat_s=600, debounce_ms=0, retry_s=10))
    assert c.transport == "ble"
    assert c.bind_key == b"\x0f\x0e\x0d\x0c\x0b\x0a\x09\x08\x07\x06\x05\x04\x03\x02\x01\x00"
    assert (c.heartbeat_s, c.debounce_ms, c.retry_s) == (600, 0, 10)
    assert c.mqtt == {} and c.wifi == {}


def test_optional_bind_key_on_mqtt_device_is_validated_and_kept():
    c = config.DeviceConfig(mqtt_doc(bind_key=BIND_KEY.upper()))
    assert len(c.bind_key) == 16
    assert "'bind_key'" in error_of(mqtt_doc(bind_key="00" * 15))


def test_boundary_values_accepted():
    c = config.DeviceConfig(mqtt_doc(heartbeat_s=10, debounce_ms=1000, retry_s=10,
                                     mqtt={"host": "h", "port": 65535}))
    assert (c.heartbeat_s, c.debounce_ms, c.retry_s) == (10, 1000, 10)
    c = config.DeviceConfig(mqtt_doc(mqtt={"host": "h", "port": 1}))
    assert c.mqtt["port"] == 1
    c = config.DeviceConfig(mqtt_doc(device_id="0" + "a" * 47, site="a_b-c"))
    assert len(c.device_id) == 48


def test_not_an_object():
    for doc in (None, [], "door", 3):
        msg = error_of(doc, "dev.json")
        assert msg.startswith("dev.json:"), msg


def test_missing_keys():
    for key in ("device_id", "site", "kind", "transport", "frame_key"):
        msg = error_of(mqtt_doc(**{key: DROP}))
        assert "missing key '%s'" % key in msg, msg
        assert msg.startswith("config.json:"), msg
    assert "missing key 'host'" in error_of(mqtt_doc(mqtt={"port": 1883}))
    assert "mqtt" in error_of(mqtt_doc(mqtt=DROP))
    assert "missing key 'ssid'" in error_of(mqtt_doc(wifi={}))
    assert "wifi" in error_of(mqtt_doc(wifi=DROP))


def test_broker_login_is_the_device_id_and_its_password():
    c = config.DeviceConfig(mqtt_doc())
    assert (c.mqtt_user, c.mqtt_password) == (None, None)  # an anonymous broker
    c = config.DeviceConfig(mqtt_doc(mqtt={"host": "h", "password": "pw-101"}))
    assert (c.mqtt_user, c.mqtt_password) == ("door-101", "pw-101")
    c = config.DeviceConfig(mqtt_doc(mqtt={"host": "h", "user": "other", "password": "pw"}))
    assert c.mqtt_user == "other"


def test_bad_broker_login_names_the_key():
    for mqtt, key in (({"password": ""}, "password"), ({"password": 5}, "password"),
                      ({"password": "x" * 257}, "password"), ({"user": "", "password": "p"}, "user"),
                      ({"user": 7}, "user")):
        mqtt["host"] = "h"
        msg = error_of(mqtt_doc(mqtt=mqtt))
        assert "'%s'" % key in msg and "mqtt" in msg, (mqtt, msg)
        assert "p" * 3 not in msg


def test_wrong_types_name_the_key():
    cases = (("device_id", 101), ("site", None), ("kind", 1), ("transport", ["mqtt"]),
             ("frame_key", 5))
    for key, value in cases:
        msg = error_of(mqtt_doc(**{key: value}))
        assert "'%s'" % key in msg, (key, msg)
    assert "'host'" in error_of(mqtt_doc(mqtt={"host": 5}))
    assert "'ssid'" in error_of(mqtt_doc(wifi={"ssid": None}))


def test_bad_ids():
    bad = ("", "Door-101", "-door", "_door", "door 101", "door.101", "door/101", "d\u00f6r",
           "a" * 49, "door+")
    for key in ("device_id", "site"):
        for value in bad:
            msg = error_of(mqtt_doc(**{key: value}))
            assert "'%s'" % key in msg, (key, value, msg)


def test_reserved_ids_refused():
    for did in ("hub", "hub-sunrise", "anju-hub-sunrise"):
        msg = error_of(mqtt_doc(device_id=did))
        assert "'device_id'" in msg and "reserved" in msg, (did, msg)
    assert config.DeviceConfig(mqtt_doc(device_id="hubcap-1")).device_id == "hubcap-1"


def test_unknown_kind():
    for kind in ("door", "Door_sensor", "", "camera"):
        msg = error_of(mqtt_doc(kind=kind))
        assert "'kind'" in msg and "door_sensor" in msg, msg


def test_unknown_transport():
    for transport in ("wifi", "MQTT", "", "zigbee"):
        msg = error_of(mqtt_doc(transport=transport))
        assert "'transport'" in msg and "ble" in msg and "mqtt" in msg, msg


def test_bad_keys():
    cases = (
        ("frame_key", "zz" * 32, "hex"),
        ("frame_key", "0" * 63, None),
        ("frame_key", "00" * 31, "32 bytes"),
        ("frame_key", "00" * 33, "32 bytes"),
        ("frame_key", "", "32 bytes"),
        ("bind_key", "g0" * 16, "hex"),
        ("bind_key", "00" * 32, "16 bytes"),
        ("bind_key", "00" * 8, "16 bytes"),
        ("bind_key", 16, "str"),
    )
    for key, value, detail in cases:
        msg = error_of(ble_doc(**{key: value}))
        assert "'%s'" % key in msg, (key, value, msg)
        if detail is not None:
            assert detail in msg, (key, value, msg)


def test_ble_without_bind_key():
    msg = error_of(ble_doc(bind_key=DROP))
    assert "'bind_key'" in msg and "ble" in msg, msg


def test_bad_numbers():
    cases = (
        ("heartbeat_s", 9), ("heartbeat_s", 0), ("heartbeat_s", "3600"), ("heartbeat_s", 3600.0),
        ("heartbeat_s", None),
        ("debounce_ms", -1), ("debounce_ms", 1001), ("debounce_ms", "30"), ("debounce_ms", 1.5),
        ("retry_s", 9), ("retry_s", -300), ("retry_s", "300"), ("retry_s", 30.0),
    )
    for key, value in cases:
        msg = error_of(mqtt_doc(**{key: value}))
        assert "'%s'" % key in msg, (key, value, msg)


def test_bad_port():
    for port in (0, -1, 65536, 100000, "1883", None, 1883.0):
        msg = error_of(mqtt_doc(mqtt={"host": "h", "port": port}))
        assert "'port'" in msg and "mqtt" in msg, (port, msg)


def test_where_is_in_every_message():
    msg = error_of(mqtt_doc(kind="x"), "/flash/config.json")
    assert msg.startswith("/flash/config.json:"), msg


def test_config_error_is_a_value_error():
    try:
        config.DeviceConfig({})
    except ValueError as exc:
        assert isinstance(exc, config.ConfigError)
    else:
        raise AssertionError("empty config accepted")


def test_sections_and_numbers_have_the_right_types():
    cases = [
        (mqtt_doc(mqtt="broker.local"), "'mqtt'"),
        (mqtt_doc(wifi=["ssid"]), "'wifi'"),
        (mqtt_doc(debounce_ms=True), "'debounce_ms'"),
        (mqtt_doc(retry_s=True), "'retry_s'"),
        (mqtt_doc(queue_bytes=10), "'queue_bytes'"),
        (mqtt_doc(adv_window_ms="1s"), "'adv_window_ms'"),
        (mqtt_doc(adv_interval_ms=5), "'adv_interval_ms'"),
    ]
    for doc, key in cases:
        msg = error_of(doc)
        assert key in msg, (key, msg)
    doc = mqtt_doc()
    doc["mqtt"] = {"host": "h", "port": True}
    assert "'port'" in error_of(doc)


def test_release_pubkey_for_ota():
    c = config.DeviceConfig(mqtt_doc())
    assert c.release_pubkey is None and c.ota_trial_boots == 1
    pub = "9df5b6791e51cbaa34a191cd840556a9949fd00608552da8d0af360a8cb0f9af"
    c = config.DeviceConfig(mqtt_doc(release_pubkey=pub, ota_trial_boots=4))
    assert c.release_pubkey == unhexlify(pub) and c.ota_trial_boots == 4
    for bad, needle in ((pub[:-2], "32 bytes"), ("zz" * 32, "hex"), (7, "must be str")):
        try:
            config.DeviceConfig(mqtt_doc(release_pubkey=bad))
        except config.ConfigError as exc:
            assert "release_pubkey" in str(exc) and needle in str(exc), str(exc)
        else:
            raise AssertionError("accepted release_pubkey %r" % (bad,))
    for bad in (0, 51, "2"):
        try:
            config.DeviceConfig(mqtt_doc(ota_trial_boots=bad))
        except config.ConfigError as exc:
            assert "ota_trial_boots" in str(exc)
        else:
            raise AssertionError("accepted ota_trial_boots %r" % (bad,))
