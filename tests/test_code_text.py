"""The comments and docstrings of cycada_tf/ and tools/ say what the code does and why; measurements, timings and
history belong in docs/ and in commit messages, where they can be dated and kept true."""

import ast
import glob
import io
import os
import re
import tokenize

from conftest import REPO

# What a measurement or a piece of history looks like in prose: a duration on some hardware ("1789 s on 2
# cores"), a machine's size ("2-core host", "on two (shared) CPU cores"), "measured" beside a number, a
# throughput, a before -> after pair of scores, a speed-up, a date, this project's issue tracker, "tonight".
MEASUREMENT = re.compile("|".join((
    r"\b\d[\d,.]*\s*(?:s|secs?|seconds?|ms|min|mins|minutes?|h|hours?)\s+on\b",
    r"\b(?:\d+|one|two|four|eight)\s+(?:\(?shared\)?\s+)?(?:CPU\s+|busy\s+)?cores?\b",
    r"\b\d+-core\b",
    r"\bmeasured\b(?=[^.;:]{0,40}?(?<!\w)\d)",
    r"(?<!\w)\d(?=[^.;:]{0,40}?\bmeasured\b)",
    r"\b\d[\d,.]*\s*(?:img/s|images/s|GFLOP/s|steps/s|it/s)",
    r"(?<![\d.])\d+(?:\.\d+)?\s*%?\s*->\s*\d+\.\d+\b",
    r"\b\d+(?:\.\d+)?x\s+(?:faster|slower|speed-?up|under load)\b",
    r"\b20\d\d-\d\d-\d\d\b",
    r"\bissue \d+\b",
    r"\b(?:tonight|yesterday|this session)\b",
)), re.IGNORECASE)


def sources():
    paths = glob.glob(os.path.join(REPO, "cycada_tf", "**", "*.py"), recursive=True)
    return sorted(paths + glob.glob(os.path.join(REPO, "tools", "*.py")))


def prose(source):
    """(line number, text) of every comment line and docstring line of the Python `source`."""
    lines = [(token.start[0], token.string) for token in tokenize.generate_tokens(io.StringIO(source).readline)
             if token.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                lines += [(first.lineno + i, text) for i, text in enumerate(first.value.value.split("\n"))]
    return lines


def measurements(source):
    """(line number, what matched) of each comment or docstring line of `source` that holds a measurement."""
    found = [(line, MEASUREMENT.findall(text)) for line, text in prose(source)]
    return sorted((line, matches) for line, matches in found if matches)


def test_comments_and_docstrings_carry_no_measurement_or_history():
    paths = sources()
    assert len(paths) > 50, paths  # the whole tree was read
    found = []
    for path in paths:
        with open(path) as handle:
            found += [f"{os.path.relpath(path, REPO)}:{line}: {matches}"
                      for line, matches in measurements(handle.read())]
    assert not found, "measurements or history in code comments (move them to docs/):\n" + "\n".join(found)


# Each kind the patterns are for, as it was found in this tree's comments, and facts about code that they let be.
CAUGHT = ["took 1789 s on 2 cores", "a run of one to a few minutes on two (shared) CPU cores",
          "10 s, ended a healthy 2-worker run on an overloaded 2-core host", "measured forward + backward at batch 100",
          "at 100 it measured slower", "pixel step: 35 img/s with XLA", "mIoU 59.4 -> 31.3", "51% -> 63.2",
          "one alone misled by 1.6x under load", "3x faster", "the 2026-12-05 sessions", "(issue 22)", "tonight"]
FACTS = ["its remaining steps at its measured time per step", "A 64x64 input gives a 6x6 map (256 -> 30)",
         "ids above 33 -> 255", "89% of the parameters", "measured in float32",
         "10 s between progress lines at the soonest", "PyTorch 0.1's tar layout",
         "issue #2 of bupt-ai-cz/IAST-ECCV2020", "a stride-2 convolution, 4x too much"]


def test_the_patterns_catch_what_they_are_for_and_let_code_facts_be():
    assert [text for text in CAUGHT if not MEASUREMENT.search(text)] == []
    assert [text for text in FACTS if MEASUREMENT.search(text)] == []
    source = "\n".join(['"""Fit the model.', "", "Took 1789 s on 2 cores.", '"""', "x = 1  # 35 img/s",
                        'y = "4 s on 2 cores"  # a string is no comment'])
    assert [line for line, _ in measurements(source)] == [3, 5]


def test_every_python_line_fits_in_120_columns():
    """The project's line length: every line of the package, the tools and the tests fits in 120 characters."""
    paths = sources() + sorted(glob.glob(os.path.join(REPO, "tests", "*.py")))
    long = [f"{os.path.relpath(path, REPO)}:{number}" for path in paths
            for number, line in enumerate(open(path, encoding="utf-8").read().splitlines(), 1) if len(line) > 120]
    assert not long, long
