"""The end-of-run report of the main job: plots and a Markdown summary.

Input is what the run recorded from the ROS graph: one JSON object per episode
event (/farl/episode/events), per shield decision (risk, eps, source, policy
version; /farl/shield/decision) and per policy announcement. Output: PNG plots
and report.md beside them, so an operator can read how the run went without
any tooling: returns, failures, risk against eps_safe, trigger rate, versions.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np

VERDICTS = ("success", "failure", "timeout", "aborted")


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a crash: the rest of the log still counts
    return rows


def episode_table(events: Iterable[dict]) -> list[dict]:
    return [e for e in events if e.get("type") in VERDICTS]


def summarize(events: list[dict], decisions: list[dict], policies: list[dict]) -> dict:
    episodes = episode_table(events)
    returns = [float(e.get("return", 0.0)) for e in episodes]
    sources = [d.get("source") for d in decisions]
    latencies = np.array([float(d["latency_ms"]) for d in decisions if "latency_ms" in d])
    return {
        "episodes": len(episodes),
        "successes": sum(e["type"] == "success" for e in episodes),
        "failure_episodes": sum(e.get("failure_pairs", 0) > 0 for e in episodes),
        "failure_pairs": int(sum(e.get("failure_pairs", 0) for e in episodes)),
        "timeouts": sum(e["type"] == "timeout" for e in episodes),
        "interventions": int(sum(e.get("interventions", 0) for e in episodes)),
        "shield_triggers": int(sum(s == "recovery" for s in sources)),
        "decisions": len(decisions),
        "trigger_rate": float(np.mean([s == "recovery" for s in sources])) if sources else 0.0,
        "returns": returns,
        "mean_return": float(np.mean(returns)) if returns else None,
        "policy_versions": [int(p.get("version", 0)) for p in policies],
        "shield_latency_ms": ({"p50": float(np.percentile(latencies, 50)), "p99": float(np.percentile(latencies, 99))}
                              if latencies.size else None),
    }


def _plots(out: Path, episodes: list[dict], decisions: list[dict]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    idx = np.arange(1, len(episodes) + 1)
    if episodes:
        fig, axes = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
        axes[0].plot(idx, [e.get("return", 0.0) for e in episodes], marker="o")
        axes[0].set_ylabel("episode return")
        axes[0].grid(alpha=0.3)
        axes[1].bar(idx, [e.get("failure_pairs", 0) for e in episodes], color="tab:red", label="failure pairs")
        axes[1].plot(idx, np.cumsum([e.get("failure_pairs", 0) > 0 for e in episodes]), color="k",
                     label="failure episodes (cumulative)")
        axes[1].set_xlabel("episode")
        axes[1].legend()
        axes[1].grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "episodes.png", dpi=110)
        plt.close(fig)
        files.append("episodes.png")
    if decisions:
        t = np.arange(len(decisions))
        risk = np.array([float(d.get("risk", 0.0)) for d in decisions])
        eps = np.array([float(d.get("epsilon", 0.0)) for d in decisions])
        fired = np.array([d.get("source") == "recovery" for d in decisions])
        versions = np.array([int(d.get("policy_version", 0)) for d in decisions])
        fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
        axes[0].plot(t, risk, lw=0.8, label="C_H")
        axes[0].plot(t, eps, "k--", lw=1, label="eps_safe")
        axes[0].scatter(t[fired], risk[fired], s=6, color="tab:red", label="recovery")
        axes[0].set_ylabel("risk")
        axes[0].legend(loc="upper right")
        window = max(1, len(decisions) // 50)
        rate = np.convolve(fired.astype(float), np.ones(window) / window, mode="same")
        axes[1].plot(t, rate, color="tab:red")
        axes[1].set_ylabel(f"trigger rate ({window}-tick mean)")
        axes[2].step(t, versions, where="post")
        axes[2].set_ylabel("policy version")
        axes[2].set_xlabel("control tick")
        for ax in axes:
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "shield.png", dpi=110)
        plt.close(fig)
        files.append("shield.png")
    return files


def write_report(run_dir: str | Path, title: str, settings: dict) -> dict:
    """Read the run's logs, write plots, report.md and summary.json; return the summary."""
    out = Path(run_dir)
    events = read_jsonl(out / "events.jsonl")
    decisions = read_jsonl(out / "decisions.jsonl")
    policies = read_jsonl(out / "policies.jsonl")
    summary = summarize(events, decisions, policies)
    summary["settings"] = settings
    plots = _plots(out, episode_table(events), decisions)
    lines = [f"# {title}", "", "| | |", "|---|---|"]
    for key in ("episodes", "successes", "failure_episodes", "failure_pairs", "timeouts", "interventions",
                "shield_triggers", "trigger_rate", "mean_return"):
        value = summary[key]
        lines.append(f"| {key.replace('_', ' ')} | {value:.3f} |" if isinstance(value, float)
                     else f"| {key.replace('_', ' ')} | {value} |")
    lat = summary["shield_latency_ms"]
    if lat:
        lines.append(f"| shield latency p50 / p99 | {lat['p50']:.2f} / {lat['p99']:.2f} ms |")
    lines.append(f"| policy versions announced | {len(summary['policy_versions'])} |")
    lines += ["", "## Settings", "", "```json", json.dumps(settings, indent=2), "```", ""]
    lines += [f"![{p}]({p})" for p in plots]
    lines += ["", "## Episodes", "", "| # | verdict | steps | return | failure pairs | triggers | policy |",
              "|---|---|---|---|---|---|---|"]
    for i, e in enumerate(episode_table(events), 1):
        lines.append(f"| {i} | {e['type']} | {e.get('steps', '')} | {e.get('return', 0.0):.2f} | "
                     f"{e.get('failure_pairs', 0)} | {e.get('shield_triggers', 0)} | {e.get('policy_version', '')} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
