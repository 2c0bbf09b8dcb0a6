"""Which torch device the learner trains on: cpu (the default), cuda, or auto.

A lab's learner may run on a GPU workstation while the robot PC has none; the
choice is explicit so a run never silently lands on a different device than
the operator asked for: `cuda` without a usable GPU is an error naming the
torch build, not a quiet fall-back to the CPU (that is what `auto` is for).
"""
from __future__ import annotations

DEVICE_CHOICES = ("cpu", "cuda", "auto")


def resolve_device(choice: str, cuda_available: bool | None = None, key: str = "parameter device"):
    """torch.device for `choice`; `cuda_available` is injected by tests (None: ask torch)."""
    import torch

    from farl_common.errors import FarlInputError

    if choice not in DEVICE_CHOICES:
        raise FarlInputError(None, f"{choice!r} is not one of {', '.join(DEVICE_CHOICES)}", key=key)
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if choice == "cuda" and not cuda_available:
        build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", a CPU-only build")
        raise FarlInputError(None, f"cuda requested but torch sees no CUDA GPU ({build}); use cpu or auto, or a "
                                   "CUDA build of torch (docker: --build-arg TORCH_VARIANT=cu128)", key=key)
    return torch.device("cuda" if choice == "cuda" or (choice == "auto" and cuda_available) else "cpu")
