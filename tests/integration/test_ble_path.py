"""BLE path end to end: firmware bytes -> virtual radio -> real BleakScanner -> BleReceiver.

The door sensor's advertisements are built by `firmware/anju/bthome.py`,
carried by `simulator.radio.VirtualRadio`, received through a real
`bleak.BleakScanner` with `simulator.bleak_backend.VirtualScannerBackend`,
and verified by `hub.ble.BleReceiver` with bthome-ble. Nothing is mocked.
"""
from __future__ import annotations

import logging
import random
import struct

import pytest
from bleak import BleakScanner

from anju import bthome
from hub import TransportError
from hub.ingest.ble import BleError, BleReading, BleReceiver, BleRejected, BleScannerError, DeviceKeys
from simulator.bleak_backend import VirtualScannerBackend
from simulator.radio import VirtualRadio

DOOR = "D4:E5:F6:A1:B2:C3"
BIND_KEY = bytes.fromhex("814aac74c4f17b6c1581e1ab87816b99")
OTHER_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
STRANGER = "11:22:33:44:55:66"
INTERVAL_US = 100_000


class StepClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t


def door_adv(counter: int, is_open: bool = True, tamper: bool = False,
             battery: int = 87, millivolts: int = 2960, key: bytes = BIND_KEY,
             address: str = DOOR) -> bytes:
    mac = bytes.fromhex(address.replace(":", ""))
    return bthome.advertisement(
        mac, key, counter, bthome.door_sensor_objects(is_open, tamper, battery, millivolts),
        name="d101",
    )


def plaintext_adv() -> bytes:
    body = bytes([0x44]) + bthome.encode_objects(bthome.door_sensor_objects(True, False, 87, 2960))
    return b"\x02\x01\x06" + bytes([len(body) + 3, 0x16, 0xD2, 0xFC]) + body


def with_service_data(service: bytes) -> bytes:
    return b"\x02\x01\x06" + bytes([len(service) + 3, 0x16, 0xD2, 0xFC]) + service


class Hub:
    def __init__(self, radio: VirtualRadio, clock: StepClock) -> None:
        self.results: list = []
        self.keys = {DOOR: DeviceKeys("door-101", BIND_KEY)}
        self.receiver = BleReceiver(
            self.keys,
            self.results.append,
            clock,
            scanner_factory=lambda cb: BleakScanner(
                detection_callback=cb, backend=VirtualScannerBackend, radio=radio
            ),
        )

    def take(self) -> list:
        out, self.results[:] = list(self.results), []
        return out


@pytest.fixture
def radio() -> VirtualRadio:
    return VirtualRadio(rng=random.Random(7))


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
async def hub(radio: VirtualRadio, clock: StepClock):
    hub = Hub(radio, clock)
    await hub.receiver.start()
    yield hub
    await hub.receiver.stop()


@pytest.mark.asyncio
async def test_window_of_repeats_gives_readings_with_the_same_counter(hub, radio, clock):
    radio.advertise(DOOR, door_adv(101, is_open=True), INTERVAL_US)
    assert radio.deliver_window(DOOR, 1000) == 10
    first = hub.take()
    assert len(first) == 10
    assert all(isinstance(r, BleReading) for r in first)
    assert {r.counter for r in first} == {101}
    assert first[0].device_id == "door-101" and first[0].address == DOOR
    assert first[0].values == {"opening": True, "tamper": False, "battery": 87, "voltage_mv": 2960}
    assert first[0].received_at == clock.now()
    assert first[0].rssi == -60

    clock.t += 30
    radio.advertise(DOOR, door_adv(102, is_open=False, tamper=True, battery=64, millivolts=2750),
                    INTERVAL_US)
    radio.deliver_window(DOOR, 300)
    second = hub.take()
    assert [r.counter for r in second] == [102, 102, 102]
    assert second[-1].values == {"opening": False, "tamper": True, "battery": 64, "voltage_mv": 2750}
    assert second[-1].received_at == clock.now()


@pytest.mark.asyncio
async def test_identical_repeat_long_after_is_still_a_reading_with_that_counter(hub, radio, clock):
    # bthome-ble skips an identical frame seen more than 4 s later; the hub must not
    radio.advertise(DOOR, door_adv(150), INTERVAL_US)
    radio.deliver_window(DOOR, 200)
    clock.t += 60
    radio.deliver_window(DOOR, 200)
    results = hub.take()
    assert [(type(r), r.counter) for r in results] == [(BleReading, 150)] * 4
    assert results[-1].received_at == clock.now()
    assert results[-1].values == results[0].values


@pytest.mark.asyncio
async def test_values_are_only_what_this_advertisement_carried(hub, radio):
    mac = bytes.fromhex(DOOR.replace(":", ""))
    radio.inject(DOOR, door_adv(10, is_open=True))
    radio.inject(DOOR, bthome.advertisement(mac, BIND_KEY, 11, [bthome.opening(False)]))
    full, partial = hub.take()
    assert full.values["battery"] == 87
    assert partial.counter == 11
    assert partial.values == {"opening": False}


@pytest.mark.asyncio
async def test_older_advertisement_is_reported_with_its_counter_for_the_pipeline(hub, radio, clock):
    # bthome-ble alone would skip counter 400 after 500 and leave stale values
    radio.inject(DOOR, door_adv(500, is_open=True))
    clock.t += 1
    radio.inject(DOOR, door_adv(400, is_open=False))
    clock.t += 10
    radio.inject(DOOR, door_adv(500, is_open=True))
    results = hub.take()
    assert [(r.counter, r.values["opening"]) for r in results] == [(500, True), (400, False), (500, True)]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("address", "raw", "reason"),
    [
        pytest.param(STRANGER, door_adv(7, address=STRANGER), "unknown_device", id="unknown"),
        pytest.param(DOOR, door_adv(7, key=OTHER_KEY), "bad_tag", id="wrong-key"),
        pytest.param(DOOR, door_adv(7, address=STRANGER), "bad_tag", id="other-mac-in-nonce"),
        pytest.param(DOOR, plaintext_adv(), "not_encrypted", id="plaintext"),
        pytest.param(DOOR, with_service_data(b""), "truncated", id="empty"),
        pytest.param(DOOR, with_service_data(bytes([0x45]) + bytes(9)), "truncated", id="short"),
        pytest.param(DOOR, with_service_data(bytes([0x25]) + bytes(16)), "bad_body", id="version-1"),
        pytest.param(DOOR, with_service_data(bytes([0x45]) + random.Random(3).randbytes(17)),
                     "bad_tag", id="forged-random-body"),
    ],
)
async def test_rejections(hub, radio, address, raw, reason):
    assert radio.inject(address, raw)
    (result,) = hub.take()
    assert isinstance(result, BleRejected)
    assert result.reason == reason
    assert result.address == address
    assert result.device_id == (None if reason == "unknown_device" else "door-101")


@pytest.mark.asyncio
async def test_decrypted_body_without_known_objects_is_bad_body(hub, radio):
    from anju import ccm

    mac = bytes.fromhex(DOOR.replace(":", ""))
    counter = 9
    sealed = ccm.CCM(BIND_KEY, 4).encrypt(bthome.nonce(mac, counter), b"\xfe\x01")  # no such object
    service = bytes([0x45]) + sealed[:-4] + struct.pack("<I", counter) + sealed[-4:]
    radio.inject(DOOR, with_service_data(service))
    (result,) = hub.take()
    assert isinstance(result, BleRejected) and result.reason == "bad_body"


@pytest.mark.asyncio
async def test_every_tampered_byte_is_rejected_and_state_is_unharmed(hub, radio):
    good = door_adv(300)
    service_start, service_end = 7, 4 + good[3]
    for index in range(service_start, service_end):
        forged = bytearray(good)
        forged[index] ^= 0x04
        radio.inject(DOOR, bytes(forged))
    rejected = hub.take()
    assert len(rejected) == service_end - service_start
    assert all(isinstance(r, BleRejected) for r in rejected)
    assert {r.reason for r in rejected} <= {"bad_tag", "not_encrypted", "bad_body"}
    radio.inject(DOOR, good)
    (reading,) = hub.take()
    assert isinstance(reading, BleReading) and reading.counter == 300


@pytest.mark.asyncio
async def test_random_bytes_never_become_readings(hub, radio):
    rng = random.Random(2026)
    for _ in range(300):
        radio.inject(DOOR, rng.randbytes(rng.randint(0, 31)))
        radio.inject(DOOR, b"\x02\x01\x06" + bytes([rng.randint(4, 27), 0x16, 0xD2, 0xFC])
                     + rng.randbytes(rng.randint(0, 24)))
    assert not any(isinstance(r, BleReading) for r in hub.take())


@pytest.mark.asyncio
async def test_stop_unsubscribes_from_the_radio(radio, clock):
    hub = Hub(radio, clock)
    assert radio.subscriber_count == 0
    await hub.receiver.start()
    assert radio.subscriber_count == 1
    radio.advertise(DOOR, door_adv(1), INTERVAL_US)
    radio.deliver_window(DOOR, 100)
    assert len(hub.take()) == 1
    await hub.receiver.stop()
    assert radio.subscriber_count == 0
    assert radio.deliver_window(DOOR, 1000) == 10  # still on the air, nobody listening
    assert hub.take() == []


@pytest.mark.asyncio
async def test_drops_and_jamming(hub, radio):
    radio.advertise(DOOR, door_adv(42), INTERVAL_US)
    radio.drop_rate = 0.5
    arrived = radio.deliver_window(DOOR, 2000)
    assert 0 < arrived < 20
    assert len(hub.take()) == arrived
    radio.drop_rate = 0.0
    radio.jammed = True
    assert radio.deliver_window(DOOR, 1000) == 0
    assert hub.take() == []
    radio.jammed = False
    assert radio.stop(DOOR, 500) == 5  # the burst that just ended, then off the air
    assert len(hub.take()) == 5
    assert not radio.is_advertising(DOOR)
    assert radio.deliver_window(DOOR, 1000) == 0


@pytest.mark.asyncio
async def test_bind_key_never_logged(hub, radio, caplog):
    caplog.set_level(logging.DEBUG)
    radio.inject(DOOR, door_adv(5))
    radio.inject(DOOR, door_adv(6, key=OTHER_KEY))
    results = hub.take()
    assert [type(r) for r in results] == [BleReading, BleRejected]
    assert caplog.records  # bthome-ble did log (e.g. the failed decryption)
    text = caplog.text + repr(results) + repr(hub.keys)
    assert BIND_KEY.hex() not in text.lower()
    assert repr(BIND_KEY) not in text


@pytest.mark.asyncio
async def test_scanner_failures_are_translated(hub, radio, clock):
    with pytest.raises(BleError):
        await hub.receiver.start()  # already running
    shared = BleakScanner(backend=VirtualScannerBackend, radio=radio)
    await shared.start()
    other = BleReceiver({}, [].append, clock, scanner_factory=lambda cb: shared)
    with pytest.raises(TransportError) as caught:
        await other.start()  # the backend refuses a second start
    assert isinstance(caught.value, BleScannerError)
    assert caught.value.__cause__ is not None
    assert not other.running
    await shared.stop()


@pytest.mark.asyncio
async def test_scanner_sees_ad_structures_as_bleak_reports_them(radio):
    seen = []
    scanner = BleakScanner(
        detection_callback=lambda d, a: seen.append((d, a)), backend=VirtualScannerBackend, radio=radio
    )
    uuid128 = bytes.fromhex("00112233445566778899aabbccddeeff")
    raw = (
        b"\x02\x01\x06"
        + b"\x05\x03\x0f\x18\x0a\x18"  # complete list of 16-bit UUIDs: 180f, 180a
        + b"\x11\x07" + uuid128[::-1]  # complete list of 128-bit UUIDs (little-endian on air)
        + b"\x02\x0a\xf8"  # tx power -8 dBm
        + b"\x05\xff\x59\x00\xab\xcd"  # manufacturer 0x0059
        + b"\x05\x08door"  # shortened local name
        + b"\x09\x16\x0f\x18"  # claims 8 bytes, only 2 left: malformed, ignored
    )
    await scanner.start()
    radio.inject("aa:bb:cc:dd:ee:01", raw, rssi=-71)
    await scanner.stop()
    radio.inject("aa:bb:cc:dd:ee:01", raw)
    (device, adv), = seen
    assert device.address == "AA:BB:CC:DD:EE:01" and device.name == "door"
    assert adv.local_name == "door"
    assert adv.service_uuids == [
        "0000180f-0000-1000-8000-00805f9b34fb",
        "0000180a-0000-1000-8000-00805f9b34fb",
        "00112233-4455-6677-8899-aabbccddeeff",
    ]
    assert adv.tx_power == -8 and adv.rssi == -71
    assert adv.manufacturer_data == {0x0059: b"\xab\xcd"}
    assert adv.service_data == {}
    assert adv.platform_data[1] == raw

    filtered = BleakScanner(
        detection_callback=lambda d, a: seen.append((d, a)),
        service_uuids=["0000fcd2-0000-1000-8000-00805f9b34fb"],
        backend=VirtualScannerBackend,
        radio=radio,
    )
    await filtered.start()
    radio.inject("aa:bb:cc:dd:ee:01", raw)
    await filtered.stop()
    assert len(seen) == 1  # filtered out: FCD2 is not in its UUID lists
