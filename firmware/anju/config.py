"""Device configuration (config.json on the device) and board description.

Pure validation with messages that name the key and the allowed values, so
`anju deploy` and the simulator refuse a bad file before it reaches a device.
Never logs keys.
"""
import binascii

KINDS = ("door_sensor", "smart_lock", "smoke_sensor")
TRANSPORTS = ("ble", "mqtt")


class ConfigError(ValueError):
    pass


def _need(d, key, where, kind=None):
    if key not in d:
        raise ConfigError("%s: missing key '%s'" % (where, key))
    v = d[key]
    if kind is not None and not isinstance(v, kind):
        raise ConfigError("%s: key '%s' must be %s" % (where, key, kind.__name__))
    return v


def _hex_key(d, key, size, where):
    v = _need(d, key, where, str)
    try:
        raw = binascii.unhexlify(v)
    except ValueError:
        raise ConfigError("%s: key '%s' must be hex" % (where, key))
    if len(raw) != size:
        raise ConfigError("%s: key '%s' must be %d bytes (%d hex digits)" % (where, key, size, 2 * size))
    return raw


def _int(d, key, default, lo, hi, where):
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ConfigError("%s: key '%s' must be an integer %d..%d" % (where, key, lo, hi))
    return v


def _map(d, key, where):
    v = d.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ConfigError("%s: key '%s' must be an object" % (where, key))
    return v


def _ident(v):
    if not v or len(v) > 48:
        return False
    for ch in v:
        if not (("a" <= ch <= "z") or ("0" <= ch <= "9") or ch in "-_"):
            return False
    return "a" <= v[0] <= "z" or "0" <= v[0] <= "9"


def _reserved(device_id):
    return device_id == "hub" or device_id.startswith("hub-") or device_id.startswith("anju-")


def _login(m, device_id, where):
    password = m.get("password")
    user = m.get("user", device_id if password is not None else None)
    if user is not None and (not isinstance(user, str) or not 0 < len(user) <= 64):
        raise ConfigError("%s: key 'user' must be a string of 1..64 characters" % where)
    if password is not None and (not isinstance(password, str) or not 0 < len(password) <= 256):
        raise ConfigError("%s: key 'password' must be a string of 1..256 characters" % where)
    return user, password


class DeviceConfig:
    def __init__(self, d, where="config.json"):
        if not isinstance(d, dict):
            raise ConfigError("%s: must be an object" % where)
        self.device_id = _need(d, "device_id", where, str)
        self.site = _need(d, "site", where, str)
        for k in ("device_id", "site"):
            if not _ident(getattr(self, k)):
                raise ConfigError("%s: key '%s' must match [a-z0-9][a-z0-9_-]{0,47}" % (where, k))
        if _reserved(self.device_id):
            # the hub's topic level, broker user name and client ids (docs/broker.md)
            raise ConfigError("%s: key 'device_id' '%s' is reserved for the hub" % (where, self.device_id))
        self.kind = _need(d, "kind", where, str)
        if self.kind not in KINDS:
            raise ConfigError("%s: key 'kind' is '%s'; allowed: %s" % (where, self.kind, ", ".join(KINDS)))
        self.transport = _need(d, "transport", where, str)
        if self.transport not in TRANSPORTS:
            raise ConfigError("%s: key 'transport' is '%s'; allowed: %s" % (where, self.transport, ", ".join(TRANSPORTS)))
        self.frame_key = _hex_key(d, "frame_key", 32, where)
        self.bind_key = _hex_key(d, "bind_key", 16, where) if "bind_key" in d else None
        if self.transport == "ble" and self.bind_key is None:
            raise ConfigError("%s: key 'bind_key' is required for transport 'ble'" % where)
        self.heartbeat_s = _int(d, "heartbeat_s", 3600, 10, 7 * 86400, where)
        self.debounce_ms = _int(d, "debounce_ms", 30, 0, 1000, where)
        self.retry_s = _int(d, "retry_s", 300, 10, 86400, where)
        self.adv_window_ms = _int(d, "adv_window_ms", 1000, 10, 10000, where)
        self.adv_interval_ms = _int(d, "adv_interval_ms", 100, 20, 10240, where)
        self.mqtt = _map(d, "mqtt", where)
        self.wifi = _map(d, "wifi", where)
        if self.transport == "mqtt":
            _need(self.mqtt, "host", where + ": mqtt", str)
            _int(self.mqtt, "port", 1883, 1, 65535, where + ": mqtt")
            # every wait on the broker (CONNACK, PUBACK, SUBACK, a packet's rest)
            self.mqtt_timeout_ms = _int(self.mqtt, "timeout_ms", 5000, 200, 60000,
                                        where + ": mqtt")
            # the broker login (docs/broker.md): user name = device id unless
            # `user` says otherwise, the password `anju broker config` made
            self.mqtt_user, self.mqtt_password = _login(self.mqtt, self.device_id,
                                                        where + ": mqtt")
            _need(self.wifi, "ssid", where + ": wifi", str)
        self.queue_bytes = _int(d, "queue_bytes", 16384, 512, 1 << 20, where)
        self.battery = _map(d, "battery", where)
        # OTA (docs/ota.md): the site's release public key; without it the
        # device takes no update at all.
        self.release_pubkey = _hex_key(d, "release_pubkey", 32, where) if "release_pubkey" in d else None
        self.ota_trial_boots = _int(d, "ota_trial_boots", 1, 1, 50, where)
        # a battery device fetches an offered release only at or above this
        # charge (a transfer keeps the radio on for seconds); mains devices 100
        self.ota_min_battery_percent = _int(d, "ota_min_battery_percent", 30, 0, 100, where)

    def topic(self, leaf):
        return "anju/%s/%s/%s" % (self.site, self.device_id, leaf)
