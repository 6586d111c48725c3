"""test_groups: the py_test targets that //... runs, one per set of test files that see the same runfiles.

A py_test's runfiles hold what its deps reach (Bazel's deps are transitive), so two test files whose declared
deps reach the same libraries, and which read the same data files, see exactly the same files: their imports
are checked as strictly in one pytest process as in two, and TensorFlow is imported once for all of them (it
takes most of a file's check: about 5 s of CPU).
"""

def _reached(deps):
    """The labels of the libraries `deps` reach, themselves included, among the rules BUILD declared so far."""
    seen = {}
    todo = list(deps)
    for _ in range(10000):  # Starlark has no while loop; the graph is a few dozen libraries
        if not todo:
            break
        label = todo.pop()
        name = label.split(":")[-1]
        if name in seen:
            continue
        seen[name] = True
        rule = native.existing_rule(name)
        if rule:
            todo.extend([str(dep) for dep in rule.get("deps", [])])
    return sorted(seen.keys())

def test_groups(tests, data, long, main, common_deps):
    """One py_test per group of `tests` ({file name: deps}) with the same reached libraries and `data` files,
    named group_<its first file without test_>, running `main` on every file of the group; "enormous" where a
    file of it is in `long`.

    Returns:
        {group name: [file names]}.
    """
    groups = {}
    for name, deps in tests.items():
        key = ",".join(_reached(common_deps + deps)) + "|" + ",".join(sorted(data.get(name, [])))
        groups.setdefault(key, []).append(name)
    named = {}
    for names in groups.values():
        group = "group_" + names[0][len("test_"):]
        named[group] = names
        deps = {}
        for name in names:
            for dep in tests[name]:
                deps[dep] = True
        native.py_test(
            name = group,
            srcs = [main] + ["tests/%s.py" % name for name in names],
            args = ["$(rootpath tests/%s.py)" % name for name in names],
            data = data.get(names[0], []),
            main = main,
            size = "enormous" if [name for name in names if name in long] else "large",
            deps = common_deps + sorted(deps.keys()),
        )
    return named
