"""BUILD stays in sync with the tree: each module in exactly one target, each test file with a py_test that
runs it, every listed file present, every dep defined, every import covered by a dep, no dependency cycle.

Bazel cannot run here (its rules are not fetchable offline), so this test is what keeps BUILD honest: it
reads the tree when it runs, and fails until a new module, test or import is entered in BUILD.
"""

import ast
import importlib.metadata
import os
import re
import sys

import pytest

# The source tree: under `bazel test` the runfiles hold BUILD as a link into the workspace, and the tree is
# read there (the target is tagged local); outside Bazel the path resolves to itself.
REPO = os.path.dirname(os.path.realpath(os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "BUILD")))
RULES = ("py_library", "py_binary", "py_test", "filegroup")
PACKAGES = ("cycada_tf", "tools")     # every .py below these is a module some library or binary must own
TESTS = "tests"                       # test_*.py each need a py_test; any other .py there, a py_library
DATA_FILES = {"experiments": ".flags"}  # data a binary reads: each such file must be listed somewhere
PIP = "@pypi//"                       # rules_python's pip hub, built from requirements.txt


def parse_build(text):
    """{name: attributes (with "kind")} of the rule calls in a BUILD file, or raises ValueError.

    BUILD files are Starlark; for rule calls with literal arguments that is Python syntax.
    """
    try:
        tree = ast.parse(text)
    except SyntaxError as error:
        raise ValueError(f"BUILD line {error.lineno}: {error.msg}") from None
    targets = {}
    for node in tree.body:
        call = node.value if isinstance(node, ast.Expr) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
            raise ValueError(f"BUILD line {node.lineno}: expected a rule call, as in name(attr = ...)")
        kind = call.func.id
        if kind == "load":
            continue
        if kind not in RULES:
            raise ValueError(f"BUILD line {node.lineno}: unknown rule {kind}; this checker knows "
                             f"{', '.join(RULES)}")
        try:
            attrs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
        except ValueError:
            raise ValueError(f"BUILD line {node.lineno}: only literal attribute values are checked "
                             "(no glob, select or variables)") from None
        name = attrs.get("name")
        if not name:
            raise ValueError(f"BUILD line {node.lineno}: {kind} without a name")
        if name in targets:
            raise ValueError(f"BUILD line {node.lineno}: target '{name}' defined twice")
        targets[name] = {"kind": kind, "line": node.lineno, **attrs}
    return targets


def _files(root, top, suffix):
    found = []
    for directory, subdirs, names in os.walk(os.path.join(root, top)):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith((".", "__pycache__")))
        found += [os.path.relpath(os.path.join(directory, n), root) for n in sorted(names) if n.endswith(suffix)]
    return found


def _module_file(root, module, search_dirs):
    """The repository file of a dotted module name (package -> its __init__.py), or None."""
    parts = module.split(".")
    for base in search_dirs:
        for candidate in (os.path.join(base, *parts) + ".py", os.path.join(base, *parts, "__init__.py")):
            if os.path.isfile(os.path.join(root, candidate)):
                return os.path.normpath(candidate)
    return None


def _imports(root, path):
    """Dotted names a file imports ("from a.b import c" gives a.b.c and a.b; "import a.b" gives a.b)."""
    with open(os.path.join(root, path)) as handle:
        tree = ast.parse(handle.read(), path)
    package = os.path.dirname(path).replace(os.sep, ".")
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _requirements(root):
    path = os.path.join(root, "requirements.txt")
    if not os.path.exists(path):
        return set()
    with open(path) as handle:
        lines = [line.split("#")[0].strip() for line in handle]
    return {_pip_name(re.split(r"[<>=!~\[; ]", line)[0]) for line in lines if line}


def _pip_name(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def _reachable(targets, start):
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in targets:
            continue
        seen.add(name)
        todo += [d[1:] for d in targets[name].get("deps", []) if d.startswith(":")]
    return seen


def _cycle(targets):
    """One dependency cycle as a list of names, or None."""
    state = {}

    def visit(name, path):
        state[name] = "open"
        for dep in targets[name].get("deps", []):
            dep = dep[1:] if dep.startswith(":") else None
            if dep not in targets:
                continue
            if state.get(dep) == "open":
                return path[path.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep, path + [dep])
                if found:
                    return found
        state[name] = "done"
        return None

    for name in targets:
        if name not in state:
            found = visit(name, [name])
            if found:
                return found
    return None


def check_build(build_text, root, distributions=None):
    """Every way BUILD disagrees with the tree under `root`, one line each ([] when in sync)."""
    if distributions is None:
        distributions = importlib.metadata.packages_distributions()
    try:
        targets = parse_build(build_text)
    except ValueError as error:
        return [str(error)]
    problems = []
    say = problems.append

    # Every listed file exists.
    owners = {}  # .py file -> the libraries/binaries/tests whose srcs list it
    for name, target in targets.items():
        for attr in ("srcs", "data", "main"):
            values = target.get(attr, [])
            for path in [values] if isinstance(values, str) else values:
                if path.startswith((":", "@", "//")):
                    if attr != "data":
                        say(f"{name}: {attr} names {path}: list this package's files here")
                    elif path.startswith(":") and path[1:] not in targets:
                        say(f"{name}: data names {path}, no target of this BUILD")
                    continue
                if not os.path.isfile(os.path.join(root, path)):
                    say(f"{name}: {attr} lists {path}, which does not exist")
                elif attr == "srcs" and path.endswith(".py"):
                    owners.setdefault(path, []).append(name)

    # Every module is in exactly one py_library/py_binary; every test file in exactly one py_test.
    for top in PACKAGES:
        for path in _files(root, top, ".py"):
            libs = [t for t in owners.get(path, []) if targets[t]["kind"] in ("py_library", "py_binary")]
            if len(libs) != 1:
                say(f"{path} is in the srcs of {len(libs)} py_library/py_binary targets "
                    f"({', '.join(libs) or 'none'}); it must be in exactly one")
    for path in _files(root, TESTS, ".py"):
        is_test = os.path.basename(path).startswith("test_")
        kind = "py_test" if is_test else "py_library"
        holders = [t for t in owners.get(path, []) if targets[t]["kind"] == kind]
        if len(holders) != 1:
            say(f"{path} is in the srcs of {len(holders)} {kind} targets ({', '.join(holders) or 'none'}); "
                f"it must be in exactly one")
    for top, suffix in DATA_FILES.items():
        listed = {p for t in targets.values() for a in ("srcs", "data") for p in t.get(a, [])}
        for path in _files(root, top, suffix):
            if path not in listed:
                say(f"{path} is listed in no target's srcs or data")

    for name, target in targets.items():
        if target["kind"] == "py_binary" and target.get("main") not in target.get("srcs", []):
            say(f"{name}: main must be one of its srcs")

    # A py_test runs its file through pytest, or it would pass without running a test.
    conftest = os.path.join(TESTS, "conftest.py")
    conftest_lib = next(iter(owners.get(conftest, [])), None)
    for name, target in targets.items():
        if target["kind"] != "py_test":
            continue
        files = [p for p in target.get("srcs", []) if os.path.basename(p).startswith("test_")]
        if target.get("main_module") != "pytest":
            say(f"{name}: set main_module = \"pytest\" (a test file run as a script runs no test)")
        for path in files:
            if f"$(rootpath {path})" not in target.get("args", []):
                say(f"{name}: args must name $(rootpath {path}), the file pytest is to run")
        if PIP + "pytest" not in target.get("deps", []):
            say(f"{name}: deps must include {PIP}pytest")
        if conftest_lib and f":{conftest_lib}" not in target.get("deps", []):
            say(f"{name}: deps must include :{conftest_lib} ({conftest}, which pytest loads)")

    # Every dep is defined; no cycle.
    requirements = _requirements(root)
    for name, target in targets.items():
        for dep in target.get("deps", []):
            if dep.startswith(PIP):
                if _pip_name(dep[len(PIP):]) not in requirements:
                    say(f"{name}: dep {dep} is not in requirements.txt")
            elif not dep.startswith(":") or dep[1:] not in targets:
                say(f"{name}: dep {dep} names no target of this BUILD")
            elif targets[dep[1:]]["kind"] not in ("py_library", "py_binary"):
                say(f"{name}: dep {dep} is a {targets[dep[1:]]['kind']}, not a library")
    cycle = _cycle(targets)
    if cycle:
        say("dependency cycle (Bazel rejects it): " + " -> ".join(cycle))

    # Every import is covered: a repository module by its owner in deps (the packages enclosing it may come
    # through deps of deps), a third-party one by its pip package in deps.
    module_owner = {p: ts[0] for p, ts in owners.items()
                    if targets[ts[0]]["kind"] in ("py_library", "py_binary")}
    for name, target in targets.items():
        if target["kind"] == "filegroup":
            continue
        deps = set(target.get("deps", []))
        reachable = _reachable(targets, name)
        for src in target.get("srcs", []):
            if not src.endswith(".py") or not os.path.isfile(os.path.join(root, src)):
                continue
            search = ["."] + ([os.path.dirname(src)] if src.startswith(TESTS + os.sep) else [])
            needed_packages = {os.path.dirname(src)}
            for module in sorted(_imports(root, src)):
                path = _module_file(root, module, search)
                if path is None:
                    top = module.split(".")[0]
                    if not top or top in sys.stdlib_module_names or _module_file(root, top, search):
                        continue
                    # The distribution that installs the import (PIL is pillow); its own name if unknown.
                    wanted = {_pip_name(d) for d in distributions.get(top, [top])}
                    if not {f"{PIP}{w}" for w in wanted} & deps:
                        say(f"{name}: {src} imports {top}: add {PIP}{sorted(wanted)[0]} to deps")
                    continue
                owner = module_owner.get(path)
                if owner is None:
                    continue  # not owned by any library: reported above
                if owner != name and f":{owner}" not in deps and not path.endswith("__init__.py"):
                    say(f"{name}: {src} imports {os.path.dirname(path).replace(os.sep, '.')} modules: "
                        f"add :{owner} to deps")
                needed_packages.add(os.path.dirname(path))
            for package in needed_packages:
                while package and package != ".":
                    init = os.path.join(package, "__init__.py")
                    owner = module_owner.get(init)
                    if owner and owner not in reachable:
                        say(f"{name}: {src} needs {init} (target :{owner}), not reachable through its deps")
                    package = os.path.dirname(package)
    return list(dict.fromkeys(problems))  # one line for what several imports of a file share


# --- the repository's BUILD -----------------------------------------------------------------------------
def test_build_file_matches_the_tree():
    with open(os.path.join(REPO, "BUILD")) as handle:
        problems = check_build(handle.read(), REPO)
    assert not problems, "BUILD is out of date:\n  " + "\n  ".join(problems)


# --- the checker, on a small synthetic tree ---------------------------------------------------------------
GOOD = """
load("@rules_python//python:defs.bzl", "py_library", "py_test")

py_library(
    name = "base",
    srcs = ["cycada_tf/__init__.py", "cycada_tf/b.py"],
    deps = ["@pypi//numpy"],
)

py_library(
    name = "pkg",
    srcs = ["cycada_tf/a.py"],
    deps = [":base"],
)

py_test(
    name = "test_a",
    srcs = ["tests/test_a.py"],
    main_module = "pytest",
    args = ["$(rootpath tests/test_a.py)"],
    deps = [":pkg", "@pypi//pytest"],
)
"""
DISTRIBUTIONS = {"numpy": ["numpy"], "pytest": ["pytest"]}


@pytest.fixture
def tree(tmp_path):
    files = {"cycada_tf/__init__.py": "", "cycada_tf/a.py": "from cycada_tf import b\n",
             "cycada_tf/b.py": "import numpy\n", "tests/test_a.py": "import pytest\nfrom cycada_tf import a\n",
             "requirements.txt": "numpy==2.4.6\npytest==9.2.0\n"}
    for path, text in files.items():
        os.makedirs(os.path.dirname(str(tmp_path / path)) or str(tmp_path), exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path


def problems_of(text, root):
    return check_build(text, str(root), DISTRIBUTIONS)


def test_the_checker_accepts_a_build_in_sync(tree):
    assert problems_of(GOOD, tree) == []


@pytest.mark.parametrize("edit, expected", [
    (('"cycada_tf/b.py"]', '"cycada_tf/b.py", "cycada_tf/gone.py"]'),
     "lists cycada_tf/gone.py, which does not exist"),
    (('srcs = ["cycada_tf/a.py"]', 'srcs = []'), "cycada_tf/a.py is in the srcs of 0"),
    (('"cycada_tf/b.py"]', '"cycada_tf/b.py", "cycada_tf/a.py"]'), "cycada_tf/a.py is in the srcs of 2"),
    (('deps = [":base"]', 'deps = [":base", ":other"]'), "dep :other names no target"),
    (('deps = [":pkg", ', 'deps = ['), "imports cycada_tf modules: add :pkg to deps"),
    (('deps = ["@pypi//numpy"]', 'deps = []'), "imports numpy: add @pypi//numpy to deps"),
    (('deps = ["@pypi//numpy"]', 'deps = ["@pypi//numpy", "@pypi//scipy"]'),
     "dep @pypi//scipy is not in requirements.txt"),
    (('deps = ["@pypi//numpy"]', 'deps = ["@pypi//numpy", ":pkg"]'), "dependency cycle"),
    (('deps = [":base"]', 'deps = [":test_a"]'), "dep :test_a is a py_test, not a library"),
    (('main_module = "pytest",', ''), 'set main_module = "pytest"'),
    (('args = ["$(rootpath tests/test_a.py)"],', ''), "args must name $(rootpath tests/test_a.py)"),
    (('name = "test_a",', 'name = "pkg",'), "target 'pkg' defined twice"),
    (('srcs = ["cycada_tf/a.py"]', 'srcs = glob(["cycada_tf/a*.py"])'), "only literal attribute values"),
])
def test_the_checker_reports_each_disagreement(tree, edit, expected):
    old, new = edit
    assert old in GOOD
    problems = problems_of(GOOD.replace(old, new), tree)
    assert any(expected in p for p in problems), problems


def test_the_checker_reads_the_tree_when_it_runs(tree):
    (tree / "cycada_tf" / "c.py").write_text("")
    (tree / "tests" / "test_c.py").write_text("")
    (tree / "tests" / "conftest.py").write_text("")
    problems = problems_of(GOOD, tree)
    assert any(p.startswith("cycada_tf/c.py is in the srcs of 0") for p in problems), problems
    assert any(p.startswith("tests/test_c.py is in the srcs of 0 py_test") for p in problems), problems
    assert any(p.startswith("tests/conftest.py is in the srcs of 0 py_library") for p in problems), problems


def test_a_package_init_must_be_reachable(tree):
    moved = GOOD.replace('"cycada_tf/__init__.py", ', "").replace('srcs = ["cycada_tf/a.py"]',
                                                                  'srcs = ["cycada_tf/__init__.py", "cycada_tf/a.py"]')
    problems = problems_of(moved, tree)
    assert any("base: cycada_tf/b.py needs cycada_tf/__init__.py (target :pkg)" in p for p in problems), problems
