#!/usr/bin/env bash
# The one command for the cgroup v2 + systemd test set (run on the host as root):
#
#   bash tests/vm/check-v2.sh
#
# Builds the guest if needed, boots it once (tests/vm/run.sh), runs
# cgroup-v2-tests.sh there against hull and then against the guest's runc
# (Debian's), prints both columns side by side and, last, hull's
# `hull: N passed, M failed`. Exits 0 only if every check passed for hull.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -z "${HULL_VM_GUEST:-}" ]; then
    exec bash "$HERE/run.sh" bash tests/check-v2.sh "$@"
fi

# --- inside the guest
OUT=/tmp/check-v2
mkdir -p "$OUT"
for rt in hull runc; do
    case $rt in
        hull) bin=/share/bin/hull ;;
        runc) bin=$(command -v runc) ;;
    esac
    echo "=== $rt ($bin)"
    s=$(date +%s)
    RUNTIME=$bin bash "$HERE/cgroup-v2-tests.sh" 2>&1 | tee "$OUT/$rt.txt"
    echo "=== $rt took $(( $(date +%s) - s ))s"
done

echo
echo "=== cgroup v2 checks: hull vs runc $(runc --version | sed -n 's/^runc version //p')"
# every check name in order of first appearance, then one row each
awk '/^(PASS|FAIL) /{n=$2; sub(/:$/,"",n); if(!(n in seen)){seen[n]=1; print n}}' "$OUT/hull.txt" "$OUT/runc.txt" > "$OUT/names"
res() { # FILE NAME -> PASS/FAIL/-
    awk -v n="$2" '($1=="PASS"||$1=="FAIL"){m=$2; sub(/:$/,"",m); if(m==n){print $1; f=1; exit}} END{if(!f)print "-"}' "$1"
}
printf '%-36s %-5s %-5s\n' check hull runc
while read -r n; do
    printf '%-36s %-5s %-5s\n' "$n" "$(res "$OUT/hull.txt" "$n")" "$(res "$OUT/runc.txt" "$n")"
done < "$OUT/names"
hp=$(grep -c '^PASS ' "$OUT/hull.txt"); hf=$(grep -c '^FAIL ' "$OUT/hull.txt")
rp=$(grep -c '^PASS ' "$OUT/runc.txt"); rf=$(grep -c '^FAIL ' "$OUT/runc.txt")
echo "runc: $rp passed, $rf failed"
echo "hull: $hp passed, $hf failed"
[ "$hf" = 0 ] && [ "$hp" -gt 0 ]
