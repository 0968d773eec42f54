#!/usr/bin/env bash
# AppArmor for real, run INSIDE the guest (on the host:
# bash tests/vm/run.sh bash tests/apparmor-guest.sh).
#
# Loads a test profile, hull-test-deny (everything allowed but writes under
# /tmp/denied/), with apparmor_parser, then for hull and Debian's runc:
#   - `run` of a container with process.apparmorProfile: writing
#     /tmp/denied/x fails with EACCES, /tmp/ok/x works, /proc/self/attr/current
#     is "hull-test-deny (enforce)";
#   - the same as uid 1000;
#   - the detached init carries the label (seen from the host);
#   - `exec` inherits the container's profile (also with --process and a
#     process.json that names none, as runc does);
#   - `exec` into an unconfined container: unconfined (the control), and
#     with `--apparmor hull-test-deny` confined;
#   - an unknown profile is refused by `exec --apparmor` and at `create`
#     (hull's error names process.apparmorProfile).
# Prints `PASS/FAIL <runtime>/<check>` lines, then a table (check, hull,
# runc); exits 1 if any hull check failed (2 if the profile did not load).
set -u
if [ -z "${HULL_VM_GUEST:-}" ]; then
    echo "runs in the guest: bash tests/vm/run.sh bash tests/apparmor-guest.sh" >&2
    exit 2
fi
HULL=${HULL:-/share/bin/hull}
RUNC=${RUNC:-/usr/sbin/runc}
ROOTFS=${ROOTFS:-/share/bundle/rootfs}
PROFILE=hull-test-deny
T=$(mktemp -d /tmp/aa.XXXXXX)
TO=30 # seconds any one runtime command may take
declare -A RESULT
CHECKS=()

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
oneline() { tr '\n' ' ' < "$1" | sed 's/  */ /g; s/ $//' | cut -c1-400; }

# --- setup: AppArmor on, the profile loaded
echo "# kernel $(uname -r), apparmor enabled=$(cat /sys/module/apparmor/parameters/enabled 2>&1)," \
    "$(apparmor_parser --version 2>&1 | head -1)"
if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" != Y ] ||
    [ ! -d /sys/kernel/security/apparmor ]; then
    fail setup/apparmor-enabled "/sys/module/apparmor/parameters/enabled is not Y"
    exit 2
fi
pass setup/apparmor-enabled
cat > "$T/$PROFILE" <<'EOF'
abi <abi/3.0>,
#include <tunables/global>

# Everything but writes under /tmp/denied/ (attach_disconnected: the
# runtime's stdio files are outside the container's mounts).
profile hull-test-deny flags=(attach_disconnected,mediate_deleted) {
  file,
  capability,
  network,
  mount,
  umount,
  pivot_root,
  ptrace,
  signal,
  unix,
  deny /tmp/denied/** w,
}
EOF
if apparmor_parser -r "$T/$PROFILE" > "$T/parser.out" 2>&1 &&
    grep -qx "$PROFILE (enforce)" /sys/kernel/security/apparmor/profiles; then
    pass setup/profile-loaded
else
    fail setup/profile-loaded "$(oneline "$T/parser.out")"
    exit 2
fi
echo "# $(wc -l < /sys/kernel/security/apparmor/profiles) profiles loaded"

# hull check reports AppArmor with the number of loaded profiles.
n=$(wc -l < /sys/kernel/security/apparmor/profiles)
"$HULL" check > "$T/check.out" 2>&1
line=$(grep 'lsm: apparmor' "$T/check.out")
echo "# hull check: $line"
if echo "$line" | grep -q "^ok .*enabled.* $n profiles"; then pass hull/check-reports-apparmor; else
    fail hull/check-reports-apparmor "expected ok, enabled, $n profiles: $line"
    RESULT[hull/check-reports-apparmor]=FAIL
fi

# What the container runs: its own label, a write allowed, a write denied.
# shellcheck disable=SC2016
# One stream: runc's foreground `run` copies the container's stdout and
# stderr through separate pipes, which would interleave mid-line.
PROBE='exec 2>&1
mkdir -p /tmp/denied /tmp/ok
echo "label=$(cat /proc/$$/attr/current)"
if echo x > /tmp/ok/x; then echo ok-write=yes; else echo ok-write=no; fi
if echo x > /tmp/denied/x; then echo denied-write=yes; else echo denied-write=no; fi'

# bundle DIR PROFILE ARGS_JSON: a busybox container with a tmpfs /tmp.
bundle() {
    mkdir -p "$1"
    cat > "$1/config.json" <<JSON
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false, "user": {"uid": 0, "gid": 0}, "cwd": "/",
    "args": $3,
    "env": ["PATH=/bin:/sbin"],
    "capabilities": {"bounding": ["CAP_KILL","CAP_AUDIT_WRITE","CAP_NET_BIND_SERVICE"],
                     "effective": ["CAP_KILL","CAP_AUDIT_WRITE","CAP_NET_BIND_SERVICE"],
                     "permitted": ["CAP_KILL","CAP_AUDIT_WRITE","CAP_NET_BIND_SERVICE"]},
    "noNewPrivileges": true
  },
  "root": {"path": "$ROOTFS", "readonly": true},
  "hostname": "aa",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","strictatime","mode=755","size=65536k"]},
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","nodev","mode=1777"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
    "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]
  }
}
JSON
    if [ -n "$2" ]; then
        jq --arg p "$2" '.process.apparmorProfile = $p' "$1/config.json" > "$1/c.new" &&
            mv "$1/c.new" "$1/config.json"
    fi
}

probe_args=$(jq -cn --arg s "$PROBE" '["sh", "-c", $s]')

# test_runtime NAME BINARY
test_runtime() {
    local name=$1 bin=$2 rc pid got c1="aa-$1-confined" c2="aa-$1-plain"
    local state="$T/state-$name"
    rt() { timeout -k 5 "$TO" "$bin" --root "$state" "$@" > "$T/out" 2>&1 < /dev/null; }
    res() {
        RESULT[$name/$1]=$2
        [[ " ${CHECKS[*]} " == *" $1 "* ]] || CHECKS+=("$1")
    }
    ok() { pass "$name/$1"; res "$1" PASS; }
    ko() { fail "$name/$1" "$2"; res "$1" FAIL; }
    # verify PREFIX LABEL DENIED(yes|no): the probe's output in $T/out
    verify() {
        local out="$T/out"
        if grep -qx "label=$2" "$out"; then ok "$1-label"; else ko "$1-label" "$(oneline "$out")"; fi
        if grep -qx "ok-write=yes" "$out"; then ok "$1-ok-write"; else ko "$1-ok-write" "$(oneline "$out")"; fi
        if [ "$3" = no ]; then
            if grep -qx "denied-write=no" "$out" && grep -q "Permission denied" "$out"; then
                ok "$1-denied-write"
            else
                ko "$1-denied-write" "$(oneline "$out")"
            fi
        else
            if grep -qx "denied-write=yes" "$out"; then ok "$1-denied-write"; else
                ko "$1-denied-write" "$(oneline "$out")"
            fi
        fi
    }

    echo "=== $name ($bin)"
    # 1. run in the foreground
    bundle "$T/b-$name-run" "$PROFILE" "$probe_args"
    rc=0
    rt run --bundle "$T/b-$name-run" "aa-$name-run" || rc=$?
    [ "$rc" = 0 ] || echo "# $name run: exit $rc: $(oneline "$T/out")"
    verify run "$PROFILE (enforce)" no
    rt delete -f "aa-$name-run"

    # 1b. the same as uid 1000 (the label is written before the identity
    # switch and no_new_privs)
    bundle "$T/b-$name-user" "$PROFILE" "$probe_args"
    # /tmp owned by 1000: runc 1.1 chmods a tmpfs to the mode of the
    # directory under it (0755 in the bundle), whatever mode= says.
    jq '.process.user = {uid: 1000, gid: 1000}
        | .mounts |= map(if .destination == "/tmp" then .options += ["uid=1000", "gid=1000"] else . end)' \
        "$T/b-$name-user/config.json" > "$T/c.new" &&
        mv "$T/c.new" "$T/b-$name-user/config.json"
    rc=0
    rt run --bundle "$T/b-$name-user" "aa-$name-user" || rc=$?
    [ "$rc" = 0 ] || echo "# $name run as uid 1000: exit $rc: $(oneline "$T/out")"
    verify run-uid1000 "$PROFILE (enforce)" no
    rt delete -f "aa-$name-user"

    # 2. a detached confined init
    bundle "$T/b-$name-c1" "$PROFILE" '["sleep", "1000"]'
    rc=0
    rt run -d --bundle "$T/b-$name-c1" "$c1" || rc=$?
    if [ "$rc" != 0 ]; then
        ko init-label "run -d: exit $rc: $(oneline "$T/out")"
    else
        pid=$(rt state "$c1" && jq -r .pid "$T/out")
        got=$(cat "/proc/$pid/attr/current" 2>&1)
        if [ "$got" = "$PROFILE (enforce)" ]; then ok init-label; else
            ko init-label "/proc/${pid:-?}/attr/current: $got"
        fi
        # 3. exec inherits process.apparmorProfile
        rt exec "$c1" sh -c "$PROBE"
        verify exec-inherit "$PROFILE (enforce)" no
        # 4. exec --process with a process.json that names no profile
        jq -cn --arg s "$PROBE" '{terminal: false, user: {uid: 0, gid: 0}, cwd: "/",
            args: ["sh", "-c", $s], env: ["PATH=/bin:/sbin"]}' > "$T/process-$name.json"
        rt exec --process "$T/process-$name.json" "$c1"
        if grep -qx "label=$PROFILE (enforce)" "$T/out"; then ok exec-process-inherit-label; else
            ko exec-process-inherit-label "$(oneline "$T/out")"
        fi
    fi
    rt kill "$c1" KILL
    sleep 0.3
    rt delete -f "$c1"

    # 5. an unconfined container: exec is unconfined, exec --apparmor is not
    bundle "$T/b-$name-c2" "" '["sleep", "1000"]'
    rc=0
    rt run -d --bundle "$T/b-$name-c2" "$c2" || rc=$?
    if [ "$rc" != 0 ]; then
        ko exec-unconfined-label "run -d: exit $rc: $(oneline "$T/out")"
    else
        rt exec "$c2" sh -c "$PROBE"
        verify exec-unconfined unconfined yes
        rt exec --apparmor "$PROFILE" "$c2" sh -c "$PROBE"
        verify exec-flag "$PROFILE (enforce)" no
        rc=0
        rt exec --apparmor hull-no-such-profile "$c2" true || rc=$?
        echo "# $name exec --apparmor hull-no-such-profile: exit $rc: $(oneline "$T/out")"
        if [ "$rc" != 0 ] && { [ "$name" != hull ] || grep -q "no such AppArmor profile" "$T/out"; }; then
            ok exec-flag-unknown-refused
        else
            ko exec-flag-unknown-refused "exit $rc: $(oneline "$T/out")"
        fi
    fi
    rt kill "$c2" KILL
    sleep 0.3
    rt delete -f "$c2"

    # 6. an unknown profile at create
    bundle "$T/b-$name-bad" hull-no-such-profile '["true"]'
    rc=0
    rt create --bundle "$T/b-$name-bad" "aa-$name-bad" || rc=$?
    echo "# $name create with hull-no-such-profile: exit $rc: $(oneline "$T/out")"
    if [ "$rc" != 0 ] && { [ "$name" != hull ] ||
        { grep -q "process.apparmorProfile" "$T/out" && grep -q "hull-no-such-profile" "$T/out"; }; }; then
        ok create-unknown-refused
    else
        ko create-unknown-refused "exit $rc: $(oneline "$T/out")"
    fi
    if rt state "aa-$name-bad"; then
        ko create-unknown-no-leftover "the container exists after the failed create"
    else
        ok create-unknown-no-leftover
    fi
    rt delete -f "aa-$name-bad"
}

test_runtime hull "$HULL"
test_runtime runc "$RUNC"

echo "=== results"
printf '%-32s %-5s %s\n' check hull runc
hull_fails=0
for c in "${CHECKS[@]}"; do
    printf '%-32s %-5s %s\n' "$c" "${RESULT[hull/$c]:--}" "${RESULT[runc/$c]:--}"
    [ "${RESULT[hull/$c]:-}" = PASS ] || hull_fails=$((hull_fails + 1))
done
[ "${RESULT[hull/check-reports-apparmor]:-}" = FAIL ] && hull_fails=$((hull_fails + 1))
echo "hull: $hull_fails failed"
rm -rf "$T"
[ "$hull_fails" = 0 ]
