#!/usr/bin/env bash
# Checks that deltacrdt is usable from other projects in the three documented ways, each
# building and running tests/consumer/ (two nodes on 127.0.0.1; a put on one is read on the
# other):
#   1. installed with `meson install` into a temporary prefix, found by a Meson project
#      through pkg-config (fallback disabled);
#   2. the same installation, found by a CMake project with find_package (CONFIG);
#   3. a copy of this tree in <consumer>/subprojects/deltacrdt, found through
#      meson.override_dependency (--wrap-mode=forcefallback, no .wrap file).
# It also checks that the README shows exactly these consumer files, and builds and runs
# tests/consumer/types.cpp (every CRDT type the README lists) against the installation.
# Usage: install_consumer.sh SOURCE_ROOT CONSUMER_DIR [MESON]
set -uo pipefail

src=${1:?usage: install_consumer.sh SOURCE_ROOT CONSUMER_DIR [MESON]}
consumer=${2:?usage: install_consumer.sh SOURCE_ROOT CONSUMER_DIR [MESON]}
meson=${3:-meson}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/deltacrdt-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

step() {
  local name=$1
  shift
  echo "==> $name: $*"
  if ! "$@"; then
    echo "install_consumer: FAILED at step: $name" >&2
    exit 1
  fi
}

# 0. The README's "Using the library" shows these very files.
readme_shows() {
  python3 - "$src/README.md" "$@" <<'PY'
import sys
readme = open(sys.argv[1]).read()
missing = [f for f in sys.argv[2:] if open(f).read().strip() not in readme]
for f in missing:
    print(f"README.md does not show {f} as it is", file=sys.stderr)
sys.exit(1 if missing else 0)
PY
}
step "README shows the consumer" readme_shows "$consumer/main.cpp" "$consumer/meson.build" \
  "$consumer/CMakeLists.txt"

# 1. Installed copy, found through pkg-config. The libdir is set, not guessed: Meson's
# default depends on the platform (lib64 without dpkg-dev on Debian).
prefix="$tmp/prefix"
step "configure deltacrdt" "$meson" setup "$tmp/build-self" "$src" --prefix="$prefix" \
  --libdir=lib -Dtests=false -Dbenchmarks=false -Dexamples=false
step "install deltacrdt" "$meson" install -C "$tmp/build-self" --quiet
step "installed shared library" test -e "$prefix/lib/libdeltacrdt.so.0"
step "installed static library" test -e "$prefix/lib/libdeltacrdt.a"
step "internal headers stay private" test ! -e "$prefix/include/deltacrdt/cluster/node_impl.hpp"
# Every installed header stands on its own: it includes only installed headers.
headers_stand_alone() {
  local h
  while IFS= read -r h; do
    if ! echo "#include \"${h#"$prefix/include/deltacrdt/"}\"" |
      c++ -std=c++20 -I"$prefix/include/deltacrdt" -x c++ -M -o /dev/null -; then
      echo "installed header $h includes what is not installed" >&2
      return 1
    fi
  done < <(find "$prefix/include/deltacrdt" -name '*.hpp' | sort)
}
step "installed headers stand alone" headers_stand_alone
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# The installed library is not on the loader's path.
export LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
step "configure consumer (pkg-config)" "$meson" setup "$tmp/build-installed" "$consumer" \
  --wrap-mode=nofallback
step "build consumer (pkg-config)" "$meson" compile -C "$tmp/build-installed"
step "run consumer (pkg-config)" "$tmp/build-installed/consumer"
# Every CRDT type and nesting the README lists, as replicas too, built against the
# installed headers and library with nothing but what pkg-config says.
build_types() {
  # shellcheck disable=SC2046 # pkg-config prints several flags
  c++ -std=c++20 "$consumer/types.cpp" -o "$tmp/types" $(pkg-config --cflags --libs deltacrdt)
}
step "build every listed type (pkg-config)" build_types
step "run every listed type" "$tmp/types"

# 2. The same installation, found by CMake.
step "configure consumer (CMake)" cmake -S "$consumer" -B "$tmp/build-cmake" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release
step "build consumer (CMake)" cmake --build "$tmp/build-cmake"
step "run consumer (CMake)" "$tmp/build-cmake/consumer"
unset PKG_CONFIG_PATH LD_LIBRARY_PATH

# 3. Source copy as a subproject (no .wrap), resolved through override_dependency.
step "create consumer tree" mkdir -p "$tmp/sub/subprojects/deltacrdt"
step "copy consumer sources" cp -R "$consumer/." "$tmp/sub/"
step "copy deltacrdt into subprojects/" tar -C "$src" --exclude=./.git --exclude='./build*' \
  -cf "$tmp/src.tar" .
step "unpack deltacrdt into subprojects/" tar -C "$tmp/sub/subprojects/deltacrdt" -xf "$tmp/src.tar"
step "configure consumer (subproject)" "$meson" setup "$tmp/build-sub" "$tmp/sub" \
  --wrap-mode=forcefallback
step "build consumer (subproject)" "$meson" compile -C "$tmp/build-sub"
step "run consumer (subproject)" "$tmp/build-sub/consumer"

echo "install_consumer: OK (pkg-config, CMake and subproject)"
