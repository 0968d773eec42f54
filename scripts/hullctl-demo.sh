#!/usr/bin/env bash
# hullctl from nothing to a running container: build an image from the
# busybox-static rootfs (two layers, the second deleting a file of the
# first), load it, run it, run one detached, look at it, clean up.
# Usage (as root): bash scripts/hullctl-demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root" >&2; exit 1; }
[ -x /bin/busybox ] || apt-get install -y -qq busybox-static >/dev/null
if [ -z "${HULLCTL:-}" ]; then # HULLCTL=path skips the build
  cargo build --release --quiet -p hullctl
  HULLCTL="$PWD/target/$(rustc -vV | sed -n 's/^host: //p')/release/hullctl"
fi
work=$(mktemp -d /tmp/hullctl-demo.XXXXXX)
ctl() { echo "+ hullctl $*" >&2; "$HULLCTL" --root "$work/store" "$@"; }
cleanup() {
  "$HULLCTL" --root "$work/store" rm -f web >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# Layer 1: busybox and its applets, /etc/passwd, a file to delete later.
mkdir -p "$work/l1/bin" "$work/l1/etc" "$work/l1/tmp"
cp /bin/busybox "$work/l1/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$work/l1/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$work/l1/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$work/l1/etc/group"
echo "from layer 1" > "$work/l1/etc/old"
tar -C "$work/l1" -cf "$work/l1.tar" .
# Layer 2: an OCI whiteout for /etc/old, and a new file.
mkdir -p "$work/l2/etc"
: > "$work/l2/etc/.wh.old"
echo "from layer 2" > "$work/l2/etc/new"
tar -C "$work/l2" -cf "$work/l2.tar" .
# A docker-save style archive: manifest.json, the config, the layer tars.
mkdir -p "$work/img"
cp "$work/l1.tar" "$work/img/l1.tar"; cp "$work/l2.tar" "$work/img/l2.tar"
d1=$(sha256sum "$work/l1.tar" | cut -d' ' -f1); d2=$(sha256sum "$work/l2.tar" | cut -d' ' -f1)
cat > "$work/img/config.json" <<JSON
{"architecture":"amd64","os":"linux","config":{"Cmd":["sh","-c","echo hello from \$(hostname) as \$(id -un); cat /etc/new; ls /etc/old 2>&1; true"],"Env":["PATH=/bin"]},
 "rootfs":{"type":"layers","diff_ids":["sha256:$d1","sha256:$d2"]},
 "history":[{"created_by":"busybox rootfs"},{"created_by":"whiteout /etc/old, add /etc/new"}]}
JSON
echo '[{"Config":"config.json","RepoTags":["demo:1"],"Layers":["l1.tar","l2.tar"]}]' > "$work/img/manifest.json"
tar -C "$work/img" -cf "$work/demo.tar" .

ctl load -i "$work/demo.tar"
ctl images
ctl history demo:1
ctl run --rm demo:1
ctl run --rm --init -u nobody demo:1 sh -c 'echo "pid 1 is $(cat /proc/1/comm); I am $(id -un)"'
ctl run -d --name web demo:1 sh -c 'echo serving; trap "echo bye; exit 0" TERM; while :; do sleep 1; done'
ctl ps
ctl exec web cat /etc/new
ctl stop web
ctl logs web
ctl ps -a
ctl rm web
ctl save -o "$work/saved.tar" demo:1
ctl rmi demo:1
ctl load -i "$work/saved.tar"
ctl system prune -a
