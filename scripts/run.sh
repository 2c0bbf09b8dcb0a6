#!/usr/bin/env bash
# The main job of the README: set up, then run the Fragile Push Wall stack in
# simulation and write a report. Extra arguments go to `farl run`, e.g.
#   scripts/run.sh fragile_push_wall robot:=sim
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/scripts/setup.sh"
# shellcheck source=env.sh
source "$REPO/scripts/env.sh"
# The virtualenv's bin/ first: node executables (franka_node, …) and farl resolve from it.
export VIRTUAL_ENV="$REPO/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
cd "$REPO"
exec "$REPO/.venv/bin/farl" run "$@"
