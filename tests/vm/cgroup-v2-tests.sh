#!/usr/bin/env bash
# cgroup v2 + systemd checks, run INSIDE the guest (tests/vm/run.sh) against
# a runc-compatible runtime:
#
#   RUNTIME=/share/bin/hull bash tests/cgroup-v2-tests.sh
#   RUNTIME=/usr/sbin/runc  bash tests/cgroup-v2-tests.sh
#
# Prints `PASS <name>` or `FAIL <name>: <why>` per check (the runtime's own
# error text where it failed) and `N passed, M failed` at the end; exits 1 if
# any check failed. DRIVERS="cgroupfs systemd" (default) picks the drivers;
# ROOTFS the busybox rootfs (default /share/bundle/rootfs).
set -u
RUNTIME=${RUNTIME:?set RUNTIME to the runtime binary}
DRIVERS=${DRIVERS:-cgroupfs systemd}
ROOTFS=${ROOTFS:-/share/bundle/rootfs}
CG=/sys/fs/cgroup
T=$(mktemp -d /tmp/cgv2.XXXXXX)
STATE_ROOT=$T/state
PASSED=0
FAILED=0
TO=30 # seconds any one runtime command may take

pass() { PASSED=$((PASSED + 1)); echo "PASS $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; }
# check NAME WHY-IF-FALSE COMMAND...: PASS when COMMAND succeeds
check() { local n=$1 w=$2; shift 2; if "$@"; then pass "$n"; else fail "$n" "$w"; fi; }
oneline() { tr '\n' ' ' < "$1" | sed 's/  */ /g; s/ $//' | cut -c1-300; }

# rt ARGS...: run the runtime (with the current driver's global flags), output in $T/out
rt() {
    timeout -k 5 "$TO" "$RUNTIME" --root "$STATE_ROOT" "${GFLAGS[@]}" "$@" > "$T/out" 2>&1 < /dev/null
}
# rtf NAME ARGS...: like rt; on failure records FAIL NAME with the runtime's error
rtf() {
    local n=$1; shift
    if rt "$@"; then return 0; fi
    local rc=$?
    fail "$n" "\`$(basename "$RUNTIME") $*\` exit $rc: $(oneline "$T/out")"
    return 1
}

# bundle NAME CGROUPS_PATH RESOURCES_JSON ARGS_JSON [DEVICES_JSON]
bundle() {
    local b=$T/b-$1
    mkdir -p "$b"
    cat > "$b/config.json" <<JSON
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": $4,
    "env": ["PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/root"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"],
      "effective": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"],
      "permitted": ["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "$ROOTFS", "readonly": true},
  "hostname": "$1",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","strictatime","mode=755","size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid","noexec","nodev","mode=1777","size=65536k"]},
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","nodev","mode=1777"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid","noexec","nodev","ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid","noexec","nodev","relatime","ro"]}
  ],
  "linux": {
    "cgroupsPath": "$2",
    "resources": $3,
    "devices": ${5:-[]},
    "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}, {"type": "cgroup"}],
    "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
}
JSON
    echo "$b"
}

# The limits every long-running container gets, and what v2 should show.
RES='{
  "devices": [{"allow": false, "access": "rwm"}],
  "memory": {"limit": 67108864, "swap": 134217728},
  "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "1", "mems": "0"},
  "pids": {"limit": 100},
  "blockIO": {"weight": 500}
}'
# /dev/kmsg (1:11) is created in the container but not allowed by any rule
DEVS='[{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 420, "uid": 0, "gid": 0}]'

state_field() { rt state "$1" && jq -r ".$2" "$T/out"; }
wait_status() { # ID STATUS
    local i
    for i in $(seq 1 50); do
        [ "$(state_field "$1" status 2>/dev/null)" = "$2" ] && return 0
        sleep 0.2
    done
    return 1
}
# cgdir ID: the container's cgroup directory for the current driver
cgdir() {
    case $DRIVER in
        cgroupfs) echo "$CG/hulltest/$1" ;;
        systemd) echo "$CG/system.slice/hulltest-$1.scope" ;;
    esac
}
cgpath() {
    case $DRIVER in
        cgroupfs) echo "/hulltest/$1" ;;
        systemd) echo "system.slice:hulltest:$1" ;;
    esac
}
jqok() { jq -e "$@" > /dev/null 2>&1; }
readf() { cat "$1" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'; }
# eqfile NAME FILE EXPECTED
eqfile() {
    local got
    got=$(readf "$1")
    [ "$got" = "$2" ] && return 0
    WHY="$1 is '${got:-<missing>}', want '$2'"
    return 1
}
checkfile() { # NAME FILE EXPECTED
    local WHY=
    if eqfile "$2" "$3"; then pass "$1"; else fail "$1" "$WHY"; fi
}

cleanup() {
    local id
    for id in $(ls "$STATE_ROOT" 2>/dev/null); do
        timeout 20 "$RUNTIME" --root "$STATE_ROOT" delete -f "$id" >/dev/null 2>&1 ||
            timeout 20 "$RUNTIME" --root "$STATE_ROOT" --systemd-cgroup delete -f "$id" >/dev/null 2>&1 || true
    done
}
trap 'cleanup; rm -rf "$T"' EXIT

echo "# runtime: $RUNTIME ($("$RUNTIME" --version 2>&1 | head -1))"
echo "# kernel $(uname -r), $(stat -fc %T $CG), controllers: $(cat $CG/cgroup.controllers)"

for DRIVER in $DRIVERS; do
    GFLAGS=()
    [ "$DRIVER" = systemd ] && GFLAGS=(--systemd-cgroup)
    P=$DRIVER
    ID=v2$DRIVER
    SCOPE=hulltest-$ID.scope
    echo "# --- driver: $DRIVER"

    # -- 1. a foreground container runs and reports its exit code
    b=$(bundle "${ID}r" "$(cgpath "${ID}r")" '{}' '["sh","-c","exit 7"]')
    rt run -b "$b" "${ID}r"
    rc=$?
    if [ $rc = 7 ]; then pass "$P/run"; else fail "$P/run" "exit $rc, want 7: $(oneline "$T/out")"; fi
    rt delete -f "${ID}r"

    # -- 2. a long-running container with every limit
    b=$(bundle "$ID" "$(cgpath "$ID")" "$RES" '["sleep","1000"]' "$DEVS")
    if ! rtf "$P/create" run -d -b "$b" "$ID"; then
        echo "# ($P: the remaining checks need this container: not run)"
        rt delete -f "$ID"
        continue
    fi
    pass "$P/create"
    D=$(cgdir "$ID")
    pid=$(state_field "$ID" pid)
    want=${D#$CG}
    got=$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>/dev/null)
    check "$P/cgroup-path" "init (pid $pid) is in '$got', want '$want'" [ "$got" = "$want" ]
    if [ "$DRIVER" = systemd ]; then
        check "$P/scope-active" "systemctl is-active $SCOPE: $(systemctl is-active "$SCOPE" 2>&1)" \
            [ "$(systemctl is-active "$SCOPE" 2>/dev/null)" = active ]
        props=$(systemctl show "$SCOPE" -p MemoryMax -p TasksMax -p CPUQuotaPerSecUSec -p Delegate 2>&1 | sort | tr '\n' ' ')
        check "$P/unit-properties" "systemctl show: $props" \
            [ "$props" = "CPUQuotaPerSecUSec=500ms Delegate=yes MemoryMax=67108864 TasksMax=100 " ]
    fi
    checkfile "$P/memory.max" "$D/memory.max" 67108864
    checkfile "$P/memory.swap.max" "$D/memory.swap.max" 67108864
    checkfile "$P/cpu.max" "$D/cpu.max" "50000 100000"
    # runc's shares→weight: 1 + (512-2)*9999/262142 = 20
    checkfile "$P/cpu.weight" "$D/cpu.weight" 20
    checkfile "$P/cpuset.cpus" "$D/cpuset.cpus" 1
    checkfile "$P/cpuset.mems" "$D/cpuset.mems" 0
    checkfile "$P/pids.max" "$D/pids.max" 100
    # blkio weight 500: io.bfq.weight 500 where BFQ is loaded, else io.weight 1+(500-10)*9999/990
    if [ -e "$D/io.bfq.weight" ]; then
        checkfile "$P/io-weight" "$D/io.bfq.weight" "default 500"
    else
        checkfile "$P/io-weight" "$D/io.weight" "default 4950"
    fi

    # -- devices: the default ones work, /dev/kmsg (no rule) cannot be opened
    if rt exec "$ID" sh -c 'echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c'; then
        pass "$P/devices-default-allowed"
    else
        fail "$P/devices-default-allowed" "$(oneline "$T/out")"
    fi
    if rt exec "$ID" sh -c 'test -c /dev/kmsg || { echo "no /dev/kmsg node"; exit 2; }; head -c 1 /dev/kmsg'; then
        fail "$P/devices-denied" "reading /dev/kmsg (c 1:11, no allow rule) succeeded"
    elif grep -q "Operation not permitted" "$T/out"; then
        pass "$P/devices-denied"
    else
        fail "$P/devices-denied" "want EPERM opening /dev/kmsg: $(oneline "$T/out")"
    fi

    # -- cgroup namespace: the container sees its cgroup as /
    if rt exec "$ID" cat /proc/self/cgroup; then
        check "$P/cgroupns-view" "/proc/self/cgroup in the container: $(oneline "$T/out")" \
            [ "$(cat "$T/out")" = "0::/" ]
    else
        fail "$P/cgroupns-view" "$(oneline "$T/out")"
    fi

    # -- exec lands in the container's cgroup (seen from the host)
    timeout "$TO" "$RUNTIME" --root "$STATE_ROOT" "${GFLAGS[@]}" exec "$ID" sleep 31 > "$T/exec.out" 2>&1 < /dev/null &
    epid=$!
    found=
    for i in $(seq 1 50); do
        for p in $(cat "$D/cgroup.procs" 2>/dev/null); do
            [ "$(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)" = "sleep 31 " ] && found=$p
        done
        [ -n "$found" ] && break
        kill -0 $epid 2>/dev/null || break
        sleep 0.2
    done
    if [ -n "$found" ]; then
        pass "$P/exec-cgroup"
        kill "$found" 2>/dev/null
    else
        where=$(for p in $(pgrep -x sleep); do [ "$(tr '\0' ' ' < /proc/$p/cmdline)" = "sleep 31 " ] && sed -n 's/^0:://p' /proc/$p/cgroup; done | head -1)
        fail "$P/exec-cgroup" "exec'd 'sleep 31' not in $D/cgroup.procs (it is in '${where:-nowhere}'): $(oneline "$T/exec.out")"
        pkill -f '^sleep 31$' 2>/dev/null
    fi
    wait $epid 2>/dev/null

    # -- ps
    if rtf "$P/ps" ps "$ID"; then
        check "$P/ps" "no 'sleep 1000' in: $(oneline "$T/out")" grep -q "sleep 1000" "$T/out"
    fi
    if rtf "$P/ps-json" ps --format json "$ID"; then
        check "$P/ps-json" "pid $pid not in $(oneline "$T/out")" jqok "index($pid)" "$T/out"
    fi

    # -- events --stats
    if rtf "$P/events-stats" events --stats "$ID"; then
        s=$T/out
        if jq -e '.type == "stats" and .data.pids.current >= 1 and .data.memory.usage.limit == 67108864 and .data.memory.usage.usage > 0 and .data.cpu.usage.total > 0' "$s" >/dev/null 2>&1; then
            pass "$P/events-stats"
        else
            fail "$P/events-stats" "want type stats, pids.current>=1, memory.usage.limit 67108864, cpu.usage.total>0: $(oneline "$s")"
        fi
    fi

    # -- pause / resume through cgroup.freeze
    if rtf "$P/pause" pause "$ID"; then
        st=$(state_field "$ID" status)
        if [ "$(readf "$D/cgroup.freeze")" = 1 ] && grep -qx "frozen 1" "$D/cgroup.events" && [ "$st" = paused ]; then
            pass "$P/pause"
        else
            fail "$P/pause" "cgroup.freeze=$(readf "$D/cgroup.freeze") events: $(grep frozen "$D/cgroup.events") status=$st"
        fi
        if rtf "$P/resume" resume "$ID"; then
            st=$(state_field "$ID" status)
            if [ "$(readf "$D/cgroup.freeze")" = 0 ] && grep -qx "frozen 0" "$D/cgroup.events" && [ "$st" = running ]; then
                pass "$P/resume"
            else
                fail "$P/resume" "cgroup.freeze=$(readf "$D/cgroup.freeze") status=$st"
            fi
        fi
    else
        fail "$P/resume" "not tried (pause failed)"
    fi

    # -- update
    if rtf "$P/update" update --memory 100663296 --memory-swap 201326592 --pids-limit 50 --cpu-quota 20000 --cpu-period 100000 --cpu-share 1024 "$ID"; then
        WHY=
        if eqfile "$D/memory.max" 100663296 && eqfile "$D/memory.swap.max" 100663296 && eqfile "$D/pids.max" 50 \
            && eqfile "$D/cpu.max" "20000 100000" && eqfile "$D/cpu.weight" 39; then
            pass "$P/update"
        else
            fail "$P/update" "$WHY"
        fi
        if [ "$DRIVER" = systemd ]; then
            props=$(systemctl show "$SCOPE" -p MemoryMax -p TasksMax -p CPUQuotaPerSecUSec 2>&1 | sort | tr '\n' ' ')
            check "$P/update-unit-properties" "systemctl show: $props" \
                [ "$props" = "CPUQuotaPerSecUSec=200ms MemoryMax=100663296 TasksMax=50 " ]
            # systemd re-applies a unit's own properties to its cgroup on daemon-reload:
            # limits that update wrote only into the files are lost then
            systemctl daemon-reload
            sleep 1
            WHY=
            if eqfile "$D/memory.max" 100663296 && eqfile "$D/pids.max" 50 && eqfile "$D/cpu.max" "20000 100000"; then
                pass "$P/update-survives-daemon-reload"
            else
                fail "$P/update-survives-daemon-reload" "after systemctl daemon-reload: $WHY"
            fi
        fi
    fi

    # -- delete removes the cgroup (and the scope)
    rt kill "$ID" KILL
    wait_status "$ID" stopped
    if rtf "$P/delete" delete "$ID"; then
        sleep 0.5
        if [ -d "$D" ]; then
            fail "$P/delete" "$D still exists after delete"
        elif [ "$DRIVER" = systemd ] && [ "$(systemctl is-active "$SCOPE" 2>/dev/null)" = active ]; then
            fail "$P/delete" "$SCOPE still active after delete"
        else
            pass "$P/delete"
        fi
    fi

    # -- OOM: a container that outgrows memory.max is OOM-killed and `events` says so
    # (`events` only reports OOM kills after it started watching; under TCG
    # starting it took more than 2 s once, so the container waits 6 s.)
    O=${ID}oom
    b=$(bundle "$O" "$(cgpath "$O")" '{"memory": {"limit": 33554432, "swap": 33554432}}' \
        '["sh","-c","sleep 6; tail /dev/zero"]')
    if rtf "$P/oom-event" run -d -b "$b" "$O"; then
        timeout 35 "$RUNTIME" --root "$STATE_ROOT" "${GFLAGS[@]}" events "$O" > "$T/events" 2>&1 < /dev/null &
        evp=$!
        for i in $(seq 1 120); do
            grep -q '"oom"' "$T/events" 2>/dev/null && break
            kill -0 $evp 2>/dev/null || break
            sleep 0.2
        done
        kill $evp 2>/dev/null; wait $evp 2>/dev/null
        oomk=$(sed -n 's/^oom_kill //p' "$(cgdir "$O")/memory.events" 2>/dev/null)
        if grep -q '"type":"oom"' "$T/events"; then
            pass "$P/oom-event"
        else
            fail "$P/oom-event" "no {\"type\":\"oom\"} from events (memory.events oom_kill=${oomk:-?}): $(oneline "$T/events")"
        fi
        rt delete -f "$O"
    fi
done

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
