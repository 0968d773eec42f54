#!/usr/bin/env bash
# The systemd cgroup driver on a host without a D-Bus daemon, run INSIDE the
# guest (on the host: bash tests/vm/run.sh bash tests/systemd-nodbus.sh).
#
# Stops and masks dbus, then for hull and Debian's runc: `--systemd-cgroup
# run -d` of a container with memory and pids limits (as root both must fall
# back to systemd's private socket, /run/systemd/private), the scope is
# active with the limits as unit properties and in its cgroup files, `update`
# changes the unit, then kill + delete and the scope is gone. Prints
# `PASS/FAIL <runtime>/<check>` lines and a count per runtime; exits 1 if any
# hull check failed (2 if dbus could not be taken away).
set -u
if [ -z "${HULL_VM_GUEST:-}" ]; then
    echo "runs in the guest: bash tests/vm/run.sh bash tests/systemd-nodbus.sh" >&2
    exit 2
fi
HULL=${HULL:-/share/bin/hull}
RUNC=${RUNC:-/usr/sbin/runc}
ROOTFS=${ROOTFS:-/share/bundle/rootfs}
CG=/sys/fs/cgroup
BUS=/run/dbus/system_bus_socket
T=$(mktemp -d /tmp/nodbus.XXXXXX)
TO=90 # seconds any one runtime command may take (TCG on a loaded host is slow)

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
oneline() { tr '\n' ' ' < "$1" | sed 's/  */ /g; s/ $//' | cut -c1-400; }

# --- no D-Bus daemon: what a minimal systemd host looks like
systemctl stop dbus.socket dbus.service
systemctl mask dbus.socket dbus.service > /dev/null 2>&1
# A socket unit leaves its file behind on stop (RemoveOnStop=no).
[ -e "$BUS" ] && echo "note: $BUS left behind by dbus.socket, removing it" && rm -f "$BUS"
setup_ok=1
if [ -e "$BUS" ] || pgrep -x dbus-daemon > /dev/null; then
    fail setup/no-dbus "$BUS exists or dbus-daemon runs: $(ls -l "$BUS" 2>&1; pgrep -a dbus-daemon)"
    setup_ok=0
else
    pass setup/no-dbus
fi
if [ -S /run/systemd/private ]; then pass setup/systemd-private; else
    fail setup/systemd-private "no /run/systemd/private"
    setup_ok=0
fi
[ "$setup_ok" = 1 ] || exit 2

# bundle DIR ID: a busybox container sleeping in scope hulltest-ID, with a
# 64 MiB memory limit and a pids limit of 100.
bundle() {
    mkdir -p "$1"
    "$RUNC" spec --bundle "$1"
    jq --arg rootfs "$ROOTFS" --arg cg "system.slice:hulltest:$2" '
        .root = {path: $rootfs, readonly: true}
        | .process.terminal = false
        | .process.args = ["sleep", "1000"]
        | .linux.cgroupsPath = $cg
        | .linux.resources.memory = {limit: 67108864}
        | .linux.resources.pids = {limit: 100}' \
        "$1/config.json" > "$1/config.json.new" && mv "$1/config.json.new" "$1/config.json"
}

# scope_gone UNIT DIR: stopped, unloaded and its cgroup removed (systemd
# collects a stopped transient unit asynchronously: wait a little).
scope_gone() {
    local i
    for i in $(seq 1 25); do
        if [ "$(systemctl show "$1" -p LoadState --value 2>/dev/null)" = not-found ] &&
            ! systemctl is-active -q "$1" && [ ! -e "$2" ]; then
            return 0
        fi
        sleep 0.2
    done
    WHY="LoadState=$(systemctl show "$1" -p LoadState --value 2>&1)"
    WHY="$WHY, is-active=$(systemctl is-active "$1" 2>&1), $2 $([ -e "$2" ] && echo exists || echo gone)"
    return 1
}

# test_runtime NAME BINARY: the checks for one runtime; the number of
# failures is in FAILS afterwards.
test_runtime() {
    local name=$1 bin=$2 id unit dir state pid got WHY=
    FAILS=0
    id="$name-$$"
    unit="hulltest-$id.scope"
    dir="$CG/system.slice/$unit"
    state="$T/state-$name"
    bundle "$T/b-$name" "$id"
    rt() { timeout -k 5 "$TO" "$bin" --root "$state" --systemd-cgroup "$@" > "$T/out" 2>&1 < /dev/null; }
    ok() { pass "$name/$1"; }
    ko() { fail "$name/$1" "$2"; FAILS=$((FAILS + 1)); }

    echo "=== $name ($bin)"
    local rc=0
    rt run -d --bundle "$T/b-$name" "$id" || rc=$?
    if [ "$rc" != 0 ]; then
        ko run-detached "exit $rc: $(oneline "$T/out")"
        rt delete -f "$id"
        return
    fi
    ok run-detached
    if [ "$(systemctl is-active "$unit" 2>&1)" = active ]; then ok scope-active; else
        ko scope-active "systemctl is-active $unit: $(systemctl is-active "$unit" 2>&1)"
    fi
    got=$(systemctl show "$unit" -p MemoryMax -p TasksMax 2>&1 | sort | tr '\n' ' ')
    if [ "$got" = "MemoryMax=67108864 TasksMax=100 " ]; then ok unit-properties; else
        ko unit-properties "systemctl show: $got"
    fi
    got="$(cat "$dir/memory.max" 2>&1) $(cat "$dir/pids.max" 2>&1)"
    if [ "$got" = "67108864 100" ]; then ok cgroup-files; else
        ko cgroup-files "memory.max pids.max: $got"
    fi
    pid=$(rt state "$id" && jq -r .pid "$T/out")
    got=$(cat "/proc/$pid/cgroup" 2>&1)
    if [ "$got" = "0::/system.slice/$unit" ]; then ok init-in-scope; else
        ko init-in-scope "/proc/${pid:-?}/cgroup: $got"
    fi
    if rt update --pids-limit 200 "$id" &&
        [ "$(systemctl show "$unit" -p TasksMax --value 2>&1)" = 200 ]; then
        ok update-unit-properties
    else
        ko update-unit-properties "$(oneline "$T/out"); TasksMax=$(systemctl show "$unit" -p TasksMax --value 2>&1)"
    fi
    if rt kill "$id" KILL; then ok kill; else ko kill "$(oneline "$T/out")"; fi
    local i
    for i in $(seq 1 150); do
        rt state "$id" && [ "$(jq -r .status "$T/out")" = stopped ] && break
        sleep 0.2
    done
    local t0=$SECONDS
    rc=0
    rt delete "$id" || rc=$?
    if [ $rc = 0 ]; then ok delete; else
        ko delete "exit $rc after $((SECONDS - t0))s: $(oneline "$T/out")"
        rt delete -f "$id"
    fi
    if scope_gone "$unit" "$dir"; then ok scope-gone; else ko scope-gone "$WHY"; fi
}

test_runtime hull "$HULL"
hull_fails=$FAILS
test_runtime runc "$RUNC"
runc_fails=$FAILS
echo "runc: $runc_fails failed"
echo "hull: $hull_fails failed"
rm -rf "$T"
[ "$hull_fails" = 0 ]
