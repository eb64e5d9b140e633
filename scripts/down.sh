#!/usr/bin/env bash
# Stops what scripts/up.sh started: the gateway and the workers (SIGTERM, so they drain),
# then the dev servers. Data stays in .data/dev/; remove that directory for a clean slate.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

stop_product "$ROOT/.data/dev/run"
bash scripts/servers.sh stop dev
echo "stopped: gateway, workers and the dev servers"
