"""The run's figures as uint8 arrays and PNG files: translation grids (cf. the paper's Figure 3), confusion
matrices (cf. Figure 10) and segmentation predictions (cf. Figure 5); TensorBoard summaries and the run report
use the same pictures."""

import numpy as np

from cycada_tf.data import pipeline

TRANSLATION_ROWS = ("x_s", "G_S->T(x_s)", "G_T->S(G_S->T(x_s))", "x_t", "G_T->S(x_t)", "G_S->T(G_T->S(x_t))")


def translation_grid(g_st, g_ts, x_s, x_t):
    """Rows of x_s | G_S->T(x_s) | G_T->S(G_S->T(x_s)) and x_t | G_T->S(x_t) | G_S->T(G_T->S(x_t)), one image
    per column: a uint8 array (rows * side, columns * side, channels).

    G_S->T draws a style code at each call, which advances its random state: the pixel stage calls this once
    per epoch, the same calls in the same order, so adding a view of the grid never changes training.
    """
    st = g_st(x_s, training=False)
    ts = g_ts(x_t, training=False)
    rows = [x_s, st, g_ts(st, training=False), x_t, ts, g_st(ts, training=False)]
    return np.concatenate([np.concatenate(list(pipeline.to_uint8(r).numpy()), axis=1) for r in rows], 0)


def save_png(image, path, scale=1):
    """A uint8 (height, width, 1 or 3) array as a PNG, each pixel `scale` x `scale` (nearest neighbour)."""
    from PIL import Image
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    picture = Image.fromarray(image)
    if scale != 1:
        picture = picture.resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
    picture.save(path)


def row_normalized(matrix):
    """Each row (true class) as fractions of that class's examples (rows without examples stay 0)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


def confusion_figure(panels, class_names, dpi=100):
    """One heat map per (title, counts) panel, rows the true class and columns the predicted one, each row
    normalised to its class (as the paper's Figure 10): a uint8 RGB array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    n = len(class_names)
    side = 1.6 + 0.32 * n
    figure = Figure(figsize=(side * len(panels), side + 0.4), dpi=dpi)
    FigureCanvasAgg(figure)
    for index, (title, counts) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        fractions = row_normalized(counts)
        axes.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
        accuracy = np.trace(np.asarray(counts)) / max(1, int(np.sum(counts)))
        axes.set_title(f"{title}\n(accuracy {100 * accuracy:.1f}%)", fontsize=9)
        axes.set_xticks(range(n), class_names, fontsize=7)
        axes.set_yticks(range(n), class_names, fontsize=7)
        axes.set_xlabel("predicted", fontsize=8)
        axes.set_ylabel("true", fontsize=8)
        if n <= 20:
            for i in range(n):
                for j in range(n):
                    if fractions[i, j] >= 0.005:
                        axes.text(j, i, f"{100 * fractions[i, j]:.0f}", ha="center", va="center", fontsize=6,
                                  color="white" if fractions[i, j] > 0.5 else "black")
    figure.tight_layout()
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


# The Cityscapes colours of its 19 evaluated classes (cityscapesscripts/helpers/labels.py), by class name, and
# those of SYNTHIA's classes that Cityscapes lacks; a class named in neither is drawn in white.
CITYSCAPES_COLOURS = {
    "road": (128, 64, 128), "sidewalk": (244, 35, 232), "building": (70, 70, 70), "wall": (102, 102, 156),
    "fence": (190, 153, 153), "pole": (153, 153, 153), "traffic light": (250, 170, 30),
    "traffic sign": (220, 220, 0), "vegetation": (107, 142, 35), "terrain": (152, 251, 152),
    "sky": (70, 130, 180), "person": (220, 20, 60), "rider": (255, 0, 0), "car": (0, 0, 142),
    "truck": (0, 0, 70), "bus": (0, 60, 100), "train": (0, 80, 100), "motorcycle": (0, 0, 230),
    "bicycle": (119, 11, 32), "pedestrian": (220, 20, 60), "lanemarking": (255, 255, 255),
    "lane marking": (255, 255, 255)}
IGNORED_COLOUR = (0, 0, 0)


def palette(classes):
    """uint8 (256, 3): the colour of each class id (by class name), black for the ignore label and unused ids."""
    table = np.zeros((256, 3), np.uint8)
    table[:] = IGNORED_COLOUR
    for index, name in enumerate(classes):
        table[index] = CITYSCAPES_COLOURS.get(name, (255, 255, 255))
    return table


def colour_labels(label_maps, classes):
    """int label maps (..., H, W) -> uint8 (..., H, W, 3) in the Cityscapes colours."""
    return palette(classes)[np.clip(np.asarray(label_maps), 0, 255).astype(np.int64)]


def segmentation_overlays(images, labels, predictions, classes, separator=2):
    """One row per image: image | ground truth | each prediction, coloured; a uint8 (rows * H, columns * W, 3)
    array. images: [-1, 1] floats (N, H, W, 3); labels: (N, H, W) ids (255 ignored, black); predictions:
    [(title, (N, H, W) ids)] (the titles are for the caller's legend)."""
    images = pipeline.to_uint8(np.asarray(images, np.float32)).numpy()
    columns = [images, colour_labels(labels, classes)] + [colour_labels(p, classes) for _, p in predictions]
    gap = np.full(images.shape[1:2] + (separator, 3), 255, np.uint8)
    rows = []
    for i in range(images.shape[0]):
        cells = []
        for column in columns:
            cells += [column[i], gap]
        rows.append(np.concatenate(cells[:-1], axis=1))
    return np.concatenate(rows, axis=0)
