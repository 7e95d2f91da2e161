#!/usr/bin/env bash
# Checks that deltacrdt is usable from another Meson project, in both supported ways:
#   1. installed: `meson install` into a temporary prefix, then a fresh consumer project
#      finds it with dependency('deltacrdt') through pkg-config (fallback disabled);
#   2. subproject: a copy of this tree in <consumer>/subprojects/deltacrdt, found through
#      meson.override_dependency (--wrap-mode=forcefallback, no .wrap file).
# The consumer is tests/consumer/. Usage: install_consumer.sh SOURCE_ROOT CONSUMER_DIR [MESON]
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

# 1. Installed copy, found through pkg-config.
step "configure deltacrdt" "$meson" setup "$tmp/build-self" "$src" --prefix="$tmp/prefix" \
  -Dtests=false -Dbenchmarks=false -Dexamples=false
step "install deltacrdt" "$meson" install -C "$tmp/build-self" --quiet
export PKG_CONFIG_PATH="$tmp/prefix/lib/x86_64-linux-gnu/pkgconfig:$tmp/prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
step "configure consumer (pkg-config)" "$meson" setup "$tmp/build-installed" "$consumer" \
  --wrap-mode=nofallback
step "build consumer (pkg-config)" "$meson" compile -C "$tmp/build-installed"
step "run consumer (pkg-config)" "$tmp/build-installed/consumer"
unset PKG_CONFIG_PATH

# 2. Source copy as a subproject (no .wrap), resolved through override_dependency.
step "create consumer tree" mkdir -p "$tmp/sub/subprojects/deltacrdt"
step "copy consumer sources" cp -R "$consumer/." "$tmp/sub/"
step "copy deltacrdt into subprojects/" tar -C "$src" --exclude=./.git --exclude='./build*' \
  -cf "$tmp/src.tar" .
step "unpack deltacrdt into subprojects/" tar -C "$tmp/sub/subprojects/deltacrdt" -xf "$tmp/src.tar"
step "configure consumer (subproject)" "$meson" setup "$tmp/build-sub" "$tmp/sub" \
  --wrap-mode=forcefallback
step "build consumer (subproject)" "$meson" compile -C "$tmp/build-sub"
step "run consumer (subproject)" "$tmp/build-sub/consumer"

echo "install_consumer: OK (pkg-config and subproject)"
