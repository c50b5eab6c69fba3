#!/bin/sh
# Build the fuzz targets with clang + libFuzzer + ASan/UBSan and run each for
# SECONDS.
#
#   tests/fuzz/run-libfuzzer.sh [SECONDS] [TARGET...]
#
# Targets: pattern json (the matcher), frame config (the daemon's decoders of
# untrusted input), putevents (an HTTP PutEvents body), jsondiff (the two JSON validators agree). New inputs go to a scratch corpus in $EVBUS_FUZZ_DIR
# (default /tmp/evbus-fuzz); with EVBUS_FUZZ_MERGE=1 the coverage-increasing
# ones are merged back into tests/fuzz/corpus/TARGET. Crashers are written to
# tests/fuzz/crashers/: fix the bug, then move the file into the corpus so
# that the replay test keeps it fixed.
# Needs: clang libclang-rt-14-dev, and the build dependencies of evbus
# (unicode-data among them).
set -eu
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-pattern json frame config putevents jsondiff}
src=$(cd "$(dirname "$0")/../.." && pwd)
work=${EVBUS_FUZZ_DIR:-/tmp/evbus-fuzz}
cc=${CC_FUZZ:-clang}
mkdir -p "$work/gen" "$src/tests/fuzz/crashers"
protoc-c --c_out="$work/gen" -I"$src/proto" "$src/proto/evbus.proto"
# The case folding table, as the CMake build makes it (Debian's unicode-data).
unicode_dir=${EVBUS_UNICODE_DIR:-/usr/share/unicode}
$cc -O1 -std=c11 -o "$work/gen/evbus-gen-casefold" "$src/core/match/gen_casefold.c"
"$work/gen/evbus-gen-casefold" "$unicode_dir/CaseFolding.txt" "$work/gen/casefold_table.h"

common="error.c util.c log.c json_check.c arena.c"
match="cidr.c fold.c json_scan.c match.c numeric.c numeric_index.c pattern_compile.c pattern_parse.c wildcard.c"
daemon="config_schema.c config.c validate.c frame.c wire.c"
files=""
for f in $common; do files="$files $src/core/common/$f"; done
for f in $match; do [ -f "$src/core/match/$f" ] && files="$files $src/core/match/$f"; done
daemon_files=""
for f in $daemon; do daemon_files="$daemon_files $src/core/daemon/$f"; done

for t in $targets; do
    # The matcher's targets need only the matcher; the daemon's decoders
    # need the daemon's files too.
    case $t in
    frame | config) extra="$daemon_files $work/gen/evbus.pb-c.c" ;;
    putevents) extra="$src/core/daemon/http_putevents.c $work/gen/evbus.pb-c.c" ;;
    *) extra="" ;;
    esac
    $cc -g -O1 -std=c11 -D_GNU_SOURCE -DEVBUS_VERSION='"fuzz"' \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -I"$src/include" -I"$src/core" -I"$src/core/match" -I"$src/core/daemon" -I"$work/gen" \
        $files $extra "$src/tests/fuzz/fuzz_$t.c" \
        -ljansson -lyaml -lprotobuf-c -lm -o "$work/fuzz_$t"
    mkdir -p "$work/corpus_$t"
    echo "== fuzz_$t for ${secs}s"
    "$work/fuzz_$t" -max_total_time="$secs" -max_len=8192 -print_final_stats=1 \
        -artifact_prefix="$src/tests/fuzz/crashers/$t-" \
        "$work/corpus_$t" "$src/tests/fuzz/corpus/$t"
    if [ "${EVBUS_FUZZ_MERGE:-0}" = 1 ]; then
        "$work/fuzz_$t" -merge=1 "$src/tests/fuzz/corpus/$t" "$work/corpus_$t"
    fi
done
