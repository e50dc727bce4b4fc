"""NumPy's operations adapter: ``clip_finite`` (the tail of the linear formulas) gives the
values of its definition, ``where(is_finite(x), clip(y, low, high), x)`` written here in
plain NumPy, through its one-reduction fast path (small arrays and large) and its masked
path alike."""

from __future__ import annotations

import numpy as np
import pytest

from normcore.transforms.ops import NUMPY_OPS

MAX = np.finfo(np.float64).max


def _definition(y: np.ndarray, x: np.ndarray, low: object, high: object) -> np.ndarray:
    return np.where(np.isfinite(x), np.minimum(np.maximum(y, low), high), x)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _cases() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    finite = rng.standard_normal((50, 4)) * 1e3
    with_nan = finite.copy()
    with_nan[3, 1] = np.nan
    with_inf = finite.copy()
    with_inf[7, 2], with_inf[9, 0] = np.inf, -np.inf
    huge = np.full((6, 4), 1e308)  # every value finite, their sum is not
    zeros = np.array([[-0.0, 0.0]])
    rows = [("row", finite[:1]), ("row nan", with_nan[3:4]), ("row inf", with_inf[7:8]), ("row -inf", with_inf[9:10])]
    # a (6, 4) block and the rows take the small-array path (a Python sum), the rest NumPy's reduction
    return [("finite", finite), ("nan", with_nan), ("inf", with_inf), ("huge", huge), ("zeros", zeros), *rows]


@pytest.mark.parametrize("name, x", _cases())
@pytest.mark.parametrize(
    "scale, low, high",
    [(1.0, -MAX, MAX), (1e-300, -MAX, MAX), (7.0, 0.0, 1.0), (3.0, np.array(-1.0), np.array(2.0))],
    ids=["saturate", "overflow", "clip", "array-bounds"],
)
def test_clip_finite_is_its_definition(name: str, x: np.ndarray, scale: float, low: object, high: object) -> None:
    with np.errstate(all="ignore"):
        y = (x - 0.5) / scale
    expected = _definition(y, x, low, high)
    before = x.copy()
    with np.errstate(all="ignore"):  # as the evaluators (Fitted, BlockNormalizer) call the formulas
        got = NUMPY_OPS.clip_finite(y.copy(), x, low, high)
    assert _same_bits(np.asarray(got), expected), name
    assert _same_bits(x, before)  # the input is never written
    assert np.isfinite(got[np.isfinite(x)]).all()


def test_clip_finite_does_not_write_a_read_only_value() -> None:
    x = np.array([1.0, np.inf, 5.0])
    y = np.array([2.0, np.inf, 9.0])
    y.setflags(write=False)
    got = NUMPY_OPS.clip_finite(y, x, 0.0, 4.0)
    assert got.tolist() == [2.0, np.inf, 4.0]
    assert y.tolist() == [2.0, np.inf, 9.0]


def test_clip_finite_on_numbers() -> None:
    assert NUMPY_OPS.clip_finite(np.float64(5.0), np.float64(1.0), 0.0, 1.0) == 1.0
    assert np.isposinf(NUMPY_OPS.clip_finite(np.float64(np.inf), np.float64(np.inf), 0.0, 1.0))
