#!/usr/bin/env bash
# The Python binding as a user installs it: `pip install` into a fresh venv
# (offline: Debian's setuptools through --system-site-packages), then the
# installed package, not the source tree, opens a cluster, runs
# examples/fleet_report.py, and passes `mypy --strict` together with that
# example. Exit 77 (ctest: skipped) when venv/pip or mypy are missing, saying which.
#   python_venv.sh LIBRARY SOURCE_DIR
set -euo pipefail
library="$1"
source_dir="$2"
skip() { echo "SKIPPED: $*"; exit 77; }
# Debian's python3, whose setuptools and wheel build the package offline (a
# python3 earlier on PATH, such as a pyenv one, lacks them).
py="${LUCID_VENV_PYTHON:-/usr/bin/python3}"
[ -x "$py" ] || py="$(command -v python3)"
"$py" -c 'import venv, ensurepip' 2>/dev/null || skip "python3-venv is not installed for $py (scripts/setup installs it)"
"$py" -c 'import setuptools, wheel' 2>/dev/null ||
  skip "python3-setuptools or python3-wheel is not installed for $py (scripts/setup installs them)"
command -v mypy >/dev/null || skip "mypy is not installed (scripts/setup installs Debian's mypy)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
unset PYTHONPATH
export PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INDEX=1
# A copy: setuptools writes build/ and *.egg-info beside the sources.
cp -r "$source_dir/bindings/python" "$tmp/src"
rm -rf "$tmp/src/tests"
"$py" -m venv --system-site-packages "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --no-build-isolation "$tmp/src"
cd "$tmp"  # nothing importable from the current directory
where="$("$tmp/venv/bin/python" -c 'import lucidnode; print(lucidnode.__file__)')"
case "$where" in
  "$tmp/venv/"*) echo "installed: $where" ;;
  *) echo "FAIL: lucidnode imported from $where, not the venv"; exit 1 ;;
esac
[ -f "$(dirname "$where")/py.typed" ] || { echo "FAIL: py.typed not installed"; exit 1; }

export LUCIDNODE_LIBRARY="$library"
"$tmp/venv/bin/python" - "$tmp/fleet.db" <<'PY'
import sys
import lucidnode
print("binding", lucidnode.__version__, "library", lucidnode.version())
with lucidnode.Cluster(sys.argv[1], stats_flush_interval_ms=20) as c:
    join = c.join("venv-1.example", ip_address="192.0.2.7")
    c.approve_code(join["registration_code"])
    key = c.poll(join["registration_code"], join["join_secret"])["api_key"]
    c.report_stats(c.authenticate(key), cpu_usage=7.5, disk_usage=20)
PY
"$tmp/venv/bin/python" "$source_dir/examples/fleet_report.py" "$tmp/fleet.db"

# The binding and an example that uses it, strictly typed, as a user's
# checker sees them: from the venv's site-packages (PEP 561).
typecheck() {
  mypy --strict --no-incremental --cache-dir "$tmp/mypy-cache" --python-executable "$tmp/venv/bin/python" "$@"
}
typecheck -p lucidnode
typecheck "$source_dir/examples/fleet_report.py"
echo "python package checks passed"
