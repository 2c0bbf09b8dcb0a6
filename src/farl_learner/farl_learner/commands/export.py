"""`farl export <task> --model DIR --out DIR`: the ONNX folder the shield loads, parity-checked against torch.

policy.onnx, recovery.onnx, risk.onnx and manifest.json, from a pretrained
folder (`--policy DIR` takes the task policy from a fine-tuned folder instead).
Prints the largest torch-vs-ONNX Runtime difference per graph and fails (exit 1)
above the tolerance; writes export.json (config, parity, eps_safe) into --out.
"""
from __future__ import annotations

import argparse

from .common import add_budget_arguments, add_task_argument, check_task, load_config, parse_overrides, require_dir
from .finetune import MODEL_FILES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_task_argument(parser)
    parser.add_argument("--model", required=True, help="pretrained model folder (recovery policy, world model, eps)")
    parser.add_argument("--policy", default=None, help="fine-tuned folder whose task_policy.pt to export instead")
    parser.add_argument("--out", required=True, help="ONNX model folder to write")
    add_budget_arguments(parser)


def run(args: argparse.Namespace) -> int:
    task = check_task(args.task)
    cfg, _ = load_config(task, args.profile, parse_overrides(args.overrides))
    require_dir(args.model, "pretrained model", MODEL_FILES)
    if args.policy is not None:
        require_dir(args.policy, "fine-tuned model", ("task_policy.pt",))
    from ..export.parity import TOLERANCE
    from ..training.export import export

    report = export(task, args.model, args.out, cfg, policy_dir=args.policy)
    worst = max(report["parity_max_abs_diff"].values())
    for graph, diff in report["parity_max_abs_diff"].items():
        print(f"parity {graph}: max |torch - onnx| = {diff:.2e}")
    verdict = "OK" if worst <= TOLERANCE else "FAILED"
    print(f"{args.out}: exported {task} (eps_safe {report['epsilon_safe']:.4g}, H {report['horizon']}); "
          f"parity {verdict} (max {worst:.2e}, tolerance {TOLERANCE:.0e})")
    return 0 if worst <= TOLERANCE else 1
