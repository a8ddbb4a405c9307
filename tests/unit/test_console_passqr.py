"""The pass's QR code as the console shows it (hub/console/passqr.py): the
SVG decodes back to the token, at the size docs/visitors.md gives (version 4
at level M: 33 modules, a four-module quiet zone)."""
import re

import cv2
import numpy
import segno

from hub.console import passqr
from hub.visitors import qr

TOKEN = qr.make(bytes(32), "sunrise", "0" * 32, 1_800_000_000, 1_800_014_400, True)


def test_the_svg_is_the_tokens_qr_code_at_version_4_level_m():
    data = passqr.svg(TOKEN)
    assert re.search(rb'width="164" height="164"', data)
    code = segno.make_qr(TOKEN, error="m", boost_error=False)
    assert (code.version, code.error, code.mode) == (4, "M", "alphanumeric")


def test_the_picture_decodes_to_the_token():
    # the same matrix as the SVG draws, as pixels, read by OpenCV's QR detector
    code = segno.make_qr(TOKEN, error="m", boost_error=False)
    rows = numpy.array([[0 if m else 255 for m in row] for row in code.matrix_iter(border=4)],
                       numpy.uint8)
    image = numpy.kron(rows, numpy.ones((6, 6), numpy.uint8))
    text, _, _ = cv2.QRCodeDetector().detectAndDecode(image)
    assert text == TOKEN and len(TOKEN) == 71
