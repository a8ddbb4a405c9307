"""`rp2` of the rp2 port (MicroPython 1.27): what the firmware may touch.
PIO, DMA and the flash object are not simulated."""

_country = "CN"


def country(code=None):
    global _country
    if code is None:
        return _country
    _country = code


def bootsel_button():
    return 0
