#!/usr/bin/env bash
# hull's Rust integration tests, run as root inside the guest against the
# release hull (HULL_TEST_RUNTIME=/share/bin/hull):
#
#   bash tests/vm/cargo-tests.sh                 # cgroups, cgroups_v2_tree, lifecycle, exec
#   bash tests/vm/cargo-tests.sh cgroups exec    # chosen test targets
#
# Builds the test binaries on the host (CARGO_TARGET_DIR=/tmp/t-vm, debug),
# ships them in /share/extra, runs each in the guest (one boot).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -n "${HULL_VM_GUEST:-}" ]; then
    rc=0
    for t in /share/extra/*; do
        echo "=== $(basename "$t")"
        HULL_TEST_RUNTIME=/share/bin/hull "$t" --test-threads=1 --color never 2>&1 || rc=1
    done
    exit $rc
fi
REPO=$(cd "$HERE/../.." && pwd)
TARGET=${CARGO_TARGET_DIR_VM:-/tmp/t-vm}
command -v jq >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
[ $# -gt 0 ] || set -- cgroups cgroups_v2_tree lifecycle exec
args=()
for t in "$@"; do args+=(--test "$t"); done
echo "[cargo-tests] cargo test --no-run ${args[*]}" >&2
bins=$(cd "$REPO" && CARGO_TARGET_DIR="$TARGET" cargo test --no-run "${args[@]}" --message-format=json 2>/dev/null |
    jq -r 'select(.reason=="compiler-artifact" and .profile.test==true and .executable!=null) | .executable')
dir=$(mktemp -d /tmp/hull-vm-tests.XXXXXX)
trap 'rm -rf "$dir"' EXIT
for b in $bins; do cp "$b" "$dir/$(basename "$b" | sed 's/-[0-9a-f]*$//')"; done
rc=0
HULL_VM_EXTRA="$(ls -d "$dir"/*)" bash "$HERE/run.sh" bash tests/cargo-tests.sh || rc=$?
exit $rc
