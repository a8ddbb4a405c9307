"""The lock's BLE GATT service for phone unlock (docs/smart_lock.md, "Phone
unlock over BLE"), on MicroPython's `bluetooth` (esp32 NimBLE and Pico W
BTstack share the API).

    svc = LockBle(bluetooth.BLE(), "lock-101", phone.PhoneAuth(lock_id, lookup))
    svc.start()
    while True:
        out = svc.poll(time.ticks_ms(), on_unlock)   # from the app's loop
        ...

`on_unlock(action, credential_id) -> result` is the app's decision (0 done,
else an ACCESS reason code; or (result, seq) with the ACCESS log's seq), called
only for an authentic, fresh answer. `poll` returns (result, action,
credential_id) for every answer it handled (credential_id None for a malformed
one), else None, so the app can log refusals too.

One phone at a time: the stack stops advertising when a central connects, the
service advertises again when it leaves. A new challenge is made when a phone
connects and after each answer (a nonce is used once); a phone that stays
connected longer than LINK_MAX_MS is disconnected. The IRQ handler only
records what happened (a few ints); everything else runs in `poll`.
"""
import os

import bluetooth

from anju.lock import phone

SERVICE_UUID = "5e1f0001-9a6d-4c3b-8e2f-61b0d3a4c5e7"
CHALLENGE_UUID = "5e1f0002-9a6d-4c3b-8e2f-61b0d3a4c5e7"  # read, notify: the nonce
COMMAND_UUID = "5e1f0003-9a6d-4c3b-8e2f-61b0d3a4c5e7"    # write: the phone's answer
RESULT_UUID = "5e1f0004-9a6d-4c3b-8e2f-61b0d3a4c5e7"     # notify: the lock's reply

_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_GATTS_WRITE = 3

_FLAG_READ = 0x0002
_FLAG_WRITE = 0x0008
_FLAG_NOTIFY = 0x0010

ADV_INTERVAL_US = 250000
MTU = 64                 # the reply (21 bytes) needs more than the default 23 - 3
CMD_BUFFER = 64          # longer than an answer, so an over-long write is seen as such
LINK_MAX_MS = 30000

_ZERO_NONCE = bytes(phone.NONCE_LEN)


def _uuid128_le(text):
    h = text.replace("-", "")
    out = bytearray(16)
    for i in range(16):
        out[15 - i] = int(h[2 * i:2 * i + 2], 16)
    return bytes(out)


def adv_payload(name):
    """Flags, the service's 128-bit UUID, and the name (shortened to fit 31 bytes)."""
    out = bytearray(b"\x02\x01\x06")
    out += bytes((17, 0x07)) + _uuid128_le(SERVICE_UUID)
    raw = name.encode()
    room = 31 - len(out) - 2
    kind = 0x09 if len(raw) <= room else 0x08
    raw = raw[:room]
    out += bytes((len(raw) + 1, kind)) + raw
    return bytes(out)


class LockBle:
    def __init__(self, ble, name, auth, rng=os.urandom, interval_us=ADV_INTERVAL_US):
        self.ble = ble
        self.auth = auth
        self.rng = rng
        self.interval_us = interval_us
        self.adv = adv_payload(name)
        self.h_challenge = self.h_command = self.h_result = None
        # what the IRQ handler records (ints only)
        self._link = -1       # the connected phone's conn handle
        self._joined = False  # a phone connected: it needs a challenge
        self._left = False    # the phone left
        self._wrote = False   # the phone wrote an answer
        self._refuse = -1     # a second central's conn handle, to disconnect
        self._since = 0       # ticks_ms when the current phone was given its challenge
        self.answers = 0

    def start(self):
        ble = self.ble
        ble.active(True)
        ble.config(mtu=MTU)
        svc = (bluetooth.UUID(SERVICE_UUID), (
            (bluetooth.UUID(CHALLENGE_UUID), _FLAG_READ | _FLAG_NOTIFY),
            (bluetooth.UUID(COMMAND_UUID), _FLAG_WRITE),
            (bluetooth.UUID(RESULT_UUID), _FLAG_NOTIFY),
        ))
        ((self.h_challenge, self.h_command, self.h_result),) = ble.gatts_register_services((svc,))
        ble.gatts_set_buffer(self.h_command, CMD_BUFFER)
        ble.gatts_write(self.h_challenge, _ZERO_NONCE)
        ble.gatts_write(self.h_result, bytes(phone.REPLY_LEN))
        ble.irq(self._irq)
        self._advertise()

    def stop(self):
        self.ble.gap_advertise(None)
        if self._link >= 0:
            self.ble.gap_disconnect(self._link)
        self.ble.active(False)
        self._link = -1

    def _advertise(self):
        self.ble.gap_advertise(self.interval_us, self.adv, connectable=True)

    def _irq(self, event, data):
        if event == _IRQ_CENTRAL_CONNECT:
            if self._link < 0:
                self._link = data[0]
                self._joined = True
            else:
                self._refuse = data[0]  # one phone at a time: poll disconnects it
        elif event == _IRQ_CENTRAL_DISCONNECT:
            if data[0] == self._link:
                self._link = -1
                self._left = True
                self._joined = False
                self._wrote = False
        elif event == _IRQ_GATTS_WRITE:
            if data[0] == self._link and data[1] == self.h_command:
                self._wrote = True

    def connected(self):
        return self._link >= 0

    def busy(self):
        """True while a phone is connected or something waits for poll."""
        return self._link >= 0 or self._left or self._joined or self._wrote

    def _challenge(self, now_ms):
        nonce = self.auth.challenge(self.rng(phone.NONCE_LEN), now_ms)
        self.ble.gatts_write(self.h_challenge, nonce)
        try:
            self.ble.gatts_notify(self._link, self.h_challenge)
        except OSError:
            pass  # the phone left meanwhile: its disconnect is handled next poll

    def poll(self, now_ms, on_unlock):
        """Handle what the IRQ recorded; (result, action, credential_id) of an
        answer handled now, else None."""
        out = None
        if self._refuse >= 0:
            self.ble.gap_disconnect(self._refuse)
            self._refuse = -1
        if self._left:
            self._left = False
            self.auth.drop()
            self.ble.gatts_write(self.h_challenge, _ZERO_NONCE)
            if self._link < 0:
                self._advertise()
        link = self._link
        if link < 0:
            return None
        if self._joined:
            self._joined = False
            self._since = now_ms
            self._challenge(now_ms)
        if self._wrote:
            self._wrote = False
            data = self.ble.gatts_read(self.h_command)
            result, action, cred_id, reply = self.auth.answer(data, now_ms, on_unlock)
            self.answers += 1
            try:
                self.ble.gatts_notify(link, self.h_result, reply)
            except OSError:
                pass
            self._since = now_ms
            self._challenge(now_ms)  # the next try needs a new nonce
            out = (result, action, cred_id)
        if phone.ticks_diff(now_ms, self._since) >= LINK_MAX_MS:
            self.ble.gap_disconnect(link)  # a phone that holds the only link too long
        return out
