"""Compile the kernels for a Hopper GPU (sm_90) with the launch configurations the host picks; no GPU needed.

The interpreter runs the kernels' Python, not Triton's compiler: a construct the GPU
backend rejects (a loop-carried value changing type, a non-constexpr shape) passes there.
This script, run in a process without ``TRITON_INTERPRET``, lowers every kernel to a
cubin with ``triton.compile`` for ``cuda:90`` and prints one line per kernel. Integer
arguments and pointers are marked 16-divisible, as a launch with aligned tensors and
``N % 16 == 0`` specializes them.
"""

from __future__ import annotations

import sys

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from normcore.torch.triton import kernels, ops

TARGET = GPUTarget("cuda", 90, 32)
SM_COUNT = 132
FLOAT_ARGS = {"eps"}
#: Upper-case arguments that are integers, not pointers.
SIZE_ARGS = {"M", "N", "P"}
#: Integer arguments that are not 16-divisible in general (row counts).
UNALIGNED_INTS = {"M", "P", "rows_per_program"}
FLOAT32_POINTERS = {"MEAN", "RSTD", "C1", "C2", "DW_PARTIAL", "DB_PARTIAL", "PARTIAL"}


def compile_kernel(fn, dtype: str, constexprs: dict, num_warps: int) -> str:
    """Compile ``fn`` with tensor pointers of ``dtype`` (``"bf16"``, ``"fp32"``); returns a summary line."""
    signature, attrs = {}, {}
    for index, name in enumerate(fn.arg_names):
        if name in constexprs:
            signature[name] = "constexpr"
        elif name in FLOAT_ARGS:
            signature[name] = "fp32"
        elif name.isupper() and name not in SIZE_ARGS:
            signature[name] = "*fp32" if name in FLOAT32_POINTERS else f"*{dtype}"
            attrs[(index,)] = [["tt.divisibility", 16]]
        else:
            signature[name] = "i32"
            if name not in UNALIGNED_INTS:
                attrs[(index,)] = [["tt.divisibility", 16]]
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs)
    compiled = triton.compile(source, target=TARGET, options={"num_warps": num_warps})
    if not compiled.asm.get("cubin"):
        raise RuntimeError(f"{fn.__name__}: no cubin")
    shown = {k: v for k, v in constexprs.items() if k.isupper() and v is not None}
    return f"{fn.__name__} {dtype} warps={num_warps} {shown}"


def compile_config(kind: str, dtype: str, n: int, m: int = 16384, residual: bool = False) -> list[str]:
    """The forward, backward and partial-sum kernels for ``m`` rows of ``n`` as the host would launch them."""
    rms = kind == "rms"
    flags = {"RMS": rms, "HAS_WEIGHT": True, "HAS_BIAS": not rms, "HAS_RESIDUAL": residual}
    if not residual:
        flags.update(RESIDUAL=None, RESIDUAL_OUT=None)
    forward = ops.forward_launch(m, n)
    fwd_kernel = kernels.norm_fwd_split_kernel if forward.split else kernels.norm_fwd_tile_kernel
    fwd_constexprs = dict(flags, BLOCK_N=forward.block)
    if not forward.split:
        fwd_constexprs["ROWS"] = forward.rows
    lines = [compile_kernel(fwd_kernel, dtype, fwd_constexprs, forward.num_warps)]
    backward = ops.backward_launch(m, n, SM_COUNT)
    bwd = {"RMS": rms, "HAS_WEIGHT": True, "HAS_BIAS": not rms, "HAS_DRESIDUAL_OUT": residual}
    if not residual:
        bwd["DRESIDUAL_OUT"] = None
    if backward.split:
        coefficients = {"RMS": rms, "HAS_WEIGHT": True, "BLOCK_N": backward.block}
        lines.append(compile_kernel(kernels.norm_bwd_coefficients_kernel, dtype, coefficients, backward.num_warps))
    bwd.update(SPLIT=backward.split, ROWS=backward.rows, BLOCK_N=backward.block)
    lines.append(compile_kernel(kernels.norm_bwd_kernel, dtype, bwd, backward.num_warps))
    lines.append(compile_kernel(kernels.sum_partials_kernel, dtype, {"BLOCK_N": ops.SUM_BLOCK}, 4))
    return lines


CONFIGS = [
    ("layer", "bf16", 1000, False),
    ("layer", "bf16", 4096, True),
    ("layer", "bf16", 32768, False),
    ("layer", "bf16", 262144, True),
    ("rms", "bf16", 2048, False),
    ("rms", "bf16", 131072, False),
    ("layer", "fp32", 8192, False),
    ("rms", "fp32", 65536, True),
]


def main() -> int:
    if ops.interpreted():
        print("TRITON_INTERPRET=1 is set: the kernels are interpreted and cannot be compiled", file=sys.stderr)
        return 2
    for kind, dtype, n, residual in CONFIGS:
        for line in compile_config(kind, dtype, n, residual=residual):
            print(f"{kind} N={n} residual={residual}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
