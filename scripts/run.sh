#!/usr/bin/env bash
# The main job of the README: set up, then run the Fragile Push Wall stack in
# simulation and write a report. Extra arguments go to `farl run`, e.g.
#   scripts/run.sh fragile_push_wall shield:=false
set -euo pipefail
# shellcheck source=prepare.sh
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"
exec "$REPO/.venv/bin/farl" run "$@"
