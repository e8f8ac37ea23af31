#!/bin/sh
# Build the libFuzzer targets with clang (instrumenting the parsers they
# exercise) when the main build uses gcc. Usage: tests/fuzz/build-clang.sh BUILD_DIR
#   then: BUILD_DIR/fuzz/fuzz_safetensors -max_total_time=60 tests/fuzz/corpus/safetensors
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: $0 BUILD_DIR (a meson build dir: it holds the generated gen/version.h)}
out="$build/fuzz"
mkdir -p "$out"
flags="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -I$src/include -I$src/lib -I$build/include -I$build"
lib="$src/lib/core/alloc.c $src/lib/core/error.c $src/lib/core/utf8.c
     $src/lib/model/dtype.c $src/lib/model/safetensors.c $src/lib/model/json_get.c
     $src/lib/model/config.c $src/lib/model/scheduler_config.c"
for t in safetensors config; do
    clang $flags -o "$out/fuzz_$t" "$src/tests/fuzz/fuzz_$t.c" $lib -ljansson -lm
    echo "built $out/fuzz_$t"
done
