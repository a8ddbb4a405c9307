"""`network` of the rp2 port on the Pico W (MicroPython 1.27,
extmod/network_cyw43.c): the CYW43 link states as statuses
(STAT_NO_AP_FOUND = -2 ...), station mode only."""
import _sim
import _wlan

STA_IF = 0
AP_IF = 1
STAT_IDLE = 0
STAT_CONNECTING = 1
STAT_GOT_IP = 3
STAT_CONNECT_FAIL = -1
STAT_NO_AP_FOUND = -2
STAT_WRONG_PASSWORD = -3

_STATUS = {"STAT_IDLE": STAT_IDLE, "STAT_CONNECTING": STAT_CONNECTING,
           "STAT_GOT_IP": STAT_GOT_IP, "STAT_NO_AP_FOUND": STAT_NO_AP_FOUND,
           "STAT_WRONG_PASSWORD": STAT_WRONG_PASSWORD}


class WLAN(_wlan.Station):
    IF_STA = 0
    IF_AP = 1
    PM_NONE = 0x10
    PM_PERFORMANCE = 0xA11142
    PM_POWERSAVE = 0x111022

    def __new__(cls, interface=STA_IF):
        return _wlan.station(cls, interface, _STATUS)

    def __init__(self, interface=STA_IF):
        pass

    def connect(self, ssid=None, key=None, *, auth=-1, security=-1, bssid=None, channel=-1):
        self._connect(ssid)



def hostname(name=None):
    if name is None:
        return _sim.boot["device"]


def country(code=None):
    if code is None:
        return "CN"
