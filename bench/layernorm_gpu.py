"""GPU benchmark of the fused LayerNorm / RMSNorm kernels against torch's and Liger-Kernel's (``make bench-gpu``).

For each norm (layer, rms), dtype (bf16, fp32), M in {4096, 16384} and N from 1024 to
262144, it times the forward and the backward pass (``dx``, ``dweight``, ``dbias``) of
``normcore.torch.functional`` (Triton), ``torch.nn.functional`` and, when importable,
Liger-Kernel, and prints one markdown table of effective bandwidth: GB/s and % of the
GPU's peak memory bandwidth (from the device name: H100 SXM 3.35 TB/s, H100 PCIe 2.0,
H200 4.8, A100 80GB 2.0; other GPUs show no %).

Bytes counted (the same for every contender, so GB/s compares times):
- forward: reads ``x``, ``weight`` (and ``bias``), writes ``y`` and float32 ``rstd`` (and
  ``mean`` for LayerNorm);
- backward: reads ``x``, ``dy``, ``weight``, ``rstd`` (and ``mean``), writes ``dx``,
  ``dweight`` (and ``dbias``).
Each implementation's scratch (our per-program float32 partial buffers, torch's and
Liger's own) is not counted: it differs between them and is overhead, not useful traffic.
The last column, ``max |y - torch's y|`` over the first 1024 rows, is a sanity check.

Timing: ``triton.testing.do_bench`` (median; it clears L2 between runs). The backward is
``torch.autograd.grad`` on a retained graph, so it includes the partial-sum kernel and
nothing of the forward. A configuration that does not fit in free GPU memory is skipped.
The whole run stops measuring after ``--budget`` seconds (default 270) and says so.

Without a CUDA GPU it prints that it skipped and exits 0.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time

import torch

#: (part of ``torch.cuda.get_device_name()``, peak TB/s), first match wins.
PEAK_TB_PER_S = [
    ("H200", 4.8),
    ("H100 PCIe", 2.0),
    ("H100 80GB HBM3", 3.35),
    ("H100 SXM", 3.35),
    ("A100 80GB", 2.0),
    ("A100-SXM4-80GB", 2.0),
]
M_VALUES = (4096, 16384)
N_VALUES = (1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144)
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
EPS = 1e-5
#: Rows compared with torch's output (the check column), to keep float32 copies small.
ERROR_ROWS = 1024


def peak_bandwidth(device_name: str) -> float | None:
    """Peak memory bandwidth in TB/s of a GPU by its name, or None when it is not in the list."""
    for key, tb_per_s in PEAK_TB_PER_S:
        if key in device_name:
            return tb_per_s
    return None


def counted_bytes(kind: str, m: int, n: int, element: int, backward: bool) -> int:
    """Bytes one pass must move, as the module docstring counts them."""
    params = 1 if kind == "rms" else 2
    stats = 1 if kind == "rms" else 2
    if backward:
        return 3 * m * n * element + (1 + params) * n * element + stats * m * 4
    return 2 * m * n * element + params * n * element + stats * m * 4


def _liger():
    """Liger-Kernel's functional layer_norm / rms_norm, or None when it is not installed."""
    try:
        from liger_kernel.transformers.functional import liger_layer_norm, liger_rms_norm
    except ImportError:
        return None
    return {
        "layer": lambda x, w, b: liger_layer_norm(x, w, b, EPS),
        "rms": lambda x, w, b: liger_rms_norm(x, w, EPS, in_place=False),
    }


def contenders() -> dict[str, dict]:
    import torch.nn.functional as F

    from normcore.torch import functional as ours

    found = {
        "ours": {
            "layer": lambda x, w, b: ours.layer_norm(x, x.shape[-1:], w, b, EPS, backend="triton"),
            "rms": lambda x, w, b: ours.rms_norm(x, x.shape[-1:], w, EPS, backend="triton"),
        },
        "torch": {
            "layer": lambda x, w, b: F.layer_norm(x, x.shape[-1:], w, b, EPS),
            "rms": lambda x, w, b: F.rms_norm(x, x.shape[-1:], w, EPS),
        },
    }
    liger = _liger()
    if liger is not None:
        found["liger"] = liger
    return found


def measure(fn, reference, kind: str, m: int, n: int, dtype: torch.dtype) -> tuple[float, float, float]:
    """(forward ms, backward ms, max |y - reference's y| over the first rows) of ``fn`` on fixed random inputs."""
    from triton.testing import do_bench

    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(m, n, device="cuda", dtype=dtype, generator=gen).requires_grad_()
    w = (1 + 0.1 * torch.randn(n, device="cuda", dtype=dtype, generator=gen)).requires_grad_()
    b = (0.1 * torch.randn(n, device="cuda", dtype=dtype, generator=gen)).requires_grad_() if kind == "layer" else None
    dy = torch.randn_like(x)
    inputs = [t for t in (x, w, b) if t is not None]
    with torch.no_grad():
        rows = slice(0, ERROR_ROWS)
        error = (fn(x, w, b)[rows].float() - reference(x, w, b)[rows].float()).abs().max().item()
    forward = do_bench(lambda: fn(x, w, b), warmup=10, rep=40, return_mode="median")
    out = fn(x, w, b)
    backward = do_bench(
        lambda: torch.autograd.grad(out, inputs, dy, retain_graph=True), warmup=10, rep=40, return_mode="median"
    )
    return forward, backward, error


def _launch_settings() -> dict[str, int | str]:
    from normcore.torch.triton import ops

    names = ("FORWARD_MAX_BLOCK", "BACKWARD_MAX_BLOCK", "FORWARD_PER_THREAD", "BACKWARD_PER_THREAD")
    settings: dict[str, int | str] = {name: getattr(ops, name) for name in names}
    settings[ops.MAX_BLOCK_ENV] = os.environ.get(ops.MAX_BLOCK_ENV, "unset")
    return settings


def _fits(m: int, n: int, dtype: torch.dtype) -> bool:
    """x, dy, y, dx, torch's reference y and slack, against free memory."""
    free, _ = torch.cuda.mem_get_info()
    return 7 * m * n * torch.finfo(dtype).bits // 8 < free


def _cell(ms: float | None, nbytes: int, peak: float | None) -> str:
    if ms is None:
        return "-"
    gb_per_s = nbytes / (ms * 1e-3) / 1e9
    return f"{gb_per_s:,.0f}" + ("" if peak is None else f" ({100 * gb_per_s / (peak * 1e3):.0f}%)")


def run(args: argparse.Namespace) -> int:
    if not torch.cuda.is_available():
        print("layernorm_gpu: no CUDA GPU here: skipped (nothing measured)")
        return 0
    if args.max_block:
        os.environ["NORMCORE_TRITON_MAX_BLOCK"] = str(args.max_block)
    import triton

    name = torch.cuda.get_device_name()
    peak = peak_bandwidth(name)
    found = contenders()
    names = list(found)
    print(f"# LayerNorm / RMSNorm kernels on {name} (peak {peak or 'unknown'} TB/s)")
    print(f"torch {torch.__version__}, triton {triton.__version__}, contenders: {', '.join(names)}")
    print("GB/s (% of peak); ours/torch is the time ratio torch / ours (above 1: ours faster)")
    print(f"ours: {', '.join(f'{k}={v}' for k, v in _launch_settings().items())}\n")
    print(f"| norm | dtype | M | N | pass | {' | '.join(names)} | ours/torch | max abs(y - torch) |")
    print("|" + "---|" * (len(names) + 7))
    started = time.monotonic()
    notes: list[str] = []
    for dtype_name, m, n, kind in itertools.product(args.dtypes, args.m, args.n, args.kinds):
        if time.monotonic() - started > args.budget:
            notes.append(f"stopped after {args.budget:.0f} s: the remaining configurations were not measured")
            break
        if not _fits(m, n, DTYPES[dtype_name]):
            print(f"| {kind} | {dtype_name} | {m} | {n} | - | skipped: does not fit in free memory |")
            continue
        for row in _rows(found, kind, dtype_name, m, n, peak, notes):
            print(row)
    for note in notes:
        print(f"- {note}")
    print(f"\nmeasured in {time.monotonic() - started:.0f} s")
    return 0


def _rows(found: dict, kind: str, dtype_name: str, m: int, n: int, peak: float | None, notes: list[str]) -> list[str]:
    """The forward and backward table rows of one configuration; a contender that fails adds a note."""
    dtype = DTYPES[dtype_name]
    times, error = {}, float("nan")
    for contender, fns in found.items():
        try:
            forward, backward, err = measure(fns[kind], found["torch"][kind], kind, m, n, dtype)
        except Exception as exc:  # noqa: BLE001 - a contender that cannot run a shape (Liger: N > 64K) is a note
            notes.append(f"{contender} {kind} {dtype_name} M={m} N={n}: {type(exc).__name__}: {exc}"[:300])
            forward = backward = None
        else:
            error = err if contender == "ours" else error
        times[contender] = (forward, backward)
        torch.cuda.empty_cache()
    rows = []
    for index, label in enumerate(("fwd", "bwd")):
        nbytes = counted_bytes(kind, m, n, torch.finfo(dtype).bits // 8, backward=index == 1)
        cells = " | ".join(_cell(times[c][index], nbytes, peak) for c in found)
        ours_ms, torch_ms = times["ours"][index], times["torch"][index]
        ratio = f"{torch_ms / ours_ms:.2f}x" if ours_ms and torch_ms else "-"
        rows.append(f"| {kind} | {dtype_name} | {m} | {n} | {label} | {cells} | {ratio} | {error:.2g} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=["layer", "rms"], choices=["layer", "rms"])
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--m", nargs="+", type=int, default=sorted(M_VALUES, reverse=True))
    parser.add_argument("--n", nargs="+", type=int, default=list(N_VALUES))
    parser.add_argument("--budget", type=float, default=270.0, help="seconds of measuring before it stops")
    parser.add_argument("--max-block", type=int, default=0, help="NORMCORE_TRITON_MAX_BLOCK for ours (0: default)")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
