"""Which device to run on, and how to run fast there.

"auto" picks CUDA, then Apple MPS, then the CPU. On CUDA we use bf16 autocast
(fp16 where bf16 is missing); on CPUs with AMX tiles (Intel Xeon since Sapphire
Rapids) bf16 autocast too, which oneDNN runs on the matrix units (2-core Xeon:
training step 71 -> 37 ms, inference 3.5x faster); elsewhere the CPU computes in
fp32, because bf16 without hardware support is slower. Everywhere the channels_last
memory layout, which lets cuDNN pick tensor-core kernels and oneDNN its fastest CPU
convolutions. ``NAPARI_UNET_CPU_BF16=0`` (or 1) turns CPU bf16 off (or on).
"""

from __future__ import annotations

import contextlib
import os

import torch

from ...errors import UserInputError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def pick_device(name: str = "auto") -> torch.device:
    """Resolve "auto" | "cpu" | "cuda" | "cuda:N" | "mps" to an available torch.device."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserInputError("CUDA was requested but no CUDA GPU is available; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserInputError("MPS was requested but is not available; use --device cpu or auto")
    if name != "cpu" and not name.startswith(("cuda", "mps")):
        raise UserInputError(f"unknown device {name!r}; use one of {', '.join(DEVICE_CHOICES)}")
    return torch.device(name)


def describe(device: torch.device) -> str:
    """Human-readable device name: "CPU (2 threads)", the CUDA card's name, or "MPS"."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "MPS (Apple GPU)"
    return f"CPU ({torch.get_num_threads()} threads{', bf16' if cpu_bf16() else ''})"


def configure_cpu_threads(requested: int | None = None, busy_cores: int | None = None) -> int:
    """Set torch's threads for a training round; returns how many.

    requested: that many (at most the cores we may run on). None: every core we may run on (torch
    defaults to physical cores only), capped by ``OMP_NUM_THREADS`` when set, less the cores other
    programs keep busy right now (``busy_cores``; measured when None): a thread that has to share
    its core with a busy program stalls the others at every synchronisation, which cost the CLI 13
    steps in 32 s against 256 on a quiet 2-core machine, and the niced trainer 3 steps in 15 s.
    (Results repeat exactly for the same seed and thread count: pin one for that.)
    """
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        n = os.cpu_count() or 1
    if requested:
        threads = max(1, min(int(requested), n))
        torch.set_num_threads(threads)
        return threads
    cap = os.environ.get("OMP_NUM_THREADS", "").strip()
    if cap.isdigit() and int(cap) > 0:
        n = min(n, int(cap))
    busy = busy_cores if busy_cores is not None else count_busy_cores()
    threads = max(1, n - busy)
    torch.set_num_threads(threads)
    return threads


def count_busy_cores(seconds: float = 0.1, threshold: float = 60.0) -> int:
    """Cores more than ``threshold`` % busy over ``seconds``, this process left out (0 without psutil)."""
    try:
        import psutil
    except ImportError:
        return 0
    own = psutil.Process()
    own.cpu_percent(None)
    per_core = psutil.cpu_percent(interval=seconds, percpu=True)
    mine = own.cpu_percent(None) / 100.0  # in cores
    return max(0, sum(p > threshold for p in per_core) - round(mine))


def cpu_bf16() -> bool:
    """Whether CPU work runs in bf16: AMX present (or NAPARI_UNET_CPU_BF16=1), not turned off."""
    forced = os.environ.get("NAPARI_UNET_CPU_BF16")
    if forced is not None:
        return forced.strip() not in ("", "0", "false", "no")
    try:
        return bool(torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # older torch or an unknown CPU: fp32
        return False


def autocast(device: torch.device):
    """Mixed precision on CUDA (bf16 if supported, else fp16) and on AMX CPUs (bf16); else a no-op."""
    if device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16) if cpu_bf16() else contextlib.nullcontext()
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def memory_format(device: torch.device, spatial_dims: int = 2):
    """channels_last everywhere: tensor cores on CUDA, and oneDNN's fast convolutions on the CPU
    (this machine: training step 82 -> 68 ms, inference on 384^2 tiles 285 -> 142 ms).
    spatial_dims: 2 for (N, C, H, W) tensors, 3 for (N, C, D, H, W)."""
    return torch.channels_last if spatial_dims == 2 else torch.channels_last_3d


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA/MPS out-of-memory errors and the CPU's MemoryError."""
    if isinstance(exc, (MemoryError, getattr(torch.cuda, "OutOfMemoryError", MemoryError))):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
