#!/usr/bin/env bash
# One-time (and idempotent) set-up of a fresh Debian/Ubuntu machine for FARL-ROS:
# Debian packages, a virtualenv in .venv with pinned dependencies, and the five
# ROS 2 packages installed in editable mode. A second run with nothing changed
# finishes in about a second. Called by scripts/run.sh and scripts/test.sh.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FARL_VENV:-$REPO/.venv}"
STAMP="$VENV/.farl-setup-stamp"

# Debian packages: libusb for pyrealsense2 (real camera), EGL/OSMesa/GL for
# MuJoCo's offscreen renderer (sim camera, reports).
DEB_PACKAGES=(libusb-1.0-0 libegl1 libosmesa6 libgl1 libglib2.0-0)

# pip's chatter (index warnings, build-backend notices) goes to a log; it is shown only on failure.
quiet_pip() {
    local log="$VENV/setup-pip.log"
    if ! "$VENV/bin/python" -m pip "$@" >>"$log" 2>&1; then
        grep -v "is ignored: it is neither a file nor a directory" "$log" | tail -n 40 >&2
        die "pip $* failed (full log: $log)"
    fi
}

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

install_debian_packages() {
    local missing=()
    for pkg in "${DEB_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "apt-get not found; install by hand: ${missing[*]}"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
        sudo="sudo"
    fi
    say "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

find_python() {
    for candidate in "${FARL_PYTHON:-}" python3.11 python3.12 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    die "Python >= 3.11 not found (set FARL_PYTHON=/path/to/python3.11)"
}

setup_fingerprint() {
    cat "$REPO/requirements/requirements.txt" "$REPO/requirements/constraints.txt" \
        "$REPO"/src/*/setup.py "$REPO"/src/*/package.xml | sha256sum | cut -d' ' -f1
}

install_python_packages() {
    local fingerprint; fingerprint="$(setup_fingerprint)"
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$fingerprint" ] && [ -x "$VENV/bin/python" ]; then
        return 0
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        local python; python="$(find_python)"
        say "creating virtualenv $VENV with $($python --version)"
        "$python" -m venv "$VENV"
    fi
    say "installing pinned Python dependencies (first run: a few minutes)"
    quiet_pip install -q --upgrade pip
    quiet_pip install -q -r "$REPO/requirements/requirements.txt" \
        -c "$REPO/requirements/constraints.txt"
    quiet_pip install -q --no-deps --no-build-isolation \
        -e "$REPO/src/farl_common" -e "$REPO/src/farl_control" -e "$REPO/src/farl_teleop" -e "$REPO/src/farl_perception" \
        -e "$REPO/src/farl_learner"
    echo "$fingerprint" > "$STAMP"
    say "done: $VENV"
}

install_debian_packages
install_python_packages
