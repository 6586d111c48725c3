"""Every PIL mode a folder: dataset can meet reads with its full range: a ramp from its darkest to its brightest
value comes out from 0 to 255 (a 16-bit PNG used to come out white), as grey and as RGB, from a file where
PIL writes the mode, else from the image in memory; values outside a wide mode's range are named."""

import numpy as np
import pytest
from PIL import Image

from cycada_tf.data.sources import folder
from cycada_tf.data.tfrecord import DataError

SIDE = 16
RAMP = np.linspace(0.0, 1.0, SIDE * SIDE).reshape(SIDE, SIDE)  # darkest top left, brightest bottom right


def _ramp(mode):
    """A SIDE x SIDE image of `mode` whose values run over the mode's whole range."""
    if mode == "1":
        return Image.fromarray(RAMP >= 0.5)
    if mode in ("L", "LA", "P", "PA", "RGB", "RGBA", "CMYK"):
        grey = Image.fromarray(np.round(RAMP * 255).astype(np.uint8), "L")
        if mode == "CMYK":  # K from dark to none: black to white
            return Image.merge("CMYK", [Image.new("L", grey.size, 0)] * 3 + [grey.point(lambda v: 255 - v)])
        return grey.convert(mode)
    if mode == "I;16":
        return Image.fromarray(np.round(RAMP * 65535).astype(np.uint16))
    if mode == "I":
        return Image.fromarray(np.round(RAMP * 65535).astype(np.int32))
    if mode == "F":
        return Image.fromarray(RAMP.astype(np.float32))
    raise AssertionError(mode)


SAVED_AS = {"1": ".png", "L": ".png", "LA": ".png", "P": ".png", "RGB": ".png", "RGBA": ".png", "I;16": ".png",
            "CMYK": ".jpg"}  # PA, I and F: no PNG or JPEG holds them as such; read from memory
MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "I;16", "I", "F", "CMYK")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("channels", (1, 3))
def test_each_mode_reads_with_its_full_range(mode, channels, tmp_path):
    image = _ramp(mode)
    assert image.mode == mode
    if mode in SAVED_AS:
        path = str(tmp_path / f"image{SAVED_AS[mode]}")
        image.save(path, **({"quality": 100} if mode == "CMYK" else {}))
        with Image.open(path) as reopened:
            assert reopened.mode == mode  # the file holds the mode itself
        array = folder.read_image(path, channels)
    else:
        array = folder.to_uint8(image, channels, "memory")
    assert array.dtype == np.uint8 and array.shape == ((SIDE, SIDE) if channels == 1 else (SIDE, SIDE, 3))
    grey = array if channels == 1 else array.mean(axis=-1)
    tolerance = 6 if mode == "CMYK" else 0  # JPEG
    assert grey[0, 0] <= tolerance and grey[-1, -1] >= 255 - tolerance, (grey.min(), grey.max())
    if mode != "1":  # the ramp keeps its steps: most values distinct, not clipped to one end
        assert len(np.unique(grey)) > 100 and np.mean(grey == 255) < 0.05


def test_a_16_bit_png_keeps_its_values_not_255(tmp_path):
    path = str(tmp_path / "depth.png")
    values = np.full((8, 8), 32896, np.uint16)  # 128 * 257: the middle of the 16-bit range
    Image.fromarray(values).save(path)
    assert folder.channels([path]) == 1
    assert np.all(folder.read_image(path, 1) == 128)


def test_values_outside_a_wide_modes_range_are_named():
    with pytest.raises(DataError, match=r"^x.png: a F image with values outside 0..1 \(from 0 to 2\)"):
        folder.to_uint8(Image.fromarray(np.array([[0.0, 2.0]], np.float32)), 1, "x.png")
    with pytest.raises(DataError, match=r"^y.png: a I image with values outside 0..65535"):
        folder.to_uint8(Image.fromarray(np.array([[-1, 5]], np.int32)), 3, "y.png")


def test_an_image_past_pils_bomb_limit_is_refused_not_decoded(tmp_path):
    """10000 x 10000 grey zeros: a 100 kB file PIL only warns about, then decodes to 100 MB."""
    import struct
    import zlib
    from cycada_tf.data import png
    side = 10000
    rows = zlib.compressobj(9)
    data = b"".join(rows.compress(bytes(1 + side)) for _ in range(side)) + rows.flush()

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    path = tmp_path / "bomb.png"
    path.write_bytes(png.SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    assert side * side > Image.MAX_IMAGE_PIXELS and path.stat().st_size < 200_000
    with pytest.raises(DataError, match=rf"^{path}: unreadable image \(DecompressionBombWarning: "):
        folder.read_image(str(path), 1)
