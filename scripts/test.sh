#!/usr/bin/env bash
# The test command of the README (and of CI): set up, then run the whole suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k watchdog
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/scripts/setup.sh"
# shellcheck source=env.sh
source "$REPO/scripts/env.sh"
# The virtualenv's bin/ first: node executables (franka_node, …) and farl resolve from it.
export VIRTUAL_ENV="$REPO/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
cd "$REPO"
exec "$REPO/.venv/bin/python" -m pytest "$@"
