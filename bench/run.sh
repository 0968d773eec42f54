#!/usr/bin/env bash
# hull vs runc vs crun vs the floor, side by side on this machine.
#
#   bench/run.sh            (as root, from anywhere)
#
# Builds hull (cargo build --release), makes a busybox bundle running `true`
# (in a temp dir under /tmp; the runtimes' --root dirs are on a tmpfs), and
# inside one private mount namespace (with /sys/fs/cgroup/unified unmounted
# on a hybrid host, so crun 1.8.1 accepts the layout and all three see plain
# cgroup v1) measures: sequential `run` (interleaved, so drift hits all
# alike; also with CAP_SYS_PTRACE granted, hull's sealed-image path), the floor (bench/floor.c, alone and with cgroup placement),
# create/start/delete phases, 50 concurrent create+start, peak RSS of the
# `create` process, stripped binary size, user-space instructions (perf stat
# when the CPU has a PMU, else callgrind on the runtime's parent process),
# CPU time and syscall counts (strace -f -c), `exec ID true` into a running
# `sleep` container (interleaved, median and p90); then, on the host as it is,
# `docker run --rm` and `ctr run --rm` with hull and with runc
# (bench/engines.sh; ENGINES=0 skips them).
# Prints one table; the previous run's figures (bench/last.tsv) are shown
# beside hull's new ones, and the new ones are saved there.
#
# Knobs (environment): RUNS (100), CYCLES (50), PAR (50), PAR_ROUNDS (3),
# RSS_RUNS (5), EXEC_RUNS (100), EXEC_GAP (0.1 s; 0: back to back), NICE
# (-10), ENGINES (1), ENGINE_RUNS (20), HULL (use this binary instead of
# building), RUNC, CRUN.
set -euo pipefail

RUNS=${RUNS:-100}
CYCLES=${CYCLES:-50}
PAR=${PAR:-50}
PAR_ROUNDS=${PAR_ROUNDS:-3}
RSS_RUNS=${RSS_RUNS:-5}
EXEC_RUNS=${EXEC_RUNS:-100}
EXEC_GAP=${EXEC_GAP:-0.1}
RUNC=${RUNC:-/usr/sbin/runc}
CRUN=${CRUN:-/usr/bin/crun}

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$bench_dir")

# ---------------------------------------------------------------------------
# Inner part: runs inside `unshare -m --propagation private`.
# ---------------------------------------------------------------------------
if [ "${1:-}" = --inner ]; then
  work=$2
  source "$work/env"
  cd "$work"
  res=$work/res
  mkdir -p "$res"
  if mountpoint -q /sys/fs/cgroup/unified; then
    umount /sys/fs/cgroup/unified
  fi
  B=$work/bundle
  # Command prefixes; every runtime has its own state root, on a tmpfs like
  # /run (on a disk filesystem, creating and deleting the state files costs
  # more than the runtimes' own work: ext4 was 14-23% of their CPU time).
  mkdir -p "$work/roots"
  mount -t tmpfs -o mode=0711 bench-roots "$work/roots"
  declare -A RT=([hull]="$HULL --root $work/roots/hull"
                 [runc]="$RUNC --root $work/roots/runc"
                 [crun]="$CRUN --root $work/roots/crun")
  NAMES=(hull runc crun)
  log=$work/runtime.log
  # The floor with cgroup placement: one new cgroup per v1 hierarchy (or the
  # v2 one), like the runtimes make.
  FLOOR_CG=()
  for m in $(awk '{for (i = 7; i < NF; i++) if ($i == "-") { if ($(i+1) == "cgroup" || $(i+1) == "cgroup2") print $5; break }}' /proc/self/mountinfo); do
    FLOOR_CG+=("$m/$TAG-f{}")
  done
  M() { MEASURE_KEEP_GOING=1 "$work/measure" "$@" 2>>"$log"; }
  # Delete whatever a runtime left under its root (failed iterations).
  sweep() {
    local n=$1 id
    for id in $(${RT[$n]} list -q 2>/dev/null); do
      ${RT[$n]} delete -f "$id" >/dev/null 2>&1 || true
    done
  }

  echo "== 1. run true: $RUNS sequential runs per runtime, interleaved (+5 warm-up)" >&2
  M loop "$RUNS" 5 "$res/run.tsv" \
    ${RT[hull]} run -b "$B" "$TAG-h{}" ';;' \
    ${RT[runc]} run -b "$B" "$TAG-r{}" ';;' \
    ${RT[crun]} run -b "$B" "$TAG-c{}" ';;' \
    "$work/floor" "$B/rootfs" ';;' \
    "$work/floor" "$B/rootfs" "${FLOOR_CG[@]}" ';;' \
    ${RT[hull]} run -b "$work/bundle-ptrace" "$TAG-hp{}" ';;' \
    ${RT[runc]} run -b "$work/bundle-ptrace" "$TAG-rp{}" ';;' \
    ${RT[crun]} run -b "$work/bundle-ptrace" "$TAG-cp{}"
  for n in "${NAMES[@]}"; do sweep "$n"; done

  echo "== 2. create / start / delete: $CYCLES cycles per runtime (+3 warm-up)" >&2
  for n in "${NAMES[@]}"; do
    M loop "$CYCLES" 3 "$res/cycle-$n.tsv" \
      ${RT[$n]} create -b "$B" "$TAG-y{}" ';;' \
      ${RT[$n]} start "$TAG-y{}" ';;' \
      ${RT[$n]} delete -f "$TAG-y{}"
    sweep "$n"
  done

  echo "== 3. $PAR concurrent create+start, $PAR_ROUNDS rounds per runtime" >&2
  for n in "${NAMES[@]}"; do
    : >"$res/par-$n.tsv"
    for round in $(seq "$PAR_ROUNDS"); do
      M par "$PAR" "$res/par1.tsv" \
        ${RT[$n]} create -b "$B" "$TAG-p$round-{}" ';;' \
        ${RT[$n]} start "$TAG-p$round-{}" || printf 'F\t%s\n' "$PAR" >"$res/par1.tsv"
      cat "$res/par1.tsv" >>"$res/par-$n.tsv"
      sweep "$n"
    done
  done

  echo "== 4. peak RSS of the create process, $RSS_RUNS runs per runtime" >&2
  for n in "${NAMES[@]}"; do
    : >"$res/rss-$n.tsv"
    for i in $(seq "$RSS_RUNS"); do
      if M rss "$res/rss1.tsv" ${RT[$n]} create -b "$B" "$TAG-m$i"; then
        cat "$res/rss1.tsv" >>"$res/rss-$n.tsv"
      fi
      ${RT[$n]} delete -f "$TAG-m$i" >/dev/null 2>&1 || true
    done
  done

  echo "== 5. instructions for one run" >&2
  if perf stat -x, -e instructions:u true 2>&1 | grep -q '^[0-9]'; then
    echo perf >"$res/instr-tool"
    for n in "${NAMES[@]}"; do
      perf stat -x, -e instructions:u,instructions:k -o "$res/perf-$n.csv" \
        ${RT[$n]} run -b "$B" "$TAG-i" >>"$log" 2>&1 || true
      awk -F, '$3 ~ /instructions:u/ {print $1}' "$res/perf-$n.csv" >"$res/instr-$n"
    done
  else
    # No PMU (typical in VMs): callgrind on the runtime's parent process
    # (forked children are counted in their own files; the container side
    # after pivot_root cannot write its file and is not counted).
    echo callgrind >"$res/instr-tool"
    for n in "${NAMES[@]}"; do
      mkdir -p "$res/cg-$n"
      # Only a run that succeeded under valgrind counts (valgrind 3.19 has
      # no openat2: hull's init then resolves paths by hand, see
      # rootfs/resolve.rs; runc's Go runtime crashes under it; crun cannot
      # re-execute itself from a memfd under it).
      if (cd "$res/cg-$n" && valgrind --tool=callgrind --trace-children=no \
        --callgrind-out-file="$res/cg-$n/callgrind.out.%p" \
        ${RT[$n]} run -b "$work/bundle-vg" "$TAG-i" >>"$res/valgrind-$n.log" 2>&1); then
        # The lowest pid is the process valgrind started: the parent.
        f=$(ls "$res/cg-$n"/callgrind.out.* 2>/dev/null | sort -t. -k3 -n | head -1)
        [ -z "$f" ] || awk '/^summary:|^totals:/ {print $2; exit}' "$f" >"$res/instr-$n"
      else
        echo "n/a" >"$res/instr-$n"
      fi
      sweep "$n"
    done
  fi

  echo "== 6. syscalls for one run (strace -f -c)" >&2
  for n in "${NAMES[@]}"; do
    strace -f -c -o "$res/strace-$n.txt" ${RT[$n]} run -b "$B" "$TAG-s" >>"$log" 2>&1 || true
    strace -c -o "$res/strace1-$n.txt" ${RT[$n]} run -b "$B" "$TAG-t" >>"$log" 2>&1 || true
    sweep "$n"
  done
  strace -f -c -o "$res/strace-floor.txt" "$work/floor" "$B/rootfs" >>"$log" 2>&1 || true

  echo "== 7. exec true into a running container: $EXEC_RUNS execs per runtime, interleaved, ${EXEC_GAP}s apart (+5 warm-up)" >&2
  # One `sleep` container per runtime, started once; a runtime that cannot
  # start it or exec into it is left out, with its error as the reason.
  # Each exec follows an untimed pause (EXEC_GAP): a cgroup.procs write
  # waits for an RCU grace period only if no other one ran in the last grace
  # period or two, so back to back the runtimes would speed each other up.
  cmds=()
  col=0
  : >"$res/exec-cols"
  first_err() { local m; m=$(grep -m1 . "$1" 2>/dev/null || true); echo "${m:-no error message}"; }
  for n in "${NAMES[@]}"; do
    rm -f "$res/exec-why-$n"
    if ! ${RT[$n]} run -d -b "$work/bundle-sleep" "$TAG-e" </dev/null >/dev/null 2>"$res/exec-err-$n"; then
      echo "cannot start the sleep container: $(first_err "$res/exec-err-$n")" >"$res/exec-why-$n"
    elif ! ${RT[$n]} exec "$TAG-e" true </dev/null >/dev/null 2>"$res/exec-err-$n"; then
      echo "exec failed: $(first_err "$res/exec-err-$n")" >"$res/exec-why-$n"
    else
      [ ${#cmds[@]} -eq 0 ] || cmds+=(';;')
      if [ "$EXEC_GAP" != 0 ]; then
        cmds+=(sleep "$EXEC_GAP" ';;')
        col=$((col + 1))
      fi
      cmds+=(${RT[$n]} exec "$TAG-e" true)
      col=$((col + 1))
      printf '%s\t%s\n' "$col" "$n" >>"$res/exec-cols"
    fi
  done
  if [ ${#cmds[@]} -gt 0 ]; then
    M loop "$EXEC_RUNS" 5 "$res/exec.tsv" "${cmds[@]}" </dev/null
  fi
  for n in "${NAMES[@]}"; do sweep "$n"; done
  exit 0
fi

# ---------------------------------------------------------------------------
# Outer part.
# ---------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
for t in gcc strace valgrind unshare jq "$RUNC" "$CRUN" /bin/busybox; do
  command -v "$t" >/dev/null || { echo "bench: $t is missing" >&2; exit 1; }
done

if [ -z "${HULL:-}" ]; then
  echo "== building hull (cargo build --release)" >&2
  (cd "$repo" && cargo build --release --quiet)
  HULL=${CARGO_TARGET_DIR:-$repo/target}/$(rustc -vV | sed -n 's/^host: //p')/release/hull
  case $HULL in /*) ;; *) HULL=$repo/$HULL ;; esac
fi
[ -x "$HULL" ] || { echo "bench: no hull binary at $HULL" >&2; exit 1; }

work=$(mktemp -d /tmp/hull-bench.XXXXXX)
TAG=hb$$
cleanup() {
  # Containers are gone with their roots; remove any cgroup left by a
  # failed iteration (the cgroup tree is the host's).
  find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d -name "$TAG-*" \
    -exec rmdir {} + 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

gcc -O2 -Wall -o "$work/measure" "$bench_dir/measure.c"
gcc -O2 -Wall -o "$work/floor" "$bench_dir/floor.c"

# The bundle: busybox, `true`, no terminal; config from `runc spec` (the
# oldest ociVersion of the three, which all of them accept).
mkdir -p "$work/bundle/rootfs"/{bin,proc,dev,sys,etc,tmp}
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$work/bundle/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/bundle/rootfs/etc/passwd"
echo 'root:x:0:' >"$work/bundle/rootfs/etc/group"
(cd "$work/bundle" && "$RUNC" spec)
jq '.process.terminal = false | .process.args = ["true"] | .hostname = "bench"' \
  "$work/bundle/config.json" >"$work/bundle/config.tmp"
mv "$work/bundle/config.tmp" "$work/bundle/config.json"
# For callgrind: the same bundle without process.rlimits (valgrind lets a
# process set RLIMIT_NOFILE only to its own reserved limit: EPERM).
# Its root.path names the first bundle's rootfs (a symlinked root.path is
# refused, as runc refuses it).
mkdir -p "$work/bundle-vg"
jq --arg root "$work/bundle/rootfs" 'del(.process.rlimits) | .root.path = $root' \
  "$work/bundle/config.json" >"$work/bundle-vg/config.json"
# CAP_SYS_PTRACE granted (no user namespace): hull's sealed path (it
# re-executes itself from a read-only overlayfs view of its binary, see
# README "Security model"); runc 1.1 and crun copy themselves on every run.
mkdir -p "$work/bundle-ptrace"
jq --arg r "$work/bundle/rootfs" '.root.path = $r
  | .process.capabilities.bounding += ["CAP_SYS_PTRACE"]
  | .process.capabilities.effective += ["CAP_SYS_PTRACE"]
  | .process.capabilities.permitted += ["CAP_SYS_PTRACE"]' \
  "$work/bundle/config.json" >"$work/bundle-ptrace/config.json"
# For exec: the same rootfs, running `sleep` (the container execs go into).
mkdir -p "$work/bundle-sleep"
jq --arg r "$work/bundle/rootfs" '.root.path = $r | .process.args = ["sleep", "1000000"]' \
  "$work/bundle/config.json" >"$work/bundle-sleep/config.json"

cat >"$work/env" <<EOF
HULL=$HULL
RUNC=$RUNC
CRUN=$CRUN
TAG=$TAG
RUNS=$RUNS
CYCLES=$CYCLES
PAR=$PAR
PAR_ROUNDS=$PAR_ROUNDS
RSS_RUNS=$RSS_RUNS
EXEC_RUNS=$EXEC_RUNS
EXEC_GAP=$EXEC_GAP
EOF

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# Raised priority (NICE, default -10) shields the measurements a little from
# other load; the runtimes inherit it alike.
nice -n "${NICE:--10}" unshare -m --propagation private bash "$bench_dir/run.sh" --inner "$work"
res=$work/res
# The engines run on the host as it is (not in the private namespace).
if [ "${ENGINES:-1}" != 0 ]; then
  HULL=$HULL RUNC=$RUNC MEASURE=$work/measure ROOTFS=$work/bundle/rootfs \
    ENGINE_RUNS=${ENGINE_RUNS:-20} bash "$bench_dir/engines.sh" "$res"
fi

# ---------------------------------------------------------------------------
# The table.
# ---------------------------------------------------------------------------
# stats FILE COL -> "median min max failures p90" in ms (F = failed
# iteration; p90 by nearest rank).
stats() {
  awk -v c="$2" '
    { if ($c ~ /^[0-9]+$/) v[n++] = $c / 1e6; else f++ }
    END {
      if (n == 0) { print "- - - " f+0 " -"; exit }
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      med = (n % 2) ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2
      r = int(0.9 * n); if (r < 0.9 * n) r++
      printf "%.2f %.2f %.2f %d %.2f\n", med, v[0], v[n - 1], f + 0, v[r - 1]
    }' FS='\t' "$1"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f", a / b; else printf "-" }'; }

declare -A V # V[metric,runtime] = value
# getstats PREFIX FILE COL: V[PREFIX...] from stats.
getstats() { # name file col runtime
  local r; r=($(stats "$2" "$3"))
  V[$1,$4]=${r[0]}; V[$1min,$4]=${r[1]}; V[$1max,$4]=${r[2]}; V[$1fail,$4]=${r[3]}; V[$1p90,$4]=${r[4]}
}
getstats run "$res/run.tsv" 1 hull
getstats run "$res/run.tsv" 2 runc
getstats run "$res/run.tsv" 3 crun
getstats run "$res/run.tsv" 4 floor
getstats run "$res/run.tsv" 5 floorcg
getstats runpt "$res/run.tsv" 6 hull
getstats runpt "$res/run.tsv" 7 runc
getstats runpt "$res/run.tsv" 8 crun
# CPU time of the run loop: OUT.cpu holds "user,sys" microseconds per column.
cpustats() { # file col runtime
  local t; t=$(mktemp)
  awk -F'\t' -v c="$2" '{ split($c, a, ","); if ($c ~ /,/) print (a[1] + a[2]) * 1000 "\t" a[2] * 1000; else print "F\tF" }' "$1" >"$t"
  V[cpu,$3]=$(stats "$t" 1 | cut -d' ' -f1)
  V[cpusys,$3]=$(stats "$t" 2 | cut -d' ' -f1)
  rm -f "$t"
}
cpustats "$res/run.tsv.cpu" 1 hull
cpustats "$res/run.tsv.cpu" 2 runc
cpustats "$res/run.tsv.cpu" 3 crun
cpustats "$res/run.tsv.cpu" 4 floor
cpustats "$res/run.tsv.cpu" 5 floorcg
calls() { awk '$NF == "total" {print $4; exit}' "$1" 2>/dev/null || true; }
for n in hull runc crun; do
  getstats create "$res/cycle-$n.tsv" 1 "$n"
  getstats start "$res/cycle-$n.tsv" 2 "$n"
  getstats delete "$res/cycle-$n.tsv" 3 "$n"
  V[cfail,$n]=${V[createfail,$n]}/${V[startfail,$n]}/${V[deletefail,$n]}
  V[cycle,$n]=$(awk -v a="${V[create,$n]}" -v b="${V[start,$n]}" -v c="${V[delete,$n]}" \
    'BEGIN { if (a ~ /^[0-9.]+$/) printf "%.2f", a + b + c; else print "-" }')
  getstats par "$res/par-$n.tsv" 1 "$n"
  V[parfail,$n]=$(awk -F'\t' '{f += ($2 == "" ? '"$PAR"' : $2)} END {print f + 0}' "$res/par-$n.tsv")
  V[tput,$n]=$(awk -v w="${V[par,$n]}" -v p="$PAR" 'BEGIN { if (w+0 > 0) printf "%.0f", p / (w / 1000); else print "-" }')
  V[rss,$n]=$(sort -n "$res/rss-$n.tsv" 2>/dev/null | awk '{a[n++]=$1} END {if (n) printf "%.1f", a[int((n-1)/2)]/1024; else print "-"}')
  V[rssall,$n]=$(sort -n -k2 "$res/rss-$n.tsv" 2>/dev/null | awk '{a[n++]=$2} END {if (n) printf "%.1f", a[int((n-1)/2)]/1024; else print "-"}')
  V[instr,$n]=$(awk '{ if ($1 ~ /^[0-9]+$/) printf "%.2f", $1 / 1e6; else print $1 }' "$res/instr-$n" 2>/dev/null || true)
  [ -n "${V[instr,$n]}" ] || V[instr,$n]=-
  V[sys,$n]=$(calls "$res/strace-$n.txt")
  V[sys1,$n]=$(calls "$res/strace1-$n.txt")
done
V[sys,floor]=$(calls "$res/strace-floor.txt")
# exec: exec-cols maps the columns of exec.tsv to runtimes.
while read -r col n; do
  getstats exec "$res/exec.tsv" "$col" "$n"
done < <(cat "$res/exec-cols" 2>/dev/null)
EXEC_WHY=()
for n in hull runc crun; do
  if [ -f "$res/exec-why-$n" ]; then
    V[exec,$n]=n/a; V[execp90,$n]=n/a; V[execfail,$n]=n/a
    EXEC_WHY+=("$n: exec not measured: $(cat "$res/exec-why-$n")")
  fi
done
for e in docker ctr; do
  if [ -f "$res/$e.tsv" ]; then
    getstats "$e" "$res/$e.tsv" 1 hull
    getstats "$e" "$res/$e.tsv" 2 runc
  fi
done
size() { local s; s=$(mktemp); strip -o "$s" "$1" 2>/dev/null || cp "$1" "$s"; awk -v b="$(stat -c %s "$s")" 'BEGIN { printf "%.2f", b / 1048576 }'; rm -f "$s"; }
V[size,hull]=$(size "$HULL"); V[size,runc]=$(size "$RUNC"); V[size,crun]=$(size "$CRUN")
V[size,floor]=$(size "$work/floor")
instr_tool=$(cat "$res/instr-tool")
if [ "$instr_tool" = perf ]; then instr_scope="all processes, perf"; else instr_scope="parent, callgrind"; fi

# Previous figures (hull column of the last run), if any.
last=$bench_dir/last.tsv
declare -A P
if [ -f "$last" ]; then
  while IFS=$'\t' read -r k v; do P[$k]=$v; done <"$last"
fi

row() { # label metric
  local k=$2
  printf '| %-50s | %9s | %9s | %9s | %9s | %9s | %7s | %7s | %9s |\n' "$1" \
    "${V[$k,floor]:--}" "${V[$k,floorcg]:--}" "${V[$k,hull]:--}" "${V[$k,runc]:--}" "${V[$k,crun]:--}" \
    "$(ratio "${V[$k,hull]:-}" "${V[$k,runc]:-}")" "$(ratio "${V[$k,hull]:-}" "${V[$k,crun]:-}")" \
    "${P[$k]:--}"
}
{
  echo
  echo "hull $("$HULL" --version 2>/dev/null | head -1 | awk '{print $NF}') ($(cd "$repo" && git describe --always --dirty 2>/dev/null || echo '?')), $("$RUNC" --version | head -1), $("$CRUN" --version | head -1)"
  echo "$(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  printf '| %-50s | %9s | %9s | %9s | %9s | %9s | %7s | %7s | %9s |\n' metric floor "floor+cg" hull runc crun hull/runc hull/crun "prev hull"
  printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..52})" ----------: ----------: ----------: ----------: ----------: --------: --------: ----------:
  row "run true, median ms ($RUNS runs)" run
  row "run true, min ms" runmin
  row "run true, max ms" runmax
  row "run true, failed runs" runfail
  row "run true, CPU ms user+sys (all processes), median" cpu
  row "run true, CAP_SYS_PTRACE granted, median ms" runpt
  row "  min ms" runptmin
  row "  failed runs" runptfail
  row "create, median ms ($CYCLES cycles)" create
  row "start, median ms" start
  row "delete -f, median ms" delete
  row "create+start+delete, sum of medians ms" cycle
  row "cycle failures (create/start/delete)" cfail
  row "$PAR concurrent create+start, wall ms (median of $PAR_ROUNDS)" par
  row "  failed containers (all rounds)" parfail
  row "  throughput, containers/s" tput
  row "peak RSS of create process, MB (VmHWM)" rss
  row "  ru_maxrss incl. reaped children, MB" rssall
  row "binary size stripped, MB" size
  row "exec true, median ms ($EXEC_RUNS, ${EXEC_GAP} s apart)" exec
  row "  p90 ms" execp90
  row "  failed execs" execfail
  row "docker run --rm true, median ms (${ENGINE_RUNS:-20} runs)" docker
  row "  min ms" dockermin
  row "  failed runs" dockerfail
  row "ctr run --rm true (containerd), median ms" ctr
  row "  min ms" ctrmin
  row "  failed runs" ctrfail
  row "instructions, one run, M (user; $instr_scope)" instr
  row "syscalls, one run, all processes (strace -f)" sys
  row "syscalls, one run, runtime process only" sys1
  echo
  echo "hull median = $(ratio "${V[run,hull]}" "${V[run,floor]}") x the floor, $(ratio "${V[run,hull]}" "${V[run,floorcg]}") x floor+cg (targets: hull/crun <= 0.5, hull/runc <= 0.25, hull <= 2 x floor)"
  echo "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shows up in the spread)"
  for w in "${EXEC_WHY[@]}"; do echo "$w"; done
  echo
  echo "hull, most frequent syscalls of one run (strace -f -c, calls):"
  awk 'NR > 2 && $NF != "total" && $1 !~ /^-/' "$res/strace-hull.txt" |
    sort -k4 -n -r | head -12 | awk '{printf "  %-16s %5s\n", $NF, $4}'
} | tee "$work/table.txt"

if grep -Ev '^(==|--)[0-9]+(==|--)' "$work/runtime.log" 2>/dev/null | grep -q .; then
  echo
  echo "runtime errors seen (10 most frequent, ids replaced by ID):"
  grep -Ev '^(==|--)[0-9]+(==|--)' "$work/runtime.log" | grep . | sed 's/"[^"]*"/"ID"/g' | sort | uniq -c | sort -rn | head -10
fi

# Save hull's figures for the next run's "prev hull" column.
{
  for k in run runmin runmax runfail cpu cpusys runpt runptmin runptfail create start delete cycle cfail par parfail tput rss rssall size exec execp90 execfail docker dockermin dockerfail ctr ctrmin ctrfail instr sys sys1; do
    printf '%s\t%s\n' "$k" "${V[$k,hull]:--}"
  done
} >"$last"
