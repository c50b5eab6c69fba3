#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of evbus from Debian's
# archive. Idempotent: packages already present are not fetched again, and the
# package index is refreshed only when something is missing.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config clang-format
  libzmq3-dev libprotobuf-c-dev protobuf-c-compiler
  liblmdb-dev lmdb-utils libcurl4-openssl-dev
  libcriterion-dev libjansson-dev libyaml-dev libcyaml-dev libmicrohttpd-dev
  # SigV4 verification of the HTTP ingest (HMAC-SHA256).
  libssl-dev
  python3-zmq python3-protobuf protobuf-compiler
  redis-server
  # Unicode's CaseFolding.txt and UnicodeData.txt: equals-ignore-case's
  # folding table is generated from them at build time.
  unicode-data
  # bench/failover/plot.gp draws the failover timeline (PNG and SVG).
  gnuplot-nox
  # The Debian package: CPack's DEB generator (dpkg-shlibdeps, file), its
  # postinst (adduser), and systemd-analyze for checking the unit.
  dpkg-dev file adduser systemd
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq
  "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install-deps: all Debian packages present"
fi

# The AWS sink tests run against moto_server and read back with boto3, both
# in the default python3 (PyPI, not Debian's archive).
if ! python3 -c 'import moto.server, boto3' 2>/dev/null; then
  echo "install-deps: installing moto[server] and boto3 for python3"
  python3 -m pip install -q 'moto[server]' boto3
else
  echo "install-deps: moto and boto3 present"
fi

# The second implementations the DynamoDB and SQS tests also run against
# (dynalite, local-aws-sqs), pinned in package-lock.json at the root. npm ci
# only when node_modules was not installed from this very lockfile.
root=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-deps: installing nodejs and npm"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq
  "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "install-deps: warning: node $(node --version) is older than dynalite's 20" >&2
fi
lock_sum=$(sha256sum "$root/package-lock.json" | cut -d' ' -f1)
stamp="$root/node_modules/.evbus-lockfile.sha256"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ]; then
  echo "install-deps: node_modules matches package-lock.json"
else
  echo "install-deps: npm ci (dynalite, local-aws-sqs)"
  (cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" >"$stamp"
fi
