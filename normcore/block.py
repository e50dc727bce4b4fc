"""Apply an artifact's transforms to a 2-D float64 NumPy array (the Python API's NumPy and
DataFrame inputs), the linear methods' columns in one expression.

NumPy only: a serving :class:`~normcore.api.Normalizer` that sees arrays never loads pyarrow
(:mod:`normcore.apply` does the same for Arrow record batches).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from normcore.transforms import Fitted
from normcore.transforms.ops import NUMPY_OPS


class BlockNormalizer:
    """Applies (or inverts) one transform per column to a 2-D float64 array.

    Parameters
    ----------
    transforms : sequence of Fitted
        The transform of each column, in column order.
    inverse : bool, default False
        Apply the inverse transforms.

    Notes
    -----
    Columns whose methods share a :class:`~normcore.transforms.base.Stack` (the linear
    methods) are evaluated together, in one expression over their columns with operands
    stacked once here; the others column by column through :class:`Fitted`. Both give the
    bits of the per-column transforms. NaN and +-inf pass through.
    """

    def __init__(self, transforms: Sequence[Fitted], inverse: bool = False) -> None:
        self.width = len(transforms)
        members: dict[object, list[int]] = {}
        self._columns: list[tuple[int, Callable[[np.ndarray], np.ndarray]]] = []
        for column, transform in enumerate(transforms):
            if transform.stack is None:
                self._columns.append((column, transform.inverse if inverse else transform.forward))
            else:
                members.setdefault(transform.stack[0], []).append(column)
        self._stacks = []
        for stack, columns in members.items():
            operands = stack.operands([transforms[column].stack[1] for column in columns])
            self._stacks.append((np.array(columns), stack.inverse if inverse else stack.forward, operands))
        whole = len(self._stacks) == 1 and not self._columns
        #: ``(evaluate, operands)`` of the one stack holding every column, else None.
        self._whole = self._stacks[0][1:] if whole else None

    def __call__(self, block: np.ndarray) -> np.ndarray:
        """Transform ``block`` of shape ``(n_samples, width)`` (float64, any layout) into a new array."""
        with np.errstate(all="ignore"):
            if self._whole is not None:
                evaluate, operands = self._whole
                return evaluate(block, operands, NUMPY_OPS)
            out = np.empty(block.shape, dtype=np.float64)
            for columns, evaluate, operands in self._stacks:
                out[:, columns] = evaluate(block[:, columns], operands, NUMPY_OPS)
            for column, apply in self._columns:
                out[:, column] = apply(block[:, column])
            return out
