"""The operations adapter on torch tensors: every method's formula, as written once, on tensors.

:class:`TorchOps` implements :class:`normcore.transforms.ops.Ops` with torch functions, so
:class:`normcore.torch.Normalization` evaluates the very code NumPy and Spark evaluate: no
formula is written again here. Everything is differentiable where the formula is, and
traceable by ``torch.compile`` (no data-dependent Python control flow).

Notes
-----
* Computation happens in the dtype of the tensors given (float32 or float64); bounds of
  ``clip`` beyond that dtype's range become its largest finite values, so saturation works
  in float32 too.
* Array operands may be per-row (shape ``(*rows, points)``, keyed artifacts): ``search``
  and ``gather`` then work row by row. Per-row arrays are padded with ``+inf`` beyond a
  row's own points, so ``search`` never counts the padding; ``gather`` reads padding as the
  largest finite value, so a branch that is not selected stays finite and gradients
  through ``where`` stay finite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


class TorchOps:
    """:class:`normcore.transforms.ops.Ops` on torch tensors of one floating dtype.

    Parameters
    ----------
    dtype : torch.dtype
        The computation dtype.
    device : torch.device or str
        Where constants are created.
    """

    def __init__(self, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> None:
        self.dtype = dtype
        self.device = device
        self._max = torch.finfo(dtype).max

    def bind(self, value: Any) -> Any:
        return value

    def where(self, condition: Any, if_true: Any, if_false: Any) -> Any:
        if isinstance(condition, bool):
            return if_true if condition else if_false
        return torch.where(condition, if_true, if_false)

    def is_finite(self, x: torch.Tensor) -> torch.Tensor:
        return torch.isfinite(x)

    def log(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(x)

    def sqrt(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(x)

    def exp(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(x)

    def log1p(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log1p(x)

    def expm1(self, x: torch.Tensor) -> torch.Tensor:
        return torch.expm1(x)

    def abs(self, x: torch.Tensor) -> torch.Tensor:
        return torch.abs(x)

    def sign(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sign(x)

    def clip(self, x: torch.Tensor, low: float, high: float) -> torch.Tensor:
        return torch.clamp(x, max(low, -self._max), min(high, self._max))

    def clip_finite(self, y: torch.Tensor, x: torch.Tensor, low: Any, high: Any) -> torch.Tensor:
        return self.where(self.is_finite(x), self.clip(y, low, high), x)

    def array(self, values: Sequence[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=self.dtype, device=self.device)

    def search(self, points: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if points.dim() == 1:
            return torch.searchsorted(points, x.contiguous(), right=True)
        return torch.searchsorted(points, x.unsqueeze(-1).contiguous(), right=True).squeeze(-1)

    def gather(self, values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        last = values.shape[-1] - 1
        if values.dim() == 1:
            found = values[index.clamp(0, last)]
        else:
            found = torch.gather(values, -1, index.clamp(0, last).unsqueeze(-1)).squeeze(-1)
        return torch.clamp(found, -self._max, self._max)
