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

Not emulated: running code. MEM_BEGIN/MEM_DATA/MEM_END are accepted and
checked, but the uploaded program (esptool's flasher stub) does not start, so
esptool must be used without the stub (`--no-stub`, which `anju flash` does).
"""
import hashlib
import struct
import zlib

from simulator.rom import chips

OPS = {0x02: "FLASH_BEGIN", 0x03: "FLASH_DATA", 0x04: "FLASH_END", 0x05: "MEM_BEGIN",
       0x06: "MEM_END", 0x07: "MEM_DATA", 0x08: "SYNC", 0x09: "WRITE_REG", 0x0A: "READ_REG",
       0x0B: "SPI_SET_PARAMS", 0x0D: "SPI_ATTACH", 0x0E: "READ_FLASH_SLOW",
       0x0F: "CHANGE_BAUDRATE", 0x10: "FLASH_DEFL_BEGIN", 0x11: "FLASH_DEFL_DATA",
       0x12: "FLASH_DEFL_END", 0x13: "SPI_FLASH_MD5", 0x14: "GET_SECURITY_INFO"}
FLASH_WRITES = ("FLASH_BEGIN", "FLASH_DATA", "FLASH_DEFL_BEGIN", "FLASH_DEFL_DATA")
SYNC_BODY = b"\x07\x07\x12\x20" + b"\x55" * 32
SECTOR = 0x1000

# error byte of a failed response (esptool shows them as 0x1xx)
E_INVALID_MSG = 0x05
E_FAILED = 0x06
E_CHECKSUM = 0x07
E_FLASH_WRITE = 0x08
E_FLASH_READ_LEN = 0x0A
E_DEFLATE = 0x0B


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

    def __init__(self, chip, flash):
        self.chip = chip
        self.flash = flash
        self.regs = dict(chip.regs)
        self.log = []
        self.run_requested = False
        self.baud = 115200
        self._write = None   # (offset, erase_end, blocks, block_size, next seq, inflater)
        self._mem = None
        self.ram = {}
        capacity = max(len(flash), 1).bit_length() - 1
        self.flash_id = flash_id_word(capacity)

    # -- framing -----------------------------------------------------------
    def handle(self, packet):
        if len(packet) < 8 or packet[0] != 0:
            self.log.append("?")
            return [self._response(0, 0, b"", (1, E_INVALID_MSG))]
        op, size, chk = struct.unpack("<BHI", packet[1:8])
        data = packet[8:]
        name = OPS.get(op)
        if name is None or (name == "GET_SECURITY_INFO" and self.chip.security_info is None):
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
        except _Refused as exc:
            self.log[-1] = "%s!0x%02x" % (name, exc.error)
            return [self._response(op, 0, b"", (1, exc.error))]
        except (struct.error, ValueError):
            self.log[-1] = "%s!0x%02x" % (name, E_INVALID_MSG)
            return [self._response(op, 0, b"", (1, E_INVALID_MSG))]
        if name == "SYNC":
            # the ROM answers one SYNC eight times
            return [self._response(op, value, b"", (0, 0))] * 8
        return [self._response(op, value, body, (0, 0))]

    @staticmethod
    def _response(op, value, body, status):
        data = body + bytes((status[0], status[1], 0, 0))
        return struct.pack("<BBHI", 1, op, len(data), value) + data

    # -- commands ----------------------------------------------------------
    def _sync(self, data, chk):
        if data != SYNC_BODY:
            raise _Refused(E_INVALID_MSG)
        return 0x20120707, b""  # a ROM answers with a non-zero value (a stub with 0)

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

    def _begin(self, data, deflate):
        # ESP32's ROM takes 16 bytes; later ROMs a fifth word (encrypted write)
        if len(data) not in (16, 20) or (self.chip.name == "esp32" and len(data) != 16):
            raise _Refused(E_INVALID_MSG)
        size, blocks, block_size, offset = struct.unpack("<IIII", data[:16])
        if len(data) == 20 and struct.unpack("<I", data[16:])[0]:
            raise _Refused(E_FAILED)  # flash encryption is not emulated
        if offset % SECTOR and size:
            raise _Refused(E_FAILED)
        erased_to = self._erase(offset, size) if size else offset
        self._write = {"offset": offset, "pos": offset, "erased_to": erased_to, "blocks": blocks,
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
            self._program(w["offset"] + seq * w["block_size"], payload)
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
        # 0: reboot; 1: run the user code. Either way the loader is left.
        self.run_requested = True
        return 0, b""

    def _flash_end(self, data, chk):
        return self._end(data)

    def _flash_defl_end(self, data, chk):
        return self._end(data)

    def _spi_flash_md5(self, data, chk):
        addr, size, _z1, _z2 = struct.unpack("<IIII", data)
        if addr + size > len(self.flash):
            raise _Refused(E_FLASH_READ_LEN)
        # the ROM answers with the digest as 32 hex characters
        return 0, hashlib.md5(self.flash[addr:addr + size]).hexdigest().encode()

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
        _no_entry, _entry = struct.unpack("<II", data)
        self._mem = None
        # the program is not run: a virtual chip has no CPU to run it on
        return 0, b""


def flash_id_word(capacity):
    """RDID's answer as the SPI data register holds it."""
    return (capacity << 16) | (chips.FLASH_TYPE << 8) | chips.FLASH_MANUFACTURER
