"""Host side of the fused LayerNorm / RMSNorm kernels, registered as ``torch.library`` ops.

Two ops, ``normcore::norm_forward`` and ``normcore::norm_backward``, are ``triton_op``\\ s
whose kernels are launched through ``wrap_triton``, so ``torch.compile`` traces into them;
the backward op is the forward op's autograd formula (``register_autograd``). They work on
a ``(M, N)`` view: the caller flattens the leading dimensions into rows.

Forward
    ``N`` up to the forward block (32768 elements): each program holds ``ROWS`` whole rows
    in registers (``ROWS > 1`` when ``N`` is small, so a program still moves a few thousand
    elements), reads ``x`` (and ``residual``) once and writes ``y`` (and the residual sum)
    once. Longer rows (the split-row path, up to any ``N``): one program per row walks
    it in chunks of the block size twice. The first pass reads each chunk, adds and stores
    the residual, and merges the chunk's count, mean and sum of squared deviations into
    the row's with Chan's parallel formula (exact in the same sense as a two-pass variance:
    no large sum of squares minus a large square of sums). The second pass reads the row
    again, normalizes and stores ``y``. The second read follows the first within the same
    program, so it comes from L2 while the rows in flight fit there.

Backward
    ``dx = rstd * (wdy - xhat * c1 - c2)`` with ``wdy = weight * dy``, ``c1 = mean(xhat *
    wdy)``, ``c2 = mean(wdy)`` (RMSNorm: no ``c2``, ``xhat = x * rstd``). A persistent grid
    of ``P`` row programs (about one resident wave of the GPU) times ``C`` column blocks:
    program ``(p, c)`` owns a contiguous range of rows and one column block, computes
    ``dx`` there and keeps ``sum dy * xhat`` and ``sum dy`` over its rows in float32
    registers, then writes them to row ``p`` of two ``(P, N)`` float32 partial buffers.
    Rows up to the backward block (8192 elements, smaller than the forward one because a
    program also holds the two accumulators) use ``C = 1`` and reduce ``c1`` / ``c2`` in
    the same program: ``x`` and ``dy`` are read once. Longer rows (split-row path) first
    run a per-row kernel for ``c1`` / ``c2`` (one extra read of ``x`` and ``dy``), then the
    same kernel over ``C = cdiv(N, block)`` column blocks.

Deterministic ``dweight`` / ``dbias``
    Every program writes its whole partial row, zeros when it owns no rows (``M = 0``, or
    ``M`` smaller than ``P``), so no buffer element is left uninitialised or written twice;
    a second kernel adds the ``P`` rows of each column in ascending order in float32 and
    casts once. No atomics, no locks: two runs give the same bits. ``P`` depends on the
    device (its SM count) and on ``M``, ``N``, not on timing.

Dtypes
    ``x``, ``weight``, ``bias``, ``residual`` may be float32, float16 or bfloat16 (mixed
    too); every value is converted to float32 on load. ``mean`` / ``rstd`` are float32.
    ``y`` is stored in ``out_dtype``, the residual sum in ``residual_dtype``, ``dx`` in the
    dtype of the normalized input (``x``, or the residual sum), ``dweight`` / ``dbias`` in
    the parameter's dtype.

``NORMCORE_TRITON_MAX_BLOCK`` (a power of two, at least 16) lowers both block caps, e.g.
to exercise the split-row path with small rows in the Triton interpreter.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import torch
import triton
from torch.library import triton_op, wrap_triton
from triton.runtime.interpreter import InterpretedFunction

from normcore.torch.triton import kernels

#: Largest row (elements) the forward kernel holds in registers; also its split chunk.
FORWARD_MAX_BLOCK = 32768
#: Largest row (elements) the backward kernel holds with its two accumulators.
BACKWARD_MAX_BLOCK = 8192
#: Elements a forward / backward program aims to hold when rows are short.
FORWARD_TILE = 4096
BACKWARD_TILE = 2048
#: Elements per thread a forward / backward block aims at (sets num_warps, up to 32).
FORWARD_PER_THREAD = 16
BACKWARD_PER_THREAD = 8
#: Columns per program of the partial-sum kernel.
SUM_BLOCK = 1024
#: Row programs of the backward grid under the Triton interpreter (no SM count on a CPU).
INTERPRETER_PROGRAMS = 4
#: Dtypes the kernels load and store.
SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MAX_BLOCK_ENV = "NORMCORE_TRITON_MAX_BLOCK"


def interpreted() -> bool:
    """Whether the kernels were built for Triton's CPU interpreter (``TRITON_INTERPRET=1`` at import)."""
    return isinstance(kernels.norm_fwd_tile_kernel, InterpretedFunction)


def block_cap() -> int | None:
    """The block cap from ``NORMCORE_TRITON_MAX_BLOCK``, or None when it is not set."""
    text = os.environ.get(MAX_BLOCK_ENV)
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 16 or value & (value - 1):
        raise ValueError(f"{MAX_BLOCK_ENV}={text!r}: expected a power of two of at least 16, e.g. 4096")
    return value


def _capped(block: int) -> int:
    cap = block_cap()
    return block if cap is None else min(block, cap)


def _warps(elements: int, per_thread: int) -> int:
    """Warps giving each thread about ``per_thread`` elements of a block (1 to 32, a power of two)."""
    return max(1, min(32, triton.next_power_of_2(max(1, elements // (32 * per_thread)))))


def _rows_per_tile(block: int, tile: int, m: int) -> int:
    """Rows a program handles together: ``tile`` elements' worth, at most the (padded) row count."""
    return max(1, min(tile // block, triton.next_power_of_2(max(m, 1))))


@dataclass(frozen=True)
class ForwardLaunch:
    """How :func:`norm_forward` runs on ``(m, n)``: ``split`` rows chunk by chunk, ``rows`` per program."""

    split: bool
    rows: int
    block: int
    num_warps: int
    programs: int


@dataclass(frozen=True)
class BackwardLaunch:
    """How :func:`norm_backward` runs: ``programs`` x ``column_blocks`` programs, ``rows_per_program`` each."""

    split: bool
    rows: int
    block: int
    num_warps: int
    column_blocks: int
    programs: int
    rows_per_program: int


def forward_launch(m: int, n: int) -> ForwardLaunch:
    """The forward kernel, block and grid for ``m`` rows of ``n`` elements."""
    block = triton.next_power_of_2(n)
    max_block = _capped(FORWARD_MAX_BLOCK)
    if block > max_block:
        return ForwardLaunch(True, 1, max_block, _warps(max_block, FORWARD_PER_THREAD), m)
    rows = _rows_per_tile(block, FORWARD_TILE, m)
    return ForwardLaunch(False, rows, block, _warps(rows * block, FORWARD_PER_THREAD), triton.cdiv(m, rows))


def backward_launch(m: int, n: int, sm_count: int | None) -> BackwardLaunch:
    """The backward grid for ``m`` rows of ``n`` on a GPU of ``sm_count`` SMs (None: the interpreter).

    The grid aims at one resident wave, 32 warps per SM, split between row programs and
    column blocks.
    """
    block = triton.next_power_of_2(n)
    max_block = _capped(BACKWARD_MAX_BLOCK)
    split = block > max_block
    if split:
        block, rows, column_blocks = max_block, 1, triton.cdiv(n, max_block)
    else:
        rows, column_blocks = _rows_per_tile(block, BACKWARD_TILE, m), 1
    num_warps = _warps(rows * block, BACKWARD_PER_THREAD)
    target = INTERPRETER_PROGRAMS if sm_count is None else sm_count * max(1, 32 // num_warps)
    programs, rows_per_program = partition_rows(m, rows, triton.cdiv(target, column_blocks))
    return BackwardLaunch(split, rows, block, num_warps, column_blocks, programs, rows_per_program)


def partition_rows(m: int, rows: int, programs: int) -> tuple[int, int]:
    """``(P, rows_per_program)``: at most ``programs`` row programs over ``m`` rows, ``rows`` per tile.

    ``P`` is never above the number of row tiles; some programs may still own no rows
    (``m = 5`` over 4 programs gives 2, 2, 1, 0 rows), and ``m = 0`` gives one empty program.
    """
    count = max(1, min(programs, triton.cdiv(m, rows)))
    return count, triton.cdiv(m, count)


@functools.cache
def _sm_count(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def _row_view(t: torch.Tensor) -> torch.Tensor:
    """``t`` with unit column stride (the kernels take a row stride, not a column stride)."""
    return t if t.stride(-1) == 1 else t.contiguous()


def _contiguous(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.contiguous()


def _empty(reference: torch.Tensor) -> torch.Tensor:
    return reference.new_empty((0,), dtype=torch.float32)


@triton_op("normcore::norm_forward", mutates_args=())
def norm_forward(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    residual: torch.Tensor | None,
    eps: float,
    rms: bool,
    out_dtype: torch.dtype,
    residual_dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalize the rows of ``x`` ``(M, N)``; returns ``(y, residual_out, mean, rstd)``.

    ``residual_out`` (``x + residual`` in ``residual_dtype``) is empty without a residual,
    ``mean`` is empty for RMSNorm; ``mean`` and ``rstd`` are float32 ``(M,)``.
    """
    m, n = x.shape
    x = _row_view(x)
    weight, bias = _contiguous(weight), _contiguous(bias)
    y = x.new_empty((m, n), dtype=out_dtype)
    rstd = x.new_empty((m,), dtype=torch.float32)
    mean = _empty(x) if rms else x.new_empty((m,), dtype=torch.float32)
    if residual is None:
        residual_out = _empty(x)
    else:
        residual = _row_view(residual)
        residual_out = x.new_empty((m, n), dtype=residual_dtype)
    if m == 0:
        return y, residual_out, mean, rstd
    flags = {
        "RMS": rms,
        "HAS_WEIGHT": weight is not None,
        "HAS_BIAS": bias is not None,
        "HAS_RESIDUAL": residual is not None,
    }
    args = (x, residual, weight, bias, y, None if residual is None else residual_out, mean, rstd)
    strides = (x.stride(0), 0 if residual is None else residual.stride(0), eps)
    launch = forward_launch(m, n)
    if launch.split:
        wrap_triton(kernels.norm_fwd_split_kernel)[(launch.programs,)](
            *args, n, *strides, **flags, BLOCK_N=launch.block, num_warps=launch.num_warps
        )
    else:
        wrap_triton(kernels.norm_fwd_tile_kernel)[(launch.programs,)](
            *args, m, n, *strides, **flags, ROWS=launch.rows, BLOCK_N=launch.block, num_warps=launch.num_warps
        )
    return y, residual_out, mean, rstd


@triton_op("normcore::norm_backward", mutates_args=())
def norm_backward(
    dy: torch.Tensor,
    h: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    mean: torch.Tensor,
    rstd: torch.Tensor,
    dresidual_out: torch.Tensor | None,
    rms: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of :func:`norm_forward` for the normalized input ``h`` ``(M, N)``.

    ``h`` is ``x``, or the residual sum when one was added; ``dresidual_out`` is the
    gradient reaching that sum from later layers, added to ``dx``. ``bias`` is read for
    its presence and dtype only. Returns ``(dx, dweight, dbias)``, the last two empty when
    the parameter is None.
    """
    m, n = h.shape
    dy = _row_view(dy)
    h = _row_view(h)
    weight = _contiguous(weight)
    dx = h.new_empty((m, n))
    on_gpu = h.device.type == "cuda" and not interpreted()
    launch = backward_launch(m, n, _sm_count(h.device) if on_gpu else None)
    programs = launch.programs
    has_weight, has_bias = weight is not None, bias is not None
    dw_partial = h.new_empty((programs, n), dtype=torch.float32) if has_weight else _empty(h)
    db_partial = h.new_empty((programs, n), dtype=torch.float32) if has_bias else _empty(h)
    c1, c2 = _empty(h), _empty(h)
    if launch.split and m > 0:
        c1 = h.new_empty((m,), dtype=torch.float32)
        c2 = c1 if rms else h.new_empty((m,), dtype=torch.float32)
        wrap_triton(kernels.norm_bwd_coefficients_kernel)[(m,)](
            h, dy, weight, mean, rstd, c1, c2, n, h.stride(0), dy.stride(0),
            RMS=rms, HAS_WEIGHT=has_weight, BLOCK_N=launch.block, num_warps=launch.num_warps,
        )  # fmt: skip
    dresidual_stride = 0
    if dresidual_out is not None:
        dresidual_out = _row_view(dresidual_out)
        dresidual_stride = dresidual_out.stride(0)
    wrap_triton(kernels.norm_bwd_kernel)[(programs, launch.column_blocks)](
        h, dy, weight, mean, rstd, c1, c2, dresidual_out, dx, dw_partial, db_partial,
        m, n, h.stride(0), dy.stride(0), dresidual_stride, launch.rows_per_program,
        RMS=rms, HAS_WEIGHT=has_weight, HAS_BIAS=has_bias, HAS_DRESIDUAL_OUT=dresidual_out is not None,
        SPLIT=launch.split, ROWS=launch.rows, BLOCK_N=launch.block, num_warps=launch.num_warps,
    )  # fmt: skip
    dweight = _sum_partials(dw_partial, weight.dtype) if has_weight else _empty(h)
    dbias = _sum_partials(db_partial, bias.dtype) if has_bias else _empty(h)
    return dx, dweight, dbias


def _sum_partials(partial: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    programs, n = partial.shape
    out = partial.new_empty((n,), dtype=dtype)
    wrap_triton(kernels.sum_partials_kernel)[(triton.cdiv(n, SUM_BLOCK),)](
        partial, out, programs, n, BLOCK_N=SUM_BLOCK, num_warps=4
    )
    return out


def _setup_context(ctx, inputs, output) -> None:
    x, weight, bias, residual, _eps, rms, _out_dtype, _residual_dtype = inputs
    _y, residual_out, mean, rstd = output
    ctx.save_for_backward(x if residual is None else residual_out, weight, bias, mean, rstd)
    ctx.rms = rms
    ctx.x_dtype = x.dtype
    ctx.residual_dtype = None if residual is None else residual.dtype


def _backward(ctx, dy, dresidual_out, _dmean, _drstd):
    h, weight, bias, mean, rstd = ctx.saved_tensors
    has_residual = ctx.residual_dtype is not None
    dx, dweight, dbias = torch.ops.normcore.norm_backward(
        dy, h, weight, bias, mean, rstd, dresidual_out if has_residual else None, ctx.rms
    )
    return (
        dx.to(ctx.x_dtype),
        None if weight is None else dweight,
        None if bias is None else dbias,
        dx.to(ctx.residual_dtype) if has_residual else None,
        None,
        None,
        None,
        None,
    )


norm_forward.register_autograd(_backward, setup_context=_setup_context)
