"""LayerNorm / RMSNorm modules as drop-ins for torch.nn's, and make_norm."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_support import DEVICE

from normcore.torch import LayerNorm, RMSNorm, make_norm


def _pair(kind: str, **kw) -> tuple[nn.Module, nn.Module]:
    """(torch's module, ours) built with the same arguments."""
    if kind == "layer":
        return nn.LayerNorm(**kw), LayerNorm(**kw)
    return nn.RMSNorm(**kw), RMSNorm(**kw)


CONSTRUCTIONS = [
    ("layer", {"normalized_shape": 16}),
    ("layer", {"normalized_shape": (4, 8), "eps": 1e-3, "bias": False}),
    ("layer", {"normalized_shape": [16], "elementwise_affine": False}),
    ("rms", {"normalized_shape": 16}),
    ("rms", {"normalized_shape": (4, 8), "eps": 1e-4}),
    ("rms", {"normalized_shape": 16, "elementwise_affine": False}),
]


@pytest.mark.parametrize(("kind", "kw"), CONSTRUCTIONS)
def test_same_parameters_and_state_dict_keys(kind, kw):
    theirs, ours = _pair(kind, **kw)
    assert isinstance(ours, type(theirs))
    assert [name for name, _ in ours.named_parameters()] == [name for name, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.normalized_shape == theirs.normalized_shape and ours.eps == theirs.eps
    assert ours.extra_repr() == f"{theirs.extra_repr()}, backend='auto'"


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize(("kind", "kw"), CONSTRUCTIONS)
def test_state_dict_round_trip(kind, kw, backend):
    """A torch.nn state_dict loads into ours and back; both compute the same function."""
    theirs, _ = _pair(kind, **kw)
    with torch.no_grad():
        for param in theirs.parameters():
            param.copy_(torch.randn_like(param))
    ours = (LayerNorm if kind == "layer" else RMSNorm)(**kw, backend=backend)
    ours.load_state_dict(theirs.state_dict())
    back, _ = _pair(kind, **kw)
    back.load_state_dict(ours.state_dict())
    theirs, ours, back = theirs.to(DEVICE), ours.to(DEVICE), back.to(DEVICE)
    x = torch.randn(3, *theirs.normalized_shape, device=DEVICE)
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(back(x), theirs(x), atol=0, rtol=0)


def test_factory_kwargs_and_reset_parameters():
    norm = LayerNorm(8, dtype=torch.float16, device="cpu")
    assert norm.weight.dtype == torch.float16 and norm.bias.device.type == "cpu"
    with torch.no_grad():
        norm.weight.fill_(3.0)
        norm.bias.fill_(2.0)
    norm.reset_parameters()
    assert torch.equal(norm.weight, torch.ones(8, dtype=torch.float16))
    assert torch.equal(norm.bias, torch.zeros(8, dtype=torch.float16))
    rms = RMSNorm(8, dtype=torch.bfloat16)
    assert rms.weight.dtype == torch.bfloat16 and rms.eps is None


@pytest.mark.parametrize("kind", ["layer", "rms"])
def test_module_residual_forward(kind):
    ours = (LayerNorm if kind == "layer" else RMSNorm)(32, backend="triton").to(DEVICE)
    x, residual = torch.randn(2, 3, 32, device=DEVICE), torch.randn(2, 3, 32, device=DEVICE)
    y, residual_out = ours(x, residual)
    torch.testing.assert_close(residual_out, x + residual)
    torch.testing.assert_close(y, ours(x + residual), atol=1e-5, rtol=1e-5)
    _, residual_fp32 = ours(x.bfloat16(), residual.bfloat16(), residual_dtype=torch.float32)
    assert residual_fp32.dtype == torch.float32


def test_rms_eps_none_matches_torch_in_bf16():
    """eps=None is torch's default (the float32 epsilon for bf16 inputs), not bf16's epsilon."""
    x = (torch.randn(4, 64) * 0.05).to(DEVICE, torch.bfloat16)
    ours, theirs = RMSNorm(64, backend="triton").to(DEVICE, torch.bfloat16), nn.RMSNorm(64).to(DEVICE, torch.bfloat16)
    torch.testing.assert_close(ours(x), theirs(x), atol=2e-2, rtol=2e-2)


def test_invalid_backend():
    with pytest.raises(ValueError, match="'auto', 'triton', 'torch'"):
        LayerNorm(8, backend="cuda")
    with pytest.raises(ValueError, match="'auto', 'triton', 'torch'"):
        RMSNorm(8, backend="Triton")


@pytest.mark.parametrize(
    ("kind", "kw", "expected"),
    [
        ("batch", {}, nn.BatchNorm1d),
        ("batch", {"dims": 2, "momentum": 0.2}, nn.BatchNorm2d),
        ("batch", {"dims": 3}, nn.BatchNorm3d),
        ("group", {"num_groups": 4}, nn.GroupNorm),
        ("instance", {}, nn.InstanceNorm1d),
        ("instance", {"dims": 2, "affine": True}, nn.InstanceNorm2d),
        ("layer", {"eps": 1e-6}, LayerNorm),
        ("rms", {"backend": "torch"}, RMSNorm),
    ],
)
def test_make_norm_types(kind, kw, expected):
    norm = make_norm(kind, 16, **kw)
    assert type(norm) is expected


def test_make_norm_passes_arguments():
    assert make_norm("group", 16, num_groups=4).num_groups == 4
    assert make_norm("layer", 16, eps=1e-6, bias=False).bias is None
    assert make_norm("rms", 16, backend="torch").backend == "torch"
    assert make_norm("batch", 16, dims=2, momentum=0.2).momentum == 0.2


def test_make_norm_weight_wraps_the_module():
    linear = nn.Linear(8, 16)
    wrapped = make_norm("weight", 16, module=linear)
    assert wrapped is linear
    assert nn.utils.parametrize.is_parametrized(wrapped, "weight")
    assert set(dict(wrapped.named_parameters())) == {
        "bias",
        "parametrizations.weight.original0",
        "parametrizations.weight.original1",
    }
    make_norm("weight", module=nn.Linear(8, 4))  # num_features is optional


@pytest.mark.parametrize(
    ("args", "kw", "match"),
    [
        (("layers", 16), {}, "unknown kind 'layers'; expected one of batch, group, instance, layer, rms, weight"),
        (("group", 16), {}, "num_groups is required"),
        (("batch", 16), {"dims": 4}, "dims=4; expected 1, 2 or 3"),
        (("layer",), {}, "num_features is required"),
        (("weight", 16), {}, "pass the layer to reparametrize"),
        (("weight", 16), {"module": nn.Linear(8, 4)}, "has 4 features along dim 0"),
        (("weight", None), {"module": nn.ReLU()}, "has no tensor 'weight'"),
    ],
)
def test_make_norm_errors(args, kw, match):
    with pytest.raises(ValueError, match=match):
        make_norm(*args, **kw)


def test_normcore_does_not_import_torch_support():
    """``import normcore`` stays free of torch (a subprocess: this one has imported it already)."""
    import subprocess
    import sys

    code = "import sys, normcore; print('normcore.torch' in sys.modules, 'torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
