#!/bin/bash
# hull's OCI runtime-spec conformance suite (see conformance/hullconf.py).
#   bash conformance/run.sh              # against hull (RUNTIME=hull, the repo's binary)
#   RUNTIME=runc bash conformance/run.sh # against runc (or RUNTIME=/path/to/runtime)
#   bash conformance/run.sh --compare    # hull and runc side by side
#   bash conformance/run.sh -k hooks     # only some clauses; --list lists them
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ ! -x /bin/busybox ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
exec python3 "$here/hullconf.py" "$@"
