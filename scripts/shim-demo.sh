#!/usr/bin/env bash
# Demo of containerd-shim-hull-v2: a private containerd with the shim on
# its PATH, a busybox image, one `ctr run --runtime io.containerd.hull.v2`.
# As root; installs Debian's containerd and busybox-static if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
for p in containerd busybox-static; do
  dpkg -s "$p" >/dev/null 2>&1 || apt-get install -y -qq "$p"
done
DEMO=1 exec bash bench/shim.sh
