"""Where the stack's config/ and launch/ folders are.

One lookup for every entry point, so a source checkout (pip -e), a colcon
install (share/farl_control/) and an explicit FARL_CONFIG_DIR all work the same.
"""
from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[3]


def repo_root() -> Path | None:
    """The source checkout this package runs from, if it runs from one."""
    return _REPO_ROOT if (_REPO_ROOT / "config").is_dir() and (_REPO_ROOT / "src").is_dir() else None


def _share_dir() -> Path | None:
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("farl_control"))
    except Exception:  # not in an ament install: the source checkout is used
        return None


def config_dir() -> Path:
    """The config/ folder: $FARL_CONFIG_DIR, else the checkout's, else the installed share."""
    if env := os.environ.get("FARL_CONFIG_DIR"):
        return Path(env)
    if (root := repo_root()) is not None:
        return root / "config"
    if (share := _share_dir()) is not None and (share / "config").is_dir():
        return share / "config"
    raise FileNotFoundError("cannot find the FARL config/ folder; set FARL_CONFIG_DIR")


def resolve_config_path(path: str | Path) -> Path:
    """A path as given if absolute or existing, else relative to config_dir()."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return config_dir() / p


def task_config_path(task: str) -> Path:
    """config/tasks/<task>.yaml."""
    return config_dir() / "tasks" / f"{task}.yaml"


def stack_config_path(task: str) -> Path:
    """config/stacks/<task>.yaml: the node table of a task's stack."""
    return config_dir() / "stacks" / f"{task}.yaml"
