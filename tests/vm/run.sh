#!/usr/bin/env bash
# tests/vm/run.sh CMD...  — run CMD as root inside a Debian bookworm guest
# (cgroup v2 + systemd) under qemu, with a share disk holding hull's release
# binary, a busybox bundle and tests/vm/. Streams CMD's output, exits with
# its exit code (124: hard timeout, 125: the guest never reported one).
# See tests/vm/README.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
[ $# -gt 0 ] || { echo "usage: tests/vm/run.sh CMD..." >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "tests/vm/run.sh: needs root" >&2; exit 2; }

CACHE=${HULL_VM_CACHE:-/var/cache/hull-vm}
TIMEOUT=${HULL_VM_TIMEOUT:-900}          # seconds, boot + job + power-off
MEM=${HULL_VM_MEM:-2048}
SMP=${HULL_VM_SMP:-2}
ACCEL=${HULL_VM_ACCEL:-tcg,thread=multi} # nested KVM hangs on these hosts
TARGET=${CARGO_TARGET_DIR_VM:-/tmp/t-vm}
t0=$(date +%s)
say() { printf '[vm %3ss] %s\n' "$(( $(date +%s) - t0 ))" "$*" >&2; }

# --- host tools (Debian packages; qemu from bookworm-backports)
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v depmod >/dev/null || missing+=(kmod)
command -v cpio >/dev/null || missing+=(cpio)
command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
[ -x /bin/busybox ] || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    bp=()
    grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/ && bp=(-t bookworm-backports)
    apt-get install -y -qq --no-install-recommends "${bp[@]}" "${missing[@]}" >/dev/null
fi

# --- hull's release binary
if [ -n "${HULL_VM_HULL:-}" ]; then
    HULL_BIN=$HULL_VM_HULL
else
    say "cargo build --release (CARGO_TARGET_DIR=$TARGET)"
    (cd "$REPO" && CARGO_TARGET_DIR="$TARGET" cargo build --release --quiet --bin hull)
    HULL_BIN="$TARGET/$(rustc -vV | sed -n 's/^host: //p')/release/hull"
fi

# --- guest image, cached by the hash of its recipe. The lock is held until
# the guest is off: one VM at a time on this host (2 cores, shared).
HASH=$(cat "$HERE/build-image.sh" "$HERE/guest-job.sh" "$HERE/hull-vm-job.service" | sha256sum | cut -c1-16)
IMG="$CACHE/$HASH"
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -n 9 || { say "waiting for another tests/vm run to finish (lock $CACHE/.lock)"; flock 9; }
if [ ! -f "$IMG/root.img" ]; then
    say "building guest image $HASH (debootstrap, about 2 minutes)"
    rm -rf "$IMG.tmp"
    bash "$HERE/build-image.sh" "$IMG.tmp"
    mv "$IMG.tmp" "$IMG"
    find "$CACHE" -mindepth 1 -maxdepth 1 -type d ! -name "$HASH" -exec rm -rf {} +   # older recipes
    say "guest image built"
else
    say "guest image $HASH (cached, $(cat "$IMG/kernel"))"
fi

# --- share disk: /share in the guest
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hull-vm-run.XXXXXX")
QPID=
cleanup() { [ -n "$QPID" ] && kill "$QPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM   # cleanup stops qemu (timeout passes the signal on)
S="$WORK/share"
mkdir -p "$S/bin" "$S/bundle/rootfs" "$S/tests"
cp "$HULL_BIN" "$S/bin/hull"
cp /bin/busybox "$S/bin/busybox"
# the busybox bundle: the static busybox and its applets; tests write config.json
mkdir -p "$S/bundle/rootfs"/{bin,dev,proc,sys,tmp,etc,root}
cp /bin/busybox "$S/bundle/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$S/bundle/rootfs/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$S/bundle/rootfs/etc/passwd"
echo 'root:x:0:' > "$S/bundle/rootfs/etc/group"
cp "$HERE"/*.sh "$S/tests/"
if [ -n "${HULL_VM_EXTRA:-}" ]; then   # more files for the job, in /share/extra
    mkdir -p "$S/extra"
    for f in $HULL_VM_EXTRA; do cp -a "$f" "$S/extra/"; done
fi
{
    echo '#!/bin/bash'
    echo 'cd /share'
    echo 'export HULL_VM_GUEST=1'
    printf '%q ' "$@"
    echo
} > "$S/job"
chmod 755 "$S/job"
mb=$(( $(du -sm "$S" | cut -f1) * 2 + 256 ))
mkfs.ext4 -q -F -L hull-vm-share -d "$S" "$WORK/share.img" "${mb}M" >/dev/null

# --- boot: TCG, serial console on stdout, guest powers off after the job
say "booting (qemu -smp $SMP -m $MEM, accel ${ACCEL%%,*}, timeout ${TIMEOUT}s)"
LOG="$WORK/console.log"
tb=$(date +%s)
mkfifo "$WORK/serial"
tr -d '\r' < "$WORK/serial" | tee "$LOG" | grep --line-buffered -v -e '^HULL_VM_EXIT=' -e '^HULL_VM_BOOTED' &
FPID=$!
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
    -accel "$ACCEL" -cpu max -smp "$SMP" -m "$MEM" \
    -nodefaults -display none -no-reboot -serial stdio -monitor none \
    -kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" \
    -append "console=ttyS0 root=/dev/vda rw quiet loglevel=3 panic=-1 systemd.show_status=false systemd.unified_cgroup_hierarchy=1" \
    -drive "file=$IMG/root.img,if=virtio,format=raw,snapshot=on" \
    -drive "file=$WORK/share.img,if=virtio,format=raw" \
    < /dev/null > "$WORK/serial" 2> "$WORK/qemu.err" &
QPID=$!
set +e
wait "$QPID"
qrc=$?
QPID=
wait "$FPID"
set -e
tr=$(( $(date +%s) - tb ))
booted=$(sed -n 's/^HULL_VM_BOOTED \([0-9.]*\).*/\1/p' "$LOG" | tail -1)
rc=$(sed -n 's/^HULL_VM_EXIT=\([0-9]*\).*/\1/p' "$LOG" | tail -1)
if [ -z "$rc" ]; then
    if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
        say "hard timeout (${TIMEOUT}s): guest killed"; rc=124
    else
        say "guest stopped without an exit status (qemu exit $qrc)"; cat "$WORK/qemu.err" >&2; rc=125
    fi
fi
say "guest up in ${booted:-?}s (guest clock), boot+job+power-off ${tr}s; job exit $rc"
exit "$rc"
