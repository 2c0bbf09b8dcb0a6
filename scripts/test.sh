#!/usr/bin/env bash
# The test command of the README (and of CI): set up, then run the whole suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -k watchdog
set -euo pipefail
# shellcheck source=prepare.sh
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"
exec "$REPO/.venv/bin/python" -m pytest "$@"
