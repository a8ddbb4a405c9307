"""What each MicroPython port offers the firmware, as data (MicroPython 1.27).

The simulator's `machine`, `esp32` and `network` modules are built from these
tables, so a constant or argument that one port lacks is missing in the
simulator too: the firmware fails here as it would on the chip. Sources are the
ports' C files at v1.27.0 (ports/esp32/machine_pin.c, modmachine.c, modesp32.c,
network_wlan.c; ports/rp2/machine_pin.c, modmachine.c; extmod/modnetwork.c,
network_cyw43.c); docs/micropython_ports.md has the table with line references.

A board file's `port` names the port, its `mcu` the chip (the ESP32-C3 is the
esp32 port without ext0/ext1 wake).
"""

PORTS = {
    "esp32": {
        "pin": {"IN": 1, "OUT": 3, "OPEN_DRAIN": 7, "PULL_UP": 2, "PULL_DOWN": 1,
                "IRQ_RISING": 1, "IRQ_FALLING": 2, "WAKE_LOW": 4, "WAKE_HIGH": 5,
                "DRIVE_0": 0, "DRIVE_1": 1, "DRIVE_2": 2, "DRIVE_3": 3},
        # reset causes by the simulator's own names
        "reset": {"PWRON_RESET": 1, "HARD_RESET": 2, "WDT_RESET": 3, "DEEPSLEEP_RESET": 4,
                  "SOFT_RESET": 5},
        "machine": {"IDLE": 1, "SLEEP": 2, "DEEPSLEEP": 4, "PIN_WAKE": 2, "EXT0_WAKE": 2,
                    "EXT1_WAKE": 3, "TIMER_WAKE": 4, "TOUCHPAD_WAKE": 5, "ULP_WAKE": 6},
        "wlan_status": {"STAT_IDLE": 1000, "STAT_CONNECTING": 1001, "STAT_GOT_IP": 1010,
                        "STAT_BEACON_TIMEOUT": 200, "STAT_NO_AP_FOUND": 201,
                        "STAT_WRONG_PASSWORD": 202, "STAT_ASSOC_FAIL": 203,
                        "STAT_HANDSHAKE_TIMEOUT": 204},
        "irq_wake": True,      # Pin.irq(..., wake=) exists
        "timer_ids": None,     # per chip, below
        "lightsleep_max_ms": None,
    },
    "rp2": {
        "pin": {"IN": 0, "OUT": 1, "OPEN_DRAIN": 2, "ALT": 3, "PULL_UP": 1, "PULL_DOWN": 2,
                "IRQ_RISING": 8, "IRQ_FALLING": 4},
        "reset": {"PWRON_RESET": 1, "WDT_RESET": 3},
        "machine": {},
        "wlan_status": {"STAT_IDLE": 0, "STAT_CONNECTING": 1, "STAT_GOT_IP": 3,
                        "STAT_CONNECT_FAIL": -1, "STAT_NO_AP_FOUND": -2,
                        "STAT_WRONG_PASSWORD": -3},
        "irq_wake": False,
        "timer_ids": (-1,),
        # machine_lightsleep: "sleep too long" from 2**32 // 1000 ms (about 71.6 min)
        "lightsleep_max_ms": 2 ** 32 // 1000 - 1,
    },
}

CHIPS = {
    # ext0: one RTC pin wakes on a level; the pin list is the ESP32's RTC GPIOs,
    # which the port also checks on the C3 (modesp32.h), where ext0 does not exist.
    "esp32": {"ext0": True, "ext1": True, "gpio_deep_wake": False, "timer_ids": (0, 1, 2, 3),
              "adc_pins": (0, 2, 4, 12, 13, 14, 15, 25, 26, 27, 32, 33, 34, 35, 36, 37, 38, 39)},
    "esp32c3": {"ext0": False, "ext1": False, "gpio_deep_wake": True, "timer_ids": (0, 1),
                "gpio_wake_pins": (0, 1, 2, 3, 4, 5), "adc_pins": (0, 1, 2, 3, 4, 5)},
    "rp2040": {"ext0": False, "ext1": False, "gpio_deep_wake": False, "timer_ids": (-1,),
               "adc_pins": (26, 27, 28, 29)},
}

ESP32_RTC_PINS = (0, 2, 4, 12, 13, 14, 15, 25, 26, 27, 32, 33, 34, 35, 36, 37, 38, 39)


def of(board):
    """(port table, chip table) for a board description; KeyError names the board."""
    try:
        return PORTS[board["port"]], CHIPS[board["mcu"]]
    except KeyError as exc:
        raise KeyError("board %s: port %r / mcu %r is not simulated (ports: %s; chips: %s)"
                       % (board.get("name"), board.get("port"), board.get("mcu"),
                          ", ".join(PORTS), ", ".join(CHIPS))) from exc
