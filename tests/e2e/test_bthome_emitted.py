"""The advertisements the simulated door sensor puts on the air are standard
BTHome v2 with encryption: bthome-ble decodes them with the bind key to the
right values, and does not with a wrong one."""
from pathlib import Path

from bthome_ble import BTHomeBluetoothDeviceData
from bthome_ble.parser import EncryptionScheme
from habluetooth import BluetoothServiceInfoBleak

from host_tools import boards
from simulator.clock import VirtualClock
from simulator.radio import VirtualRadio
from simulator.scenario import device_keys
from simulator.world import Simulation

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
BTHOME = "0000fcd2-0000-1000-8000-00805f9b34fb"


def service_info(rx):
    return BluetoothServiceInfoBleak(
        name=rx.local_name or rx.address, address=rx.address, rssi=rx.rssi,
        manufacturer_data=rx.manufacturer_data, service_data=rx.service_data,
        service_uuids=rx.service_uuids, source="test", device=None, advertisement=None,
        connectable=False, time=0.0, tx_power=None)


async def run_sensor(tmp_path, board):
    clock = VirtualClock()
    radio = VirtualRadio()
    heard = []
    unsubscribe = radio.subscribe(heard.append)
    sim = Simulation(clock, FIRMWARE, tmp_path, radio=radio)
    frame_key, bind_key, mac = device_keys("sunrise", "door-9")
    cfg = {"device_id": "door-9", "site": "sunrise", "kind": "door_sensor", "transport": "ble",
           "frame_key": frame_key.hex(), "bind_key": bind_key.hex(), "heartbeat_s": 3600}
    sim.add_device("door-9", "door_sensor", boards.load(board, "door_sensor"), cfg, mac)
    sim.set_battery("door-9", 2700)
    sim.set_input("door-9", "reed", False)
    sim.set_input("door-9", "tamper", False)
    await sim.power_on("door-9")
    await sim.run_until(clock.now() + 5)  # the boot report's advertising window
    first = len(heard)
    sim.set_input("door-9", "reed", True)
    sim.set_input("door-9", "tamper", True)
    await sim.run_until(clock.now() + 60)
    sim.shutdown()
    unsubscribe()
    return heard, first, bind_key


async def test_emitted_advertisements_decode_with_bthome_ble(tmp_path):
    for board in ("esp32", "pico_w"):
        heard, first, bind_key = await run_sensor(tmp_path / board, board)
        assert first >= 1 and len(heard) > first
        closed, opened = heard[first - 1], heard[-1]
        for rx, is_open in ((closed, False), (opened, True)):
            assert BTHOME in rx.service_data
            parser = BTHomeBluetoothDeviceData(bind_key)
            update = parser.update(service_info(rx))
            assert parser.encryption_scheme == EncryptionScheme.BTHOME_BINDKEY
            assert parser.bindkey_verified and not parser.decryption_failed
            values = {k.key: v.native_value for k, v in update.binary_entity_values.items()}
            sensors = {k.key: v.native_value for k, v in update.entity_values.items()}
            assert values["opening"] is is_open, board
            assert values["tamper"] is is_open, board  # the case was opened with the door
            # 2700 mV on a 2200..3000 mV cell is 62 %
            assert sensors["battery"] == 62
            assert abs(sensors["voltage"] - 2.7) < 0.01


async def test_wrong_bind_key_does_not_decode(tmp_path):
    heard, first, bind_key = await run_sensor(tmp_path, "esp32")
    wrong = bytes(b ^ 0xFF for b in bind_key)
    parser = BTHomeBluetoothDeviceData(wrong)
    update = parser.update(service_info(heard[-1]))
    assert parser.decryption_failed
    assert not update.binary_entity_values


