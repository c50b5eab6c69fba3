#!/bin/sh
# Build the fuzz targets with clang + libFuzzer + ASan/UBSan and run each for
# SECONDS.
#
#   tests/fuzz/run-libfuzzer.sh [SECONDS] [TARGET...]
#
# Targets: pattern json (the matcher), frame config (the daemon's decoders of
# untrusted input), putevents (an HTTP PutEvents body), publish (evbusd's own
# Publish decoder against protobuf-c's, seeded with frame's corpus), jsondiff (the two JSON
# validators agree). New inputs go to a scratch corpus in $EVBUS_FUZZ_DIR
# (default /tmp/evbus-fuzz); with EVBUS_FUZZ_MERGE=1 the coverage-increasing
# ones are merged back into tests/fuzz/corpus/TARGET. Crashers are written to
# tests/fuzz/crashers/: fix the bug, then move the file into the corpus so
# that the replay test keeps it fixed.
# Needs: clang libclang-rt-14-dev, and the build dependencies of evbus
# (unicode-data among them). The clang build goes to $EVBUS_FUZZ_DIR/build
# (-DEVBUS_LIBFUZZER=ON, see tests/fuzz/CMakeLists.txt).
set -eu
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-pattern json frame config putevents publish jsondiff}
src=$(cd "$(dirname "$0")/../.." && pwd)
work=${EVBUS_FUZZ_DIR:-/tmp/evbus-fuzz}
cc=${CC_FUZZ:-clang}
mkdir -p "$work" "$src/tests/fuzz/crashers"
# A clang build of the whole tree with every library instrumented for
# libFuzzer (EVBUS_LIBFUZZER): the targets link the libraries evbusd is
# made of, so that no list of source files here can go stale. Warnings
# stay warnings: the gcc build is the one that holds them to -Werror.
build=$work/build
cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DEVBUS_LIBFUZZER=ON -DEVBUS_BENCH=OFF -DEVBUS_WERROR=OFF \
    ${EVBUS_UNICODE_DIR:+-DEVBUS_UNICODE_DIR="$EVBUS_UNICODE_DIR"} >"$work/cmake.log"
names=""
for t in $targets; do names="$names fuzz_$t"; done
# shellcheck disable=SC2086 # one word per target
cmake --build "$build" -j"${EVBUS_FUZZ_JOBS:-2}" --target $names

for t in $targets; do
    mkdir -p "$work/corpus_$t"
    # Both Publish decoders read producers' frames: publish shares frame's corpus.
    seeds=$src/tests/fuzz/corpus/$t
    [ "$t" = publish ] && seeds=$src/tests/fuzz/corpus/frame
    echo "== fuzz_$t for ${secs}s"
    "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -max_len=8192 -print_final_stats=1 \
        -artifact_prefix="$src/tests/fuzz/crashers/$t-" \
        "$work/corpus_$t" "$seeds"
    if [ "${EVBUS_FUZZ_MERGE:-0}" = 1 ]; then
        "$build/tests/fuzz/fuzz_$t" -merge=1 "$seeds" "$work/corpus_$t"
    fi
done
