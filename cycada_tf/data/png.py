"""Strict PNG check before a decode: every chunk's CRC-32, the zlib stream of the image data (its Adler-32
included) and the number of bytes it inflates to. PIL and tf.io.decode_png check neither the CRC of the image
data nor, once the pixels are filled, the rest of the stream: a file with a few bytes flipped in its middle
decodes without an error into garbage pixels."""

import struct
import zlib

from cycada_tf.data import limits
from cycada_tf.data.tfrecord import DataError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
# Adam7 interlacing: (x start, y start, x step, y step) of its seven passes (PNG specification, 8.2).
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
AGAIN = "download or extract it again"


def _rows_bytes(width, height, bits_per_pixel):
    """Bytes of `height` filtered scanlines of `width` pixels: one filter byte each, then the samples."""
    if width == 0 or height == 0:
        return 0
    return height * (1 + (width * bits_per_pixel + 7) // 8)


def inflated_size(width, height, depth, color, interlace):
    """The exact size of a PNG's decompressed image data."""
    bits = depth * CHANNELS[color]
    if not interlace:
        return _rows_bytes(width, height, bits)
    return sum(_rows_bytes((width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy, bits)
               for x0, y0, dx, dy in ADAM7)


def check(data, path):
    """Raise DataError naming `path` unless the bytes `data` are a complete, undamaged PNG."""
    if data[:8] != SIGNATURE:
        raise DataError(f"{path}: not a PNG file (bad signature); {AGAIN}")
    position, header, image_data = 8, None, []
    while True:
        if position + 12 > len(data):
            raise DataError(f"{path}: truncated PNG (it ends at byte {len(data)} before its IEND chunk); {AGAIN}")
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        end = position + 12 + length
        if end > len(data):
            raise DataError(f"{path}: truncated PNG (its {kind.decode('latin-1')} chunk at byte {position} "
                            f"runs past the end, byte {len(data)}); {AGAIN}")
        body = data[position + 8:position + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4:end])
        if zlib.crc32(kind + body) != crc:
            raise DataError(f"{path}: corrupt PNG (CRC mismatch in its {kind.decode('latin-1')} chunk at byte "
                            f"{position}); {AGAIN}")
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            image_data.append(body)
        elif kind == b"IEND":
            break
        position = end
    if header is None or len(header) != 13 or not image_data:
        raise DataError(f"{path}: corrupt PNG (no {'IHDR' if header is None else 'IDAT'} chunk); {AGAIN}")
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if color not in CHANNELS:
        raise DataError(f"{path}: corrupt PNG (colour type {color}); {AGAIN}")
    expected = inflated_size(width, height, depth, color, interlace)
    compressed = b"".join(image_data)
    if expected > limits.inflated_at_most(len(compressed)):
        raise DataError(f"{path}: corrupt PNG (its header says {width}x{height}, {expected} bytes of pixels, more "
                        f"than its {len(compressed)} bytes of image data can hold); {AGAIN}")
    try:
        inflater = zlib.decompressobj()
        pixels = inflater.decompress(compressed, expected + 1)  # never more than the header says, and one byte
        complete = inflater.eof
    except zlib.error as error:
        raise DataError(f"{path}: corrupt PNG (its image data does not inflate: {error}); {AGAIN}") from None
    if not complete or len(pixels) != expected:
        raise DataError(f"{path}: corrupt PNG (its image data inflates to {len(pixels)} bytes"
                        f"{'' if complete else ', the stream unfinished'}; a {width}x{height} image needs "
                        f"{expected}); {AGAIN}")
