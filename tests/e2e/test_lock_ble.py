"""Phone unlock over BLE end to end: the lock's GATT service
(firmware/anju/shell/lock_ble.py) and its challenge-response core
(firmware/anju/lock/phone.py) on a simulated ESP32 and Pico W, the phone's
side (host_tools/lock_ble.py) through a real bleak `BleakClient` with the
virtual radio's client backend. Nothing is mocked: the probe app has a fixed
phone-key table and a stand-in decision (the lock's real one is
anju.lock.decide); what it decided is read from its console.
"""
import asyncio
import shutil
from pathlib import Path

import pytest
from bleak import BleakClient
from bleak.exc import BleakDeviceNotFoundError

from anju.lock import phone
from host_tools import boards
from host_tools import lock_ble
from simulator.bleak_backend import VirtualClientBackend, drive
from simulator.clock import VirtualClock
from simulator.device import DeviceCrashed
from simulator.radio import VirtualRadio
from simulator.world import Simulation

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
KEY = bytes(range(16))
OTHER_KEY = bytes(range(1, 17))
LOCK_ID = "p1"
MAC = b"\x24\x0a\xc4\x00\x00\x01"
ADDRESS = "24:0A:C4:00:00:01"

# The probe lock: the real service and core, a fixed key table ("c-old" was
# revoked: the table no longer has it), a stand-in decision that always opens.
PROBE = """
import os
import time
import machine
import bluetooth
from anju.lock import phone
from anju.shell import lock_ble

KEYS = {"c-17": bytes(range(16)), "c-18": bytes(range(32, 48))}
CONNECTABLE = %(connectable)r
LOOP = %(loop)r


def on_unlock(action, cred_id):
    print("DECIDE", action, cred_id)
    return 0


auth = phone.PhoneAuth("p1", KEYS.get)
svc = lock_ble.LockBle(bluetooth.BLE(), "lock-p1", auth)
if CONNECTABLE:
    svc.start()
else:  # a broadcaster only (as a door sensor advertises)
    ble = bluetooth.BLE()
    ble.active(True)
    ble.gap_advertise(250000, lock_ble.adv_payload("lock-p1"), connectable=False)
print("READY")
while True:
    out = svc.poll(time.ticks_ms(), on_unlock)
    if out is not None:
        print("ANSWER", out[0], out[1], out[2])
    if LOOP == "light":
        machine.lightsleep(1000)  # a BLE event ends it, like a pin interrupt
    else:
        time.sleep_ms(20)         # the IRQ runs during the sleep, poll after it
"""

BOARDS = [("esp32", "light"), ("pico_w", "sleep")]


def _sim(tmp_path, board="esp32", loop="light", connectable=True):
    root = tmp_path / "fw"
    shutil.copytree(FIRMWARE / "anju", root / "anju")
    (root / "probe").mkdir()
    (root / "probe" / "main.py").write_text(PROBE % {"connectable": connectable, "loop": loop})
    radio = VirtualRadio()
    sim = Simulation(VirtualClock(), root, tmp_path / "work", radio=radio)
    b = boards.load(board)
    sim.add_device(LOCK_ID, "probe", b, {"device_id": LOCK_ID}, MAC)
    return sim, radio, sim.devices[LOCK_ID]


def _console(dev):
    return (Path(dev.fs_root) / "console.log").read_text()


def _run(sim, scenario):
    async def go():
        await sim.power_on(LOCK_ID)
        await sim.run_until(sim.clock.now() + 1)
        return await scenario()
    try:
        return asyncio.run(go())
    finally:
        sim.shutdown()


def _unlock(sim, radio, key=KEY, cred="c-17", action=lock_ble.ACTION_UNLOCK):
    return drive(sim, lock_ble.unlock(ADDRESS, cred, key, action, backend=VirtualClientBackend,
                                      radio=radio, sim=sim, lock_id=LOCK_ID))


class Phone:
    """A bleak client that keeps what it wrote and heard (to replay it)."""

    def __init__(self, sim, radio):
        self.client = BleakClient(ADDRESS, backend=VirtualClientBackend, radio=radio, sim=sim)
        self.replies = []
        self.sim = sim

    async def open(self):
        await self.client.connect()
        await self.client.start_notify(lock_ble.RESULT_UUID,
                                       lambda _c, data: self.replies.append(bytes(data)))
        for _ in range(100):  # the lock writes the challenge from its loop
            nonce = bytes(await self.client.read_gatt_char(lock_ble.CHALLENGE_UUID))
            if nonce != bytes(16):
                return nonce
            await self.sim.run_until(self.sim.clock.now() + 0.01)
        raise AssertionError("no challenge")

    async def send(self, answer):
        await self.client.write_gatt_char(lock_ble.COMMAND_UUID, answer, response=True)
        for _ in range(100):  # until the lock's loop has answered (virtual time)
            if self.replies:
                return self.replies.pop(0)
            await self.sim.run_until(self.sim.clock.now() + 0.01)
        raise AssertionError("no reply")


@pytest.mark.parametrize("board,loop", BOARDS)
def test_a_phone_unlocks_and_the_reply_is_the_locks(tmp_path, board, loop):
    sim, radio, dev = _sim(tmp_path, board, loop)

    async def scenario():
        assert radio.is_connectable(ADDRESS)
        result, seq = await _unlock(sim, radio)
        # the lock advertises again once the phone has left
        await sim.run_until(sim.clock.now() + 1)
        assert radio.is_connectable(ADDRESS)
        again = await _unlock(sim, radio, cred="c-18", key=bytes(range(32, 48)),
                              action=lock_ble.ACTION_LOCK)
        return result, seq, again

    result, seq, again = _run(sim, scenario)
    assert (result, seq) == (0, 1)
    assert again == (0, 2)
    text = _console(dev)
    assert "DECIDE 2 c-17" in text and "ANSWER 0 2 c-17" in text
    assert "DECIDE 1 c-18" in text


@pytest.mark.parametrize("board,loop", BOARDS)
def test_a_recorded_answer_replayed_is_refused(tmp_path, board, loop):
    sim, radio, dev = _sim(tmp_path, board, loop)

    async def scenario():
        p = Phone(sim, radio)
        nonce = await p.open()
        answer = phone.make_answer(KEY, LOCK_ID, nonce, phone.ACTION_UNLOCK, "c-17")
        first = await p.send(answer)
        await p.client.disconnect()
        await sim.run_until(sim.clock.now() + 1)
        q = Phone(sim, radio)  # the attacker replays what was on the air
        await q.open()
        second = await q.send(answer)
        await q.client.disconnect()
        return nonce, first, second

    nonce, first, second = _run(sim, scenario)
    assert phone.read_reply(KEY, LOCK_ID, nonce, first) == (0, 1, True)
    assert phone.read_reply(KEY, LOCK_ID, nonce, second)[0] == phone.R_NO_CHALLENGE
    assert _console(dev).count("DECIDE") == 1


@pytest.mark.parametrize("board,loop", BOARDS)
def test_a_wrong_key_and_a_revoked_credential_are_refused(tmp_path, board, loop):
    sim, radio, dev = _sim(tmp_path, board, loop)

    async def scenario():
        out = []
        for key, cred in ((OTHER_KEY, "c-17"), (KEY, "c-old")):
            with pytest.raises(lock_ble.UnlockRefused) as err:
                await _unlock(sim, radio, key=key, cred=cred)
            out.append((err.value.result, err.value.authentic))
            await sim.run_until(sim.clock.now() + 1)
        return out

    assert _run(sim, scenario) == [(phone.R_BAD_TAG, False),
                                   (phone.R_UNKNOWN_CREDENTIAL, False)]
    text = _console(dev)
    assert "DECIDE" not in text
    assert "ANSWER %d 2 c-17" % phone.R_BAD_TAG in text


@pytest.mark.parametrize("board,loop", BOARDS)
def test_an_answer_after_the_nonce_expired_is_refused(tmp_path, board, loop):
    sim, radio, dev = _sim(tmp_path, board, loop)

    async def scenario():
        p = Phone(sim, radio)
        nonce = await p.open()
        await sim.run_until(sim.clock.now() + 11)  # the phone dawdles, still connected
        answer = phone.make_answer(KEY, LOCK_ID, nonce, phone.ACTION_UNLOCK, "c-17")
        reply = await p.send(answer)
        await p.client.disconnect()
        return nonce, reply

    nonce, reply = _run(sim, scenario)
    assert phone.read_reply(KEY, LOCK_ID, nonce, reply)[0::2] == (phone.R_EXPIRED, True)
    with pytest.raises(lock_ble.UnlockRefused) as err:
        lock_ble.check_reply(KEY, LOCK_ID, nonce, reply)
    assert (err.value.result, err.value.authentic) == (phone.R_EXPIRED, True)
    assert "DECIDE" not in _console(dev)


def test_a_tampered_reply_is_detected_by_the_phone(tmp_path):
    sim, radio, dev = _sim(tmp_path)

    def flip(address, handle, data):
        if len(data) == phone.REPLY_LEN:
            data = data[:-1] + bytes((data[-1] ^ 1,))
        return data

    async def scenario():
        radio.tamper_notify = flip
        with pytest.raises(lock_ble.BadReply):
            await _unlock(sim, radio)
        # a refusal claimed as success (result byte changed) fails too
        radio.tamper_notify = lambda a, h, d: (b"\x00" + d[1:]) if len(d) == 21 else d
        await sim.run_until(sim.clock.now() + 1)
        with pytest.raises(lock_ble.BadReply):
            await _unlock(sim, radio, key=KEY, cred="c-18")  # c-18's key is not KEY

    _run(sim, scenario)


@pytest.mark.parametrize("board,loop", BOARDS)
def test_a_lock_not_advertising_connectable_cannot_be_connected(tmp_path, board, loop):
    sim, radio, dev = _sim(tmp_path, board, loop, connectable=False)

    async def scenario():
        assert radio.is_advertising(ADDRESS) and not radio.is_connectable(ADDRESS)
        client = BleakClient(ADDRESS, backend=VirtualClientBackend, radio=radio, sim=sim)
        with pytest.raises(BleakDeviceNotFoundError):
            await client.connect()
        with pytest.raises(lock_ble.LockBleError):
            await _unlock(sim, radio)

    _run(sim, scenario)


def test_a_lock_out_of_range_cannot_be_connected(tmp_path):
    sim, radio, dev = _sim(tmp_path)

    async def scenario():
        radio.out_of_range.add(ADDRESS)
        with pytest.raises(lock_ble.LockBleError):
            await _unlock(sim, radio)
        radio.out_of_range.clear()
        return await _unlock(sim, radio)

    assert _run(sim, scenario) == (0, 1)


@pytest.mark.parametrize("board,loop", BOARDS)
def test_a_disconnect_mid_exchange_leaves_the_lock_fine(tmp_path, board, loop):
    sim, radio, dev = _sim(tmp_path, board, loop)

    async def scenario():
        p = Phone(sim, radio)
        nonce = await p.open()  # the phone walks away with the challenge
        await p.client.disconnect()
        await sim.run_until(sim.clock.now() + 0.5)
        q = Phone(sim, radio)
        await q.open()           # writes its answer and leaves before the reply
        await q.client.write_gatt_char(
            lock_ble.COMMAND_UUID,
            phone.make_answer(KEY, LOCK_ID, nonce, phone.ACTION_UNLOCK, "c-17"), response=True)
        await q.client.disconnect()
        await sim.run_until(sim.clock.now() + 0.5)
        return await _unlock(sim, radio)

    assert _run(sim, scenario)[0] == 0
    assert _console(dev).count("DECIDE") == 1


def test_the_lock_drops_a_phone_that_holds_the_link(tmp_path):
    sim, radio, dev = _sim(tmp_path)
    lost = []

    async def scenario():
        client = BleakClient(ADDRESS, lambda c: lost.append(1), backend=VirtualClientBackend,
                             radio=radio, sim=sim)
        await client.connect()
        assert not radio.is_advertising(ADDRESS)  # the stack stopped it on the connection
        await sim.run_until(sim.clock.now() + 31)
        await asyncio.sleep(0)
        return client.is_connected

    assert _run(sim, scenario) is False
    assert lost == [1]


def test_the_service_registers_the_documented_table(tmp_path):
    sim, radio, dev = _sim(tmp_path)

    async def scenario():
        client = BleakClient(ADDRESS, backend=VirtualClientBackend, radio=radio, sim=sim)
        await client.connect()
        svc = client.services.get_service(lock_ble.SERVICE_UUID)
        chars = {c.uuid: sorted(c.properties) for c in svc.characteristics}
        mtu = client.mtu_size
        await client.disconnect()
        return chars, mtu

    chars, mtu = _run(sim, scenario)
    assert chars == {lock_ble.CHALLENGE_UUID: ["notify", "read"],
                     lock_ble.COMMAND_UUID: ["write"],
                     lock_ble.RESULT_UUID: ["notify"]}
    assert mtu == 64


def test_a_planned_connection_reaches_a_lock_the_scheduler_runs_ahead(tmp_path):
    """With a plan, the lock's timer wakes run ahead while nothing can reach
    it; a connection is a step on the lock: the scheduler holds the lock back
    to it, and the unlock then works at that time."""
    sim, radio, dev = _sim(tmp_path)

    async def scenario():
        t = sim.clock.now() + 5.5
        sim.plan_inputs({LOCK_ID: [t]}, [], t + 100)
        await sim.run_until(t)
        assert sim.runs_ahead > 0
        assert not dev.ahead and dev.at <= sim.clock.now()
        return await _unlock(sim, radio)

    assert _run(sim, scenario) == (0, 1)


def test_an_unplanned_connection_to_a_lock_running_ahead_fails_loudly(tmp_path):
    sim, radio, dev = _sim(tmp_path)

    async def scenario():
        t = sim.clock.now() + 5.5
        sim.plan_inputs({}, [], t + 100)  # no step says a phone comes
        await sim.run_until(t)
        # handed its timer wakes early, it passed time on its own up to the horizon
        assert sim.runs_ahead > 0 and dev.at > sim.clock.now()
        client = BleakClient(ADDRESS, backend=VirtualClientBackend, radio=radio, sim=sim)
        with pytest.raises(DeviceCrashed, match="planned step"):
            await client.connect()

    _run(sim, scenario)


@pytest.mark.parametrize("board,loop", BOARDS)
def test_the_lock_service_fits_the_boards_heap(tmp_path, board, loop):
    sim, radio, dev = _sim(tmp_path, board, loop)
    _run(sim, lambda: _unlock(sim, radio))
    # the 64-bit port's figure: about half of it on the board (docs/micropython_ports.md)
    assert 0 < dev.peak_heap < 40_000, dev.peak_heap


def test_anju_lock_phone_is_the_same_exchange(tmp_path, monkeypatch, capsys):
    """`anju lock phone`: the key from standard input, bleak's backend named
    (on a Pi it is BlueZ); a wrong key length stops before any radio work."""
    import argparse
    import io

    from host_tools import lock_cli
    sim, radio, dev = _sim(tmp_path)
    args = argparse.Namespace(lock=LOCK_ID, address=ADDRESS, credential="c-17", throw=False,
                              timeout=5.0)

    async def scenario():
        monkeypatch.setattr("sys.stdin", io.StringIO(KEY.hex() + "\n"))
        code = await drive(sim, lock_cli.phone(args, backend=VirtualClientBackend, radio=radio,
                                               sim=sim))
        monkeypatch.setattr("sys.stdin", io.StringIO("abcd\n"))
        short = await lock_cli.phone(args, backend=VirtualClientBackend, radio=radio, sim=sim)
        monkeypatch.setattr("sys.stdin", io.StringIO(bytes(16).hex() + "\n"))
        wrong = await drive(sim, lock_cli.phone(args, backend=VirtualClientBackend, radio=radio,
                                                sim=sim))
        return code, short, wrong

    code, short, wrong = _run(sim, scenario)
    out, err = capsys.readouterr()
    assert code == 0 and "unlocked" in out and KEY.hex() not in out + err
    assert short == 2 and "32 hex digits" in err
    assert wrong == 1 and "refused" in err.lower()
    assert _console(dev).count("DECIDE 2 c-17") == 1  # only the right key reached the decision
