"""The station interface both ports' `network.WLAN` build on in the simulator.

The access point is the simulator's: reachable or not (scenario `wifi`
actions), with the site's SSID. A station that cannot find it reports
"connecting" for an all-channel scan (2 s, ESP-IDF's default scan time is
about 120 ms on each of 13 channels plus margin), then the port's "no AP
found". The radio's on-time is reported to the host, which accounts it in
virtual time.
"""
import _sim

WIFI_SCAN_S = 2.0


_sta = None


def station(cls, interface, status):
    """The station interface object of `cls` (one per interface, as the ports
    keep them); ValueError for any other interface."""
    global _sta
    if interface != 0:
        raise ValueError("invalid WLAN interface identifier")
    if _sta is None:
        _sta = object.__new__(cls)
        Station.__init__(_sta, status)
    return _sta


class Station:
    def __init__(self, status):
        if "wifi" not in _sim.boot["board"]["radios"]:
            raise OSError("board has no Wi-Fi")
        self._st = status  # the port's STAT_* values by meaning
        self._active = False
        self._connected = False
        self._tried = None
        self._ssid_ok = False

    def active(self, is_active=None):
        if is_active is None:
            return self._active
        on = bool(is_active)
        if on != self._active:
            _sim.post({"wifi": [1 if on else 0, _sim.now]})
        if not on:
            self._connected = False
            self._tried = None
        self._active = on

    def _connect(self, ssid):
        if not self._active:
            raise OSError("Wifi Not Started" if "STAT_BEACON_TIMEOUT" in self._st else -1)
        self._tried = _sim.now
        _sim.post({"wconn": 1})
        self._ssid_ok = ssid == _sim.boot["ssid"]
        self._connected = _sim.wifi_ok and self._ssid_ok

    def disconnect(self):
        self._connected = False

    def isconnected(self):
        return self._connected and _sim.wifi_ok

    def _status(self):
        st = self._st
        if self.isconnected():
            return st["STAT_GOT_IP"]
        if self._tried is None:
            return st["STAT_IDLE"]
        if _sim.wifi_ok and self._ssid_ok:
            return st["STAT_CONNECTING"]  # the access point came back: joining it
        # a station scans all channels before it reports no access point
        if _sim.now - self._tried < WIFI_SCAN_S:
            return st["STAT_CONNECTING"]
        return st["STAT_NO_AP_FOUND"]

    def status(self, *args):
        if args:
            if args[0] == "rssi":
                return -60
            raise ValueError("unknown status param")
        return self._status()

    def config(self, *args, **kwargs):
        if args == ("mac",):
            from binascii import unhexlify
            return unhexlify(_sim.boot["mac"])
        if args:
            raise ValueError("unknown config param")
        return None

    def ifconfig(self, *args):
        if args:
            return None
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
