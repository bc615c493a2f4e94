#!/usr/bin/env bash
# arcly installs like a GStreamer plugin and a C++ library.
#
# Installs the build into a staging root (DESTDIR), then, using only what was installed:
#  1. gst-inspect-1.0 finds arclysink and arclysrc in the installed plugin directory;
#  2. a C++ application compiled with `pkg-config --cflags --libs arcly-gst-1.0` registers
#     a named engine and runs arclysink + arclysrc in one pipeline against it;
#  3. the shared libraries carry their soname; the arcly program runs (`arcly check`);
#  4. arcly.service is a valid systemd unit (systemd-analyze verify) that runs
#     `arcly run /etc/arcly/arcly.conf` as an unprivileged (dynamic) user, with reload.
# usage: test_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
stage=$(mktemp -d /tmp/arcly-install.XXXXXX)
trap 'rm -rf "$stage"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

DESTDIR="$stage" meson install -C "$build" --no-rebuild --quiet >/dev/null
prefix=$(meson introspect "$build" --buildoptions | python3 -c \
  'import json,sys; o={x["name"]:x["value"] for x in json.load(sys.stdin)}; print(o["prefix"]); print(o["libdir"]); print(o["bindir"])')
read -r -d '' p libdir bindir <<<"$prefix" || true
root="$stage$p"
lib="$root/$libdir"
[ -f "$lib/gstreamer-1.0/libgstarcly.so" ] || fail "no plugin in $lib/gstreamer-1.0"
[ -x "$root/$bindir/arcly" ] || fail "no arcly program in $root/$bindir"
for h in arcly/engine.hpp arcly/stream_key.hpp arcly/gst/engine_registry.hpp; do
  [ -f "$root/include/arcly-1.0/$h" ] || fail "header $h not installed under include/arcly-1.0"
done
for l in libarcly-1.0.so libarcly-gst-1.0.so; do
  soname=$(objdump -p "$lib/$l" | awk '/SONAME/ {print $2}')
  [ "$soname" = "$l.0" ] || fail "$l has soname '$soname', expected $l.0"
done
echo "installed: plugin, program, headers, libraries with sonames"

export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export GST_PLUGIN_PATH_1_0="$lib/gstreamer-1.0"
export GST_PLUGIN_PATH="$lib/gstreamer-1.0"
export GST_REGISTRY_1_0="$stage/registry.bin"
found=$(gst-inspect-1.0 arclysrc | awk '/Filename/ {print $2}')
[ "$found" = "$lib/gstreamer-1.0/libgstarcly.so" ] || fail "gst-inspect-1.0 arclysrc found '$found'"
gst-inspect-1.0 arclysink >/dev/null || fail "gst-inspect-1.0 arclysink"
echo "gst-inspect-1.0 finds the installed plugin: $found"

# Only the installed .pc files, relocated to the staging root (as if installed there).
mkdir -p "$stage/pc"
for pc in "$lib"/pkgconfig/arcly*.pc; do
  sed "s|^prefix=.*|prefix=$root|" "$pc" >"$stage/pc/$(basename "$pc")"
done
export PKG_CONFIG_PATH="$stage/pc"
flags=$(pkg-config --cflags --libs arcly-gst-1.0) || fail "pkg-config arcly-gst-1.0"
pkg-config --exists arcly-1.0 || fail "pkg-config arcly-1.0"
g++ -o "$stage/app" "$src/tests/install/app.cpp" $flags || fail "the application does not build with: $flags"
"$stage/app" || fail "the application's pipeline did not run through its named engine"

printf '[app live]\ncache-window=4\n' >"$stage/ok.conf"
"$root/$bindir/arcly" check "$stage/ok.conf" >/dev/null || fail "the installed arcly does not run"

unit="$root/lib/systemd/system/arcly.service"
[ -f "$unit" ] || fail "arcly.service not installed under $p/lib/systemd/system"
grep -q "^ExecStart=$p/$bindir/arcly run /etc/arcly/arcly.conf$" "$unit" || fail "ExecStart in $unit"
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$unit" || fail "no reload in $unit"
grep -q '^DynamicUser=yes$' "$unit" || fail "the unit does not run as an unprivileged user"
if command -v systemd-analyze >/dev/null; then
  # Point the unit at the staged program so verify can check every command it names.
  sed "s|$p/$bindir/arcly|$root/$bindir/arcly|g" "$unit" >"$stage/arcly.service"
  out=$(systemd-analyze verify "$stage/arcly.service" 2>&1 | grep -v 'Unit sysinit.target not found' || true)
  [ -z "$out" ] || fail "systemd-analyze verify: $out"
  echo "arcly.service verified"
fi
echo "install: ok"
