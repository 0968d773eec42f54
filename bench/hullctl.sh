#!/usr/bin/env bash
# hullctl against docker and podman, same run, same machine (as root):
#   1. `run --rm IMAGE true` (the busybox rootfs as an image), RUNS runs
#      each, interleaved: hullctl, docker (private dockerd), podman
#      (private --root); all with --network none. hullctl also with
#      seccomp=unconfined (the cost of docker's default profile).
#   2. pull + unpack of a ~100 MB image in 4 layers from a local registry
#      (Debian's docker-registry on 127.0.0.1): hullctl pull (fresh store)
#      vs skopeo copy + umoci unpack vs docker pull; PULLS rounds each.
#
#   bench/hullctl.sh            (HULLCTL=path skips the release build)
#
# Prints a table of medians (ms). Missing tools give "n/a" and a note.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
PULLS=${PULLS:-3}
if [ -z "${HULLCTL:-}" ]; then
  cargo build --release --quiet -p hullctl || exit 1
  HULLCTL="$PWD/target/$(rustc -vV | sed -n 's/^host: //p')/release/hullctl"
fi
work=$(mktemp -d /tmp/hullctl-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$p" 2>/dev/null
  done
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
wait_up() { local t=$1; shift; for _ in $(seq $((t * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) printf "%.1f\n", a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
timed() { # file cmd...: append the wall ms of cmd to file (if it succeeded)
  local f=$1; shift; local t0; t0=$(now)
  if "$@" >/dev/null 2>>"$work/errors.log"; then echo $((($(now) - t0) / 1000)) | awk '{print $1/1000}' >>"$f"; fi
}

# --- the busybox image, for each tool ---------------------------------------
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc"
cp /bin/busybox "$work/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
H=("$HULLCTL" --root "$work/hullctl")
"${H[@]}" import "$work/rootfs.tar" bench:1 >/dev/null

D=()
if command -v dockerd >/dev/null; then
  d=$work/docker; mkdir -p "$d"
  dockerd --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/docker.pid" \
    -H "unix://$d/docker.sock" --bridge none --iptables=false --ip-masq=false >"$d/dockerd.log" 2>&1 &
  pids+=($!)
  if wait_up 60 docker -H "unix://$d/docker.sock" version; then
    D=(docker -H "unix://$d/docker.sock")
    "${D[@]}" import "$work/rootfs.tar" bench:1 >/dev/null
  else
    echo "note: dockerd did not come up" >&2
  fi
fi
P=()
if command -v podman >/dev/null; then
  P=(podman --root "$work/podman" --runroot "$work/podman-run" --storage-driver overlay --runtime runc)
  "${P[@]}" import "$work/rootfs.tar" bench:1 >/dev/null 2>&1 || { echo "note: podman import failed" >&2; P=(); }
fi

echo "== run --rm bench:1 true, $RUNS runs each, interleaved (+2 warm-up)" >&2
for i in $(seq $((RUNS + 2))); do
  sfx=$([ "$i" -le 2 ] && echo warm || echo t)
  timed "$work/run-hullctl.$sfx" "${H[@]}" run --rm bench:1 true
  timed "$work/run-hullctl-unconfined.$sfx" "${H[@]}" run --rm --security-opt seccomp=unconfined bench:1 true
  [ ${#D[@]} -gt 0 ] && timed "$work/run-docker.$sfx" "${D[@]}" run --rm --network none bench:1 true
  [ ${#P[@]} -gt 0 ] && timed "$work/run-podman.$sfx" "${P[@]}" run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 bench:1 true
done

# --- a ~100 MB, 4-layer image in a local registry ----------------------------
REG=""
if command -v docker-registry >/dev/null && command -v skopeo >/dev/null; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  REG=127.0.0.1:$port
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
    "$work/registry" "$REG" >"$work/registry.yml"
  docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
  pids+=($!)
  wait_up 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" || { echo "note: registry did not come up" >&2; REG=""; }
fi
if [ -n "$REG" ]; then
  # Layers of incompressible data (25 MB each; the busybox rootfs under the first).
  mkdir -p "$work/big"
  cp "$work/rootfs.tar" "$work/big/l0.tar"
  for n in 1 2 3 4; do
    mkdir -p "$work/big/d$n/data"
    head -c 25000000 /dev/urandom >"$work/big/d$n/data/blob$n"
    tar -C "$work/big/d$n" -cf "$work/big/l$n.tar" .
  done
  ids=""; layers=""
  for n in 0 1 2 3 4; do
    gzip -1 -c "$work/big/l$n.tar" >"$work/big/l$n.tar.gz"
    ids="$ids\"sha256:$(sha256sum "$work/big/l$n.tar" | cut -d' ' -f1)\","
    layers="$layers\"l$n.tar.gz\","
  done
  printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["true"]},"rootfs":{"type":"layers","diff_ids":[%s]}}' "${ids%,}" >"$work/big/config.json"
  printf '[{"Config":"config.json","RepoTags":["big:1"],"Layers":[%s]}]' "${layers%,}" >"$work/big/manifest.json"
  tar -C "$work/big" -cf "$work/big.tar" manifest.json config.json l0.tar.gz l1.tar.gz l2.tar.gz l3.tar.gz l4.tar.gz
  skopeo copy -q --dest-tls-verify=false "docker-archive:$work/big.tar" "docker://$REG/big:1" ||
    { echo "note: push failed" >&2; REG=""; }
fi
if [ -n "$REG" ]; then
  echo "== pull + unpack of $(du -m "$work/big.tar" | cut -f1) MB, $PULLS rounds" >&2
  for i in $(seq "$PULLS"); do
    rm -rf "$work/p-h" "$work/p-oci" "$work/p-bundle"
    timed "$work/pull-hullctl.t" "$HULLCTL" --root "$work/p-h" pull -q "$REG/big:1"
    rm -rf "$work/p-h"
    if command -v umoci >/dev/null; then
      timed "$work/pull-skopeo-umoci.t" bash -c "skopeo copy -q --src-tls-verify=false docker://$REG/big:1 oci:$work/p-oci:big && umoci unpack --image $work/p-oci:big $work/p-bundle"
      rm -rf "$work/p-oci" "$work/p-bundle"
    fi
    if [ ${#D[@]} -gt 0 ]; then
      "${D[@]}" rmi -f "$REG/big:1" >/dev/null 2>&1
      "${D[@]}" image prune -f >/dev/null 2>&1
      timed "$work/pull-docker.t" "${D[@]}" pull -q "$REG/big:1"
      "${D[@]}" rmi -f "$REG/big:1" >/dev/null 2>&1
    fi
  done
fi

m() { if [ -s "$1" ]; then median <"$1"; else echo n/a; fi; }
printf '| %-46s | %10s | %10s | %10s |\n' "metric (median ms)" hullctl docker podman
printf '|%s|%s|%s|%s|\n' "------------------------------------------------" "-----------:" "-----------:" "-----------:"
printf '| %-46s | %10s | %10s | %10s |\n' "run --rm bench:1 true ($RUNS runs)" "$(m "$work/run-hullctl.t")" "$(m "$work/run-docker.t")" "$(m "$work/run-podman.t")"
printf '| %-46s | %10s | %10s | %10s |\n' "  same, seccomp=unconfined" "$(m "$work/run-hullctl-unconfined.t")" "" ""
printf '| %-46s | %10s | %10s | %10s |\n' "pull+unpack 100 MB/5 layers ($PULLS rounds)" "$(m "$work/pull-hullctl.t")" "$(m "$work/pull-docker.t")" "-"
printf '| %-46s | %10s | %10s | %10s |\n' "  skopeo copy + umoci unpack" "$(m "$work/pull-skopeo-umoci.t")" "" ""
if [ -s "$work/errors.log" ]; then echo "errors (first 5):" >&2; head -5 "$work/errors.log" >&2; fi
