#!/usr/bin/env bash
# The main job: installs what is needed, builds evbus, starts evbusd with the
# configuration shipped in examples/evbus.yaml, publishes sample events and
# shows their acks, then keeps evbusd running until Ctrl-C.
#   --once   stop evbusd after the demo instead of keeping it running
set -euo pipefail
cd "$(dirname "$0")/.."
once=0
[ "${1:-}" = "--once" ] && once=1

bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target evbusd evbus-cli evbus_sink_jsonl >/dev/null
bin=build/core
config=examples/evbus.yaml
endpoint=tcp://127.0.0.1:5555

"$bin/evbusd" --check-config --config "$config"
log=$(mktemp /tmp/evbusd-demo.XXXXXX.log)
"$bin/evbusd" --config "$config" 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

for _ in $(seq 1 100); do
  grep -q '\[evbusd\] ready:' "$log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "demo: evbusd did not start"; exit 1; }
  sleep 0.1
done
cat "$log"

echo
echo "== publishing examples/sample-events.jsonl (one ack per event; the repeated id"
echo "   comes back as a duplicate, the malformed detail is rejected)"
"$bin/evbus" pub -e "$endpoint" -f examples/sample-events.jsonl || true
echo
echo "== publishing one event from flags"
"$bin/evbus" pub -e "$endpoint" -s com.example.demo -t Hello -d '{"greeting":"hi"}'
echo
echo "== checking a rule pattern against an event (evbus test-pattern)"
"$bin/evbus" test-pattern '{"source":["com.example.payments"],"detail":{"amount":[{"numeric":[">=",40]}]}}' \
  '{"source":"com.example.payments","detail-type":"PaymentCaptured","detail":{"amount":12}}' || true

echo
echo "== evbus status (the audit-log target delivers through the example JSON Lines sink)"
for _ in $(seq 1 50); do
  [ -s /tmp/evbus-demo-audit.jsonl ] && break
  sleep 0.1
done
"$bin/evbus" status --config "$config"
echo
echo "== /tmp/evbus-demo-audit.jsonl (last lines)"
tail -n 2 /tmp/evbus-demo-audit.jsonl

if [ "$once" = 1 ]; then
  kill -TERM "$pid"
  wait "$pid"
  trap - EXIT
  cat "$log" | tail -n 1
  echo "demo: done"
  exit 0
fi
echo
echo "evbusd is running on $endpoint (pid $pid, log $log). Publish more with:"
echo "  $bin/evbus pub -e $endpoint -s my.app -t MyEvent -d '{\"k\":1}'"
echo "Ctrl-C stops it."
# A background job of a script ignores SIGINT, so Ctrl-C would leave this
# tail running: the exit trap stops it with evbusd (and --pid ends it should
# evbusd exit on its own).
tail -n 0 --pid="$pid" -f "$log" &
tail_pid=$!
trap 'kill "$tail_pid" "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
wait "$pid"
