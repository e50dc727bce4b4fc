"""Helpers of the torch tests: inputs, one forward + backward, and the accuracy rule against torch."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from normcore.torch import functional
from normcore.torch.triton import ops

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
#: Absolute slack of the low-precision rule, relative to the reference's largest magnitude.
LOW_PRECISION_ATOL = {torch.float16: 1e-4, torch.bfloat16: 1e-4}
#: Absolute and relative slack of float32 against the float64 reference, beyond torch's own error.
FLOAT32_TOL = 1e-5


@dataclass
class Case:
    """One norm call: ``kind`` ("layer" / "rms"), input ``shape``, normalized trailing ``dims``."""

    kind: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    weight: bool = True
    bias: bool = True
    residual: bool = False
    residual_dtype: torch.dtype | None = None
    layout: str = "contiguous"
    dims: int = 1
    eps: float | None = None
    param_dtype: torch.dtype | None = None
    seed: int = 0

    @property
    def normalized_shape(self) -> tuple[int, ...]:
        return self.shape[len(self.shape) - self.dims :]


def laid_out(values: torch.Tensor, layout: str) -> torch.Tensor:
    """``values`` (same numbers) as a contiguous, transposed (column stride != 1) or sliced (row stride > N) view."""
    if layout == "contiguous":
        return values.clone()
    if layout == "transposed":
        order = tuple(reversed(range(values.dim())))
        return values.permute(order).contiguous().permute(order)
    if layout == "sliced":
        wide = torch.zeros(*values.shape[:-1], 2 * values.shape[-1] + 3, dtype=values.dtype, device=values.device)
        view = wide[..., 1 : values.shape[-1] + 1]
        view.copy_(values)
        return view
    raise ValueError(f"unknown layout {layout!r}")


def run(case: Case, backend: str, reference_dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Outputs and gradients of ``case`` on ``backend``; with ``reference_dtype``, every input in that dtype.

    The loss is ``sum(y * g) + sum(residual_out * g2)`` with fixed random ``g``, ``g2``, so
    every gradient path (through ``y`` and through the returned residual sum) is exercised.
    """
    dtypes = {"x": case.dtype, "weight": case.param_dtype or case.dtype, "residual": case.residual_dtype or case.dtype}
    dtypes["bias"] = dtypes["weight"]
    residual_dtype = case.residual_dtype
    if reference_dtype is not None:
        dtypes = dict.fromkeys(dtypes, reference_dtype)
        residual_dtype = None
    gen = torch.Generator().manual_seed(case.seed)
    shape, norm_shape = case.shape, case.normalized_shape

    def rand(*size, scale=1.0, offset=0.0):
        return torch.randn(*size, generator=gen) * scale + offset

    base = {"x": rand(*shape, offset=0.5)}
    if case.weight:
        base["weight"] = rand(*norm_shape, scale=0.5, offset=1.0)
    if case.bias and case.kind == "layer":
        base["bias"] = rand(*norm_shape, scale=0.5)
    if case.residual:
        base["residual"] = rand(*shape)
    grad_y, grad_residual = rand(*shape), rand(*shape)
    tensors = {}
    for name, values in base.items():
        tensor = values.to(device=DEVICE, dtype=dtypes[name])
        if name in ("x", "residual"):
            tensor = laid_out(tensor, case.layout)
        tensors[name] = tensor.requires_grad_()
    kwargs = {"backend": backend}
    if case.residual:
        kwargs.update(residual=tensors["residual"], residual_dtype=residual_dtype)
    if case.eps is not None:
        kwargs["eps"] = case.eps
    if case.kind == "layer":
        out = functional.layer_norm(tensors["x"], norm_shape, tensors.get("weight"), tensors.get("bias"), **kwargs)
    else:
        out = functional.rms_norm(tensors["x"], norm_shape, tensors.get("weight"), **kwargs)
    y, residual_out = out if case.residual else (out, None)
    loss = (y.double() * grad_y.to(DEVICE, torch.float64)).sum()
    if residual_out is not None:
        loss = loss + (residual_out.double() * grad_residual.to(DEVICE, torch.float64)).sum()
    names = list(tensors)
    grads = torch.autograd.grad(loss, [tensors[name] for name in names], allow_unused=False)
    result = {"y": y.detach()}
    if residual_out is not None:
        result["residual_out"] = residual_out.detach()
    result.update({f"d{name}": grad for name, grad in zip(names, grads, strict=True)})
    return result


def bf16_ulp(values: torch.Tensor) -> torch.Tensor:
    """One bfloat16 unit in the last place at each of ``values`` (0 at 0)."""
    _, exponent = torch.frexp(values.double())
    return torch.where(values == 0, 0.0, torch.ldexp(torch.ones_like(values.double()), exponent - 8))


def check_against_torch(case: Case) -> dict[str, float]:
    """Assert every output and gradient of the Triton backend is as accurate as torch's; return max errors.

    float32: elementwise ``|ours - ref64| <= |torch - ref64| + 1e-5 * (1 + |ref64|)`` (within
    1e-5 of the float64 reference apart from torch's own rounding, which for N = 1 gradients
    exceeds 1e-5). float16 / bfloat16 (flash-attn's rule): ``max |ours - ref32| <= 2 * max
    |torch - ref32| + atol * max(1, max |ref32|)``. Under the Triton interpreter a bfloat16
    output may be one ulp further off: the interpreter rounds float32 -> bfloat16 toward
    zero, a GPU to nearest.
    """
    ours = run(case, "triton")
    lowp = run(case, "torch")
    reference_dtype = torch.float64 if case.dtype == torch.float32 else torch.float32
    reference = run(case, "torch", reference_dtype)
    errors = {}
    for name, ref in reference.items():
        got, theirs = ours[name], lowp[name]
        if got.dtype != theirs.dtype or got.shape != theirs.shape:
            raise AssertionError(
                f"{name}: {got.dtype} {tuple(got.shape)} vs torch's {theirs.dtype} {tuple(theirs.shape)}"
            )
        ref = ref.double()
        err = (got.double() - ref).abs()
        torch_err = (theirs.double() - ref).abs()
        errors[name] = (got.double() - theirs.double()).abs().max().item() if got.numel() else 0.0
        if got.numel() == 0:
            continue
        if got.dtype == torch.float32 and case.dtype == torch.float32:
            excess = err - torch_err - FLOAT32_TOL * (1 + ref.abs())
            assert excess.max() <= 0, f"{name}: {err.max().item():.3g} off the float64 reference ({case})"
            continue
        if got.dtype == torch.bfloat16 and ops.interpreted():
            err = (err - bf16_ulp(ref)).clamp_min(0)
        atol = LOW_PRECISION_ATOL.get(case.dtype, FLOAT32_TOL) * max(1.0, ref.abs().max().item())
        bound = 2 * torch_err.max().item() + atol
        assert err.max().item() <= bound, f"{name}: error {err.max().item():.3g} > bound {bound:.3g} ({case})"
    return errors
