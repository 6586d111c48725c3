"""`--help` of the experiment mains: every flag of the experiment with its help and default, grouped by the part of
the run it sets, on stdout with exit status 0; --helpfull stays absl's."""

import dataclasses
import fnmatch
import os
import re
import subprocess
import sys

import pytest
from absl import flags

from conftest import REPO
from cycada_tf.config import experiment_config as config_lib
from cycada_tf.experiments import usage
from cycada_tf.experiments.flags import define_from

MODULES = {"digits": config_lib.DigitsConfig, "segmentation": config_lib.SegmentationConfig}


def words(text):
    return " ".join(text.split())


def help_of(module, argument="--help"):
    return subprocess.run([sys.executable, "-m", f"cycada_tf.experiments.{module}", argument], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_help_lists_every_flag_of_the_experiment_with_its_help_under_its_group(module):
    cls = MODULES[module]
    result = help_of(module)
    assert result.returncode == 0, result.stderr
    text = words(result.stdout)
    assert "Try --helpfull" not in text
    for name in ("source", "pixel_epochs", "final_criterion"):
        help_text = words(config_lib.help_of(name, cls))
        default = cls.__dataclass_fields__[name].default
        assert f"--{name}: " in text and help_text in text and f"(default: '{default}')" in text
    for field in dataclasses.fields(cls):
        flag = f"--[no]{field.name}: " if field.type is bool else f"--{field.name}: "
        assert text.count(flag) == 1, field.name
    titles = [title for title, _ in usage.GROUPS]
    positions = [result.stdout.index(f"\n{title}:\n") for title in titles]
    assert positions == sorted(positions) and "\nOther:\n" not in result.stdout
    data = result.stdout.split("\nData:\n")[1].split("\n\n")[0]
    assert data.startswith("  --source: ") and "--target: " in data and "--pixel_epochs" not in data


@pytest.mark.parametrize("module", sorted(MODULES))
def test_source_and_target_help_name_the_folder_form_and_digits_the_tfds_form(module):
    cls = MODULES[module]
    for name in ("source", "target"):
        help_text = config_lib.help_of(name, cls)
        assert "folder:<path>" in help_text and ("tfds:<name>" in help_text) == (module == "digits"), help_text
    assert "folder:<path>" in words(help_of(module).stdout)


@pytest.mark.parametrize("argument", ["-h", "-?", "--helpshort"])
def test_the_other_ways_to_ask_give_the_same_help(argument):
    result = help_of("digits", argument)
    assert result.returncode == 0 and result.stdout == help_of("digits").stdout


def test_helpfull_is_still_absls_list_of_every_flag():
    result = help_of("digits", "--helpfull")
    assert "--pixel_epochs: " in result.stdout and "--[no]logtostderr" in result.stdout


@pytest.mark.parametrize("cls", list(MODULES.values()), ids=lambda c: c.__name__)
def test_every_field_is_in_exactly_one_group(cls):
    for field in dataclasses.fields(cls):
        holders = [title for title, patterns in usage.GROUPS
                   if any(fnmatch.fnmatchcase(field.name, pattern) for pattern in patterns)]
        assert len(holders) == 1, (field.name, holders)


def test_arguments_after_a_double_dash_ask_for_no_help():
    assert usage.wants_help(["digits", "--source=uci", "-h"])
    assert not usage.wants_help(["digits", "--", "--help"])
    assert not usage.wants_help(["digits", "--helpfull"])


# Lines of help a flag may take in --help, its "(default: ...)" line not counted (docs/ holds the detail).
# --final_criterion's eight choices, which absl's enum flag lists before its help, fill two lines by themselves.
MAX_HELP_LINES, LONGER = 2, {"final_criterion": 3}


@pytest.mark.parametrize("cls", list(MODULES.values()), ids=lambda c: c.__name__)
def test_every_flags_help_fits_in_two_lines(cls):
    flag_values = flags.FlagValues()
    define_from(cls, flag_values)
    too_long = {}
    for field in dataclasses.fields(cls):
        rendered = usage._render(flag_values[field.name]).split("\n")
        assert rendered[-1].lstrip().startswith("(default: "), rendered
        if len(rendered) - 1 > LONGER.get(field.name, MAX_HELP_LINES):
            too_long[field.name] = "\n".join(rendered[:-1])
    assert not too_long, "help longer than two lines (move the detail to docs/):\n" + "\n".join(too_long.values())


@pytest.mark.parametrize("cls", list(MODULES.values()), ids=lambda c: c.__name__)
def test_the_documents_a_help_points_to_exist(cls):
    named = {name for field in dataclasses.fields(cls) for name in re.findall(r"docs/\w+\.md", field.metadata["help"])}
    assert len(named) >= 5 and [name for name in sorted(named) if not os.path.exists(os.path.join(REPO, name))] == []
