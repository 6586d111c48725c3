"""Text drawn into the run's pictures, so that a figure read alone (a PNG, or TensorBoard, which shows no
report.md beside it) says what it shows: row labels, column titles and a colour legend, as the paper's
Figures 3-6 carry them. Pictures are uint8 arrays (height, width, 1 or 3); text is black on white."""

import functools

import numpy as np

WHITE, BLACK = 255, 0
PAD = 4  # pixels between text and anything else
FONT = "DejaVu Sans"  # matplotlib ships it: no font to install


@functools.lru_cache(maxsize=None)
def font(size):
    from matplotlib import font_manager
    from PIL import ImageFont
    return ImageFont.truetype(font_manager.findfont(FONT), size)


def font_size(cell):
    """Text size beside images whose shorter side is `cell` pixels: legible beside 64-pixel digits, not huge
    beside 1024-pixel road scenes."""
    return int(np.clip(cell // 5, 11, 28))


def text_size(text, size):
    """(width, height) in pixels of `text` (lines separated by newlines) at `size`."""
    from PIL import Image, ImageDraw
    left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).multiline_textbbox(
        (0, 0), text, font=font(size), spacing=2)
    return right - left, bottom - top


def upscale(image, scale):
    """Each pixel `scale` x `scale` (nearest neighbour), before text is drawn at the size it is read at."""
    return image if scale == 1 else np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def _canvas(height, width, channels):
    from PIL import Image
    return Image.new("L" if channels == 1 else "RGB", (width, height), WHITE if channels == 1 else (WHITE,) * 3)


def _array(picture, channels):
    array = np.asarray(picture, np.uint8)
    return array[..., None] if channels == 1 else array


def _pil(image):
    from PIL import Image
    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def label_rows(image, labels, size=None):
    """`image`, whose height splits into len(labels) equal rows, with a white margin on its left holding each
    row's label, centred on the row."""
    from PIL import ImageDraw
    height, width, channels = image.shape
    row = height // len(labels)
    size = size or font_size(row)
    margin = max(text_size(label, size)[0] for label in labels) + 2 * PAD
    picture = _canvas(height, margin + width, channels)
    picture.paste(_pil(image), (margin, 0))
    draw = ImageDraw.Draw(picture)
    for index, label in enumerate(labels):
        draw.text((margin - PAD, index * row + row // 2), label, fill=BLACK, font=font(size), anchor="rm")
    return _array(picture, channels)


def title_columns(image, titles, column, separator=0, size=None):
    """`image` under a white band holding each column's title (lines split on newlines) centred over it; the
    columns are `column` pixels wide, `separator` pixels apart."""
    from PIL import ImageDraw
    height, width, channels = image.shape
    size = size or font_size(column)
    band = max(text_size(title, size)[1] for title in titles) + 2 * PAD
    picture = _canvas(band + height, width, channels)
    picture.paste(_pil(image), (0, band))
    draw = ImageDraw.Draw(picture)
    for index, title in enumerate(titles):
        centre = index * (column + separator) + column // 2
        draw.multiline_text((centre, PAD), title, fill=BLACK, font=font(size), anchor="ma", align="center",
                            spacing=2)
    return _array(picture, channels)


def legend(width, entries, size):
    """A white RGB band `width` pixels wide listing (name, (r, g, b)) entries, each a framed colour swatch and
    its name, in as many lines as they need."""
    from PIL import ImageDraw
    swatch = size
    cells = [(name, colour, swatch + PAD + text_size(name, size)[0] + 3 * PAD) for name, colour in entries]
    lines, line, used = [], [], 0
    for cell in cells:
        if line and used + cell[2] > width - PAD:
            lines.append(line)
            line, used = [], 0
        line.append(cell)
        used += cell[2]
    lines.append(line)
    step = swatch + PAD
    picture = _canvas(len(lines) * step + PAD, width, 3)
    draw = ImageDraw.Draw(picture)
    for row, cells_of_line in enumerate(lines):
        x, y = PAD, PAD + row * step
        for name, colour, cell_width in cells_of_line:
            draw.rectangle((x, y, x + swatch - 1, y + swatch - 1), fill=tuple(int(c) for c in colour),
                           outline=(128, 128, 128))
            draw.text((x + swatch + PAD, y + swatch // 2), name, fill=(BLACK,) * 3, font=font(size), anchor="lm")
            x += cell_width
    return np.asarray(picture, np.uint8)


def stack(top, bottom):
    """Two RGB pictures one above the other, the narrower one padded with white on its right."""
    width = max(top.shape[1], bottom.shape[1])

    def widened(picture):
        pad = np.full((picture.shape[0], width - picture.shape[1], 3), WHITE, np.uint8)
        return np.concatenate([picture, pad], axis=1)

    return np.concatenate([widened(top), widened(bottom)], axis=0)
