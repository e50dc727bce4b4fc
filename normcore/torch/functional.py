"""LayerNorm and RMSNorm as functions, on fused Triton kernels or on torch's own.

``layer_norm`` and ``rms_norm`` take the arguments of ``torch.nn.functional.layer_norm`` /
``rms_norm`` plus ``backend`` and an optional fused residual add (``residual=``), which
returns the sum for the next layer as well (pre-norm transformer blocks keep it as their
residual stream).

Backends: ``"triton"`` runs :mod:`normcore.torch.triton` (CUDA tensors; CPU tensors only
under Triton's interpreter, ``TRITON_INTERPRET=1``), ``"torch"`` runs
``torch.nn.functional`` (the reference the kernels are tested against), ``"auto"`` picks
Triton for CUDA tensors of a supported dtype and torch otherwise.
"""

from __future__ import annotations

import importlib.util
import math
import operator
from collections.abc import Sequence

import torch
import torch.nn.functional as F

if importlib.util.find_spec("triton") is not None:
    from normcore.torch.triton import ops as triton_ops
else:
    triton_ops = None

BACKENDS = ("auto", "triton", "torch")

_ShapeArg = int | Sequence[int] | torch.Size


def check_backend(backend: str) -> str:
    """``backend`` if it is one of :data:`BACKENDS`, else a ValueError naming them."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {', '.join(map(repr, BACKENDS))}")
    return backend


def layer_norm(
    x: torch.Tensor,
    normalized_shape: _ShapeArg,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
    backend: str = "auto",
    residual: torch.Tensor | None = None,
    residual_dtype: torch.dtype | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Layer normalization over the trailing ``normalized_shape`` dimensions of ``x``.

    ``y = (h - mean(h)) / sqrt(var(h) + eps) * weight + bias`` per row, where ``h`` is
    ``x``, or ``x + residual`` when a residual is given.

    Parameters
    ----------
    x : Tensor of shape ``(*, *normalized_shape)``
        Any leading dimensions, any strides.
    normalized_shape : int or sequence of int
        The trailing dimensions normalized together (``N`` = their product).
    weight, bias : Tensor of shape ``normalized_shape``, optional
        Elementwise scale and shift; either may be None.
    eps : float
        Added to the variance inside the square root.
    backend : {"auto", "triton", "torch"}
        See the module docstring.
    residual : Tensor of the shape of ``x``, optional
        Added to ``x`` before normalizing (fused into the kernel on the Triton backend).
    residual_dtype : torch.dtype, optional
        Dtype of the returned sum; default ``x.dtype``. Only with ``residual``.

    Returns
    -------
    Tensor, or (Tensor, Tensor)
        ``y`` of the shape of ``x``; with a residual, ``(y, residual_out)`` where
        ``residual_out = (x + residual)`` in ``residual_dtype``. Gradients reach ``x``,
        ``residual``, ``weight``, ``bias``, and flow back through ``residual_out`` too.

    Notes
    -----
    - Variance is biased (divides by ``N``), as in torch; ``eps`` is added to it, not to
      the standard deviation.
    - Statistics are computed in float32 for float16 / bfloat16 / float32 inputs; ``y``
      has ``x``'s dtype, whatever the parameters' dtypes.
    - The residual sum is added in float32 and rounded once to ``residual_dtype``; ``y``
      normalizes that rounded sum (what the backward pass sees). When ``residual_dtype``
      differs from ``x.dtype``, the sum is normalized in float32 and ``y`` cast to
      ``x.dtype``.
    - The Triton backend takes float32, float16 and bfloat16 tensors (mixed too); the
      torch backend whatever ``torch.nn.functional.layer_norm`` takes.
    """
    shape = _normalized_shape(normalized_shape)
    _check_inputs("layer_norm", x, shape, weight, bias, residual, residual_dtype)
    tensors = {"x": x, "weight": weight, "bias": bias, "residual": residual}
    if _use_triton("layer_norm", backend, shape, tensors, residual_dtype):
        return _triton_norm(x, shape, weight, bias, eps, False, residual, residual_dtype)

    def norm(h, w, b):
        return F.layer_norm(h, shape, w, b, eps)

    return _reference(norm, x, weight, bias, residual, residual_dtype)


def rms_norm(
    x: torch.Tensor,
    normalized_shape: _ShapeArg,
    weight: torch.Tensor | None = None,
    eps: float | None = None,
    backend: str = "auto",
    residual: torch.Tensor | None = None,
    residual_dtype: torch.dtype | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Root-mean-square normalization over the trailing ``normalized_shape`` dimensions of ``x``.

    ``y = h / sqrt(mean(h ** 2) + eps) * weight`` per row, where ``h`` is ``x``, or
    ``x + residual`` when a residual is given. Arguments and results as :func:`layer_norm`'s
    (without ``bias``), except ``eps``: None means what torch uses, the machine epsilon of
    the computation dtype (``torch.finfo(torch.float32).eps`` for float16, bfloat16 and
    float32 inputs, float64's for float64).

    Notes
    -----
    - torch's documentation says ``eps=None`` means ``torch.finfo(x.dtype).eps``; torch
      computes with the float32 epsilon for float16 / bfloat16 inputs, and so do we.
    - ``y`` has ``x``'s dtype, whatever ``weight``'s, as in torch.
    - Statistics in float32; the residual rules of :func:`layer_norm` apply.
    """
    shape = _normalized_shape(normalized_shape)
    _check_inputs("rms_norm", x, shape, weight, None, residual, residual_dtype)
    if _use_triton("rms_norm", backend, shape, {"x": x, "weight": weight, "residual": residual}, residual_dtype):
        triton_eps = torch.finfo(torch.float32).eps if eps is None else eps
        return _triton_norm(x, shape, weight, None, triton_eps, True, residual, residual_dtype)

    def norm(h, w, _b):
        return F.rms_norm(h, shape, w, eps)

    return _reference(norm, x, weight, None, residual, residual_dtype)


def _normalized_shape(normalized_shape: _ShapeArg) -> tuple[int, ...]:
    if isinstance(normalized_shape, int):
        return (normalized_shape,)
    try:
        return tuple(operator.index(size) for size in normalized_shape)
    except TypeError:
        raise TypeError(f"normalized_shape must be an int or a sequence of ints, got {normalized_shape!r}") from None


def _check_inputs(name, x, shape, weight, bias, residual, residual_dtype) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < len(shape) or tuple(x.shape[x.dim() - len(shape) :]) != shape:
        raise ValueError(f"{name}: input of shape {tuple(x.shape)} does not end in normalized_shape {shape}")
    for label, param in (("weight", weight), ("bias", bias)):
        if param is not None and tuple(param.shape) != shape:
            raise ValueError(f"{name}: {label} has shape {tuple(param.shape)}; expected normalized_shape {shape}")
    if residual is not None and residual.shape != x.shape:
        raise ValueError(f"{name}: residual has shape {tuple(residual.shape)}; expected the input's {tuple(x.shape)}")
    if residual is None and residual_dtype is not None:
        raise ValueError(f"{name}: residual_dtype={residual_dtype} is given without a residual")


def _use_triton(name, backend, shape, tensors, residual_dtype) -> bool:
    """Whether ``backend`` selects the kernels for ``tensors`` (``x`` first); errors for what they cannot take."""
    if check_backend(backend) == "torch":
        return False
    x = tensors["x"]
    given = {label: tensor for label, tensor in tensors.items() if tensor is not None}
    if backend == "auto":
        return (
            triton_ops is not None
            and x.is_cuda
            and all(t.dtype in triton_ops.SUPPORTED_DTYPES and t.device == x.device for t in given.values())
            and residual_dtype in (None, *triton_ops.SUPPORTED_DTYPES)
            and math.prod(shape) > 0
        )
    if triton_ops is None:
        raise RuntimeError(f"{name}: backend='triton' needs the triton package: pip install 'normcore[torch]'")
    if not x.is_cuda and not triton_ops.interpreted():
        raise RuntimeError(
            f"{name}: backend='triton' got a {x.device.type} tensor; the kernels run on CUDA, or on a CPU in "
            "Triton's interpreter: set TRITON_INTERPRET=1 before normcore.torch is imported (or use backend='torch')"
        )
    supported = ", ".join(str(dtype) for dtype in triton_ops.SUPPORTED_DTYPES)
    for label, tensor in given.items():
        if tensor.dtype not in triton_ops.SUPPORTED_DTYPES:
            raise ValueError(f"{name}: backend='triton' takes {supported}; {label} is {tensor.dtype}")
        if tensor.device != x.device:
            raise ValueError(f"{name}: {label} is on {tensor.device}, the input on {x.device}")
    if residual_dtype not in (None, *triton_ops.SUPPORTED_DTYPES):
        raise ValueError(f"{name}: backend='triton' takes {supported}; residual_dtype is {residual_dtype}")
    if math.prod(shape) == 0:
        raise ValueError(f"{name}: backend='triton' needs a non-empty normalized_shape, got {shape}")
    return True


def _triton_norm(x, shape, weight, bias, eps, rms, residual, residual_dtype):
    n = math.prod(shape)
    rows = x.reshape(-1, n)
    y, residual_out, _mean, _rstd = torch.ops.normcore.norm_forward(
        rows,
        None if weight is None else weight.reshape(n),
        None if bias is None else bias.reshape(n),
        None if residual is None else residual.reshape(-1, n),
        float(eps),
        rms,
        x.dtype,
        residual_dtype or x.dtype,
    )
    if residual is None:
        return y.view(x.shape)
    return y.view(x.shape), residual_out.view(x.shape)


def _reference(norm, x, weight, bias, residual, residual_dtype):
    """torch's norm on ``x``, or on the residual sum (added and rounded as the kernels do)."""
    if residual is None:
        return norm(x, weight, bias)
    compute = torch.promote_types(torch.promote_types(x.dtype, residual.dtype), torch.float32)
    residual_out = (x.to(compute) + residual.to(compute)).to(residual_dtype or x.dtype)
    if residual_out.dtype == x.dtype:
        return norm(residual_out, weight, bias), residual_out
    params = [None if p is None else p.to(compute) for p in (weight, bias)]
    return norm(residual_out.to(compute), *params).to(x.dtype), residual_out
