"""What each virtual chip answers, as data.

Register values are the ones esptool reads to detect the chip and describe it
(chip-detect magic word, eFuse words for the package, revision and MAC, the
ROM's clock calibration used when it changes the baud rate), the SPI
controller's register layout (esptool reads the flash JEDEC id and SFDP
through it), and for the ESP32-C3 the GET_SECURITY_INFO answer carrying the
chip id. Addresses and bit positions follow the chips' technical reference
manuals as esptool uses them; the values describe one plausible board each
(an ESP32-D0WD-V3 rev 3.0 on a DevKitC, an ESP32-C3 QFN32 rev 0.4 on a
DevKitM-1), both with 4 MB of GigaDevice flash.
"""
import struct

CHIP_DETECT_MAGIC_REG = 0x40001000
FLASH_SIZE = 4 * 1024 * 1024
# JEDEC id as RDID returns it: manufacturer 0xC8 (GigaDevice), type 0x40,
# capacity 0x16 (2^22 bytes); the capacity byte is set from the flash size.
FLASH_MANUFACTURER = 0xC8
FLASH_TYPE = 0x40
SFDP_SIGNATURE = 0x50444653  # "SFDP"


def _esp32_regs(mac):
    efuse = 0x3FF5A000
    # MAC: word 2 holds its first two bytes (above a CRC byte), word 1 the other four
    w1 = struct.unpack(">I", mac[2:6])[0]
    w2 = struct.unpack(">H", mac[0:2])[0]
    w3 = (1 << 9) | (1 << 15)        # package D0WD; revision bit 0
    w4 = 0x80                        # CK8M frequency code (with the calibration below: 40 MHz)
    w5 = 1 << 20                     # revision bit 1
    return {
        CHIP_DETECT_MAGIC_REG: 0x00F01D83,
        efuse + 4: w1, efuse + 8: w2, efuse + 12: w3, efuse + 16: w4, efuse + 20: w5,
        0x3FF6607C: 1 << 31,         # APB_CTL_DATE: revision bit 2 -> v3.0
        0x3FF5F06C: 800 << 7,        # RTCCALICFG1: 800 * 15625 * 128 / 40 = 40 MHz
        0x3FF40014: 347,             # UART_CLKDIV at 115200 Bd from 40 MHz
    }


def _esp32c3_regs(mac):
    block1 = 0x60008800 + 0x44
    mac0 = struct.unpack(">I", mac[2:6])[0]
    mac1 = struct.unpack(">H", mac[0:2])[0]
    return {
        CHIP_DETECT_MAGIC_REG: 0x1B31506F,
        block1: mac0, block1 + 4: mac1,
        block1 + 12: 4 << 18,        # package QFN32, minor revision 4, no embedded flash
        0x60000014: 347,             # UART_CLKDIV
    }


class Chip:
    def __init__(self, name, title, image_chip_id, regs, spi_base, spi_offs, spi_addr_msb,
                 security_info, banner_download, banner_app, app_offset, uart_clkdiv_reg):
        self.name = name
        self.title = title
        self.image_chip_id = image_chip_id
        self.regs = regs
        self.spi_base = spi_base
        self.spi = spi_offs  # name -> offset from spi_base
        self.spi_addr_msb = spi_addr_msb
        self.security_info = security_info  # None: the ROM has no GET_SECURITY_INFO
        self.banner_download = banner_download
        self.banner_app = banner_app
        self.app_offset = app_offset
        self.uart_clkdiv_reg = uart_clkdiv_reg


def esp32(mac=b"\x24\x0a\xc4\x00\x00\x01"):
    return _with_mac(mac, Chip(
        "esp32", "ESP32-D0WD-V3 (revision v3.0)", 0, _esp32_regs(mac), 0x3FF42000,
        {"cmd": 0x00, "addr": 0x04, "usr": 0x1C, "usr1": 0x20, "usr2": 0x24,
         "mosi_dlen": 0x28, "miso_dlen": 0x2C, "w0": 0x80},
        True, None,
        b"ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),"
        b"boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\nwaiting for download\r\n",
        b"ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),"
        b"boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
        0x1000, 0x3FF40014))


def esp32c3(mac=b"\x34\x85\x18\x00\x00\x02"):
    # flags 0 (no secure boot, no secure download mode), flash_crypt_cnt 0,
    # 7 key purposes 0, chip id 5, API version 3
    security = struct.pack("<IBBBBBBBBII", 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 3)
    return _with_mac(mac, Chip(
        "esp32c3", "ESP32-C3 (QFN32) (revision v0.4)", 5, _esp32c3_regs(mac), 0x60002000,
        {"cmd": 0x00, "addr": 0x04, "usr": 0x18, "usr1": 0x1C, "usr2": 0x20,
         "mosi_dlen": 0x24, "miso_dlen": 0x28, "w0": 0x58},
        False, security,
        b"ESP-ROM:esp32c3-api1-20210207\r\nBuild:Feb  7 2021\r\nrst:0x1 (POWERON),"
        b"boot:0x4 (DOWNLOAD(USB/UART0/1))\r\nwaiting for download\r\n",
        b"ESP-ROM:esp32c3-api1-20210207\r\nBuild:Feb  7 2021\r\nrst:0x1 (POWERON),"
        b"boot:0xc (SPI_FAST_FLASH_BOOT)\r\n",
        0x0, 0x60000014))


def _with_mac(mac, chip):
    chip.mac = bytes(mac)  # what the eFuse words hold; the app's MAC too
    return chip


CHIPS = {"esp32": esp32, "esp32c3": esp32c3}


def make(name):
    try:
        return CHIPS[name]()
    except KeyError:
        raise ValueError("unknown chip '%s'; the virtual board is one of %s"
                         % (name, ", ".join(sorted(CHIPS)))) from None
