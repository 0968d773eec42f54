#!/usr/bin/env bash
# CRIU inside the guest:  bash tests/vm/run.sh bash tests/criu-guest.sh
# `criu check`, then for hull and runc: a counter container is checkpointed
# (it stops), restored, and must go on counting from where it was. The
# counter's stdio is the container's own /dev/null: CRIU cannot dump fds on
# files outside the container's mounts (the runtime's stdio here), the reason
# containerd gives runtimes pipes.
# Prints PASS/FAIL per step and `N passed, M failed`.
set -u
ROOTFS=${ROOTFS:-/share/bundle/rootfs}
RUNTIMES=${RUNTIMES:-/share/bin/hull $(command -v runc)}
PASSED=0; FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; }
oneline() { tr '\n' ' ' < "$1" | cut -c1-400; }

echo "# $(criu --version | tr '\n' ' '), kernel $(uname -r)"
if criu check > /tmp/criu-check.out 2>&1; then
    pass "criu-check"
else
    fail "criu-check" "$(oneline /tmp/criu-check.out)"
fi
cat /tmp/criu-check.out
criu check --all 2>&1 | tail -5 | sed 's/^/# criu check --all: /'

for RT in $RUNTIMES; do
    n=$(basename "$RT")
    T=$(mktemp -d /tmp/criu-$n.XXXXXX)
    mkdir -p "$T/bundle" "$T/data"
    cat > "$T/bundle/config.json" <<JSON
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false, "user": {"uid": 0, "gid": 0}, "cwd": "/",
    "args": ["sh", "-c", "exec </dev/null >/dev/null 2>&1; i=0; while :; do i=\$((i+1)); echo \$i > /data/count; sleep 0.1; done"],
    "env": ["PATH=/bin:/sbin"],
    "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
    "noNewPrivileges": true
  },
  "root": {"path": "$ROOTFS", "readonly": true},
  "hostname": "counter",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","strictatime","mode=755","size=65536k"]},
    {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid","nodev","mode=1777"]},
    {"destination": "/data", "type": "bind", "source": "$T/data", "options": ["rbind","rw"]}
  ],
  "linux": {
    "cgroupsPath": "/criutest/$n",
    "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
    "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]
  }
}
JSON
    R=(timeout -k 5 60 "$RT" --root "$T/state")
    # The counter rewrites the file (truncate, then write): retry an empty read.
    count() {
        local v
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            v=$(cat "$T/data/count" 2>/dev/null)
            [ -n "$v" ] && { echo "$v"; return; }
            sleep 0.05
        done
        echo 0
    }
    if ! "${R[@]}" run -d -b "$T/bundle" counter > "$T/run.out" 2>&1 < /dev/null; then
        fail "$n/run" "$(oneline "$T/run.out")"; continue
    fi
    sleep 2
    c1=$(count)
    if "${R[@]}" checkpoint --image-path "$T/img" --work-path "$T/work" counter > "$T/ck.out" 2>&1 < /dev/null; then
        sleep 1
        a=$(count); sleep 1; b=$(count)
        # CRIU may stop the shell between its truncate and its write, leaving
        # the file empty (read as 0): "stopped" means it no longer changes.
        if [ "$a" = "$b" ]; then
            pass "$n/checkpoint"
        else
            fail "$n/checkpoint" "counter still moving after checkpoint ($a -> $b)"
        fi
        restore() { "${R[@]}" restore -d --image-path "$T/img" --work-path "$T/work2" -b "$T/bundle" counter > "$T/rs.out" 2>&1 < /dev/null; }
        # runc creates a missing --work-path on restore (os.Mkdir); retry with it made
        if ! restore && grep -q "Can't change directory to $T/work2" "$T/rs.out"; then
            fail "$n/restore-makes-work-path" "$(oneline "$T/rs.out")"
            mkdir -p "$T/work2"
            restore
        fi
        if "${R[@]}" state counter 2>/dev/null | grep -q "\"status\": *\"running\""; then
            sleep 2
            c2=$(count)
            last=$b; [ "$c1" -gt "$last" ] && last=$c1
            if [ "$c2" -gt "$last" ]; then
                pass "$n/restore ($c1 before checkpoint, $b at checkpoint, $c2 after restore)"
            else
                fail "$n/restore" "counter did not go on: $b at checkpoint, $c2 after restore"
            fi
        else
            fail "$n/restore" "$(oneline "$T/rs.out")"
            grep -B3 -E 'Error|Warn' "$T/work2/restore.log" 2>/dev/null | tail -25 | sed "s/^/#   $n restore.log: /"
        fi
    else
        fail "$n/checkpoint" "$(oneline "$T/ck.out")"
        grep -B3 -E 'Error|Warn' "$T/work/dump.log" 2>/dev/null | tail -25 | sed "s/^/#   $n dump.log: /"
    fi
    "${R[@]}" delete -f counter > /dev/null 2>&1
    rm -rf "$T"
done
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
