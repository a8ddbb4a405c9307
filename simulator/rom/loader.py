"""The ROM loader's download-mode commands over a flash image. No I/O: the
board feeds it request packets and sends what it returns.

A request is `u8 0, u8 op, u16 len, u32 checksum` then `len` bytes; a response
`u8 1, u8 op, u16 len, u32 value` then data ending in 4 status bytes
(`status, error, 0, 0`; status 0 is success). Data-carrying commands
(FLASH_DATA, FLASH_DEFL_DATA, MEM_DATA) carry `u32 size, u32 seq, 0, 0` and the
data, whose XOR checksum (seed 0xEF) is the request's checksum field; a wrong
one is refused with error 0x07, as the ROM does. The flash behaves as NOR
flash: erase sets bytes to 0xFF, a write can only clear bits, so a region
written without its erase does not verify.

No code runs: a program uploaded with MEM_BEGIN/MEM_DATA and started with
MEM_END is taken to be esptool's flasher stub (nothing else uploads code to
a chip in download mode), and from then on the loader answers as the stub
does, without executing what was uploaded: it says "OHAI", answers SYNC with
0, sends 2 status bytes instead of 4 (errors as the stub's 0xC0..0xC7 codes),
the MD5 as 16 raw bytes, stays in the loader after FLASH_END / FLASH_DEFL_END
unless asked to reboot, and has the stub's own commands: ERASE_FLASH,
ERASE_REGION and READ_FLASH (data packets the host acknowledges, then the MD5).
"""
import hashlib
import struct
import zlib

from simulator.rom import chips

OPS = {0x02: "FLASH_BEGIN", 0x03: "FLASH_DATA", 0x04: "FLASH_END", 0x05: "MEM_BEGIN",
       0x06: "MEM_END", 0x07: "MEM_DATA", 0x08: "SYNC", 0x09: "WRITE_REG", 0x0A: "READ_REG",
       0x0B: "SPI_SET_PARAMS", 0x0D: "SPI_ATTACH", 0x0E: "READ_FLASH_SLOW",
       0x0F: "CHANGE_BAUDRATE", 0x10: "FLASH_DEFL_BEGIN", 0x11: "FLASH_DEFL_DATA",
       0x12: "FLASH_DEFL_END", 0x13: "SPI_FLASH_MD5", 0x14: "GET_SECURITY_INFO",
       0xD0: "ERASE_FLASH", 0xD1: "ERASE_REGION", 0xD2: "READ_FLASH"}
STUB_ONLY = ("ERASE_FLASH", "ERASE_REGION", "READ_FLASH")
FLASH_WRITES = ("FLASH_BEGIN", "FLASH_DATA", "FLASH_DEFL_BEGIN", "FLASH_DEFL_DATA",
                "ERASE_FLASH", "ERASE_REGION")
SYNC_BODY = b"\x07\x07\x12\x20" + b"\x55" * 32
SECTOR = 0x1000

# error byte of a failed response (esptool shows them as 0x1xx)
E_INVALID_MSG = 0x05
E_FAILED = 0x06
E_CHECKSUM = 0x07
E_FLASH_WRITE = 0x08
E_FLASH_READ_LEN = 0x0A
E_DEFLATE = 0x0B
# the stub's codes for the same failures (esptool shows them as 0xC?00)
STUB_ERRORS = {E_INVALID_MSG: 0xC0, E_FAILED: 0xC6, E_CHECKSUM: 0xC1, E_FLASH_WRITE: 0xC4,
               E_FLASH_READ_LEN: 0xC0, E_DEFLATE: 0xC7}
STUB_INVALID_COMMAND = 0xC3


def checksum(data, state=0xEF):
    for b in data:
        state ^= b
    return state


class _Refused(Exception):
    def __init__(self, error):
        super().__init__(error)
        self.error = error


class RomLoader:
    """One chip's ROM loader. `flash` is a writable buffer (bytearray or mmap).

    `handle(packet)` returns the response packets (SLIP-decoded payloads) and
    appends the command's name to `log` (with "!" and the error on a refusal).
    After FLASH_END / FLASH_DEFL_END asking to leave, `run_requested` is set:
    the board then leaves download mode.
    """

    def __init__(self, chip, flash, stuck_byte=None):
        self.chip = chip
        self.flash = flash
        self.stuck_byte = stuck_byte  # a worn cell: bit 0 of this byte cannot be programmed
        self.regs = dict(chip.regs)
        self.log = []
        self.run_requested = False
        self.baud = 115200
        self._write = None   # (offset, erase_end, blocks, block_size, next seq, inflater)
        self._mem = None
        self.ram = {}
        self.stub = False
        self._extra = []
        self._read = None
        capacity = max(len(flash), 1).bit_length() - 1
        self.flash_id = flash_id_word(capacity)

    # -- framing -----------------------------------------------------------
    def handle(self, packet):
        if self._read is not None and len(packet) == 4:
            return self._read_ack(packet)
        if len(packet) < 8 or packet[0] != 0:
            self.log.append("?")
            return [self._response(0, 0, b"", (1, E_INVALID_MSG))]
        op, size, chk = struct.unpack("<BHI", packet[1:8])
        data = packet[8:]
        name = OPS.get(op)
        if name is None or (name == "GET_SECURITY_INFO" and self.chip.security_info is None) or (
                name in STUB_ONLY and not self.stub):
            if self.stub:
                self.log.append("%s!unsupported" % (name or "0x%02x" % op))
                return [self._response(op, 0, b"", (STUB_INVALID_COMMAND, 0))]
            self.log.append("%s!unsupported" % (name or "0x%02x" % op))
            # the ROM's answer to a command it does not know: "invalid message",
            # under another opcode than the request's
            return [self._response(0, 0, b"", (1, E_INVALID_MSG))]
        if size != len(data):
            self.log.append("%s!length" % name)
            return [self._response(op, 0, b"", (1, E_INVALID_MSG))]
        self.log.append(name)
        try:
            value, body = getattr(self, "_" + name.lower())(data, chk)
        except (_Refused, struct.error, ValueError) as exc:
            error = exc.error if isinstance(exc, _Refused) else E_INVALID_MSG
            self.log[-1] = "%s!0x%02x" % (name, error)
            status = (STUB_ERRORS[error], 0) if self.stub else (1, error)
            return [self._response(op, 0, b"", status)]
        if name == "SYNC":
            # the ROM answers one SYNC eight times
            return [self._response(op, value, b"", (0, 0))] * 8
        extra, self._extra = self._extra, []
        return [self._response(op, value, body, (0, 0))] + extra

    def _response(self, op, value, body, status):
        data = body + bytes(status) + (b"" if self.stub else b"\0\0")
        return struct.pack("<BBHI", 1, op, len(data), value) + data

    # -- commands ----------------------------------------------------------
    def _sync(self, data, chk):
        if data != SYNC_BODY:
            raise _Refused(E_INVALID_MSG)
        # a ROM answers with a non-zero value, the stub with 0
        return (0 if self.stub else 0x20120707), b""

    def _read_reg(self, data, chk):
        (addr,) = struct.unpack("<I", data)
        return self.regs.get(addr, 0), b""

    def _write_reg(self, data, chk):
        if len(data) % 16:
            raise _Refused(E_INVALID_MSG)
        for i in range(0, len(data), 16):
            addr, value, mask, _delay = struct.unpack("<IIII", data[i:i + 16])
            old = self.regs.get(addr, 0)
            self.regs[addr] = (old & ~mask | value & mask) & 0xFFFFFFFF
            if addr == self.chip.spi_base + self.chip.spi["cmd"] and self.regs[addr] & (1 << 18):
                self._spi_user_command()
        return 0, b""

    def _spi_user_command(self):
        """The SPI controller's user command, as esptool drives it for RDID and SFDP."""
        base, spi = self.chip.spi_base, self.chip.spi
        command = self.regs.get(base + spi["usr2"], 0) & 0xFF
        addr = self.regs.get(base + spi["addr"], 0)
        if self.chip.spi_addr_msb:
            addr >>= 8  # 24-bit address sent from the register's top bits
        result = 0
        if command == 0x9F:      # RDID
            result = self.flash_id
        elif command == 0x5A:    # read SFDP
            result = chips.SFDP_SIGNATURE if addr == 0 else 0
        self.regs[base + spi["w0"]] = result
        self.regs[base + spi["cmd"]] &= ~(1 << 18)

    def _get_security_info(self, data, chk):
        return 0, self.chip.security_info

    def _spi_set_params(self, data, chk):
        _id, total, _block, _sector, _page, _mask = struct.unpack("<IIIIII", data)
        if total == 0:
            raise _Refused(E_FAILED)
        return 0, b""

    def _spi_attach(self, data, chk):
        if len(data) not in (4, 8):
            raise _Refused(E_INVALID_MSG)
        return 0, b""

    def _change_baudrate(self, data, chk):
        baud, _old = struct.unpack("<II", data)
        if baud <= 0:
            raise _Refused(E_FAILED)
        self.baud = baud
        self.regs[self.chip.uart_clkdiv_reg] = 40_000_000 // baud
        return 0, b""

    def _erase(self, offset, size):
        start = offset - offset % SECTOR
        end = -(-(offset + size) // SECTOR) * SECTOR
        if end > len(self.flash):
            raise _Refused(E_FLASH_WRITE)
        self.flash[start:end] = b"\xff" * (end - start)
        return end

    def _program(self, offset, data):
        end = offset + len(data)
        if end > len(self.flash) or self._write is None or end > self._write["erased_to"]:
            raise _Refused(E_FLASH_WRITE)
        old = self.flash[offset:end]
        self.flash[offset:end] = bytes(a & b for a, b in zip(old, data))
        if self.stuck_byte is not None and offset <= self.stuck_byte < end:
            self.flash[self.stuck_byte] |= 0x01

    def _begin(self, data, deflate):
        # ESP32's ROM takes 16 bytes; later ROMs a fifth word (encrypted write)
        if len(data) not in (16, 20) or (self.chip.name == "esp32" and not self.stub
                                         and len(data) != 16):
            raise _Refused(E_INVALID_MSG)
        size, blocks, block_size, offset = struct.unpack("<IIII", data[:16])
        if len(data) == 20 and struct.unpack("<I", data[16:])[0]:
            raise _Refused(E_FAILED)  # flash encryption is not emulated
        if offset % SECTOR and size:
            raise _Refused(E_FAILED)
        erased_to = self._erase(offset, size) if size else offset
        self._write = {"offset": offset, "pos": offset, "erased_to": erased_to, "blocks": blocks,
                       "end": offset + size,
                       "block_size": block_size, "seq": 0,
                       "inflate": zlib.decompressobj() if deflate else None}
        return 0, b""

    def _block(self, data, chk, deflate):
        w = self._write
        if w is None or (w["inflate"] is None) == deflate:
            raise _Refused(E_FAILED)
        size, seq, _z1, _z2 = struct.unpack("<IIII", data[:16])
        payload = data[16:]
        if size != len(payload):
            raise _Refused(E_INVALID_MSG)
        if checksum(payload) != chk & 0xFF:
            raise _Refused(E_CHECKSUM)
        if seq != w["seq"] or seq >= w["blocks"]:
            raise _Refused(E_FAILED)
        if deflate:
            try:
                out = w["inflate"].decompress(payload)
            except zlib.error:
                raise _Refused(E_DEFLATE) from None
            self._program(w["pos"], out)
            w["pos"] += len(out)
        else:
            # the last block comes padded with 0xFF to the block size; only the
            # size given at FLASH_BEGIN is written
            start = w["offset"] + seq * w["block_size"]
            self._program(start, payload[:max(0, w["end"] - start)])
        w["seq"] += 1
        return 0, b""

    def _flash_begin(self, data, chk):
        return self._begin(data, deflate=False)

    def _flash_data(self, data, chk):
        return self._block(data, chk, deflate=False)

    def _flash_defl_begin(self, data, chk):
        return self._begin(data, deflate=True)

    def _flash_defl_data(self, data, chk):
        return self._block(data, chk, deflate=True)

    def _end(self, data):
        (stay,) = struct.unpack("<I", data)
        self._write = None
        # the ROM leaves either way (0: reboot, 1: run the user code); the stub
        # stays unless asked to reboot
        self.run_requested = not (self.stub and stay)
        return 0, b""

    def _flash_end(self, data, chk):
        return self._end(data)

    def _flash_defl_end(self, data, chk):
        return self._end(data)

    def _spi_flash_md5(self, data, chk):
        addr, size, _z1, _z2 = struct.unpack("<IIII", data)
        if addr + size > len(self.flash):
            raise _Refused(E_FLASH_READ_LEN)
        digest = hashlib.md5(self.flash[addr:addr + size])
        # the ROM answers with the digest as 32 hex characters, the stub with 16 bytes
        return 0, digest.digest() if self.stub else digest.hexdigest().encode()

    def _read_flash_slow(self, data, chk):
        addr, size = struct.unpack("<II", data)
        if size > 64 or addr + size > len(self.flash):
            raise _Refused(E_FLASH_READ_LEN)
        return 0, bytes(self.flash[addr:addr + size]).ljust(64, b"\xff")

    def _mem_begin(self, data, chk):
        size, blocks, block_size, offset = struct.unpack("<IIII", data)
        self._mem = {"offset": offset, "size": size, "blocks": blocks,
                     "block_size": block_size, "seq": 0}
        return 0, b""

    def _mem_data(self, data, chk):
        m = self._mem
        size, seq, _z1, _z2 = struct.unpack("<IIII", data[:16])
        payload = data[16:]
        if m is None or size != len(payload) or seq != m["seq"]:
            raise _Refused(E_FAILED)
        if checksum(payload) != chk & 0xFF:
            raise _Refused(E_CHECKSUM)
        self.ram[m["offset"] + seq * m["block_size"]] = bytes(payload)
        m["seq"] += 1
        return 0, b""

    def _mem_end(self, data, chk):
        no_entry, entry = struct.unpack("<II", data)
        self._mem = None
        if not no_entry and entry and self.ram:
            # "started": from here on the loader answers as esptool's stub
            self.stub = True
            self._extra = [b"OHAI"]
        return 0, b""

    def _erase_flash(self, data, chk):
        self.flash[:] = b"\xff" * len(self.flash)
        return 0, b""

    def _erase_region(self, data, chk):
        offset, size = struct.unpack("<II", data)
        if offset % SECTOR or size % SECTOR:
            raise _Refused(E_FAILED)
        self._erase(offset, size)
        return 0, b""

    def _read_flash(self, data, chk):
        offset, length, packet, in_flight = struct.unpack("<IIII", data)
        if offset + length > len(self.flash) or not packet or not in_flight:
            raise _Refused(E_FLASH_READ_LEN)
        self._read = {"offset": offset, "length": length, "packet": packet, "sent": 0,
                      "in_flight": in_flight}
        self._extra = self._read_packets(0)
        return 0, b""

    def _read_packets(self, acked):
        r = self._read
        out = []
        while r["sent"] < r["length"] and r["sent"] - acked < r["in_flight"] * r["packet"]:
            n = min(r["packet"], r["length"] - r["sent"])
            start = r["offset"] + r["sent"]
            out.append(bytes(self.flash[start:start + n]))
            r["sent"] += n
        return out

    def _read_ack(self, packet):
        (acked,) = struct.unpack("<I", packet)
        r = self._read
        out = self._read_packets(acked)
        if acked >= r["length"]:
            self._read = None
            out.append(hashlib.md5(self.flash[r["offset"]:r["offset"] + r["length"]]).digest())
        return out


def flash_id_word(capacity):
    """RDID's answer as the SPI data register holds it."""
    return (capacity << 16) | (chips.FLASH_TYPE << 8) | chips.FLASH_MANUFACTURER
