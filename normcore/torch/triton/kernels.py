"""Triton kernels of LayerNorm and RMSNorm: forward, backward, and the partial-sum reduction.

Every kernel loads in the tensor's own dtype, computes in float32 and casts once on store.
``RMS`` (constexpr) selects RMSNorm (no mean, no bias) over LayerNorm. Row offsets are
computed in int64: ``M * N`` passes 2**31 at the hidden sizes these kernels serve.

The host side (launch configuration, the split between the kernels, ``torch.library``
registration) is :mod:`normcore.torch.triton.ops`; its docstring describes the design.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def norm_fwd_tile_kernel(
    X, RESIDUAL, W, B, Y, RESIDUAL_OUT, MEAN, RSTD, M, N, stride_x, stride_residual, eps,
    RMS: tl.constexpr, HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_RESIDUAL: tl.constexpr,
    ROWS: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    """Normalize ``ROWS`` whole rows per program; ``BLOCK_N >= N`` holds every row in registers."""
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, BLOCK_N)
    row_mask = rows < M
    col_mask = cols < N
    mask = row_mask[:, None] & col_mask[None, :]
    rows64 = rows.to(tl.int64)[:, None]
    x = tl.load(X + rows64 * stride_x + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    if HAS_RESIDUAL:
        residual = tl.load(RESIDUAL + rows64 * stride_residual + cols[None, :], mask=mask, other=0.0)
        summed = (x + residual.to(tl.float32)).to(RESIDUAL_OUT.dtype.element_ty)
        tl.store(RESIDUAL_OUT + rows64 * N + cols[None, :], summed, mask=mask)
        x = summed.to(tl.float32)
    if RMS:
        rstd = tl.rsqrt(tl.sum(x * x, axis=1) / N + eps)
        xhat = x * rstd[:, None]
    else:
        mean = tl.sum(x, axis=1) / N
        centered = tl.where(mask, x - mean[:, None], 0.0)
        rstd = tl.rsqrt(tl.sum(centered * centered, axis=1) / N + eps)
        xhat = centered * rstd[:, None]
        tl.store(MEAN + rows, mean, mask=row_mask)
    tl.store(RSTD + rows, rstd, mask=row_mask)
    y = xhat
    if HAS_WEIGHT:
        y = y * tl.load(W + cols, mask=col_mask, other=0.0).to(tl.float32)[None, :]
    if HAS_BIAS:
        y = y + tl.load(B + cols, mask=col_mask, other=0.0).to(tl.float32)[None, :]
    tl.store(Y + rows64 * N + cols[None, :], y.to(Y.dtype.element_ty), mask=mask)


@triton.jit
def norm_fwd_split_kernel(
    X, RESIDUAL, W, B, Y, RESIDUAL_OUT, MEAN, RSTD, N, stride_x, stride_residual, eps,
    RMS: tl.constexpr, HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_RESIDUAL: tl.constexpr,
    BLOCK_N: tl.constexpr,
):  # fmt: skip
    """Normalize one row longer than a block: statistics over its chunks, then a second pass.

    Pass 1 reads the row chunk by chunk (adding and storing the residual) and merges each
    chunk's (count, mean, M2) into the row's with Chan's formula, so no sum of squares
    around a large mean ever cancels. Pass 2 reads the row again (``RESIDUAL_OUT`` when a
    residual was added: the rounded sum, as the backward pass sees it) and stores ``y``.
    """
    row = tl.program_id(0).to(tl.int64)
    offsets = tl.arange(0, BLOCK_N)
    x_row = X + row * stride_x
    mean = tl.zeros((), tl.float32)
    m2 = tl.zeros((), tl.float32)
    for start in range(0, N, BLOCK_N):
        cols = start + offsets
        mask = cols < N
        x = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
        if HAS_RESIDUAL:
            residual = tl.load(RESIDUAL + row * stride_residual + cols, mask=mask, other=0.0)
            summed = (x + residual.to(tl.float32)).to(RESIDUAL_OUT.dtype.element_ty)
            tl.store(RESIDUAL_OUT + row * N + cols, summed, mask=mask)
            x = summed.to(tl.float32)
        if RMS:
            m2 += tl.sum(x * x, axis=0)
        else:
            count = tl.minimum(N - start, BLOCK_N).to(tl.float32)
            chunk_mean = tl.sum(x, axis=0) / count
            deviation = tl.where(mask, x - chunk_mean, 0.0)
            seen = start * 1.0
            delta = chunk_mean - mean
            mean += delta * (count / (seen + count))
            m2 += tl.sum(deviation * deviation, axis=0) + delta * delta * (seen * count / (seen + count))
    rstd = tl.rsqrt(m2 / N + eps)
    tl.store(RSTD + row, rstd)
    if not RMS:
        tl.store(MEAN + row, mean)
    for start in range(0, N, BLOCK_N):
        cols = start + offsets
        mask = cols < N
        if HAS_RESIDUAL:
            x = tl.load(RESIDUAL_OUT + row * N + cols, mask=mask, other=0.0).to(tl.float32)
        else:
            x = tl.load(x_row + cols, mask=mask, other=0.0).to(tl.float32)
        if RMS:
            y = x * rstd
        else:
            y = (x - mean) * rstd
        if HAS_WEIGHT:
            y = y * tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
        if HAS_BIAS:
            y = y + tl.load(B + cols, mask=mask, other=0.0).to(tl.float32)
        tl.store(Y + row * N + cols, y.to(Y.dtype.element_ty), mask=mask)


@triton.jit
def norm_bwd_coefficients_kernel(
    H,
    DY,
    W,
    MEAN,
    RSTD,
    C1,
    C2,
    N,
    stride_h,
    stride_dy,
    RMS: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """Per-row ``c1 = mean(xhat * wdy)`` and ``c2 = mean(wdy)`` of a row longer than a block.

    ``wdy = weight * dy``. ``dx = rstd * (wdy - xhat * c1 - c2)`` (LayerNorm) and
    ``rstd * (wdy - xhat * c1)`` (RMSNorm) then need only the chunk at hand.
    """
    row = tl.program_id(0).to(tl.int64)
    offsets = tl.arange(0, BLOCK_N)
    rstd = tl.load(RSTD + row)
    if RMS:
        mean = 0.0
    else:
        mean = tl.load(MEAN + row)
    sum_xhat_wdy = tl.zeros((), tl.float32)
    sum_wdy = tl.zeros((), tl.float32)
    for start in range(0, N, BLOCK_N):
        cols = start + offsets
        mask = cols < N
        h = tl.load(H + row * stride_h + cols, mask=mask, other=0.0).to(tl.float32)
        wdy = tl.load(DY + row * stride_dy + cols, mask=mask, other=0.0).to(tl.float32)
        if HAS_WEIGHT:
            wdy = wdy * tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
        xhat = tl.where(mask, (h - mean) * rstd, 0.0)
        sum_xhat_wdy += tl.sum(xhat * wdy, axis=0)
        sum_wdy += tl.sum(wdy, axis=0)
    tl.store(C1 + row, sum_xhat_wdy / N)
    if not RMS:
        tl.store(C2 + row, sum_wdy / N)


@triton.jit
def norm_bwd_kernel(
    H,
    DY,
    W,
    MEAN,
    RSTD,
    C1,
    C2,
    DRESIDUAL_OUT,
    DX,
    DW_PARTIAL,
    DB_PARTIAL,
    M,
    N,
    stride_h,
    stride_dy,
    stride_dresidual_out,
    rows_per_program,
    RMS: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_DRESIDUAL_OUT: tl.constexpr,
    SPLIT: tl.constexpr,
    ROWS: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """``dx`` for a contiguous range of rows and that range's partial ``dweight`` / ``dbias``.

    Program ``(p, c)`` owns rows ``[p * rows_per_program, (p + 1) * rows_per_program)`` and
    columns ``[c * BLOCK_N, (c + 1) * BLOCK_N)``, walks its rows ``ROWS`` at a time, and keeps
    ``sum dy * xhat`` and ``sum dy`` in float32 registers. It stores them in row ``p`` of the
    partial buffers, zeros included when it owns no rows: every element of the buffers is
    written by exactly one program, and :func:`sum_partials_kernel` adds them in a fixed order.

    ``SPLIT`` False: the whole row is in the block (one column program) and ``c1`` / ``c2``
    are reduced here. ``SPLIT`` True: they come from :func:`norm_bwd_coefficients_kernel`.
    ``DRESIDUAL_OUT`` (the gradient reaching the stored residual sum) is added to ``dx``.
    """
    program = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask = cols < N
    row_start = program * rows_per_program
    row_end = tl.minimum(row_start + rows_per_program, M)
    if HAS_WEIGHT:
        w = tl.load(W + cols, mask=col_mask, other=0.0).to(tl.float32)[None, :]
    dw_acc = tl.zeros((ROWS, BLOCK_N), tl.float32)
    db_acc = tl.zeros((ROWS, BLOCK_N), tl.float32)
    for tile in range(row_start, row_end, ROWS):
        rows = tile + tl.arange(0, ROWS)
        row_mask = rows < row_end
        mask = row_mask[:, None] & col_mask[None, :]
        rows64 = rows.to(tl.int64)[:, None]
        h = tl.load(H + rows64 * stride_h + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        dy = tl.load(DY + rows64 * stride_dy + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        rstd = tl.load(RSTD + rows, mask=row_mask, other=0.0)[:, None]
        if RMS:
            xhat = h * rstd
        else:
            mean = tl.load(MEAN + rows, mask=row_mask, other=0.0)[:, None]
            xhat = tl.where(mask, (h - mean) * rstd, 0.0)
        wdy = dy
        if HAS_WEIGHT:
            wdy = dy * w
        if SPLIT:
            c1 = tl.load(C1 + rows, mask=row_mask, other=0.0)[:, None]
        else:
            c1 = (tl.sum(xhat * wdy, axis=1) / N)[:, None]
        if RMS:
            dx = (wdy - xhat * c1) * rstd
        else:
            if SPLIT:
                c2 = tl.load(C2 + rows, mask=row_mask, other=0.0)[:, None]
            else:
                c2 = (tl.sum(wdy, axis=1) / N)[:, None]
            dx = (wdy - (xhat * c1 + c2)) * rstd
        if HAS_DRESIDUAL_OUT:
            dres = tl.load(DRESIDUAL_OUT + rows64 * stride_dresidual_out + cols[None, :], mask=mask, other=0.0)
            dx += dres.to(tl.float32)
        tl.store(DX + rows64 * N + cols[None, :], dx.to(DX.dtype.element_ty), mask=mask)
        if HAS_WEIGHT:
            dw_acc += dy * xhat
        if HAS_BIAS:
            db_acc += dy
    if HAS_WEIGHT:
        tl.store(DW_PARTIAL + program.to(tl.int64) * N + cols, tl.sum(dw_acc, axis=0), mask=col_mask)
    if HAS_BIAS:
        tl.store(DB_PARTIAL + program.to(tl.int64) * N + cols, tl.sum(db_acc, axis=0), mask=col_mask)


@triton.jit
def sum_partials_kernel(PARTIAL, OUT, P, N, BLOCK_N: tl.constexpr):
    """``OUT[j] = sum_p PARTIAL[p, j]`` in float32, ``p`` ascending: the same bits on every run."""
    cols = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = cols < N
    total = tl.zeros((BLOCK_N,), tl.float32)
    row = PARTIAL + cols
    for _ in range(0, P):
        total += tl.load(row, mask=mask, other=0.0)
        row += N
    tl.store(OUT + cols, total.to(OUT.dtype.element_ty), mask=mask)
