#!/usr/bin/env bash
# Install libgen into a prefix, then build and run a C and a C++ consumer
# against it through pkg-config: shared, and static (pkg-config --static);
# run the installed gen CLI and the Python binding against the prefix.
# Usage: tests/install/run.sh BUILD_DIR PREFIX
set -euo pipefail
BUILD="$1"
PREFIX="$2"
SRC=$(cd "$(dirname "$0")/../.." && pwd)

rm -rf "$PREFIX"
meson install -C "$BUILD" --quiet >/dev/null
PC=$(find "$PREFIX" -name libgen.pc | head -n1)
[ -n "$PC" ] || { echo "libgen.pc was not installed under $PREFIX"; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$PC")"
LIBDIR=$(pkg-config --variable=libdir libgen)
[ -e "$LIBDIR/libgen.so.0" ] || { echo "libgen.so.0 missing in $LIBDIR"; exit 1; }
[ -e "$LIBDIR/libgen.a" ] || { echo "libgen.a missing in $LIBDIR"; exit 1; }

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
pass=0
check() { # name, command...
  local name="$1"; shift
  if "$@" >"$OUT/$name.log" 2>&1; then
    pass=$((pass + 1)); echo "ok   $name"
  else
    echo "FAIL $name"; cat "$OUT/$name.log"; echo "0 passed, 1 failed"; exit 1
  fi
}

# shellcheck disable=SC2046
check consumer_c_shared cc -std=c11 -Wall -Werror -o "$OUT/consumer_c" "$SRC/examples/consumer.c" \
  $(pkg-config --cflags --libs libgen)
check run_consumer_c env LD_LIBRARY_PATH="$LIBDIR" "$OUT/consumer_c"
# shellcheck disable=SC2046
check consumer_cpp_shared c++ -std=c++17 -Wall -Werror -o "$OUT/consumer_cpp" "$SRC/examples/consumer.cpp" \
  $(pkg-config --cflags --libs libgen)
check run_consumer_cpp env LD_LIBRARY_PATH="$LIBDIR" "$OUT/consumer_cpp"
# Static: libgen.a plus the private requirements from libgen.pc.
# shellcheck disable=SC2046
check consumer_c_static c++ -o "$OUT/consumer_static" -x c "$SRC/examples/consumer.c" -x none \
  $(pkg-config --cflags libgen) "$LIBDIR/libgen.a" \
  $(pkg-config --static --libs libgen | sed 's/-lgen//')
check run_consumer_static "$OUT/consumer_static"
if ldd "$OUT/consumer_static" | grep -q libgen; then
  echo "FAIL static consumer still loads libgen.so"; exit 1
fi
# The installed CLI, and the Python binding finding the installed library
# through pkg-config (LIBGEN_LIBRARY unset), running the Python example.
check gen_installed env LD_LIBRARY_PATH="$LIBDIR" "$PREFIX/bin/gen" version
check python_binding_pkgconfig env -u LIBGEN_LIBRARY PYTHONPATH="$SRC/python" python3 -c \
  "import libgen, os; p = os.path.realpath(libgen.library_path); assert p.startswith(os.path.realpath('$LIBDIR')), p"
check python_example env -u LIBGEN_LIBRARY PYTHONPATH="$SRC/python" python3 \
  "$SRC/examples/python/enqueue_and_watch.py" --model "$SRC/tests/fixtures/tiny-sd15" \
  --db "$OUT/example.db" --no-start
echo "$pass passed, 0 failed"
