#!/usr/bin/env bash
# Builds the .deb with CPack, unpacks it into a clean prefix (dpkg-deb -x),
# checks what it holds, and builds the examples against it the ways an
# embedder would: find_package(lucidnode) with the shared and with the static
# library, and pkg-config (shared, and --static), C++ and C. Runs each.
#   deb.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build_dir="$1"
source_dir="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
say() { echo "deb.sh: $*"; }

(cd "$tmp" && cpack -G DEB --config "$build_dir/CPackConfig.cmake" -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1) ||
  { cat "$tmp/cpack.log"; exit 1; }
deb="$(ls "$tmp"/pkg/*.deb)"
say "built $(basename "$deb")"
dpkg-deb -f "$deb" Package Version Depends Recommends
root="$tmp/root"
dpkg-deb -x "$deb" "$root"
prefix="$root/usr"

# What the package holds.
for f in bin/lucid-server bin/lucidctl libexec/lucidnode/lucid-task include/lucidnode/lucidnode.hpp include/lucidnode/lucidnode.h \
         include/lucidnode/version.hpp share/man/man1/lucid-server.1 share/man/man1/lucidctl.1 \
         lib/systemd/system/lucid-server.service lib/systemd/system/lucid-agent.service \
         share/bash-completion/completions/lucidctl share/zsh/vendor-completions/_lucidctl \
         lib/python3/dist-packages/lucidnode/__init__.py \
         share/doc/lucidnode/examples/fleet_report.py share/doc/lucidnode/examples/haproxy/lucid-server.cfg; do
  [ -e "$prefix/$f" ] || { say "package lacks $f"; exit 1; }
done
so="$(find "$prefix" -name 'liblucidnode.so' -print -quit)"
libdir="$(dirname "$so")"
[ -e "$libdir/liblucidnode.a" ] || { say "package lacks liblucidnode.a"; exit 1; }
# The PostgreSQL backend is its own library; the core never loads libpq.
[ -e "$libdir/liblucidnode_postgres.so" ] || { say "package lacks liblucidnode_postgres.so"; exit 1; }
[ -e "$libdir/cmake/lucidnode/lucidnodePostgresTargets.cmake" ] || { say "package lacks the lucidnode_postgres target"; exit 1; }
if LD_LIBRARY_PATH="$libdir" ldd "$so" | grep -q 'libpq\.so'; then say "liblucidnode.so loads libpq"; exit 1; fi
LD_LIBRARY_PATH="$libdir" ldd "$libdir/liblucidnode_postgres.so" | grep -q 'libpq\.so' \
  || { say "liblucidnode_postgres.so does not load libpq"; exit 1; }
[ -e "$libdir/pkgconfig/lucidnode.pc" ] || { say "package lacks lucidnode.pc"; exit 1; }
[ -e "$libdir/cmake/lucidnode/lucidnodeConfig.cmake" ] || { say "package lacks lucidnodeConfig.cmake"; exit 1; }
soname="$(objdump -p "$so" | awk '/SONAME/ {print $2}')"
[ "$soname" = "liblucidnode.so.0" ] || { say "SONAME is '$soname'"; exit 1; }
unit="$prefix/lib/systemd/system/lucid-server.service"
grep -qx 'ExecStart=/usr/bin/lucid-server --config /etc/lucid-server/lucid-server.toml' "$unit"
# The config file is a conffile at /etc, and the server accepts it as shipped.
conf="$root/etc/lucid-server/lucid-server.toml"
[ -e "$conf" ] || { say "package lacks /etc/lucid-server/lucid-server.toml"; exit 1; }
dpkg-deb -e "$deb" "$tmp/control"
grep -qx '/etc/lucid-server/lucid-server.toml' "$tmp/control/conffiles" || { say "the config is no conffile"; exit 1; }
sed -e "s|/var/lib/lucid-server/lucid.db|$tmp/conf-check.db|" -e 's|127.0.0.1:8080|127.0.0.1:0|' "$conf" >"$tmp/conf-check.toml"
timeout 10 "$prefix/bin/lucid-server" --config "$tmp/conf-check.toml" --print-security-model >/dev/null \
  || { say "lucid-server refuses the shipped config"; exit 1; }
grep -qx 'DynamicUser=yes' "$unit"
grep -qx 'StateDirectory=lucid-server' "$unit"
grep -q '^ExecStart=/usr/bin/lucidctl agent ' "$prefix/lib/systemd/system/lucid-agent.service"
# The agent's task child is the lighter lucid-task: no PostgreSQL library in it.
if ldd "$prefix/libexec/lucidnode/lucid-task" | grep -q 'libpq'; then say "lucid-task links libpq"; exit 1; fi
grep -q 'complete -F _lucidctl lucidctl' "$prefix/share/bash-completion/completions/lucidctl"
grep -q '^#compdef lucidctl' "$prefix/share/zsh/vendor-completions/_lucidctl"
grep -q '^\.TH LUCIDCTL 1' "$prefix/share/man/man1/lucidctl.1"
grep -q -- '--listen' "$prefix/share/man/man1/lucid-server.1"
# The unpacked binaries run (they find the library through $ORIGIN/../lib*).
"$prefix/bin/lucidctl" --help >/dev/null
"$prefix/bin/lucid-server" --help >/dev/null
# The web console, when this build has it (LUCID_BUILD_UI): beside the
# binary, where the packaged lucid-server looks by default.
if [ -e "$build_dir/share/lucidnode/ui/index.html" ]; then
  [ -e "$prefix/share/lucidnode/ui/index.html" ] || { say "package lacks share/lucidnode/ui/index.html"; exit 1; }
  ls "$prefix"/share/lucidnode/ui/app-*.js >/dev/null || { say "package lacks the console's bundle"; exit 1; }
fi
say "contents ok (SONAME $soname)"

run() {  # run NAME BINARY ARGS...: the program must print a healthy node.
  local name="$1"; shift
  LD_LIBRARY_PATH="$libdir" "$@" >"$tmp/$name.out" 2>&1 || { cat "$tmp/$name.out"; say "$name failed"; exit 1; }
  grep -Eq "$expect" "$tmp/$name.out" || { cat "$tmp/$name.out"; say "$name: unexpected output"; exit 1; }
  say "$name ok"
}

# find_package(lucidnode): shared, then static.
for mode in OFF ON; do
  cmake -S "$source_dir/examples/standalone" -B "$tmp/cmake-$mode" -DCMAKE_PREFIX_PATH="$prefix" \
        -DLUCID_LINK_STATIC=$mode >/dev/null
  cmake --build "$tmp/cmake-$mode" >/dev/null
  expect="worker-1.example.com  active  online"
  run "find_package-static=$mode-embed_registry" "$tmp/cmake-$mode/embed_registry" "$tmp/cmake-$mode.db"
  expect="3 of 4 tasks on ssd devices"
  run "find_package-static=$mode-custom_scheduler" "$tmp/cmake-$mode/custom_scheduler" "$tmp/cmake-$mode-sched.db"
  expect="status active, liveness online, 2 recent samples stored"
  run "find_package-static=$mode-agent_c" "$tmp/cmake-$mode/agent_c" "$tmp/cmake-$mode-agent.db" 2 10
  grep -q 'success, result echo "hello from agent_c"' "$tmp/find_package-static=$mode-agent_c.out" \
    || { say "agent_c took no task"; exit 1; }
  expect="without enable_postgres: invalid_argument; with it: storage"
  mkdir -p "$tmp/pg-$mode"
  run "find_package-static=$mode-postgres_check" "$tmp/cmake-$mode/postgres_check" "$tmp/pg-$mode"
done
if objdump -p "$tmp/cmake-ON/embed_registry" | grep -q 'NEEDED.*liblucidnode'; then
  say "static build still needs liblucidnode.so"; exit 1
fi

# The Python binding and fleet_report.py from the package, on agent_c's database.
expect="nodes: 1"
run python-fleet_report env PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$prefix/lib/python3/dist-packages" \
    LUCIDNODE_LIBRARY="$libdir/liblucidnode.so.0" \
    python3 "$prefix/share/doc/lucidnode/examples/fleet_report.py" "$tmp/cmake-OFF-agent.db"
grep -q "ledger: intact" "$tmp/python-fleet_report.out"

# pkg-config (the .pc locates its prefix from its own path: relocatable).
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pkg-config --exists --print-errors 'lucidnode >= 0.1'
cxx="${CXX:-c++}"
cc="${CC:-cc}"
"$cxx" -std=c++20 "$source_dir/examples/embed_registry.cpp" -o "$tmp/pc-embed" $(pkg-config --cflags --libs lucidnode)
expect="worker-1.example.com  active  online"
run pkg-config-embed_registry "$tmp/pc-embed" "$tmp/pc.db"
"$cc" -std=c11 "$source_dir/examples/agent_c.c" -o "$tmp/pc-agent" $(pkg-config --cflags --libs lucidnode)
expect="status active, liveness online, 2 recent samples stored"
run pkg-config-agent_c "$tmp/pc-agent" "$tmp/pc-agent.db" 2 10
# --static: Libs.private and Requires.private must be complete.
static_libs="$(pkg-config --static --libs lucidnode | sed 's/-llucidnode\b/-l:liblucidnode.a/')"
"$cxx" -std=c++20 "$source_dir/examples/embed_registry.cpp" -o "$tmp/pc-static" $(pkg-config --cflags lucidnode) $static_libs
expect="worker-1.example.com  active  online"
run pkg-config-static-embed_registry "$tmp/pc-static" "$tmp/pc-static.db"
say "all package checks passed"
