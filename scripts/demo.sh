#!/usr/bin/env bash
# The main job: two local regions and a failover.
#
# Installs what is needed, builds evbus, and starts two simulated AWS regions
# on loopback: us-east-1 and us-west-2, each an AWS emulator (moto_server)
# with an SQS queue, an EventBridge bus whose rule feeds a queue, a DynamoDB
# table, and a health endpoint. Then evbusd starts with examples/evbus.yaml,
# sample events are published, and a producer publishes steadily while the
# demo takes us-east-1's health endpoint down (traffic moves to us-west-2) and
# brings it back (traffic moves back). The AWS CLI reads back where every
# event landed, and the demo checks that none was lost or dead-lettered (and
# counts any delivered twice, which at-least-once delivery allows).
#   --once   stop everything after the demo instead of keeping evbusd running
# The ports are those of examples/evbus.yaml: ingest 5555, the emulators 5701
# and 5702, the health endpoints 5711 and 5712.
set -euo pipefail
cd "$(dirname "$0")/.."
once=0
[ "${1:-}" = "--once" ] && once=1

bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target evbusd evbus-cli evbus_sink_jsonl evbus_sink_sqs \
  evbus_sink_eventbridge evbus_sink_dynamodb evbus_selector_region-health >/dev/null
bin=build/core
config=examples/evbus.yaml
endpoint=tcp://127.0.0.1:5555
regions=(us-east-1 us-west-2)
declare -A aws_port=([us-east-1]=5701 [us-west-2]=5702)
declare -A health_port=([us-east-1]=5711 [us-west-2]=5712)

# The emulators take any credentials; evbusd's sinks and the AWS CLI find
# these in the environment, as they would real ones.
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
awscli() { # REGION ARGS...
  local r=$1
  shift
  aws --endpoint-url "http://127.0.0.1:${aws_port[$r]}" --region "$r" --output json "$@"
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

work=$(mktemp -d /tmp/evbus-demo.XXXXXX)
pids=()
pid='' producer_pid='' tail_pid=''
declare -A health_pid=()
stop_all() {
  for p in "$producer_pid" "$tail_pid" "$pid" "${health_pid[@]}" "${pids[@]}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null
  done
  wait 2>/dev/null
  [ -n "${EVBUS_DEMO_KEEP:-}" ] || rm -rf "$work"
  return 0
}
trap stop_all EXIT
trap 'exit 130' INT TERM

for port in 5555 "${aws_port[@]}" "${health_port[@]}"; do
  if listening "$port"; then
    echo "demo: 127.0.0.1:$port is in use; stop what listens there (examples/evbus.yaml's"
    echo "      regions, endpoints and ingest use ports 5555, 5701, 5702, 5711 and 5712)"
    exit 1
  fi
done

# A region's health endpoint: GET /ok answers "OK" while it runs.
start_health() { # REGION
  mkdir -p "$work/health-$1"
  echo OK >"$work/health-$1/ok"
  python3 -m http.server "${health_port[$1]}" --bind 127.0.0.1 \
    --directory "$work/health-$1" >/dev/null 2>&1 &
  health_pid[$1]=$!
  for _ in $(seq 1 100); do listening "${health_port[$1]}" && return 0; sleep 0.1; done
  echo "demo: the health endpoint of $1 did not start"
  exit 1
}

echo "== starting two regions on loopback: an AWS emulator (moto_server) and a health endpoint each"
for r in "${regions[@]}"; do
  moto_server -H 127.0.0.1 -p "${aws_port[$r]}" >"$work/moto-$r.log" 2>&1 &
  pids+=($!)
  start_health "$r"
done
for r in "${regions[@]}"; do
  for _ in $(seq 1 150); do listening "${aws_port[$r]}" && break; sleep 0.1; done
  listening "${aws_port[$r]}" || { cat "$work/moto-$r.log"; echo "demo: moto_server did not start"; exit 1; }
  echo "   $r: AWS at http://127.0.0.1:${aws_port[$r]}, health at http://127.0.0.1:${health_port[$r]}/ok"
done
echo "== creating in each region the queue 'orders', the bus 'demo-bus' with a rule into the"
echo "   queue 'bus-archive', and the table 'payments' (AWS CLI)"
declare -A archive_url=()
for r in "${regions[@]}"; do
  awscli "$r" sqs create-queue --queue-name orders >/dev/null
  archive_url[$r]=$(awscli "$r" sqs create-queue --queue-name bus-archive --query QueueUrl --output text)
  arn=$(awscli "$r" sqs get-queue-attributes --queue-url "${archive_url[$r]}" \
    --attribute-names QueueArn --query Attributes.QueueArn --output text)
  awscli "$r" events create-event-bus --name demo-bus >/dev/null
  awscli "$r" events put-rule --event-bus-name demo-bus --name everything \
    --event-pattern '{"source":[{"prefix":""}]}' >/dev/null
  # The input transformer passes the whole event on, as a target without one
  # does, but saves moto most of its time: moto 5.2.1 applies its default
  # transformer to every event for every target, building a JSONPath parser
  # for each of its 8 paths (about 35 ms apiece here), which caps a bus with a
  # rule at a few events/s and makes a 10-entry PutEvents take over 8 s on a
  # busy machine. One path costs one parser. (Real EventBridge has no such cost.)
  target='[{"Id": "archive", "Arn": "'"$arn"'", "InputTransformer": {
    "InputPathsMap": {"id": "$.id"}, "InputTemplate": "<aws.events.event.json>"}}]'
  awscli "$r" events put-targets --event-bus-name demo-bus --rule everything \
    --targets "$target" >/dev/null
  awscli "$r" dynamodb create-table --table-name payments --billing-mode PAY_PER_REQUEST \
    --attribute-definitions AttributeName=id,AttributeType=S \
    --key-schema AttributeName=id,KeyType=HASH >/dev/null
done

echo "== starting evbusd with $config, from an empty store"
rm -rf examples/evbus-data
"$bin/evbusd" --check-config --config "$config"
log="$work/evbusd.log"
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
echo "== checking a rule pattern against an event (evbus test-pattern)"
"$bin/evbus" test-pattern '{"source":["com.example.payments"],"detail":{"amount":[{"numeric":[">=",40]}]}}' \
  '{"source":"com.example.payments","detail-type":"PaymentCaptured","detail":{"amount":12}}' || true

# Where orders-queue delivers now, as evbus status says.
delivering_to() {
  "$bin/evbus" status --config "$config" --json | python3 -c '
import json, sys
for t in json.load(sys.stdin)["targets"]:
    if t["name"] == "orders-queue":
        print(t.get("region", "?"))'
}
# Waits (up to $2 s) until orders-queue delivers to region $1; prints how long it took.
wait_route() {
  local want=$1 limit=$2 t0 now
  t0=$(date +%s%N)
  while :; do
    [ "$(delivering_to)" = "$want" ] && break
    now=$(date +%s%N)
    if [ $(((now - t0) / 1000000000)) -ge "$limit" ]; then
      "$bin/evbus" region status --config "$config" || true
      echo "demo: orders-queue did not move to $want within $limit s"
      exit 1
    fi
    sleep 0.05
  done
  now=$(date +%s%N)
  echo "   orders-queue delivers to $want now, $(((now - t0) / 1000000)) ms later"
}

echo
echo "== a producer publishes an order every 100 ms (evbus pub reading JSON Lines from a pipe)"
(
  i=0
  while :; do
    i=$((i + 1))
    printf '{"id":"steady-%d","source":"com.example.orders","detail-type":"OrderPlaced","detail":{"orderId":"s%d","n":%d}}\n' \
      "$i" "$i" "$i"
    sleep 0.1
  done
) | "$bin/evbus" pub -e "$endpoint" -f - --batch 1 --quiet >"$work/producer.out" \
  2>"$work/producer.log" &
producer_pid=$!
sleep 3
echo "   orders-queue delivers to $(delivering_to)"

echo
echo "== us-east-1 goes down: its health endpoint stops answering"
kill "${health_pid[us-east-1]}"
wait "${health_pid[us-east-1]}" 2>/dev/null || true
health_pid[us-east-1]=''
wait_route us-west-2 20
sleep 3

echo
echo "== us-east-1 comes back: its health endpoint answers again (failback after 2 good"
echo "   checks and the target's failback_hold of 3 s)"
start_health us-east-1
wait_route us-east-1 30
sleep 2

echo
echo "== the producer stops; waiting until every target has delivered what was routed to it"
kill "$producer_pid" 2>/dev/null
wait "$producer_pid" 2>/dev/null || true
producer_pid=''
for _ in $(seq 1 600); do
  pending=$("$bin/evbus" status --config "$config" --json |
    python3 -c 'import json,sys; print(sum(t["pending"] for t in json.load(sys.stdin)["targets"]))')
  [ "$pending" = 0 ] && break
  sleep 0.1
done
"$bin/evbus" status --config "$config"
if "$bin/evbus" dlq list --config "$config" | grep -q .; then
  echo
  "$bin/evbus" dlq list --config "$config" | head -n 5
fi

echo
echo "== where the orders landed: the queue 'orders' in each region (AWS CLI)"
for r in "${regions[@]}"; do
  k=0
  while :; do
    out=$(awscli "$r" sqs receive-message --queue-url "http://127.0.0.1:${aws_port[$r]}/123456789012/orders" \
      --max-number-of-messages 10 --visibility-timeout 600 --query 'Messages[].Body')
    [ "$out" = "null" ] && break
    k=$((k + 1))
    echo "$out" >"$work/orders-$r.$k.json"
  done
done
archive_counts=""
for r in "${regions[@]}"; do
  n=$(awscli "$r" sqs get-queue-attributes --queue-url "${archive_url[$r]}" \
    --attribute-names ApproximateNumberOfMessages --query Attributes.ApproximateNumberOfMessages --output text)
  archive_counts="$archive_counts $r=$n"
done
dead=$("$bin/evbus" status --config "$config" --json |
  python3 -c 'import json,sys; print(sum(t["dead_lettered"] for t in json.load(sys.stdin)["targets"]))')
# --quiet prints only the events that were not stored (progress goes to stderr).
not_stored=$(grep -c . "$work/producer.out" || true)
python3 - "$work" "$archive_counts" "$not_stored" "$dead" <<'PY'
import glob, json, sys
work, archive, not_stored, dead = sys.argv[1], sys.argv[2].split(), int(sys.argv[3]), int(sys.argv[4])
seen = {}
for region in ("us-east-1", "us-west-2"):
    ns = []
    for path in glob.glob(f"{work}/orders-{region}.*.json"):
        for body in json.load(open(path)):
            e = json.loads(body)
            if e["id"].startswith("steady-"):
                ns.append(e["detail"]["n"])
    ns.sort()
    runs, start = [], None
    for i, n in enumerate(ns):
        if start is None:
            start = n
        if i + 1 == len(ns) or ns[i + 1] != n + 1:
            runs.append(f"{start}" if start == n else f"{start}-{n}")
            start = None
    print(f"   {region}: {len(ns)} orders, n = {', '.join(runs) or '-'}")
    for n in ns:
        seen[n] = seen.get(n, 0) + 1
print(f"   EventBridge bus 'demo-bus', through its rule into 'bus-archive': {', '.join(archive)}")
last = max(seen) if seen else 0
missing = [n for n in range(1, last + 1) if n not in seen]
twice = [n for n, c in seen.items() if c > 1]
print(f"   {last} steady orders published; {len(missing)} missing, {len(twice)} delivered twice,"
      f" {not_stored} not acked as stored, {dead} dead-lettered")
sys.exit(1 if missing or not_stored or dead else 0)
PY
echo
echo "== DynamoDB table 'payments' in us-east-1 (the sample payment, target payments-table)"
awscli us-east-1 dynamodb scan --table-name payments | python3 -c '
import json, sys
for item in json.load(sys.stdin)["Items"]:
    print(" ", json.dumps(item, sort_keys=True))'

if [ "$once" = 1 ]; then
  kill -TERM "$pid"
  wait "$pid"
  pid=''
  tail -n 1 "$log"
  echo "demo: done"
  exit 0
fi
echo
echo "evbusd is running on $endpoint (pid $pid). Try:"
echo "  $bin/evbus pub -e $endpoint -s com.example.orders -t OrderPlaced -d '{\"k\":1}'"
echo "  $bin/evbus region off us-east-1 --config $config     # a routing control: traffic moves now"
echo "  $bin/evbus region status --config $config"
echo "Ctrl-C stops it and the two regions."
# A background job of a script ignores SIGINT, so Ctrl-C would leave this
# tail running: the exit trap stops it with evbusd (and --pid ends it should
# evbusd exit on its own).
tail -n 0 --pid="$pid" -f "$log" &
tail_pid=$!
wait "$pid"
