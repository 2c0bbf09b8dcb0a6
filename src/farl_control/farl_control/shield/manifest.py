"""manifest.json of a model folder: what the ONNX files are, for which task, and their checksums.

A model folder holds policy.onnx (task policy: mean action and log-std),
recovery.onnx (recovery mean action), risk.onnx (world-model rollout of the
task policy -> C_H and predicted hand path) and this manifest. The shield
loads a folder only through `load_manifest`, which refuses - with one line
naming the file - a folder for another task, a file whose bytes changed since
export, or a graph whose inputs/outputs do not have the manifest's shapes.

Lives in farl_control because the robot side (the shield) reads model folders
with onnxruntime only: no torch, no farl_learner import.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from farl_common.errors import FarlInputError
from farl_common.json_files import read_json_object

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Meta-World's 39-d observation (FailureBench): name -> [start, stop).
METAWORLD_OBS_LAYOUT = {
    "hand_pos": [0, 3], "gripper": [3, 4], "obj1_pos": [4, 7], "obj1_quat": [7, 11], "obj2": [11, 18],
    "previous_frame": [18, 36], "goal_pos": [36, 39],
}
# Inputs and outputs of each graph; "B" is the batch axis, letters resolve from the manifest.
GRAPHS = {
    "policy": {"inputs": {"obs": ["B", "obs_dim"]},
               "outputs": {"action_mean": ["B", "action_dim"], "log_std": ["action_dim"]}},
    "recovery": {"inputs": {"obs": ["B", "obs_dim"]}, "outputs": {"action_mean": ["B", "action_dim"]}},
    "risk": {"inputs": {"obs": ["B", "obs_dim"], "task_action": ["B", "action_dim"]},
             "outputs": {"risk": ["B"], "step_prob": ["B", "H+1"], "hand_path": ["B", "H+1", "hand_dim"]}},
}


def hand_dim(obs_dim: int) -> int:
    """The end-effector position is obs[0:3] (fewer dims for toy tasks with smaller observations)."""
    return min(3, obs_dim)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Manifest:
    folder: Path
    task: str
    obs_dim: int
    action_dim: int
    action_low: list[float]
    action_high: list[float]
    horizon: int
    gamma_risk: float
    epsilon_safe: float
    models: dict[str, dict[str, Any]]
    obs_layout: dict[str, list[int]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    recovery_hold_ticks: int = 0  # pi_rec keeps control this long after a trigger (absent: 0, the paper's rule)

    def path(self, name: str) -> Path:
        return self.folder / self.models[name]["file"]

    def session(self, name: str, threads: int = 1):
        """An onnxruntime session for graph `name`, single-threaded by default (control-loop friendly)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        return ort.InferenceSession(str(self.path(name)), options, providers=["CPUExecutionProvider"])


def write_manifest(folder: str | Path, task: str, obs_dim: int, action_dim: int, horizon: int, gamma_risk: float,
                   epsilon_safe: float, versions: dict[str, int], obs_layout: dict[str, list[int]] | None = None,
                   action_low: list[float] | None = None, action_high: list[float] | None = None,
                   extra: dict[str, Any] | None = None, recovery_hold_ticks: int = 0) -> Path:
    """Checksum the folder's ONNX files and write manifest.json atomically (last, so it vouches for them)."""
    folder = Path(folder)
    models = {}
    for name, graph in GRAPHS.items():
        file = folder / f"{name}.onnx"
        if file.is_file():
            models[name] = {"file": file.name, "sha256": sha256_of(file), "version": int(versions.get(name, 1)),
                            **graph}
    manifest = {
        "format_version": FORMAT_VERSION,
        "task": task,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "obs_dim": obs_dim,
        "obs_layout": obs_layout or (METAWORLD_OBS_LAYOUT if obs_dim == 39 else {"hand_pos": [0, hand_dim(obs_dim)]}),
        "action_dim": action_dim,
        "action_low": action_low or [-1.0] * action_dim,
        "action_high": action_high or [1.0] * action_dim,
        "horizon": horizon,
        "gamma_risk": gamma_risk,
        "epsilon_safe": epsilon_safe,
        "recovery_hold_ticks": int(recovery_hold_ticks),
        "models": models,
        "extra": extra or {},
    }
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(folder / MANIFEST)
    return folder / MANIFEST


def load_manifest(folder: str | Path, expect_task: str | None = None, expect_obs_dim: int | None = None,
                  expect_action_dim: int | None = None, check_graphs: bool = True) -> Manifest:
    """Read and verify a model folder; any problem is a FarlInputError naming the file."""
    folder = Path(folder)
    path = folder / MANIFEST
    data = read_json_object(path, missing="model manifest not found (export the models first)")
    if data.get("format_version") != FORMAT_VERSION:
        raise FarlInputError(path, f"format_version {data.get('format_version')!r}; this code reads {FORMAT_VERSION}",
                             key="format_version")
    required = {"task": str, "obs_dim": int, "action_dim": int, "horizon": int, "gamma_risk": (int, float),
                "epsilon_safe": (int, float), "models": dict, "action_low": list, "action_high": list}
    for key, kind in required.items():
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
            raise FarlInputError(path, f"missing or of the wrong type ({data.get(key)!r})", key=key)
    if expect_task is not None and data["task"] != expect_task:
        raise FarlInputError(path, f"models are for task {data['task']!r}, not {expect_task!r}", key="task")
    for key, expected in (("obs_dim", expect_obs_dim), ("action_dim", expect_action_dim)):
        if expected is not None and data[key] != expected:
            raise FarlInputError(path, f"is {data[key]}, expected {expected}", key=key)
    hold = data.get("recovery_hold_ticks", 0)
    if not isinstance(hold, int) or isinstance(hold, bool) or hold < 0:
        raise FarlInputError(path, f"must be a whole number of ticks >= 0, got {hold!r}", key="recovery_hold_ticks")
    for bounds in ("action_low", "action_high"):
        if len(data[bounds]) != data["action_dim"]:
            raise FarlInputError(path, f"has {len(data[bounds])} entries for action_dim {data['action_dim']}",
                                 key=bounds)
    manifest = Manifest(folder=folder, task=data["task"], obs_dim=data["obs_dim"], action_dim=data["action_dim"],
                        action_low=[float(v) for v in data["action_low"]],
                        action_high=[float(v) for v in data["action_high"]], horizon=data["horizon"],
                        gamma_risk=float(data["gamma_risk"]), epsilon_safe=float(data["epsilon_safe"]),
                        models=data["models"], obs_layout=data.get("obs_layout", {}), extra=data.get("extra", {}),
                        recovery_hold_ticks=hold)
    for name, entry in data["models"].items():
        if name not in GRAPHS or not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise FarlInputError(path, "unknown model or no file name", key=f"models.{name}")
        file = folder / entry["file"]
        if not file.is_file():
            raise FarlInputError(file, "model file listed in manifest.json is missing")
        if sha256_of(file) != entry.get("sha256"):
            raise FarlInputError(file, "sha256 differs from manifest.json (file changed or corrupt); re-export")
        if check_graphs:
            _check_graph(manifest, name, file)
    return manifest


def _check_graph(manifest: Manifest, name: str, file: Path) -> None:
    """The graph's declared inputs/outputs have the manifest's names and sizes."""
    try:
        session = manifest.session(name)
    except Exception as error:  # noqa: BLE001 - onnxruntime raises several types for a bad file
        raise FarlInputError(file, f"not a loadable ONNX model ({str(error).splitlines()[0][:120]})") from None
    sizes = {"obs_dim": manifest.obs_dim, "action_dim": manifest.action_dim, "H+1": manifest.horizon + 1,
             "hand_dim": hand_dim(manifest.obs_dim)}
    actual = {arg.name: arg.shape for arg in session.get_inputs() + session.get_outputs()}
    for io in ("inputs", "outputs"):
        for arg, shape in GRAPHS[name][io].items():
            if arg not in actual:
                raise FarlInputError(file, f"has no {io[:-1]} {arg!r}")
            want = [sizes.get(d, d) for d in shape]
            got = actual[arg]
            if len(got) != len(want) or any(w != "B" and g != w for w, g in zip(want, got)):
                raise FarlInputError(file, f"{arg} has shape {got}, manifest implies {want}")
