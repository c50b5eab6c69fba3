#!/usr/bin/env bash
# The Debian package, as a user gets it: builds it with CPack from an existing
# build tree, checks its systemd unit, installs it, validates the installed
# default configuration, starts the installed evbusd by hand as the evbus
# user, publishes one event with the installed `evbus pub`, stops evbusd and
# purges the package. Leaves the machine as it found it (a system user it
# created is deleted too). Needs root (dpkg); takes a few seconds.
#
#   bash scripts/test-package.sh [BUILD_DIR]      (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

say() { echo "test-package: $*"; }
fail() {
  say "FAILED: $*" >&2
  exit 1
}

if [ "$(id -u)" -ne 0 ]; then
  say "SKIPPED: installing a package needs root"
  exit 0
fi
if dpkg-query -W -f='${Status}' evbus 2>/dev/null | grep -q 'ok installed'; then
  say "SKIPPED: the evbus package is installed here already; not replacing it"
  exit 0
fi

work=$(mktemp -d /tmp/evbus-package.XXXXXX)
user_existed=false
getent passwd evbus >/dev/null && user_existed=true
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if dpkg-query -W evbus >/dev/null 2>&1; then
    dpkg --purge evbus >/dev/null 2>&1 || true
  fi
  if ! $user_existed && getent passwd evbus >/dev/null; then
    userdel evbus 2>/dev/null || true
  fi
  if ! $user_existed && getent group evbus >/dev/null; then
    groupdel evbus 2>/dev/null || true
  fi
  rm -rf "$work" /run/evbus
}
trap cleanup EXIT

# --- build
cpack --config "$build/CPackConfig.cmake" -B "$work" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; fail "cpack"; }
deb=$(ls "$work"/evbus_*.deb)
say "built $(basename "$deb")"

# --- install (apt-get -f pulls in whatever the Depends name that is missing)
if ! dpkg -i "$deb" >"$work/dpkg.log" 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -f install -y -qq \
    >>"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i"; }
fi
dpkg-query -W -f='${Status}' evbus | grep -q 'ok installed' || fail "evbus not installed"
getent passwd evbus >/dev/null || fail "postinst did not create the evbus user"
[ "$(stat -c '%U %a' /var/lib/evbus)" = "evbus 700" ] || fail "/var/lib/evbus: $(stat -c '%U %a' /var/lib/evbus)"
dpkg-query --showformat='${Conffiles}' -W evbus | grep -q '/etc/evbus/evbus.yaml' ||
  fail "/etc/evbus/evbus.yaml is not a conffile"

# --- the unit: what systemd itself says of it (works without a booted systemd)
unit=/lib/systemd/system/evbusd.service
if command -v systemd-analyze >/dev/null; then
  # Unknown keys are only warnings: any output at all fails the check.
  out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $out"
  [ -z "$out" ] || fail "systemd-analyze verify: $out"
  say "systemd-analyze verify: clean; $(systemd-analyze security --offline=true "$unit" 2>/dev/null |
    grep -o 'Overall exposure level.*' || echo 'no exposure figure')"
else
  say "SKIPPED systemd-analyze verify: systemd-analyze is not installed"
fi
for d in User=evbus ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes ProtectHome=yes \
  StateDirectory=evbus RuntimeDirectory=evbus ConfigurationDirectory=evbus Restart=on-failure; do
  grep -qx "$d" "$unit" || fail "$unit lacks $d"
done
# shellcheck disable=SC2016 # a literal $MAINPID
grep -q '^ExecReload=.*kill -HUP \$MAINPID' "$unit" || fail "$unit: no ExecReload sending SIGHUP"

# --- the installed default configuration, read as the service reads it
as_evbus=(setpriv --reuid=evbus --regid=evbus --init-groups --)
"${as_evbus[@]}" /usr/bin/evbusd --check-config --config /etc/evbus/evbus.yaml >/dev/null ||
  fail "installed evbusd --check-config rejects /etc/evbus/evbus.yaml"

# --- the installed evbusd, started by hand as systemd would (as evbus, with
# the runtime directory systemd would create). The shipped configuration
# listens on 127.0.0.1:5555; if another program holds that port here, a copy
# that differs only in the port is used.
install -d -o evbus -g evbus -m 0700 /run/evbus
config=/etc/evbus/evbus.yaml
endpoint=tcp://127.0.0.1:5555
if (exec 3<>/dev/tcp/127.0.0.1/5555) 2>/dev/null; then
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  endpoint=tcp://127.0.0.1:$port
  config=/run/evbus/test.yaml
  sed "s#tcp://127.0.0.1:5555#$endpoint#" /etc/evbus/evbus.yaml >"$config"
  chown evbus: "$config"
  say "port 5555 is taken here; using a copy of the configuration on $endpoint"
fi
"${as_evbus[@]}" /usr/bin/evbusd --config "$config" >"$work/evbusd.log" 2>&1 &
pid=$!
deadline=$((SECONDS + 10))
until grep -q 'ready:' "$work/evbusd.log"; do
  kill -0 "$pid" 2>/dev/null || { cat "$work/evbusd.log" >&2; fail "evbusd exited at start-up"; }
  [ "$SECONDS" -lt "$deadline" ] || { cat "$work/evbusd.log" >&2; fail "evbusd not ready in 10 s"; }
  sleep 0.05
done
[ "$(ps -o user= -p "$pid")" = evbus ] || fail "evbusd does not run as evbus"

ack=$(env -u LD_LIBRARY_PATH /usr/bin/evbus pub -e "$endpoint" -s com.example.package \
  -t Installed -d '{"check":1}') || fail "evbus pub: $ack"
case "$ack" in accepted*) ;; *) fail "evbus pub answered: $ack" ;; esac
status=$(/usr/bin/evbus status -c "$config") || fail "evbus status: $status"
grep -q '1 accepted' <<<"$status" || fail "evbus status does not count the event: $status"
[ -S /run/evbus/control.sock ] || fail "no control socket in /run/evbus"
[ -s /var/lib/evbus/data.mdb ] || fail "no store in /var/lib/evbus"
say "installed evbusd (as evbus) acked: $ack"

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || { cat "$work/evbusd.log" >&2; fail "evbusd exited with $rc after SIGTERM"; }

# --- purge: nothing of the package stays behind
dpkg --purge evbus >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg --purge"; }
for p in /usr/bin/evbusd /etc/evbus /var/lib/evbus "$unit" \
  /etc/systemd/system/multi-user.target.wants/evbusd.service; do
  [ ! -e "$p" ] || fail "$p remains after dpkg --purge"
done
say "ok: built, installed, checked, published, purged"
