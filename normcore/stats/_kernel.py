"""Compiled single-pass moments kernel behind :class:`normcore.stats.MomentsState`.

The kernel is the only code in normcore that does per-element arithmetic on
statistics. It reads a float64 array once from memory, in blocks that stay in
the CPU cache, and for each block:

1. takes deviations from ``pivot`` (a value of the data) and from a running
   ``shift`` close to the mean, ``d = (x - pivot) - shift``, and sums ``d`` and
   ``d*d`` in four independent lanes (strict IEEE order, which LLVM packs into
   SIMD registers without re-association);
2. derives the block's sum of squared deviations ``s2 - s1**2/n``; when that
   cancels more than 4x (the block's mean is far from ``shift``) it recomputes it
   with a second, two-pass sweep over the cached block, so the relative error
   stays at a few ulps whatever the data;
3. folds the block into the running result with Chan's update, in deviation
   space.

Because deviations are taken from a pivot, a column ``1e12 + N(0, 1)`` is summed
as ``N(0, 1)``-sized numbers: the variance keeps ~15 significant digits where
the textbook formulas lose 7 (Chan on raw values) or all of them (sum of squares).

Min and max are taken on the IEEE-754 bit patterns mapped to ordered integers,
which vectorises where float min/max does not. A block whose sums come out
non-finite (it holds a NaN or an infinity, or its squares overflow) takes a
branchy slow path that counts and skips the non-finite values.

``fastmath`` is deliberately off: re-association would rewrite
``(x - pivot) - shift`` as ``x - (pivot + shift)`` and lose the exactness.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Elements per block (64 KiB of float64, cache-resident for the second sweep).
BLOCK = 8192
#: A block whose M2 is below this fraction of its raw sum of squares is recomputed two-pass.
_CANCELLATION_LIMIT = 0.25
_MAGNITUDE = np.int64(0x7FFFFFFFFFFFFFFF)


@numba.njit(cache=True, nogil=True)
def first_finite(values: np.ndarray) -> float:
    """Return the first finite element of ``values``, or NaN when there is none."""
    for i in range(values.shape[0]):
        v = values[i]
        if v - v == 0.0:
            return v
    return np.nan


@numba.njit(cache=True, nogil=True)
def _ordered(bits: np.int64) -> np.int64:
    # Maps float64 bit patterns to int64 keys with the same order (an involution).
    return bits ^ ((bits >> 63) & _MAGNITUDE)


@numba.njit(cache=True, nogil=True)
def _block_sums(values, start, stop, pivot, shift):
    a0 = a1 = a2 = a3 = 0.0
    b0 = b1 = b2 = b3 = 0.0
    i = start
    while i + 4 <= stop:
        d0 = (values[i] - pivot) - shift
        d1 = (values[i + 1] - pivot) - shift
        d2 = (values[i + 2] - pivot) - shift
        d3 = (values[i + 3] - pivot) - shift
        a0 += d0
        a1 += d1
        a2 += d2
        a3 += d3
        b0 += d0 * d0
        b1 += d1 * d1
        b2 += d2 * d2
        b3 += d3 * d3
        i += 4
    while i < stop:
        d0 = (values[i] - pivot) - shift
        a0 += d0
        b0 += d0 * d0
        i += 1
    return (a0 + a1) + (a2 + a3), (b0 + b1) + (b2 + b3)


@numba.njit(cache=True, nogil=True)
def _block_m2(values, start, stop, pivot, mean_dev):
    q0 = q1 = q2 = q3 = 0.0
    i = start
    while i + 4 <= stop:
        e0 = (values[i] - pivot) - mean_dev
        e1 = (values[i + 1] - pivot) - mean_dev
        e2 = (values[i + 2] - pivot) - mean_dev
        e3 = (values[i + 3] - pivot) - mean_dev
        q0 += e0 * e0
        q1 += e1 * e1
        q2 += e2 * e2
        q3 += e3 * e3
        i += 4
    while i < stop:
        e0 = (values[i] - pivot) - mean_dev
        q0 += e0 * e0
        i += 1
    return (q0 + q1) + (q2 + q3)


@numba.njit(cache=True, nogil=True)
def _block_range(bits, start, stop, key_lo, key_hi):
    for i in range(start, stop):
        k = _ordered(bits[i])
        key_lo = k if k < key_lo else key_lo
        key_hi = k if k > key_hi else key_hi
    return key_lo, key_hi


@numba.njit(cache=True, nogil=True)
def _slow_block(values, start, stop, pivot):
    # Block with NaN or +-inf: branch per element, two-pass over the finite ones.
    total = 0.0
    count = 0
    nan_count = 0
    lo = np.inf
    hi = -np.inf
    for i in range(start, stop):
        v = values[i]
        if v - v == 0.0:
            total += v - pivot
            count += 1
            lo = min(lo, v)
            hi = max(hi, v)
        elif v != v:
            nan_count += 1
    inf_count = (stop - start) - count - nan_count
    if count == 0:
        return 0, nan_count, inf_count, 0.0, 0.0, lo, hi
    mean_dev = total / count
    m2 = 0.0
    for i in range(start, stop):
        v = values[i]
        if v - v == 0.0:
            e = (v - pivot) - mean_dev
            m2 += e * e
    return count, nan_count, inf_count, mean_dev, m2, lo, hi


@numba.njit(cache=True, nogil=True)
def moments_kernel(values: np.ndarray, pivot: float):
    """Count, mean deviation, M2, min, max and non-finite counts of ``values``.

    Parameters
    ----------
    values : ndarray of float64, shape (n_samples,)
        One contiguous column batch. NaN and +-inf are counted and otherwise
        left out.
    pivot : float
        Deviations are taken from this finite value (a value of the data).

    Returns
    -------
    tuple
        ``(count, nan_count, inf_count, mean_dev, m2, min, max)``: ``mean_dev`` is
        the mean of ``values - pivot`` over the finite values, ``m2`` the sum of
        squared deviations from their mean. ``min``/``max`` are ``+inf``/``-inf``
        when no value is finite.
    """
    bits = values.view(np.int64)
    n = values.shape[0]
    count = 0
    nan_count = 0
    inf_count = 0
    mean_dev = 0.0
    m2 = 0.0
    key_lo = _MAGNITUDE
    key_hi = -_MAGNITUDE
    lo = np.inf
    hi = -np.inf
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        shift = mean_dev
        s1, s2 = _block_sums(values, start, stop, pivot, shift)
        if math.isfinite(s1) and math.isfinite(s2):
            # Finite sums imply finite values: NaN and inf propagate into them.
            key_lo, key_hi = _block_range(bits, start, stop, key_lo, key_hi)
            block_count = stop - start
            centred = s1 / block_count
            block_m2 = s2 - s1 * centred
            block_mean = shift + centred
            if not block_m2 > _CANCELLATION_LIMIT * s2:
                block_m2 = _block_m2(values, start, stop, pivot, block_mean)
        else:
            block_count, nans, infs, block_mean, block_m2, block_lo, block_hi = _slow_block(values, start, stop, pivot)
            nan_count += nans
            inf_count += infs
            lo = min(lo, block_lo)
            hi = max(hi, block_hi)
            if block_count == 0:
                continue
        total = count + block_count
        delta = block_mean - mean_dev
        mean_dev += delta * (block_count / total)
        m2 += block_m2 + delta * delta * (float(count) * block_count / total)
        count = total
    if count > 0 and key_lo <= key_hi:
        keys = np.empty(2, np.int64)
        keys[0] = _ordered(key_lo)
        keys[1] = _ordered(key_hi)
        fast = keys.view(np.float64)
        lo = min(lo, fast[0])
        hi = max(hi, fast[1])
    return count, nan_count, inf_count, mean_dev, m2, lo, hi
