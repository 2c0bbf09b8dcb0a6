"""`farl demos list|inspect|convert DIR`: what an operator recorded, and the dataset made from it."""
from __future__ import annotations

from pathlib import Path

from farl_common.errors import FarlInputError


def _folder(path: str) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise FarlInputError(folder, "demos folder not found")
    return folder


def _episodes(folder: Path, decode: bool = True):
    from farl_teleop.recording.episode_reader import episode_files, read_episode

    files = episode_files(folder)
    if not files:
        raise FarlInputError(folder, "no episode files (*.mcap) here; record some with `farl record`")
    return [read_episode(path, decode=decode) for path in files]


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def list_demos(folder: Path, episodes) -> str:
    from ..data.recorded import summarize

    rows = [["episode", "kind", "duration", "outcome", "failures", "labels", "status"]]
    totals: dict[str, list[float]] = {}
    for episode in episodes:
        s = summarize(episode)
        rows.append([s.name, s.kind, f"{s.duration_s:.1f} s", s.outcome, str(s.failures), s.labels, s.status])
        if s.status == "complete":
            totals.setdefault(s.kind, []).append(s.duration_s)
    lines = [table(rows), ""]
    summary = ", ".join(f"{len(v)} {k} ({sum(v) / 60:.1f} min)" for k, v in sorted(totals.items()))
    lines.append(f"{folder}: {summary or 'no complete episodes'}")
    for episode in episodes:
        if episode.problem:
            lines.append(f"note: {episode.problem}")
    return "\n".join(lines)


def inspect_demos(folder: Path, episodes) -> str:
    out = [list_demos(folder, episodes), ""]
    for episode in episodes:
        meta = episode.metadata
        out.append(f"{episode.path.name}: task {meta.get('task', '?')}, operator {meta.get('operator', '?')}, "
                   f"device {meta.get('device', '?')}, robot {meta.get('robot', '?')}, "
                   f"config {meta.get('config_hash', '?')}, started {meta.get('start_iso', '?')}")
        duration = max(episode.duration_s, 1e-9)
        for topic in sorted(episode.messages):
            n = episode.count(topic)
            out.append(f"    {topic:34s} {episode.types.get(topic, ''):34s} {n:6d} msgs  {n / duration:6.1f} Hz")
        size = episode.path.stat().st_size
        out.append(f"    {size / 1e6:.2f} MB ({size / 1e6 / duration * 60:.1f} MB/min)")
    return "\n".join(out)


def convert(folder: Path, episodes, task: str | None, out: str | None) -> int:
    from farl_common.task_config import load_task_config

    from ..data.format import save_dataset
    from ..data.recorded import convert_folder

    if task is None:
        tasks = sorted({e.metadata["task"] for e in episodes if e.metadata.get("task")})
        if len(tasks) != 1:
            raise FarlInputError(folder, f"episodes of {len(tasks)} tasks ({', '.join(tasks) or 'none readable'}): "
                                         "pass --task")
        task = tasks[0]
    config = load_task_config(task)
    report = convert_folder(folder, config, episodes)
    for line in report.skipped:
        print(f"skipped: {line}")
    if report.dataset is None:
        raise FarlInputError(folder, f"no episode of {task} converted ({len(report.skipped)} skipped)")
    path = Path(out) if out else folder / "dataset.npz"
    save_dataset(path, report.dataset)
    counts = report.counts()
    per_kind = ", ".join(f"{c['episodes']} {k} ({c['steps']} steps, {c['failure_episodes']} with a failure)"
                         for k, c in counts.items())
    print(f"{path}: {len(report.dataset)} steps at {config.control.rate_hz:g} Hz from {len(report.converted)} "
          f"episodes: {per_kind}; {len(report.skipped)} skipped")
    return 0


def run(action: str, folder: str, task: str | None, out: str | None) -> int:
    path = _folder(folder)
    episodes = _episodes(path)
    if action == "list":
        print(list_demos(path, episodes))
    elif action == "inspect":
        print(inspect_demos(path, episodes))
    else:
        return convert(path, episodes, task, out)
    return 0
