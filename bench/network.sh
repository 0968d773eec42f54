#!/usr/bin/env bash
# Container networking, same run, interleaved (as root):
#   1. network setup + teardown of one container with one published port,
#      on a fresh network namespace (`unshare -n sleep`, made untimed):
#      - hullctl: `network attach` / `network detach` (hidden commands doing
#        exactly the createRuntime hook's and rm's network work: lease,
#        bridge, veth into the netns, address, route, nftables rules)
#      - netavark 1.4 invoked directly: `netavark setup|teardown NETNS` with
#        podman's JSON (static address, one port mapping, no DNS)
#      - the CNI reference plugins invoked directly, chained as libcni
#        does: bridge (+ host-local IPAM, ipMasq) then portmap on ADD,
#        portmap then bridge on DEL
#   2. `hullctl run --rm -p PORT:80 --network NET bench:1 true` vs
#      `docker run --rm -p PORT:80 --network NET bench:1 true` (a private
#      dockerd with its iptables rules, a user bridge network).
#
#   bench/network.sh            (HULLCTL=path skips the release build)
#
# Each tool has its own bridge and subnet in 10.231.0.0/16; everything is
# removed at exit (docker's and the CNI plugins' empty chains stay, as those
# tools leave them; the FORWARD policy is put back if dockerd changed it).
# Prints a table of medians (ms). Missing tools give "n/a" and a note.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
RUN_RUNS=${RUN_RUNS:-15}
if [ -z "${HULLCTL:-}" ]; then
  cargo build --release --quiet -p hullctl || exit 1
  HULLCTL="$PWD/target/$(rustc -vV | sed -n 's/^host: //p')/release/hullctl"
fi
NETAVARK=${NETAVARK:-/usr/lib/podman/netavark}
CNI_PATH=${CNI_PATH:-/usr/lib/cni}
work=$(mktemp -d /tmp/net-bench.XXXXXX)
pids=()
fwd_accept=$(iptables -w -S FORWARD 2>/dev/null | grep -qx -- '-P FORWARD ACCEPT' && echo 1)
H=("$HULLCTL" --root "$work/hullctl")
D=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  "${H[@]}" ps -a -q 2>/dev/null | xargs -r "${H[@]}" rm -f >/dev/null 2>&1
  "${H[@]}" network rm hbench >/dev/null 2>&1
  if [ ${#D[@]} -gt 0 ]; then
    "${D[@]}" ps -aq | xargs -r "${D[@]}" rm -f >/dev/null 2>&1
    "${D[@]}" network rm benchnet >/dev/null 2>&1
  fi
  [ -n "${dockerd_pid:-}" ] && kill "$dockerd_pid" 2>/dev/null && for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
  for b in nvbench0 cnibench0; do ip link del "$b" 2>/dev/null; done
  [ -n "$fwd_accept" ] && iptables -w -P FORWARD ACCEPT
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f\n", (b - a) * 1000}'; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else if (NR%2) printf "%.1f\n", a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
err() { echo "$*" >>"$work/errors.log"; }
# A process in a fresh netns; its pid once it is in there (unshare execs
# sleep in the same pid: wait until its netns is not ours).
netns() {
  unshare -n sleep 600 >/dev/null 2>&1 &
  local p=$! me; me=$(readlink /proc/self/ns/net)
  for _ in $(seq 200); do
    [ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" != "$me" ] && break
    sleep 0.01
  done
  echo "$p"
}
shopt -s nullglob

# --- hullctl ------------------------------------------------------------------
"${H[@]}" network create hbench --subnet 10.231.1.0/24 -o bridge=hbench0 >/dev/null
hullctl_one() { # i
  local p; p=$(netns)
  local t0=$EPOCHREALTIME
  "${H[@]}" network attach "b$1" --network hbench --pid "$p" -p "$((31000 + $1)):80" >/dev/null 2>>"$work/errors.log" || err "hullctl attach $1"
  local t1=$EPOCHREALTIME
  "${H[@]}" network detach "b$1" >/dev/null 2>>"$work/errors.log" || err "hullctl detach $1"
  local t2=$EPOCHREALTIME
  kill "$p"
  ms "$t0" "$t1" >>"$work/hullctl.setup"; ms "$t1" "$t2" >>"$work/hullctl.teardown"
}

# --- netavark -----------------------------------------------------------------
nv_opts() { # i
  cat <<EOF
{"container_id": "$(printf '%064x' "$1")", "container_name": "nv$1",
 "port_mappings": [{"host_ip": "", "container_port": 80, "host_port": $((32000 + $1)), "range": 1, "protocol": "tcp"}],
 "networks": {"nvbench": {"static_ips": ["10.231.2.$((2 + $1 % 250))"], "interface_name": "eth0"}},
 "network_info": {"nvbench": {"name": "nvbench", "id": "$(printf 'ab%062x' 1)", "driver": "bridge",
   "network_interface": "nvbench0", "subnets": [{"subnet": "10.231.2.0/24", "gateway": "10.231.2.1"}],
   "ipv6_enabled": false, "internal": false, "dns_enabled": false, "ipam_options": {"driver": "host-local"}}}}
EOF
}
netavark_one() { # i
  local p; p=$(netns)
  nv_opts "$1" >"$work/nv.json"
  local t0=$EPOCHREALTIME
  "$NETAVARK" --config "$work/nv" -f "$work/nv.json" setup "/proc/$p/ns/net" >/dev/null 2>>"$work/errors.log" || err "netavark setup $1"
  local t1=$EPOCHREALTIME
  "$NETAVARK" --config "$work/nv" -f "$work/nv.json" teardown "/proc/$p/ns/net" >/dev/null 2>>"$work/errors.log" || err "netavark teardown $1"
  local t2=$EPOCHREALTIME
  kill "$p"
  ms "$t0" "$t1" >>"$work/netavark.setup"; ms "$t1" "$t2" >>"$work/netavark.teardown"
}

# --- CNI ----------------------------------------------------------------------
cni_bridge_conf() {
  cat <<EOF
{"cniVersion": "1.0.0", "name": "cnibench", "type": "bridge", "bridge": "cnibench0",
 "isGateway": true, "ipMasq": true,
 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.231.3.0/24"}]], "dataDir": "$work/cni-ipam"}}
EOF
}
cni_portmap_conf() { # i [prevResult file]
  local prev='{}'
  [ -n "${2:-}" ] && prev=$(cat "$2")
  cat <<EOF
{"cniVersion": "1.0.0", "name": "cnibench", "type": "portmap", "capabilities": {"portMappings": true},
 "runtimeConfig": {"portMappings": [{"hostPort": $((33000 + $1)), "containerPort": 80, "protocol": "tcp"}]},
 "prevResult": $prev}
EOF
}
cni() { # command id netns plugin conf-file
  CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=$3 CNI_IFNAME=eth0 CNI_PATH=$CNI_PATH \
    "$CNI_PATH/$4" <"$5"
}
cni_one() { # i
  local p; p=$(netns)
  local id; id=$(printf 'c%063x' "$1")
  cni_bridge_conf >"$work/cni-bridge.json"
  local t0=$EPOCHREALTIME
  cni ADD "$id" "/proc/$p/ns/net" bridge "$work/cni-bridge.json" >"$work/cni-result.json" 2>>"$work/errors.log" || err "cni bridge add $1"
  local t1=$EPOCHREALTIME
  cni_portmap_conf "$1" "$work/cni-result.json" >"$work/cni-portmap.json"
  local t2=$EPOCHREALTIME
  cni ADD "$id" "/proc/$p/ns/net" portmap "$work/cni-portmap.json" >/dev/null 2>>"$work/errors.log" || err "cni portmap add $1"
  local t3=$EPOCHREALTIME
  cni DEL "$id" "/proc/$p/ns/net" portmap "$work/cni-portmap.json" >/dev/null 2>>"$work/errors.log" || err "cni portmap del $1"
  cni DEL "$id" "/proc/$p/ns/net" bridge "$work/cni-bridge.json" >/dev/null 2>>"$work/errors.log" || err "cni bridge del $1"
  local t4=$EPOCHREALTIME
  kill "$p"
  awk -v a="$(ms "$t0" "$t1")" -v b="$(ms "$t2" "$t3")" 'BEGIN {printf "%.2f\n", a + b}' >>"$work/cni.setup"
  ms "$t3" "$t4" >>"$work/cni.teardown"
}

have_nv=1; [ -x "$NETAVARK" ] || { echo "note: $NETAVARK missing (apt install netavark)" >&2; have_nv=; }
have_cni=1; for p in bridge host-local portmap; do [ -x "$CNI_PATH/$p" ] || have_cni=; done
[ -n "$have_cni" ] || echo "note: CNI plugins missing in $CNI_PATH (apt install containernetworking-plugins)" >&2

echo "== network setup + teardown, one -p, $RUNS containers each, interleaved (+2 warm-up)" >&2
for i in $(seq $((RUNS + 2))); do
  hullctl_one "$i"
  [ -n "$have_nv" ] && netavark_one "$i"
  [ -n "$have_cni" ] && cni_one "$i"
  if [ "$i" -eq 2 ]; then # drop the warm-up rounds
    for f in "$work"/*.setup "$work"/*.teardown; do : >"$f"; done
  fi
done

# --- run --rm -p: hullctl vs docker ------------------------------------------
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc"
cp /bin/busybox "$work/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
"${H[@]}" import "$work/rootfs.tar" bench:1 >/dev/null
if command -v dockerd >/dev/null; then
  d=$work/docker; mkdir -p "$d"
  dockerd --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/docker.pid" \
    -H "unix://$d/docker.sock" --bridge none >"$d/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 300); do docker -H "unix://$d/docker.sock" version >/dev/null 2>&1 && break; sleep 0.2; done
  if docker -H "unix://$d/docker.sock" version >/dev/null 2>&1; then
    D=(docker -H "unix://$d/docker.sock")
    "${D[@]}" import "$work/rootfs.tar" bench:1 >/dev/null
    "${D[@]}" network create --subnet 10.231.4.0/24 -o com.docker.network.bridge.name=dkbench0 benchnet >/dev/null
  else
    echo "note: dockerd did not come up" >&2
  fi
fi
echo "== run --rm -p PORT:80 bench:1 true, $RUN_RUNS runs each, interleaved (+2 warm-up)" >&2
for i in $(seq $((RUN_RUNS + 2))); do
  sfx=$([ "$i" -le 2 ] && echo warm || echo t)
  t0=$EPOCHREALTIME
  "${H[@]}" run --rm --network hbench -p "$((34000 + i)):80" bench:1 true >/dev/null 2>>"$work/errors.log" && ms "$t0" "$EPOCHREALTIME" >>"$work/run-hullctl.$sfx"
  if [ ${#D[@]} -gt 0 ]; then
    t0=$EPOCHREALTIME
    "${D[@]}" run --rm --network benchnet -p "$((35000 + i)):80" bench:1 true >/dev/null 2>>"$work/errors.log" && ms "$t0" "$EPOCHREALTIME" >>"$work/run-docker.$sfx"
  fi
done

# --- the table ----------------------------------------------------------------
med() { [ -s "$1" ] && median <"$1" || echo n/a; }
sum_med() { # setup teardown files: median of the per-container sums
  [ -s "$1" ] && [ -s "$2" ] && paste "$1" "$2" | awk '{printf "%.2f\n", $1 + $2}' | median || echo n/a
}
printf '\n%-44s %10s %10s %10s\n' "median ms (per container, one -p)" hullctl netavark CNI
for phase in setup teardown; do
  printf '%-44s %10s %10s %10s\n' "$phase" "$(med "$work/hullctl.$phase")" \
    "$(med "$work/netavark.$phase")" "$(med "$work/cni.$phase")"
done
printf '%-44s %10s %10s %10s\n' "setup + teardown" "$(sum_med "$work/hullctl.setup" "$work/hullctl.teardown")" \
  "$(sum_med "$work/netavark.setup" "$work/netavark.teardown")" "$(sum_med "$work/cni.setup" "$work/cni.teardown")"
printf '\n%-44s %10s %10s\n' "median ms" hullctl docker
printf '%-44s %10s %10s\n' "run --rm -p PORT:80 bench:1 true" "$(med "$work/run-hullctl.t")" "$(med "$work/run-docker.t")"
if [ -s "$work/errors.log" ]; then
  echo >&2; echo "errors (first 5 lines):" >&2; head -5 "$work/errors.log" >&2
fi
