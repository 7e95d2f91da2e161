#!/usr/bin/env bash
# Checks that deltacrdt is usable from other projects in the three documented ways, each
# building and running tests/consumer/ (two nodes on 127.0.0.1; a put on one is read on the
# other):
#   1. this build directory installed with `meson install --destdir` into a temporary
#      staging root, found by a Meson project through pkg-config (fallback disabled);
#   2. the same installation, found by a CMake project with find_package (CONFIG);
#   3. a copy of this tree in <consumer>/subprojects/deltacrdt, found through
#      meson.override_dependency (--wrap-mode=forcefallback, no .wrap file).
# It also checks that the README shows exactly these consumer files, and builds and runs
# tests/consumer/types.cpp (every CRDT type the README lists) against the installation.
# Usage: install_consumer.sh SOURCE_ROOT CONSUMER_DIR BUILD_ROOT [MESON]
set -uo pipefail

usage="usage: install_consumer.sh SOURCE_ROOT CONSUMER_DIR BUILD_ROOT [MESON]"
src=${1:?$usage}
consumer=${2:?$usage}
build=${3:?$usage}
meson=${4:-meson}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/deltacrdt-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

step() {
  local name=$1 started=$SECONDS
  shift
  echo "==> $name: $*"
  if ! "$@"; then
    echo "install_consumer: FAILED at step: $name" >&2
    exit 1
  fi
  echo "    ($((SECONDS - started)) s)"
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

# 1. This build's installation, staged under a temporary root (nothing is compiled again),
# found through pkg-config. The prefix and libdir are asked of Meson, not guessed: the
# default libdir depends on the platform (lib64 without dpkg-dev on Debian).
build_option() {
  "$meson" introspect --buildoptions "$build" |
    python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == sys.argv[1]))' "$1"
}
stage="$tmp/stage"
install_prefix=$(build_option prefix) && install_libdir=$(build_option libdir) &&
  install_includedir=$(build_option includedir) || {
  echo "install_consumer: FAILED at step: read prefix and libdir of $build" >&2
  exit 1
}
prefix="$stage$install_prefix"
case "$install_libdir" in
  /*) libpath="$stage$install_libdir" ;;
  *) libpath="$prefix/$install_libdir" ;;
esac
case "$install_includedir" in
  /*) includepath="$stage$install_includedir" ;;
  *) includepath="$prefix/$install_includedir" ;;
esac
step "install deltacrdt" "$meson" install -C "$build" --no-rebuild --quiet --destdir "$stage"
step "installed shared library" test -e "$libpath/libdeltacrdt.so.0"
step "installed static library" test -e "$libpath/libdeltacrdt.a"
step "internal headers stay private" test ! -e "$includepath/deltacrdt/cluster/node_impl.hpp"
# Every installed header stands on its own: it includes only installed headers. One
# preprocessor run per header, as many at once as there are cores.
check_header() {  # INCLUDE_DIR HEADER
  echo "#include \"${2#"$1/"}\"" | c++ -std=c++20 -I"$1" -x c++ -M -o /dev/null - || {
    echo "installed header $2 includes what is not installed" >&2
    return 1
  }
}
export -f check_header
headers_stand_alone() {
  find "$includepath/deltacrdt" -name '*.hpp' -print0 | sort -z |
    xargs -0 -n 1 -P "$(nproc)" bash -c 'check_header "$0" "$1"' "$includepath/deltacrdt"
}
step "installed headers stand alone" headers_stand_alone
export PKG_CONFIG_PATH="$libpath/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# deltacrdt.pc names the prefix it will live at; the sysroot maps it into the staging root.
export PKG_CONFIG_SYSROOT_DIR="$stage"
# The installed library is not on the loader's path.
export LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
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

# 2. The same installation, found by CMake (its package finds its prefix from where it is).
unset PKG_CONFIG_SYSROOT_DIR  # it would misplace the system's libxxhash.pc too
step "configure consumer (CMake)" cmake -S "$consumer" -B "$tmp/build-cmake" \
  -DCMAKE_PREFIX_PATH="$prefix"
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
