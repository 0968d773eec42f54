#!/usr/bin/env bash
# hull vs runc through the engines: `docker run --rm` via a private dockerd
# (both registered as runtimes in its daemon.json) and `ctr run --rm` via a
# private containerd (the runc shim with --runc-binary). Interleaved, same
# image (the busybox rootfs imported), same command (`true`).
#
#   bench/engines.sh OUT_DIR            (as root; run.sh calls it)
#
# Environment: HULL, RUNC (binaries), MEASURE (bench/measure.c built),
# ENGINE_RUNS (20), ROOTFS (a busybox rootfs dir). Writes measure's
# per-iteration times (hull, runc columns) to OUT_DIR/docker.tsv and
# OUT_DIR/ctr.tsv; a file is missing when its engine is missing or did not
# come up (the reason goes to stderr). crun is not measured here: crun 1.8.1 refuses this
# host's hybrid cgroup layout, and the engines run on the host as it is.
set -uo pipefail
out=$1
RUNS=${ENGINE_RUNS:-20}
: "${HULL:?}" "${RUNC:?}" "${MEASURE:?}" "${ROOTFS:?}"
work=$(mktemp -d /tmp/hull-bench-engines.XXXXXX)
TAG=he$$
pids=()
# The engines' cgroup parents (docker/, hullbench/ under each hierarchy):
# the ones this run creates are removed at the end.
cg_parents() { find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d \( -name docker -o -name hullbench \) 2>/dev/null | sort; }
cg_parents >"/tmp/hull-bench-cg.$$"
had_docker0=$(ip link show docker0 >/dev/null 2>&1 && echo yes)
cleanup() {
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null
  done
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$p" 2>/dev/null
  done
  # Anything a daemon left mounted under the work dir (overlay layers,
  # shm, netns files), deepest first, then the dir.
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
  done
  rm -rf "$work"
  cg_parents | comm -13 "/tmp/hull-bench-cg.$$" - | sort -r | while read -r dir; do
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  rm -f "/tmp/hull-bench-cg.$$"
  [ -n "$had_docker0" ] || ip link del docker0 2>/dev/null
}
trap cleanup EXIT
mkdir -p "$out"

wait_up() { # seconds cmd...
  local t=$1; shift
  for _ in $(seq $((t * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}
tar -C "$ROOTFS" -cf "$work/layer.tar" .

# --- dockerd -------------------------------------------------------------
if command -v dockerd >/dev/null && command -v docker >/dev/null; then
  d=$work/docker
  mkdir -p "$d"
  printf '{"runtimes": {"hull": {"path": "%s"}, "runc-ref": {"path": "%s"}}}\n' \
    "$HULL" "$RUNC" >"$d/daemon.json"
  dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" \
    --pidfile "$d/docker.pid" -H "unix://$d/docker.sock" >"$d/dockerd.log" 2>&1 &
  pids+=($!)
  D=(docker -H "unix://$d/docker.sock")
  if wait_up 60 "${D[@]}" version &&
    "${D[@]}" import -c 'CMD ["sh"]' "$work/layer.tar" hullbench:latest >/dev/null; then
    echo "== engines: docker run --rm, $RUNS runs per runtime, interleaved (+2 warm-up)" >&2
    MEASURE_KEEP_GOING=1 "$MEASURE" loop "$RUNS" 2 "$out/docker.tsv" \
      "${D[@]}" run --rm --runtime hull hullbench true ';;' \
      "${D[@]}" run --rm --runtime runc-ref hullbench true 2>>"$work/engines.log"
  else
    echo "bench: dockerd did not come up (log: $(tail -3 "$d/dockerd.log"))" >&2
  fi
  kill -TERM "${pids[-1]}" 2>/dev/null
else
  echo "bench: docker.io is not installed; docker row skipped" >&2
fi

# --- containerd ----------------------------------------------------------
if command -v containerd >/dev/null && command -v ctr >/dev/null; then
  c=$work/containerd
  mkdir -p "$c"
  cat >"$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$c/c.sock"
[ttrpc]
  address = "$c/c.sock.ttrpc"
EOF
  containerd --config "$c/config.toml" >"$c/containerd.log" 2>&1 &
  pids+=($!)
  C=(ctr --address "$c/c.sock" --namespace hullbench)
  # An OCI image layout holding the rootfs as one layer.
  L=$work/layout
  mkdir -p "$L/blobs/sha256"
  blob() { # file -> "digest size", stored in the layout
    local sum size
    sum=$(sha256sum "$1" | cut -d' ' -f1); size=$(stat -c %s "$1")
    cp "$1" "$L/blobs/sha256/$sum"
    echo "sha256:$sum $size"
  }
  read -r ld ls < <(blob "$work/layer.tar")
  printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
    "$ld" >"$work/config.json"
  read -r cd cs < <(blob "$work/config.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
    "$cd" "$cs" "$ld" "$ls" >"$work/manifest.json"
  read -r md ms < <(blob "$work/manifest.json")
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"io.containerd.image.name":"docker.io/library/hullbench:latest","org.opencontainers.image.ref.name":"latest"}}]}' \
    "$md" "$ms" >"$L/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
  tar -C "$L" -cf "$work/image.tar" oci-layout index.json blobs
  IMG=docker.io/library/hullbench:latest
  if wait_up 30 "${C[@]}" version && "${C[@]}" images import "$work/image.tar" >/dev/null; then
    echo "== engines: ctr run --rm, $RUNS runs per runtime, interleaved (+2 warm-up)" >&2
    MEASURE_KEEP_GOING=1 "$MEASURE" loop "$RUNS" 2 "$out/ctr.tsv" \
      "${C[@]}" run --rm --runc-binary "$HULL" --runtime io.containerd.runc.v2 "$IMG" "$TAG-h{}" true ';;' \
      "${C[@]}" run --rm --runc-binary "$RUNC" --runtime io.containerd.runc.v2 "$IMG" "$TAG-r{}" true \
      2>>"$work/engines.log"
  else
    echo "bench: containerd did not come up (log: $(tail -3 "$c/containerd.log"))" >&2
  fi
else
  echo "bench: containerd is not installed; ctr row skipped" >&2
fi
if [ -s "$work/engines.log" ]; then
  echo "engine runs' stderr (last lines):" >&2
  tail -5 "$work/engines.log" >&2
fi
