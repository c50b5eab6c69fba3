#!/usr/bin/env bash
# The main job: installs what is needed, builds evbus, starts a local AWS
# emulator (moto_server) with an SQS queue, an EventBridge bus whose rule feeds
# a queue, and a DynamoDB table, starts evbusd with the configuration shipped
# in examples/evbus.yaml, publishes sample events, shows their acks, and reads
# what arrived back with the AWS CLI. Then keeps evbusd running until Ctrl-C.
#   --once   stop evbusd after the demo instead of keeping it running
# EVBUS_DEMO_AWS_PORT must match the endpoints in examples/evbus.yaml (5701).
set -euo pipefail
cd "$(dirname "$0")/.."
once=0
[ "${1:-}" = "--once" ] && once=1

bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target evbusd evbus-cli evbus_sink_jsonl evbus_sink_sqs \
  evbus_sink_eventbridge evbus_sink_dynamodb >/dev/null
bin=build/core
config=examples/evbus.yaml
endpoint=tcp://127.0.0.1:5555
aws_port=${EVBUS_DEMO_AWS_PORT:-5701}
aws_ep=http://127.0.0.1:$aws_port

# The emulator takes any credentials; evbusd's sinks and the AWS CLI find
# these in the environment, as they would real ones.
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
awscli() { aws --endpoint-url "$aws_ep" --output json "$@"; }

pid='' moto_pid='' tail_pid=''
stop_all() {
  [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null && wait "$moto_pid" 2>/dev/null
  return 0
}
trap stop_all EXIT
trap 'exit 130' INT TERM

if (exec 3<>"/dev/tcp/127.0.0.1/$aws_port") 2>/dev/null; then
  echo "demo: 127.0.0.1:$aws_port is in use; stop what listens there (the demo's AWS emulator"
  echo "      runs there, as examples/evbus.yaml's endpoints say)"
  exit 1
fi
echo "== starting the local AWS emulator (moto_server) on $aws_ep"
moto_log=$(mktemp /tmp/evbus-demo-moto.XXXXXX.log)
moto_server -H 127.0.0.1 -p "$aws_port" >"$moto_log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$aws_port") 2>/dev/null && break
  kill -0 "$moto_pid" 2>/dev/null || { cat "$moto_log"; echo "demo: moto_server did not start"; exit 1; }
  sleep 0.1
done
echo "== creating the queue 'orders', the bus 'demo-bus' with a rule into the queue"
echo "   'bus-archive', and the table 'payments' (AWS CLI)"
awscli sqs create-queue --queue-name orders >/dev/null
archive_url=$(awscli sqs create-queue --queue-name bus-archive --query QueueUrl --output text)
archive_arn=$(awscli sqs get-queue-attributes --queue-url "$archive_url" \
  --attribute-names QueueArn --query Attributes.QueueArn --output text)
awscli events create-event-bus --name demo-bus >/dev/null
awscli events put-rule --event-bus-name demo-bus --name everything \
  --event-pattern '{"source":[{"prefix":""}]}' >/dev/null
awscli events put-targets --event-bus-name demo-bus --rule everything \
  --targets "Id=archive,Arn=$archive_arn" >/dev/null
awscli dynamodb create-table --table-name payments --billing-mode PAY_PER_REQUEST \
  --attribute-definitions AttributeName=id,AttributeType=S \
  --key-schema AttributeName=id,KeyType=HASH >/dev/null

echo "== starting evbusd with $config, from an empty store (the emulator starts empty too)"
rm -rf examples/evbus-data
"$bin/evbusd" --check-config --config "$config"
log=$(mktemp /tmp/evbusd-demo.XXXXXX.log)
"$bin/evbusd" --config "$config" 2>"$log" &
pid=$!

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
echo "== waiting until every target has delivered what was routed to it"
for _ in $(seq 1 100); do
  pending=$("$bin/evbus" status --config "$config" --json |
    python3 -c 'import json,sys; print(sum(t["pending"] for t in json.load(sys.stdin)["targets"]))')
  [ "$pending" = 0 ] && break
  sleep 0.1
done
"$bin/evbus" status --config "$config"

echo
echo "== SQS queue 'orders' (target orders-queue): the order events' envelopes"
awscli sqs receive-message --queue-url "$aws_ep/123456789012/orders" --max-number-of-messages 10 \
  --query 'Messages[].Body' --output text | python3 -c '
import json, sys
for line in sys.stdin.read().split("\t"):
    if line.strip():
        e = json.loads(line)
        print(" ", e["id"], e["source"], e["detail-type"], json.dumps(e["detail"]))'
echo
echo "== EventBridge bus 'demo-bus' (target orders-bus), read through its rule from 'bus-archive'"
awscli sqs receive-message --queue-url "$archive_url" --max-number-of-messages 10 \
  --query 'Messages[].Body' --output text | python3 -c '
import json, sys
for line in sys.stdin.read().split("\t"):
    if line.strip():
        e = json.loads(line)
        print(" ", e["source"], e["detail-type"], json.dumps(e["detail"]))'
echo
echo "== DynamoDB table 'payments' (target payments-table)"
awscli dynamodb scan --table-name payments | python3 -c '
import json, sys
for item in json.load(sys.stdin)["Items"]:
    print(" ", json.dumps(item, sort_keys=True))'
echo
echo "== /tmp/evbus-demo-audit.jsonl (the example JSON Lines sink; last lines)"
tail -n 2 /tmp/evbus-demo-audit.jsonl

if [ "$once" = 1 ]; then
  kill -TERM "$pid"
  wait "$pid"
  pid=''
  tail -n 1 "$log"
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
wait "$pid"
