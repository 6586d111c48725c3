"""The run's figures as uint8 arrays and PNG files: translation grids (cf. the paper's Figure 3) and confusion
matrices (cf. Figure 10); TensorBoard summaries and the run report use the same pictures."""

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
