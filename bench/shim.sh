#!/usr/bin/env bash
# containerd-shim-hull-v2 against containerd's runc shim, one private
# containerd (Debian's 1.6), interleaved per iteration:
#
#   runc-v2+runc   ctr run --runtime io.containerd.runc.v2              IMG ID true
#   runc-v2+hull   ctr run --runtime io.containerd.runc.v2 --runc-binary hull ...
#   hull-v2        ctr run --runtime io.containerd.hull.v2              IMG ID true
#
#   null-v2        ctr run --runtime io.containerd.null.v2              IMG ID true
#                  (shim/examples/null_shim.rs: answers the task API and
#                  runs nothing; what containerd and ctr cost with a task)
#
# and, as the part no shim can save, `ctr container create` + `ctr
# container rm` of the same image (snapshot, metadata; no task; two ctr
# processes) and `ctr version` (what one ctr process costs); then the
# memory of idle shims: 10 detached `sleep` containers per shim,
# RSS and PSS of each shim process (/proc/PID/smaps_rollup; hull's shim is
# one process per container, runc's too: no grouping outside pods).
#
#   bash bench/shim.sh            (as root; builds the release binaries)
#
# Environment: RUNS (10), IDLE (10), HULL, SHIM (binaries; default: the
# release builds of this tree), RUNC (/usr/sbin/runc), BASE_SHIM (another
# build of the shim, timed in the same loop); DEMO=1: run one
# container with the shim and stop (scripts/shim-demo.sh); PHASES=1: run
# RUNS containers with hull's shim and print the median time the shim took
# for each request (its HULL_SHIM_DEBUG log lines), then stop.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
IDLE=${IDLE:-10}
RUNC=${RUNC:-/usr/sbin/runc}
triple=$(rustc -vV | sed -n 's/^host: //p')
if [ -z "${HULL:-}" ] || [ -z "${SHIM:-}" ]; then
  cargo build --release -q -p hull -p containerd-shim-hull
fi
cargo build --release -q -p containerd-shim-hull --example null_shim
NULL_SHIM=$PWD/target/$triple/release/examples/null_shim
HULL=${HULL:-$PWD/target/$triple/release/hull}
SHIM=${SHIM:-$PWD/target/$triple/release/containerd-shim-hull-v2}
for b in containerd ctr containerd-shim-runc-v2 "$RUNC" "$HULL" "$SHIM" busybox; do
  command -v "$b" >/dev/null || { echo "bench/shim.sh: $b not found" >&2; exit 1; }
done

work=$(mktemp -d /tmp/hull-bench-shim.XXXXXX)
NS=hullshimbench
cpid=
# Runs as the EXIT trap under `set -euo pipefail`: a step that fails (a
# grep finding no mount) must not end it before the rest, so every step
# tolerates failure (the trap once stopped at that grep and left the work
# directory and the namespace's cgroups behind).
cleanup() {
  set +e +o pipefail
  if [ -n "$cpid" ]; then
    for id in $(ctr_ task ls -q 2>/dev/null); do ctr_ task kill -s KILL "$id" >/dev/null 2>&1; done
    sleep 0.5
    for id in $(ctr_ task ls -q 2>/dev/null); do ctr_ task rm -f "$id" >/dev/null 2>&1; done
    for id in $(ctr_ c ls -q 2>/dev/null); do ctr_ c rm "$id" >/dev/null 2>&1; done
    kill -TERM "$cpid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.2; done
  fi
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "$work"
  # The namespace's cgroups (runc and hull make /NS/ID under every
  # hierarchy): containers' first, then the namespace's.
  find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -depth -type d -path "*/$NS/*" -exec rmdir {} + 2>/dev/null
  find /sys/fs/cgroup -mindepth 1 -maxdepth 2 -type d -name "$NS" -exec rmdir {} + 2>/dev/null
  left=$(find /sys/fs/cgroup -maxdepth 2 -type d -name "$NS")
  [ -z "$left" ] || echo "bench/shim.sh: cgroups left behind: $left" >&2
  rmdir "/run/containerd/hull/$NS" 2>/dev/null
  return 0
}
trap cleanup EXIT
ctr_() { ctr --address "$work/c.sock" --namespace "$NS" "$@"; }

# containerd, with hull's shim first on its PATH.
mkdir -p "$work/bin"
ln -s "$SHIM" "$work/bin/containerd-shim-hull-v2"
ln -s "$NULL_SHIM" "$work/bin/containerd-shim-null-v2"
# BASE_SHIM: another build of hull's shim, run as io.containerd.hullbase.v2
# in the same loop (before/after comparisons).
[ -z "${BASE_SHIM:-}" ] || ln -s "$BASE_SHIM" "$work/bin/containerd-shim-hullbase-v2"
cat >"$work/config.toml" <<CONF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/c.sock"
[ttrpc]
  address = "$work/c.sock.ttrpc"
CONF
[ -z "${PHASES:-}" ] || export HULL_SHIM_DEBUG=1
PATH="$work/bin:$PATH" containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
cpid=$!
for _ in $(seq 150); do ctr_ version >/dev/null 2>&1 && break; sleep 0.2; done

# A busybox image (OCI layout) from the static busybox.
img=$work/img
mkdir -p "$img/rootfs/bin" "$img/layout/blobs/sha256" "$img/rootfs/"{proc,sys,dev,etc,tmp}
cp "$(command -v busybox)" "$img/rootfs/bin/busybox"
for c in sh true sleep; do ln -s busybox "$img/rootfs/bin/$c"; done
blob() { local h; h=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" "$img/layout/blobs/sha256/$h"; echo "$h $(stat -c%s "$1")"; }
tar -C "$img/rootfs" -cf "$img/layer.tar" .
read -r L LS < <(blob "$img/layer.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$L" >"$img/config.json"
read -r CF CS < <(blob "$img/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$CF" "$CS" "$L" "$LS" >"$img/m.json"
read -r M MS < <(blob "$img/m.json")
IMG=docker.io/library/hullshimbench:latest
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s"}}]}' "$M" "$MS" "$IMG" >"$img/layout/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$img/layout/oci-layout"
tar -C "$img/layout" -cf "$img/image.tar" oci-layout index.json blobs
ctr_ image import "$img/image.tar" >/dev/null

if [ -n "${DEMO:-}" ]; then
  echo "+ ctr run --rm --runtime io.containerd.hull.v2 $IMG demo sh -c ..."
  ctr_ run --rm --runtime io.containerd.hull.v2 "$IMG" demo \
    sh -c 'echo "hello from a container run by containerd-shim-hull-v2 (pid $$ inside)"; exit 3' || echo "(exit status $?)"
  exit 0
fi

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit} m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m}'; }

if [ -n "${PHASES:-}" ]; then
  for i in $(seq "$RUNS"); do
    ctr_ run --rm --runtime io.containerd.hull.v2 "$IMG" "phase$i" true >/dev/null
  done
  echo "hull's shim, $RUNS x ctr run --rm true: median ms per request (in the shim)"
  sed -n 's/.*containerd-shim-hull-v2\[[0-9]*\]: \([A-Za-z]*\( [a-z/-]*\)\{0,1\}\): ok in \([0-9.]*\) ms.*/\1 \3/p' "$work/containerd.log" | tr ' ' '_' | sed 's/_\([0-9.]*\)$/ \1/' |
    awk '{t[$1]=t[$1] " " $2; n[$1]++} END {for (m in t) print m, n[m], t[m]}' |
    while read -r m n ts; do
      printf '%-22s %3d, median %s ms\n' "$m" "$n" "$(tr ' ' '\n' <<<"$ts" | median)"
    done
  exit 0
fi

flags_of() {
  case $1 in
    runc-v2+runc) echo "--runtime io.containerd.runc.v2 --runc-binary $RUNC" ;;
    runc-v2+hull) echo "--runtime io.containerd.runc.v2 --runc-binary $HULL" ;;
    hull-v2) echo "--runtime io.containerd.hull.v2" ;;
    hull-base) echo "--runtime io.containerd.hullbase.v2" ;;
    null-v2) echo "--runtime io.containerd.null.v2" ;;
  esac
}
KINDS="runc-v2+runc runc-v2+hull hull-v2 null-v2${BASE_SHIM:+ hull-base}"

# 1. ctr run --rm IMG ID true, interleaved (one warm-up each first).
declare -A times fails
for k in $KINDS; do
  # shellcheck disable=SC2046
  ctr_ run --rm $(flags_of "$k") "$IMG" "warm-$RANDOM" true >/dev/null 2>&1 || true
  times[$k]=""; fails[$k]=0
done
times[no-task]=""; fails[no-task]=0
times[one-ctr]=""; fails[one-ctr]=0
for i in $(seq "$RUNS"); do
  for k in $KINDS no-task one-ctr; do
    t0=$(date +%s%N)
    if [ "$k" = one-ctr ]; then
      # What one ctr process costs (start, connect, one call): the no-task
      # floor runs two, `ctr run --rm` one.
      if ctr_ version >/dev/null 2>&1; then
        t1=$(date +%s%N)
        times[$k]+="$(( (t1 - t0) / 1000 ))"$'\n'
      else
        fails[$k]=$(( ${fails[$k]} + 1 ))
      fi
      continue
    fi
    if [ "$k" = no-task ]; then
      if ctr_ c create "$IMG" "b$i-nt" true >/dev/null 2>&1 && ctr_ c rm "b$i-nt" >/dev/null 2>&1; then
        t1=$(date +%s%N)
        times[$k]+="$(( (t1 - t0) / 1000 ))"$'\n'
      else
        fails[$k]=$(( ${fails[$k]} + 1 ))
      fi
      continue
    fi
    # shellcheck disable=SC2046
    if ctr_ run --rm $(flags_of "$k") "$IMG" "b$i-${k//+/-}" true >/dev/null 2>&1; then
      t1=$(date +%s%N)
      times[$k]+="$(( (t1 - t0) / 1000 ))"$'\n'
    else
      fails[$k]=$(( ${fails[$k]} + 1 ))
    fi
  done
done

# 2. idle shims: IDLE detached containers per shim, RSS and PSS of each.
mem() { # kind -> "rss_kb pss_kb" per shim, one line each
  local k=$1 ids=() id pid
  for i in $(seq "$IDLE"); do
    id="idle$i-${k//+/-}"
    # shellcheck disable=SC2046
    ctr_ run -d $(flags_of "$k") "$IMG" "$id" sleep 100000 >/dev/null
    ids+=("$id")
  done
  sleep 2
  for id in "${ids[@]}"; do
    pid=$(pgrep -f -- "-id $id -address" | head -1)
    awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} END {print r, p}' "/proc/$pid/smaps_rollup"
  done
  for id in "${ids[@]}"; do ctr_ task kill -s KILL "$id" >/dev/null 2>&1 || true; done
  sleep 0.5
  for id in "${ids[@]}"; do ctr_ task rm -f "$id" >/dev/null 2>&1 || true; ctr_ c rm "$id" >/dev/null 2>&1 || true; done
}
runc_mem=$(mem runc-v2+runc)
hull_mem=$(mem hull-v2)

m() { printf '%s' "${times[$1]}" | median | awk '{printf "%.1f", $1/1000}'; }
rss() { awk '{s+=$1} END {printf "%.2f", s/NR/1024}' <<<"$1"; }
pss() { awk '{s+=$2} END {printf "%.2f", s/NR/1024}' <<<"$1"; }
echo "ctr run --rm IMG ID true, $RUNS runs each, interleaved (containerd $(containerd --version | awk '{print $3}'))"
row() { printf '| %-40s | %12s | %12s | %12s | %12s | %12s |\n' "$@"; }
row metric runc-v2+runc runc-v2+hull hull-v2 "null shim" "no task"
printf '|%s|%s|%s|%s|%s|%s|\n' ------------------------------------------ -------------: -------------: -------------: -------------: -------------:
row "median ms" "$(m runc-v2+runc)" "$(m runc-v2+hull)" "$(m hull-v2)" "$(m null-v2)" "$(m no-task)"
row "failed runs" "${fails[runc-v2+runc]}" "${fails[runc-v2+hull]}" "${fails[hull-v2]}" "${fails[null-v2]}" "${fails[no-task]}"
row "idle shim RSS MB (mean of $IDLE)" "$(rss "$runc_mem")" - "$(rss "$hull_mem")" - -
row "idle shim PSS MB (mean, $IDLE running)" "$(pss "$runc_mem")" - "$(pss "$hull_mem")" - -
[ -z "${BASE_SHIM:-}" ] || echo "BASE_SHIM ($BASE_SHIM): $(m hull-base) ms median, ${fails[hull-base]} failed"
echo "one ctr process (ctr version): $(m one-ctr) ms median, ${fails[one-ctr]} failed"
awk -v a="$(m hull-v2)" -v b="$(m runc-v2+hull)" -v n="$(m null-v2)" -v r="$(rss "$hull_mem")" -v s="$(rss "$runc_mem")" 'BEGIN {
  printf "hull-v2 / runc-v2+hull latency = %.2f (target <= 0.5); hull-v2 / runc-v2 RSS = %.2f (target <= 0.25)\n", a/b, r/s
  printf "the null shim (containerd and ctr alone) / runc-v2+hull = %.2f: no shim can be faster; above that floor hull-v2 takes %.1f ms, runc-v2+hull %.1f ms (%.2f)\n", n/b, a-n, b-n, (a-n)/(b-n) }'
