"""--help of the experiment mains: the experiment's own flags, grouped by the part of the run they set, each with
its help and default. --helpfull stays absl's (every module's flags, alphabetically)."""

import dataclasses
import fnmatch

from absl import flags

# (title, the fields it holds: names or fnmatch patterns), in the order --help prints them; a field of either
# experiment is in exactly one group (tests/test_experiments.py).
GROUPS = (
    ("Data", ("source", "target", "data_dir", "download", "target_train_split", "width", "image_size",
              "channels", "train_short_side", "eval_split", "eval_resolution", "eval_batch_size")),
    ("Source model (its recipe is every task-model stage's)",
     ("task_model", "model", "backbone_weights", "model_width", "fcn8s_*", "task_init", "task_optimizer", "source_*",
      "momentum", "weight_decay", "crop_size")),
    ("Pixel adaptation (Eq. 2-4)",
     ("pixel_epochs", "pixel_batch_size", "pixel_lr", "pixel_beta_1", "pixel_lr_decay", "pixel_init",
      "pixel_crop_size", "gan_*", "cycle_weight", "semantic_*", "identity_weight", "instance_norm_affine",
      "pool_size", "generator_*", "discriminator_*", "noise_channels", "minibatch_std")),
    ("Target model on translated source images, and the target-trained oracle",
     ("pixel_direction", "translations_per_image", "target_epochs", "oracle_epochs")),
    ("Feature adaptation (Eq. 5)", ("feature_*", "gate_window")),
    ("Self-training (not in the paper)", ("self_train_*",)),
    ("Final model (chosen without target labels)", ("final_*",)),
    ("Run: stages, seeds, output", ("stages", "seeds", "run_dir", "export_dir", "verbose", "summary_every_epochs",
                                    "accept_lr_change", "deterministic")),
    ("Devices and speed", ("strategy", "worker_dir", "precision", "jit_compile")),
)
# Arguments that ask for this help (absl's --help, --helpshort and -?, and the usual -h).
HELP_ARGUMENTS = ("--help", "-help", "--helpshort", "-helpshort", "-?", "-h")


def group_of(name):
    """(the title of the group that holds the field `name`, the index of its pattern there), or (None, 0) if
    no group does."""
    for title, patterns in GROUPS:
        for index, pattern in enumerate(patterns):
            if fnmatch.fnmatchcase(name, pattern):
                return title, index
    return None, 0


def wants_help(argv):
    """Whether the command line `argv` (program name first) asks for --help; arguments after "--" are not flags."""
    arguments = argv[1:]
    if "--" in arguments:
        arguments = arguments[:arguments.index("--")]
    return any(argument in HELP_ARGUMENTS for argument in arguments)


def text(cls, doc, flag_values=flags.FLAGS):
    """The --help of the experiment of config class `cls`: `doc` (its module's docstring), then each group's
    flags in the order of its patterns (of fields a pattern matches, in `cls`'s order), as absl renders a flag:
    its help, then its default. A field no group holds is listed under "Other"."""
    names = [field.name for field in dataclasses.fields(cls)]
    intro = ("Flags of this experiment, by the part of the run they set. --flagfile=FILE reads flags from a file "
             "(experiments/*.flags: the paper's settings); --helpfull lists absl's own flags too.")
    lines = [doc.strip(), "", flags.text_wrap(intro)]
    for title, _ in GROUPS + ((None, ()),):
        members = sorted((group_of(name)[1], order, name) for order, name in enumerate(names)
                         if group_of(name)[0] == title)
        if members:
            lines += ["", f"{title or 'Other'}:"] + [_render(flag_values[name]) for _, _, name in members]
    return "\n".join(lines) + "\n"


def _render(flag):
    name = f"--[no]{flag.name}" if flag.boolean else f"--{flag.name}"
    wrapped = flags.text_wrap(f"{name}: {flag.help}", indent="    ", firstline_indent="  ")
    return f"{wrapped}\n    (default: {flag.default_as_str})"
