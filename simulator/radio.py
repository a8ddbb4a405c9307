"""A virtual BLE advertising channel between simulated devices and scanners.

Devices hand the radio the exact advertising data bytes their firmware built;
scanners (the bleak backend in `simulator.bleak_backend`) receive them parsed
the way a host controller stack reports them. Nothing is invented: what a
scanner sees is only what some device (or a test, through `inject`) put on
the air.

Time model. The radio has no clock of its own. A device starts advertising
with `advertise(address, adv_data, interval_us)`; the simulator, which owns
virtual time, then calls `deliver_window(address, window_ms)` to say "this
advertisement was on the air for window_ms", and the radio delivers
`copies_in_window(window_ms, interval_us)` copies: window / interval, at least
one, at most `max_copies_per_window`. `stop(address)` takes it off the air;
`stop(address, window_ms)` does both: delivers the window that just ended,
then takes it off the air (what a device's advertising burst looks like).

Delivery is synchronous: each copy calls every subscriber in the calling
thread before `deliver_window`/`inject` return, so asyncio code in the same
thread may call the radio directly; a subscriber must not block, and an
exception raised by a subscriber propagates to the caller (a broken scanner
fails the test instead of being hidden). `subscribe(callback)` returns the
function that unsubscribes.

Faults: `drop_rate` (each copy is lost with this probability, drawn from the
seeded `random.Random` given to the constructor so runs repeat exactly),
`jammed` (nothing is delivered at all), and `inject(address, raw)` puts
arbitrary bytes (forged, truncated, malformed) on the air as if sent from an
address.

This module must never talk to real Bluetooth hardware and never decode
BTHome itself: it carries bytes and splits AD structures, nothing more.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"
DEFAULT_RSSI = -60
MAX_LEGACY_ADV_LEN = 31

AD_FLAGS = 0x01
AD_UUID16_INCOMPLETE = 0x02
AD_UUID16_COMPLETE = 0x03
AD_UUID32_INCOMPLETE = 0x04
AD_UUID32_COMPLETE = 0x05
AD_UUID128_INCOMPLETE = 0x06
AD_UUID128_COMPLETE = 0x07
AD_NAME_SHORT = 0x08
AD_NAME_COMPLETE = 0x09
AD_TX_POWER = 0x0A
AD_SERVICE_DATA_16 = 0x16
AD_SERVICE_DATA_32 = 0x20
AD_SERVICE_DATA_128 = 0x21
AD_MANUFACTURER = 0xFF


class RadioError(Exception):
    """Root of the errors this module raises (misuse by the simulator)."""


def uuid16_to_str(value: int) -> str:
    return f"{value:08x}{BASE_UUID_SUFFIX}"


def _uuid_from_le(raw: bytes) -> str:
    if len(raw) in (2, 4):
        return uuid16_to_str(int.from_bytes(raw, "little"))
    h = raw[::-1].hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


@dataclass(frozen=True)
class Reception:
    """One advertisement as a scanner hears it."""

    address: str
    rssi: int
    raw: bytes
    local_name: str | None = None
    service_data: dict[str, bytes] = field(default_factory=dict)
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_uuids: list[str] = field(default_factory=list)
    tx_power: int | None = None


def parse_advertising_data(address: str, raw: bytes, rssi: int) -> Reception:
    """Split AD structures like a host stack: stop at the first malformed one."""
    name = None
    short_name = None
    service_data: dict[str, bytes] = {}
    manufacturer: dict[int, bytes] = {}
    uuids: list[str] = []
    tx_power = None
    i = 0
    while i < len(raw):
        length = raw[i]
        if length == 0 or i + 1 + length > len(raw):
            break  # zero padding or a structure running past the end
        ad_type = raw[i + 1]
        value = bytes(raw[i + 2 : i + 1 + length])
        i += 1 + length
        if ad_type in (AD_UUID16_INCOMPLETE, AD_UUID16_COMPLETE):
            width = 2
        elif ad_type in (AD_UUID32_INCOMPLETE, AD_UUID32_COMPLETE):
            width = 4
        elif ad_type in (AD_UUID128_INCOMPLETE, AD_UUID128_COMPLETE):
            width = 16
        else:
            width = 0
        if width:
            for j in range(0, len(value) - width + 1, width):
                uuid = _uuid_from_le(value[j : j + width])
                if uuid not in uuids:
                    uuids.append(uuid)
        elif ad_type == AD_NAME_COMPLETE:
            name = value.decode("utf-8", "replace")
        elif ad_type == AD_NAME_SHORT:
            short_name = value.decode("utf-8", "replace")
        elif ad_type == AD_TX_POWER and len(value) == 1:
            tx_power = int.from_bytes(value, "little", signed=True)
        elif ad_type == AD_SERVICE_DATA_16 and len(value) >= 2:
            service_data[_uuid_from_le(value[:2])] = value[2:]
        elif ad_type == AD_SERVICE_DATA_32 and len(value) >= 4:
            service_data[_uuid_from_le(value[:4])] = value[4:]
        elif ad_type == AD_SERVICE_DATA_128 and len(value) >= 16:
            service_data[_uuid_from_le(value[:16])] = value[16:]
        elif ad_type == AD_MANUFACTURER and len(value) >= 2:
            manufacturer[int.from_bytes(value[:2], "little")] = value[2:]
    return Reception(
        address=address,
        rssi=rssi,
        raw=bytes(raw),
        local_name=name if name is not None else short_name,
        service_data=service_data,
        manufacturer_data=manufacturer,
        service_uuids=uuids,
        tx_power=tx_power,
    )


def normalize_address(address: str) -> str:
    parts = address.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise RadioError(f"not a BLE address: {address!r}")
    try:
        int("".join(parts), 16)
    except ValueError as exc:
        raise RadioError(f"not a BLE address: {address!r}") from exc
    return address.upper()


def copies_in_window(window_ms: int, interval_us: int, cap: int) -> int:
    """Advertising events in a window: window / interval, at least 1, at most cap."""
    if window_ms <= 0:
        return 0
    return max(1, min((window_ms * 1000) // interval_us, cap))


@dataclass
class _OnAir:
    adv_data: bytes
    interval_us: int
    rssi: int


Subscriber = Callable[[Reception], None]


class VirtualRadio:
    """The shared air of one simulated site."""

    def __init__(
        self,
        *,
        rng: random.Random | None = None,
        drop_rate: float = 0.0,
        max_copies_per_window: int = 50,
    ) -> None:
        self._rng = rng if rng is not None else random.Random(0)
        self.drop_rate = drop_rate
        self.jammed = False
        self.max_copies_per_window = max_copies_per_window
        self._on_air: dict[str, _OnAir] = {}
        self._subscribers: dict[object, Subscriber] = {}
        self.delivered = 0
        self.dropped = 0

    @property
    def drop_rate(self) -> float:
        return self._drop_rate

    @drop_rate.setter
    def drop_rate(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise RadioError("drop_rate must be within 0..1")
        self._drop_rate = value

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        token = object()
        self._subscribers[token] = callback

        def unsubscribe() -> None:
            self._subscribers.pop(token, None)

        return unsubscribe

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def advertise(
        self, address: str, adv_data: bytes, interval_us: int, *, rssi: int = DEFAULT_RSSI
    ) -> None:
        """Put (or replace) a device's advertisement on the air."""
        if len(adv_data) > MAX_LEGACY_ADV_LEN:
            raise RadioError(f"legacy advertising data is at most 31 bytes, got {len(adv_data)}")
        if interval_us < 20_000:
            raise RadioError("advertising interval below 20 ms is not allowed by BLE")
        self._on_air[normalize_address(address)] = _OnAir(bytes(adv_data), interval_us, rssi)

    def stop(self, address: str, window_ms: int | None = None) -> int:
        """Take the advertisement off the air; with window_ms, first deliver that window."""
        arrived = 0 if window_ms is None else self.deliver_window(address, window_ms)
        self._on_air.pop(normalize_address(address), None)
        return arrived

    def is_advertising(self, address: str) -> bool:
        return normalize_address(address) in self._on_air

    def deliver_window(self, address: str, window_ms: int) -> int:
        """Deliver the copies sent during window_ms; return how many arrived."""
        address = normalize_address(address)
        on_air = self._on_air.get(address)
        if on_air is None:
            return 0
        copies = copies_in_window(window_ms, on_air.interval_us, self.max_copies_per_window)
        arrived = 0
        for _ in range(copies):
            if self._transmit(address, on_air.adv_data, on_air.rssi):
                arrived += 1
        return arrived

    def inject(self, address: str, raw_adv: bytes, *, rssi: int = DEFAULT_RSSI) -> bool:
        """Send arbitrary bytes once as if from `address`; True if it arrived."""
        return self._transmit(normalize_address(address), bytes(raw_adv), rssi)

    def _transmit(self, address: str, raw: bytes, rssi: int) -> bool:
        # the draw happens even when jammed so a jam does not shift later drops
        lost = self._rng.random() < self._drop_rate
        if self.jammed or lost:
            self.dropped += 1
            return False
        reception = parse_advertising_data(address, raw, rssi)
        self.delivered += 1
        for callback in tuple(self._subscribers.values()):
            callback(reception)
        return True
