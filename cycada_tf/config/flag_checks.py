"""What each flag accepts, checked when a config is built: the rules declared with each field (experiment_config.py,
run_fields.py: `_f(..., choices=..., at_least=...)`) and the rules that tie fields together (CROSS_FIELD, the
one place for them). The experiment mains build the config before TensorFlow loads or anything is written, so a
wrong value ends in under a second with one line naming the flag and what it accepts. No TensorFlow here."""

import dataclasses
import math


class FlagError(ValueError):
    """A flag's value is outside what it accepts; the message names the flag, the value and what it takes."""


# The keyword arguments of `_f` that declare what a field accepts (each describes itself for the message).
RULES = ("choices", "at_least", "above", "below", "at_most", "multiple_of", "per_stage", "count", "distinct")


def _describe(rules, plural=False):
    """'a whole number >= 1', 'one of adam, sgd', ... of a field's (or its items') rules."""
    if "choices" in rules:
        return "one of " + ", ".join(str(c) for c in rules["choices"])
    kind = "numbers" if plural else "a number"
    if rules.get("whole"):
        kind = "whole numbers" if plural else "a whole number"
    bounds = []
    for key, sign in (("at_least", ">="), ("above", ">"), ("below", "<"), ("at_most", "<=")):
        if key in rules:
            bounds.append(f"{sign} {rules[key]}")
    text = f"{kind} {' and '.join(bounds)}".strip()
    if "multiple_of" in rules:
        text += f", a multiple of {rules['multiple_of']}"
    return text


def _fits(value, rules):
    if "choices" in rules:
        return value in rules["choices"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    if rules.get("whole") and not isinstance(value, int):
        return False
    return (value >= rules.get("at_least", -math.inf) and value > rules.get("above", -math.inf)
            and value < rules.get("below", math.inf) and value <= rules.get("at_most", math.inf)
            and ("multiple_of" not in rules or value % rules["multiple_of"] == 0))


def _shown(value):
    return ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def check_field(field, value, stages=()):
    """FlagError unless `value` is what `field` (a dataclass field declared with `_f`) accepts; `stages` are
    the stage names a per-stage flag may name."""
    rules = dict(field.metadata.get("accepts", {}))
    if not rules:
        return
    flag = f"--{field.name}={_shown(value)}"
    if "per_stage" in rules:
        from cycada_tf.config import run_fields as run_options
        try:
            run_options.per_stage(field.name, value, stages, rules["per_stage"])
        except ValueError as error:
            raise FlagError(str(error)) from None
        return
    rules["whole"] = isinstance(field.default, int) and not isinstance(field.default, bool)
    if not isinstance(value, tuple):
        if not _fits(value, rules):
            raise FlagError(f"{flag}: takes {_describe(rules)}")
        return
    count = rules.pop("count", None)  # a tuple: how many items (None: one or more), each with the rules
    distinct = rules.pop("distinct", False)
    items = rules.pop("choices", None) or ()
    rules["whole"] = True
    repeated = distinct and len(set(value)) < len(value)
    good = bool(value) and (count is None or len(value) == count) and not repeated
    if not good or not all((v in items) if items else _fits(v, rules) for v in value):
        what = f"of {', '.join(map(str, items))}" if items else _describe(rules, plural=True)
        raise FlagError(f"{flag}: takes {count or 'one or more'} {what}, comma-separated"
                        + (", each once" if distinct else ""))


def check(config):
    """FlagError for the first field of `config` outside what it accepts, then for the first cross-field rule
    it breaks; each field's own rules first, so a cross-field rule reads valid values."""
    for field in dataclasses.fields(config):
        check_field(field, getattr(config, field.name), _stage_names(config))
    for rule in CROSS_FIELD:
        message = rule(config)
        if message:
            raise FlagError(message)


def _stage_names(config):
    """Every stage's name, in order: the default of --stages (what a per-stage flag may name)."""
    return next((f.default_factory() for f in dataclasses.fields(config) if f.name == "stages"), ())


def _image_size_and_generator(config):
    """The digit translators halve the image twice and double it back (models/digit_gan.py): --image_size must
    be a multiple of 4, or G_S->T's output differs in size from its input."""
    size = getattr(config, "image_size", None)
    if size is not None and size % DIGIT_GENERATOR_STRIDE:
        return (f"--image_size={size}: takes a multiple of {DIGIT_GENERATOR_STRIDE} (the translators' stride-2 "
                f"convolutions and deconvolutions: {size} would come back as "
                f"{-(-size // DIGIT_GENERATOR_STRIDE) * DIGIT_GENERATOR_STRIDE})")
    return None


def _pixel_crop_and_generator(config):
    """The segmentation translators (models/cyclegan.py) halve the crop --generator_downsamplings times."""
    crop, downsamplings = getattr(config, "pixel_crop_size", None), getattr(config, "generator_downsamplings", None)
    if crop is None or downsamplings is None:
        return None
    multiple = 2 ** downsamplings
    if any(side % multiple for side in crop):
        return (f"--pixel_crop_size={_shown(crop)}: takes sides that are multiples of {multiple} (2 to the "
                f"power --generator_downsamplings={downsamplings})")
    return None


def _deterministic_and_xla(config):
    """Keras compiles no train step with XLA under op determinism (determinism.py)."""
    if not getattr(config, "deterministic", False):
        return None
    from cycada_tf.config import run_fields as run_options
    forced = [stage for stage, value in run_options.per_stage(
        "jit_compile", config.jit_compile, _stage_names(config), run_options.JIT_COMPILE).items() if value == "true"]
    if forced:
        return (f"--deterministic: --jit_compile=true ({', '.join(forced)}) cannot be honoured, Keras compiles "
                "no train step with XLA under op determinism; leave --jit_compile at auto or false")
    return None


def _release_recipe(config):
    """--feature_recipe=release is the release's segmentation feature stage (scripts/train_fcn_adda.sh:
    --weights_shared --discrim_score): D_feat reads the score maps and f_T takes the supervised step."""
    if getattr(config, "feature_recipe", "paper") != "release":
        return None
    if config.feature_layer != "logits" or not config.feature_task_weight > 0:
        return (f"--feature_recipe=release: takes --feature_layer=logits and --feature_task_weight > 0 (the "
                f"release's --discrim_score and supervised step), not --feature_layer={config.feature_layer} "
                f"--feature_task_weight={config.feature_task_weight}")
    return None


def _crops_and_short_side(config):
    """With --train_short_side every image the task and feature stages crop is that high (or wide, if
    portrait): a longer crop side cannot fit, and is refused rather than clipped or padded (the release's
    RandomCrop has no padding either: cycada/transforms.py)."""
    short_side = getattr(config, "train_short_side", 0)
    for flag in CROPPED_AT_SHORT_SIDE if short_side else ():
        crop = getattr(config, flag)
        if max(crop) > short_side:
            return (f"--{flag}={_shown(crop)}: does not fit images resized to --train_short_side={short_side}; "
                    f"take a crop of sides <= {short_side}, or a larger --train_short_side")
    return None


DIGIT_GENERATOR_STRIDE = 4  # models/digit_gan.generator: two stride-2 convolutions (tests/test_flags_checked.py)
# The crops of the stages that read images at --train_short_side (the pixel stage reads them at --width).
CROPPED_AT_SHORT_SIDE = ("crop_size", "feature_crop_size")
CROSS_FIELD = (_image_size_and_generator, _pixel_crop_and_generator, _deterministic_and_xla, _crops_and_short_side,
               _release_recipe)
