"""The Triton LayerNorm / RMSNorm kernels against torch: outputs and every gradient.

On a machine without a GPU the kernels run in Triton's interpreter (conftest sets
``TRITON_INTERPRET=1``), with blocks capped at 4096 elements: N = 4096 is one block,
N = 5000 takes the split-row path in the forward and the backward pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch_support import DEVICE, Case, check_against_torch, laid_out, run

from normcore.torch import functional
from normcore.torch.triton import ops

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
DTYPE_IDS = ["fp32", "fp16", "bf16"]
HIDDEN = [1, 127, 1000, 4096, 5000]
AFFINE = [
    ("layer", True, True),
    ("layer", True, False),
    ("layer", False, False),
    ("rms", True, False),
    ("rms", False, False),
]
AFFINE_IDS = ["layer-wb", "layer-w", "layer-none", "rms-w", "rms-none"]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("n", HIDDEN)
@pytest.mark.parametrize(("kind", "weight", "bias"), AFFINE, ids=AFFINE_IDS)
def test_matches_torch(kind, weight, bias, n, dtype):
    """Leading dims (2, 3): y, dx, dweight, dbias as accurate as torch's own in every dtype."""
    check_against_torch(Case(kind, (2, 3, n), dtype, weight=weight, bias=bias))


@pytest.mark.parametrize(
    ("dtype", "residual_dtype"),
    [(torch.float32, None), (torch.float16, None), (torch.bfloat16, None), (torch.bfloat16, torch.float32)],
    ids=["fp32", "fp16", "bf16", "bf16-res-fp32"],
)
@pytest.mark.parametrize("n", [127, 5000])
@pytest.mark.parametrize("kind", ["layer", "rms"])
def test_fused_residual(kind, n, dtype, residual_dtype):
    """``residual=``: y and residual_out, gradients to x, residual, weight, bias (and through residual_out)."""
    check_against_torch(Case(kind, (5, n), dtype, residual=True, residual_dtype=residual_dtype))


@pytest.mark.parametrize("layout", ["transposed", "sliced"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("n", [127, 5000])
@pytest.mark.parametrize("kind", ["layer", "rms"])
def test_non_contiguous_input(kind, n, dtype, layout):
    """A transposed view (copied to rows) and a sliced one (row stride > N, read in place), residual too."""
    check_against_torch(Case(kind, (3, n), dtype, layout=layout, residual=True))


@pytest.mark.parametrize("kind", ["layer", "rms"])
def test_normalized_shape_of_two_dims(kind):
    check_against_torch(Case(kind, (4, 8, 16), torch.float32, dims=2))


@pytest.mark.parametrize(("kind", "eps"), [("layer", 1e-2), ("rms", 1e-6), ("rms", 1e-2)])
def test_explicit_eps(kind, eps):
    check_against_torch(Case(kind, (4, 300), torch.float16, eps=eps))


@pytest.mark.filterwarnings("ignore:Mismatch dtype between input and weight")
@pytest.mark.parametrize("kind", ["layer", "rms"])
def test_low_precision_input_with_float32_parameters(kind):
    """bf16 x, fp32 weight / bias: y is bf16, as in torch."""
    check_against_torch(Case(kind, (4, 300), torch.bfloat16, param_dtype=torch.float32))


@pytest.mark.parametrize("n", [127, 5000])
@pytest.mark.parametrize("kind", ["layer", "rms"])
def test_no_rows(kind, n):
    """M = 0: empty y and dx, zero dweight / dbias (the one backward program writes zeros)."""
    check_against_torch(Case(kind, (0, n), torch.float32, residual=True))
    ours = run(Case(kind, (0, n), torch.float32), "triton")
    assert ours["y"].shape == (0, n) and ours["dx"].shape == (0, n)
    assert torch.equal(ours["dweight"], torch.zeros(n, device=DEVICE))


@pytest.mark.parametrize("n", [32768, 262144])
@pytest.mark.parametrize("kind", ["layer", "rms"])
def test_long_rows_at_default_blocks(kind, n, monkeypatch):
    """Without the tests' cap: N = 32768 is one forward block and a split backward, 262144 split in both."""
    monkeypatch.delenv("NORMCORE_TRITON_MAX_BLOCK")
    assert ops.forward_launch(2, n).split == (n > ops.FORWARD_MAX_BLOCK)
    assert ops.backward_launch(2, n, None).split
    check_against_torch(Case(kind, (2, n), torch.bfloat16, residual=True))


@pytest.mark.parametrize("kind", ["layer", "rms"])
def test_strided_parameters_and_expanded_gradient(kind):
    """A weight / bias viewed with stride 2, and the stride-0 gradient of ``y.sum()``."""
    x = torch.randn(3, 40, device=DEVICE, requires_grad=True)
    storage = torch.randn(2, 80, device=DEVICE)
    weight, bias = storage[0, ::2].requires_grad_(), storage[1, ::2].requires_grad_()
    grads = {}
    for backend in ("triton", "torch"):
        if kind == "layer":
            y = functional.layer_norm(x, 40, weight, bias, backend=backend)
        else:
            y = functional.rms_norm(x, 40, weight, backend=backend)
        inputs = (x, weight, bias) if kind == "layer" else (x, weight)
        expanded = torch.autograd.grad(y.sum(), inputs, retain_graph=True)  # dy: ones with stride 0
        grads[backend] = (y.detach(), *expanded, *torch.autograd.grad(y.pow(3).sum(), inputs))
    for ours, theirs in zip(grads["triton"], grads["torch"], strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_partition_leaves_programs_empty():
    """The layout the next test relies on: 5 rows over 4 programs give 2, 2, 1 and 0 rows."""
    programs, per_program = ops.partition_rows(5, 1, 4)
    assert (programs, per_program) == (4, 2)
    owned = [max(0, min(5, (p + 1) * per_program) - p * per_program) for p in range(programs)]
    assert owned == [2, 2, 1, 0]
    assert ops.partition_rows(0, 4, 4) == (1, 0)


def test_every_partial_row_is_written():
    """A program that owns no rows still writes its (zero) partial row: NaN-filled buffers come back NaN-free."""
    m, n = 5, 64
    programs, per_program = ops.partition_rows(m, 1, 4)
    h, dy = torch.randn(m, n, device=DEVICE), torch.randn(m, n, device=DEVICE)
    weight = torch.randn(n, device=DEVICE)
    mean, rstd = h.mean(1), torch.rsqrt(h.var(1, unbiased=False) + 1e-5)
    dx = torch.empty_like(h)
    dw_partial, db_partial = (torch.full((programs, n), float("nan"), device=DEVICE) for _ in range(2))
    unused = torch.empty(0, device=DEVICE)
    ops.kernels.norm_bwd_kernel[(programs, 1)](
        h, dy, weight, mean, rstd, unused, unused, None, dx, dw_partial, db_partial,
        m, n, n, n, 0, per_program,
        RMS=False, HAS_WEIGHT=True, HAS_BIAS=True, HAS_DRESIDUAL_OUT=False, SPLIT=False, ROWS=1, BLOCK_N=n,
    )  # fmt: skip
    assert not dw_partial.isnan().any() and not db_partial.isnan().any()
    assert torch.equal(dw_partial[-1], torch.zeros(n, device=DEVICE))
    xhat = (h - mean[:, None]) * rstd[:, None]
    torch.testing.assert_close(dw_partial.sum(0), (dy * xhat).sum(0))
    torch.testing.assert_close(db_partial.sum(0), dy.sum(0))


@pytest.mark.parametrize("m", [1, 3, 5])
@pytest.mark.parametrize("kind", ["layer", "rms"])
def test_fewer_rows_than_programs(kind, m):
    """M below the interpreter's 4 backward programs; at M = 5 one program owns no rows and writes zeros."""
    launch = ops.backward_launch(m, 4096, None)
    assert launch.rows == 1 and launch.programs == min(m, ops.INTERPRETER_PROGRAMS)
    check_against_torch(Case(kind, (m, 4096), torch.float32))


def test_test_config_exercises_both_paths():
    """Under the tests' block cap N = 4096 is one block and N = 5000 is split, forward and backward."""
    assert not ops.forward_launch(6, 4096).split and not ops.backward_launch(6, 4096, None).split
    assert ops.forward_launch(6, 5000).split and ops.backward_launch(6, 5000, None).split
    assert ops.backward_launch(6, 5000, None).column_blocks == 2


@pytest.mark.parametrize("n", [1000, 5000])
@pytest.mark.parametrize("kind", ["layer", "rms"])
def test_backward_is_deterministic(kind, n):
    """Two backward runs give the same bits for dweight / dbias (fixed-order partial sums)."""
    case = Case(kind, (37, n), torch.float32, seed=3)
    first, second = run(case, "triton"), run(case, "triton")
    for name in ("dweight", "dbias", "dx") if kind == "layer" else ("dweight", "dx"):
        assert torch.equal(first[name], second[name]), name


def test_auto_is_torch_on_cpu():
    if DEVICE == "cuda":
        pytest.skip("auto picks Triton on CUDA tensors")
    x, weight = torch.randn(4, 33), torch.randn(33)
    assert torch.equal(functional.layer_norm(x, 33, weight), torch.nn.functional.layer_norm(x, (33,), weight))
    assert torch.equal(functional.rms_norm(x, 33, weight), torch.nn.functional.rms_norm(x, (33,), weight))


def test_block_cap_is_validated(monkeypatch):
    monkeypatch.setenv(ops.MAX_BLOCK_ENV, "1000")
    with pytest.raises(ValueError, match="power of two"):
        functional.layer_norm(torch.randn(2, 8, device=DEVICE), 8, backend="triton")


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda x: functional.layer_norm(x, 8, backend="cuda"), ValueError, "'auto', 'triton', 'torch'"),
        (lambda x: functional.layer_norm(x, 7), ValueError, r"does not end in normalized_shape \(7,\)"),
        (lambda x: functional.layer_norm(x, 8, torch.ones(4)), ValueError, "weight has shape"),
        (lambda x: functional.rms_norm(x, 8, residual=x[:1]), ValueError, "residual has shape"),
        (lambda x: functional.rms_norm(x, 8, residual_dtype=torch.float32), ValueError, "without a residual"),
        (lambda x: functional.layer_norm(x.double(), 8, backend="triton"), ValueError, "x is torch.float64"),
        (
            lambda x: functional.rms_norm(x, 8, torch.ones(8, dtype=torch.float64), backend="triton"),
            ValueError,
            "weight is torch.float64",
        ),
        (lambda x: functional.layer_norm(x, 8.0), TypeError, "normalized_shape"),
    ],
    ids=["backend", "shape", "weight", "residual", "residual-dtype", "x-dtype", "weight-dtype", "shape-type"],
)
def test_errors_are_clear(call, error, match):
    with pytest.raises(error, match=match):
        call(torch.randn(3, 8, device=DEVICE))


def test_triton_on_cpu_without_interpreter_is_a_clear_error():
    """Kernels built for a GPU (no TRITON_INTERPRET at import) refuse CPU tensors with a message saying what to set."""
    if DEVICE == "cuda":
        pytest.skip("needs a machine without a GPU")
    code = (
        "import torch\n"
        "from normcore.torch import functional\n"
        "try:\n"
        "    functional.layer_norm(torch.randn(2, 8), 8, backend='triton')\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "TRITON_INTERPRET=1" in result.stdout and "backend='torch'" in result.stdout


def test_op_registration():
    """``torch.library.opcheck``: schema (no aliasing, no mutation) and the autograd registration."""
    x, weight, bias, residual = (
        torch.randn(*s, device=DEVICE, requires_grad=True) for s in [(3, 40), (40,), (40,), (3, 40)]
    )
    torch.library.opcheck(
        torch.ops.normcore.norm_forward.default,
        (x, weight, bias, residual, 1e-5, False, torch.float32, torch.float32),
        test_utils=("test_schema", "test_autograd_registration"),
    )
    y, residual_out, mean, rstd = torch.ops.normcore.norm_forward(x, weight, None, None, 1e-5, True, x.dtype, x.dtype)
    assert residual_out.numel() == 0 and mean.numel() == 0 and rstd.dtype == torch.float32
    detached = [t.detach() for t in (torch.randn_like(y), x, weight)]
    torch.library.opcheck(
        torch.ops.normcore.norm_backward.default,
        (*detached, None, mean.detach(), rstd.detach(), None, True),
        test_utils=("test_schema",),
    )


@pytest.mark.parametrize("kind", ["layer", "rms"])
def test_compile_fullgraph_torch_backend(kind):
    """``torch.compile(fullgraph=True)`` of the module on the torch backend traces with no graph break."""
    from normcore.torch import LayerNorm, RMSNorm

    module = (LayerNorm if kind == "layer" else RMSNorm)(64, backend="torch").to(DEVICE)
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 5, 64, device=DEVICE, requires_grad=True)
    expected, got = module(x), compiled(x)
    torch.testing.assert_close(got, expected)
    (grad_eager,) = torch.autograd.grad(expected.square().sum(), x)
    (grad_compiled,) = torch.autograd.grad(got.square().sum(), x)
    torch.testing.assert_close(grad_compiled, grad_eager)


@pytest.mark.skipif(
    ops.interpreted(),
    reason="Under TRITON_INTERPRET=1 torch 2.13's wrap_triton returns the InterpretedFunction unwrapped (it lacks "
    "the JIT metadata of the traceable wrapper), so FakeTensor tracing launches the kernel on tensors without "
    "storage ('Cannot access data pointer'); the triton path compiles only with real kernels on a GPU",
)
@pytest.mark.parametrize("kind", ["layer", "rms"])
def test_compile_fullgraph_triton_backend(kind):
    from normcore.torch import LayerNorm, RMSNorm

    module = (LayerNorm if kind == "layer" else RMSNorm)(512, backend="triton").to(DEVICE)
    compiled = torch.compile(module, fullgraph=True)
    x = torch.randn(4, 512, device=DEVICE, requires_grad=True)
    expected, got = module(x), compiled(x)
    torch.testing.assert_close(got, expected)
    (grad_eager,) = torch.autograd.grad(expected.square().sum(), x)
    (grad_compiled,) = torch.autograd.grad(got.square().sum(), x)
    torch.testing.assert_close(grad_compiled, grad_eager)


def test_case_layouts_are_what_they_claim():
    """The non-contiguous cases above really hand the kernels a copied and an in-place strided view."""
    values = torch.randn(3, 10)
    transposed, sliced = laid_out(values, "transposed"), laid_out(values, "sliced")
    assert transposed.stride(-1) != 1 and torch.equal(transposed, values)
    assert sliced.stride(-1) == 1 and sliced.stride(0) > 10 and torch.equal(sliced, values)
    assert Case("layer", (4, 8, 16), torch.float32, dims=2).normalized_shape == (8, 16)
