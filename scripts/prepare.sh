# Sourced by run.sh and test.sh: set up (idempotent, ~0.05 s when nothing changed),
# then the stack's environment with the virtualenv's bin/ first, so node
# executables (franka_node, …) and `farl` resolve from it.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$REPO/scripts/setup.sh"
# shellcheck source=env.sh
source "$REPO/scripts/env.sh"
export VIRTUAL_ENV="$REPO/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
cd "$REPO"
