#!/usr/bin/env bash
# Builds the quamina benchmark (../shared/peers/qbench, quamina's source in
# ../shared/peers/quamina) as BUILD/bench/match/qbench, where
# evbus-bench-match finds it and runs it side by side. Installs Go 1.23 from
# Debian's backports first (the peers' install-go.sh). Offline: the module
# needs nothing but quamina's source.
#   bash bench/match/build-quamina.sh [BUILD_DIR]   (default: build)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
peers=${EVBUS_PEERS:-$root/../shared/peers}
if [ ! -d "$peers/qbench" ]; then
  echo "build-quamina: no quamina benchmark at $peers/qbench (set EVBUS_PEERS)" >&2
  exit 1
fi
bash "$peers/install-go.sh" >/dev/null
out="$build/bench/match"
mkdir -p "$out" "$build/go-cache"
(cd "$peers/qbench" && GOFLAGS=-mod=mod GOPROXY=off GOCACHE="$build/go-cache" \
  /usr/lib/go-1.23/bin/go build -o "$out/qbench" .)
echo "build-quamina: $out/qbench"
