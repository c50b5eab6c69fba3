#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, then builds and
# tests twice — a warnings-as-errors build, and an ASan+UBSan build of the same
# suite — and checks the formatting.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)

echo "== format"
bash scripts/check-format.sh

echo "== build (RelWithDebInfo, -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEVBUS_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
echo "== tests"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== install; build the example producer and sink plugin out of tree against it"
prefix=$(mktemp -d /tmp/evbus-install.XXXXXX)
cmake --install build --prefix "$prefix" >/dev/null
# The installed binaries start from the prefix by themselves (relative RPATH).
env -u LD_LIBRARY_PATH "$prefix/bin/evbus" --help >/dev/null
env -u LD_LIBRARY_PATH "$prefix/bin/evbusd" --version >/dev/null
PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/$(gcc -print-multiarch)/pkgconfig" \
  sh -c 'cc -std=c11 -Wall -Wextra -Werror examples/producer.c $(pkg-config --cflags --libs evbus) \
         -o "$1/producer"' sh "$prefix"
test -x "$prefix/producer"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" cmake -S examples/sink-jsonl -B "$prefix/sink-build" >/dev/null
cmake --build "$prefix/sink-build" >/dev/null
# evbusd loads it and checks its settings.
cat > "$prefix/evbus.yaml" <<YAML
targets:
  - name: audit-file
    plugin: $prefix/sink-build/evbus_sink_jsonl.so
    config:
      path: $prefix/audit.jsonl
YAML
"$prefix/bin/evbusd" --check-config --config "$prefix/evbus.yaml"
# The AWS plugins land in lib/evbus/plugins, where the installed tools find
# them by short name.
for p in sqs eventbridge dynamodb; do
  test -f "$prefix/lib/evbus/plugins/evbus_sink_$p.so"
  "$prefix/bin/evbus" plugin info "$p" | grep -q "^name: *$p\$"
done
rm -rf "$prefix"

echo "== Debian package: build, install, check-config, publish as the evbus user, purge"
bash scripts/test-package.sh build

echo "== build (ASan+UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DEVBUS_SANITIZE=ON -DEVBUS_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs"
echo "== tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"

echo "== the README's first command: scripts/demo.sh --once (two regions and a failover)"
demo_out=$(bash scripts/demo.sh --once 2>&1) || { echo "$demo_out"; echo "demo failed"; exit 1; }
# What a user reads in it: traffic moved to the secondary and back, the
# AWS CLI found every order in one region or the other, none lost or
# dead-lettered, and the sample payment in DynamoDB.
for want in "orders-queue delivers to us-west-2 now" "orders-queue delivers to us-east-1 now" \
            " 0 missing, " " 0 not acked as stored, 0 dead-lettered" \
            '"id": {"S": "demo-payment-77"}' "demo: done"; do
  grep -qF -- "$want" <<<"$demo_out" || { echo "$demo_out"; echo "demo output lacks: $want"; exit 1; }
done
grep -E "^   (us-east-1|us-west-2): [0-9]+ orders" <<<"$demo_out"
echo "demo: failover and failback, every order read back from one region's SQS queue"
