"""The run's figures as uint8 arrays and PNG files: translation grids (cf. the paper's Figure 3), confusion
matrices (cf. Figure 10), segmentation predictions (cf. Figure 5) and feature adaptation's gate; TensorBoard
summaries and the run report use the same pictures, their labels drawn in (figure_text.py)."""

import os

import numpy as np

from cycada_tf.train import atomic_files as files, figure_text as annotate
from cycada_tf.data import pipeline

TRANSLATION_ROWS = ("x_s", "G_S->T(x_s)", "G_T->S(G_S->T(x_s))", "x_t", "G_T->S(x_t)", "G_S->T(G_T->S(x_t))")
TRANSLATION_SCALE = 2  # each pixel of the translation grid 2 x 2: 32-pixel digits beside readable labels

# What each summary given at the interval shows (images, and the numbers measured with them), as TensorBoard
# displays it beside the value (summaries.TensorBoardSummaries).
DESCRIPTIONS = {
    "target_test/accuracy": "Accuracy of the stage's model on the target test split, as it reads target images "
                            "(target labels read for reporting only, never in training).",
    "target_test/miou": "Mean IoU of the stage's model on the target test split (target labels read for "
                        "reporting only, never in training).",
    "translations": "Rows, top to bottom: x_s, G_S->T(x_s), G_T->S(G_S->T(x_s)), x_t, G_T->S(x_t), "
                    "G_S->T(G_T->S(x_t)); each column one of the first test images of its domain (cf. the "
                    "paper's Figures 3-4). G_S->T draws a new style code z at each call.",
    "target_test/confusion": "Confusion matrix on the target test split: rows the true class, columns the "
                             "predicted one, in % of the row's class (cf. the paper's Figure 10). Target labels are "
                             "read for this figure only.",
    "target_test/predictions": "Columns: target test image, ground truth, the stage's prediction, in the "
                               "Cityscapes colours of the legend (black: ignored); cf. the paper's Figure 5.",
    "gate": "Feature adaptation's gate (appendix 6.1): top, D_feat's accuracy as the gate reads it at each "
            "iteration, against the threshold (f_T is updated only above it); bottom, f_T's updates in each "
            "epoch out of its iterations. An epoch without an update ends the stage.",
}


def report_section(run_dir, seeds, stage, file, heading, text, alt):
    """report.md's lines showing each seed's seed_<k>/<stage>/<file> that exists, under `heading` and `text`
    (a figure's alt text: `alt`, seed k); none where no seed has it."""
    shown = [seed for seed in seeds if os.path.exists(os.path.join(run_dir, f"seed_{seed}", stage, file))]
    if not shown:
        return []
    return ([f"## {heading}", "", text, ""]
            + [f"![{alt}, seed {seed}](seed_{seed}/{stage}/{file})" for seed in shown] + [""])


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


def labelled_translation_grid(grid, scale=TRANSLATION_SCALE):
    """translation_grid's picture, each pixel `scale` x `scale`, with TRANSLATION_ROWS written beside its rows."""
    return annotate.label_rows(annotate.upscale(grid, scale), TRANSLATION_ROWS)


def save_png(image, path, scale=1):
    """A uint8 (height, width, 1 or 3) array as a PNG, each pixel `scale` x `scale` (nearest neighbour),
    written atomically (files.replacing)."""
    from PIL import Image
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    picture = Image.fromarray(image)
    if scale != 1:
        picture = picture.resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
    with files.replacing(path) as tmp:
        picture.save(tmp, format="PNG")


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


NOT_RUN_COLOUR = (200, 200, 200)  # the cells of a stage that has not run


def segmentation_overlays(images, labels, predictions, classes, separator=2, scale=1):
    """One row per image: image | ground truth | each prediction, coloured, each pixel `scale` x `scale`, with
    each column's title above and the colours' legend below: a uint8 RGB array. images: [-1, 1] floats
    (N, H, W, 3); labels: (N, H, W) ids (255 ignored, black); predictions: [(title, (N, H, W) ids, or None
    for a stage that has not run: its column stays, grey, so that figures of different runs line up)]."""
    images = pipeline.to_uint8(np.asarray(images, np.float32)).numpy()
    not_run = np.broadcast_to(np.asarray(NOT_RUN_COLOUR, np.uint8), images.shape)
    columns = [images, colour_labels(labels, classes)] + [
        not_run if ids is None else colour_labels(ids, classes) for _, ids in predictions]
    gap = np.full(images.shape[1:2] + (separator, 3), 255, np.uint8)
    rows = []
    for i in range(images.shape[0]):
        cells = []
        for column in columns:
            cells += [column[i], gap]
        rows.append(np.concatenate(cells[:-1], axis=1))
    grid = annotate.upscale(np.concatenate(rows, axis=0), scale)
    width = images.shape[2] * scale
    titles = ["image", "ground truth"] + [title + ("\n(not run)" if ids is None else "")
                                          for title, ids in predictions]
    size = annotate.font_size(min(images.shape[1:3]) * scale)
    entries = [(name, palette(classes)[index]) for index, name in enumerate(classes)] + [("ignored",
                                                                                          IGNORED_COLOUR)]
    return annotate.stack(annotate.title_columns(grid, titles, width, separator * scale, size),
                          annotate.legend(grid.shape[1], entries, size))


def gate_figure(accuracies, epochs, updates, steps, threshold, window=1, dpi=100):
    """Feature adaptation's gate (appendix 6.1) as a uint8 RGB array. Top: `accuracies`, the discriminator
    accuracy the gate read at each iteration (the mean of the last `window`), against `threshold`, the epochs
    (numbered `epochs`) marked; bottom: f_T's `updates` in each epoch out of its `steps` iterations. The axes
    always hold [0, 1] and every epoch, however few."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(7.0, 4.6), dpi=dpi)
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, gridspec_kw={"height_ratios": (3, 2)})
    accuracies = np.asarray(accuracies, np.float64)
    iterations = np.arange(1, len(accuracies) + 1)
    above = accuracies > threshold
    top.plot(iterations, accuracies, color="0.6", linewidth=0.8)
    top.scatter(iterations[above], accuracies[above], s=6, color="tab:green", label="above: f_T updated")
    top.scatter(iterations[~above], accuracies[~above], s=6, color="tab:red", label="at or below: no update")
    top.axhline(threshold, color="black", linestyle="--", linewidth=1.0)
    top.text(0.01, threshold + 0.02, f"gate {threshold:.0%}", transform=top.get_yaxis_transform(), va="bottom",
             fontsize=8, bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    top.set_title(f"f_T updated in {sum(updates)} of {sum(steps)} iterations", fontsize=9)
    for boundary in np.cumsum(steps)[:-1]:
        top.axvline(boundary + 0.5, color="0.8", linewidth=0.8)
    top.set_ylim(0.0, 1.0)
    top.set_xlim(0.5, max(len(accuracies), 1) + 0.5)
    top.set_xlabel("iteration", fontsize=8)
    top.set_ylabel("D_feat accuracy" + (f"\n(mean of last {window})" if window > 1 else ""), fontsize=8)
    top.legend(fontsize=7, loc="lower right")
    top.tick_params(labelsize=7)
    labels = [str(epoch) for epoch in epochs]
    bottom.bar(labels, steps, width=0.5, color="0.88", label="iterations")
    bottom.bar(labels, updates, width=0.5, color="tab:green", label="updates of f_T")
    bottom.set_xlim(-0.75, len(labels) - 0.25)
    for index, (done, total) in enumerate(zip(updates, steps)):
        bottom.text(index, total, f"{done}/{total}", ha="center", va="bottom", fontsize=7)
    bottom.set_ylim(0, max(list(steps) + [1]) * 1.5)
    bottom.set_xlabel("epoch", fontsize=8)
    bottom.set_ylabel("updates", fontsize=8)
    bottom.legend(fontsize=7, loc="upper left", ncol=2)
    bottom.tick_params(labelsize=7)
    figure.tight_layout()
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
