"""`network` of the esp32 port (MicroPython 1.27, network_wlan.c): station
mode only. Statuses are ESP-IDF's reason codes (STAT_NO_AP_FOUND = 201 ...)."""
import _sim
import _wlan

STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204
AUTH_OPEN = 0
AUTH_WPA2_PSK = 3

_STATUS = {"STAT_IDLE": STAT_IDLE, "STAT_CONNECTING": STAT_CONNECTING,
           "STAT_GOT_IP": STAT_GOT_IP, "STAT_NO_AP_FOUND": STAT_NO_AP_FOUND,
           "STAT_WRONG_PASSWORD": STAT_WRONG_PASSWORD, "STAT_BEACON_TIMEOUT": STAT_BEACON_TIMEOUT}


class WLAN(_wlan.Station):
    IF_STA = 0
    IF_AP = 1
    PM_NONE = 0
    PM_PERFORMANCE = 1
    PM_POWERSAVE = 2

    def __new__(cls, interface_id=STA_IF):
        return _wlan.station(cls, interface_id, _STATUS)

    def __init__(self, interface_id=STA_IF):
        pass

    def connect(self, ssid=None, key=None, *, bssid=None):
        self._connect(ssid)



def hostname(name=None):
    if name is None:
        return _sim.boot["device"]
