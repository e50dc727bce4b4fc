"""``LayerNorm`` and ``RMSNorm`` modules on the fused kernels, and ``make_norm`` for the norm family.

The modules subclass ``torch.nn.LayerNorm`` / ``torch.nn.RMSNorm``: same constructor
arguments (plus ``backend``), parameters, ``state_dict`` keys, ``reset_parameters`` and
``isinstance`` checks (weight-decay groups and sharding policies that pick norms by type
keep working); ``forward`` is one call into :mod:`normcore.torch.functional`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from normcore.torch import functional as F


class LayerNorm(nn.LayerNorm):
    """``torch.nn.LayerNorm`` with a ``backend`` and an optional fused residual add.

    Parameters
    ----------
    normalized_shape : int or sequence of int
        The trailing dimensions normalized together.
    eps : float
        Added to the (biased) variance inside the square root.
    elementwise_affine : bool
        Learn ``weight`` (initialised to ones) and, with ``bias``, ``bias`` (zeros).
    bias : bool
        Learn ``bias`` (only with ``elementwise_affine``).
    device, dtype
        Where and in which dtype the parameters are created (``factory_kwargs``).
    backend : {"auto", "triton", "torch"}
        See :mod:`normcore.torch.functional`.

    Notes
    -----
    ``forward(input, residual=None, residual_dtype=None)`` returns ``y``, or
    ``(y, input + residual)`` with a residual; see :func:`normcore.torch.functional.layer_norm`.
    """

    def __init__(
        self,
        normalized_shape: int | list[int] | torch.Size,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device=None,
        dtype=None,
        backend: str = "auto",
    ) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__(normalized_shape, eps, elementwise_affine, bias, **factory_kwargs)
        self.backend = F.check_backend(backend)

    def forward(
        self, input: torch.Tensor, residual: torch.Tensor | None = None, residual_dtype: torch.dtype | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        return F.layer_norm(
            input, self.normalized_shape, self.weight, self.bias, self.eps, self.backend, residual, residual_dtype
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, backend={self.backend!r}"


class RMSNorm(nn.RMSNorm):
    """``torch.nn.RMSNorm`` with a ``backend`` and an optional fused residual add.

    Arguments as :class:`LayerNorm`'s, without ``bias``; ``eps`` None is torch's default (see
    :func:`normcore.torch.functional.rms_norm`), ``weight`` is learnt with
    ``elementwise_affine``, and ``forward`` likewise returns ``y`` or ``(y, input +
    residual)``.
    """

    def __init__(
        self,
        normalized_shape: int | list[int] | torch.Size,
        eps: float | None = None,
        elementwise_affine: bool = True,
        device=None,
        dtype=None,
        backend: str = "auto",
    ) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__(normalized_shape, eps, elementwise_affine, **factory_kwargs)
        self.backend = F.check_backend(backend)

    def forward(
        self, input: torch.Tensor, residual: torch.Tensor | None = None, residual_dtype: torch.dtype | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps, self.backend, residual, residual_dtype)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, backend={self.backend!r}"


def _spatial(cls_by_dims: dict[int, type[nn.Module]], kind: str, dims: int) -> type[nn.Module]:
    if dims not in cls_by_dims:
        raise ValueError(f"make_norm({kind!r}): dims={dims!r}; expected 1, 2 or 3 (spatial dimensions)")
    return cls_by_dims[dims]


def _batch(num_features: int, dims: int = 1, **kw) -> nn.Module:
    """Batch norm: each channel over the batch and the spatial positions (``BatchNorm{dims}d``)."""
    classes = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
    return _spatial(classes, "batch", dims)(num_features, **kw)


def _instance(num_features: int, dims: int = 1, **kw) -> nn.Module:
    """Instance norm: each sample's channel over its spatial positions (``InstanceNorm{dims}d``)."""
    classes = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
    return _spatial(classes, "instance", dims)(num_features, **kw)


def _group(num_features: int, num_groups: int | None = None, **kw) -> nn.Module:
    """Group norm: each sample's channels in ``num_groups`` groups (``GroupNorm``)."""
    if num_groups is None:
        raise ValueError("make_norm('group', num_features, num_groups=...): num_groups is required")
    return nn.GroupNorm(num_groups, num_features, **kw)


def _weight(num_features: int | None, module: nn.Module | None = None, name: str = "weight", dim: int = 0) -> nn.Module:
    """Weight norm of ``module``'s ``name`` parameter (``parametrizations.weight_norm``), not of activations."""
    if module is None:
        raise ValueError("make_norm('weight', ...): pass the layer to reparametrize, e.g. module=nn.Linear(64, 32)")
    param = getattr(module, name, None)
    if not isinstance(param, torch.Tensor):
        raise ValueError(f"make_norm('weight', ...): {type(module).__name__} has no tensor {name!r} to normalize")
    if num_features is not None and param.shape[dim] != num_features:
        raise ValueError(
            f"make_norm('weight', {num_features}, ...): {type(module).__name__}.{name} has {param.shape[dim]} "
            f"features along dim {dim}"
        )
    return nn.utils.parametrizations.weight_norm(module, name=name, dim=dim)


#: ``make_norm`` kinds and their builders (each documents what it normalizes over).
NORM_KINDS: dict[str, Callable[..., nn.Module]] = {
    "batch": _batch,
    "group": _group,
    "instance": _instance,
    "layer": LayerNorm,
    "rms": RMSNorm,
    "weight": _weight,
}


def make_norm(kind: str, num_features: int | None = None, **kw) -> nn.Module:
    """A normalization module of the family by name.

    Parameters
    ----------
    kind : {"batch", "group", "instance", "layer", "rms", "weight"}
        ``batch``: ``nn.BatchNorm1d`` (``dims=2`` / ``3``: ``BatchNorm2d`` / ``3d``);
        ``group``: ``nn.GroupNorm`` (needs ``num_groups``); ``instance``:
        ``nn.InstanceNorm1d`` (``dims`` as for batch); ``layer``: :class:`LayerNorm`;
        ``rms``: :class:`RMSNorm`; ``weight``: ``module`` (a keyword) with its weight
        reparametrized by ``torch.nn.utils.parametrizations.weight_norm``.
    num_features : int, optional
        Channels (batch, group, instance) or ``normalized_shape`` (layer, rms); for
        ``weight``, optional, checked against the module's weight along ``dim``.
    **kw
        Passed to the module's constructor (``eps``, ``affine``, ``backend``, ...).

    Returns
    -------
    torch.nn.Module
        torch's own module where ours adds nothing; ours for ``layer`` and ``rms``.
    """
    builder = NORM_KINDS.get(kind)
    if builder is None:
        raise ValueError(f"make_norm: unknown kind {kind!r}; expected one of {', '.join(NORM_KINDS)}")
    if num_features is None and kind != "weight":
        raise ValueError(f"make_norm({kind!r}): num_features is required")
    return builder(num_features, **kw)
