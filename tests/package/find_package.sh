#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds examples/embed_registry
# against it with find_package(lucidnode), then runs it: what an embedding
# program does.
set -euo pipefail
build_dir="$1"
source_dir="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build_dir" --prefix "$tmp/prefix" >/dev/null
cmake -S "$source_dir/examples/standalone" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/build" >/dev/null
LD_LIBRARY_PATH="$tmp/prefix/lib:$tmp/prefix/lib/x86_64-linux-gnu" "$tmp/build/embed_registry" "$tmp/x.db"
