#!/usr/bin/env bash
# Builds BUILD and runs its fast tests with Bazel, offline: `bash tools/bazel_test.sh [targets] [--flags]`.
# CI passes --test_arg=--collect-only: every target loaded, every test file imported under its deps only.
#
# Bazel is Debian's bazel-bootstrap 4.2.3 (installed here when missing) with Debian's rules_cc and
# rules_java in place of the archives Bazel would download; the interpreter is .venv's, which brings the
# third-party packages. With no arguments it tests //... (each tests/test_*.py under pytest -m "not slow").
# Bazel's output root and the patched rules_cc live in $CYCADA_BAZEL_CACHE (default ~/.cache/cycada_tf_bazel),
# outside the checkout; the server quits after 10 idle minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(bazel-bootstrap bazel-rules-cc bazel-rules-java)
rules=/usr/share/bazel/rules
if ! command -v bazel >/dev/null || [ ! -d "$rules/cc" ] || [ ! -d "$rules/java" ]; then
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo -n)
  apt_install() { DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" >/dev/null 2>&1; }
  echo "installing ${packages[*]} (apt-get) ..."
  if ! apt_install && ! { "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 && apt_install; }; then
    echo "bazel_test.sh: could not install ${packages[*]} with apt-get; install them as root and rerun" >&2
    exit 2
  fi
fi

bash tools/setup.sh  # .venv: the interpreter and the third-party packages of every target

# Debian's rules_cc (0.0.4) calls use_cpp_toolchain(), which Bazel 4.2.3's @bazel_tools lacks; a copy with
# the plain toolchain type it stands for works. Remade whenever the Debian package changes.
cache=${CYCADA_BAZEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cycada_tf_bazel}
rules_cc=$cache/rules_cc
version=$(dpkg-query -W -f='${Version}' bazel-rules-cc)
if [ "$(cat "$rules_cc.version" 2>/dev/null)" != "$version" ]; then
  rm -rf "$rules_cc" && mkdir -p "$cache" && cp -r "$rules/cc" "$rules_cc"
  grep -rl use_cpp_toolchain "$rules_cc" | xargs -r sed -i \
    -e 's/, "use_cpp_toolchain")/)/' -e 's|use_cpp_toolchain()|["@bazel_tools//tools/cpp:toolchain_type"]|'
  if grep -rq use_cpp_toolchain "$rules_cc"; then
    echo "bazel_test.sh: $rules_cc still calls use_cpp_toolchain after patching; update the sed above" >&2
    exit 2
  fi
  echo "$version" > "$rules_cc.version"
fi

# --nosandbox_debug undoes Debian's /etc/bazel/bazelrc, whose --sandbox_debug keeps every sandbox on disk
# and fills a failing test's log with the sandbox's own trace.
targets=(//...)  # unless a target is named: flags (--name=value) alone still test everything
for arg in "$@"; do [[ $arg == -* ]] || targets=(); done
exec bazel --output_user_root="$cache/root" --max_idle_secs=600 test \
  --override_repository=rules_cc="$rules_cc" \
  --override_repository=rules_java="$rules/java" \
  --coverage_report_generator=@bazel_tools//tools/coverage:coverage_report_generator \
  --incompatible_use_python_toolchains=false \
  --python_path="$PWD/.venv/bin/python" \
  --incompatible_default_to_explicit_init_py \
  --nosandbox_debug \
  --symlink_prefix=/ \
  --test_output=errors \
  "$@" "${targets[@]}"
