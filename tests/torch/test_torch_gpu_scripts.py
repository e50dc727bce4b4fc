"""What can be checked of the GPU side without a GPU: the kernels compile for sm_90, the benchmark skips."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "NORMCORE_TRITON_MAX_BLOCK")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def _load_bench():
    spec = importlib.util.spec_from_file_location("layernorm_gpu_bench", ROOT / "bench" / "layernorm_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kernels_compile_for_hopper(tmp_path):
    """Every kernel, at the launch configurations of N = 1000 .. 262144, lowers to an sm_90 cubin."""
    import triton.backends

    if "nvidia" not in triton.backends.backends:
        pytest.skip("this triton build has no NVIDIA backend")
    script = Path(__file__).with_name("torch_sm90_compile.py")
    env = _clean_env(TRITON_CACHE_DIR=str(tmp_path / "triton-cache"), TRITON_DEFAULT_FP_FUSION="1")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert any("norm_fwd_split_kernel" in line for line in lines)
    assert any("SPLIT': True" in line for line in lines) and any("SPLIT': False" in line for line in lines)


def test_bench_skips_without_gpu():
    env = _clean_env(CUDA_VISIBLE_DEVICES="")
    bench = ROOT / "bench" / "layernorm_gpu.py"
    result = subprocess.run([sys.executable, str(bench)], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipped" in result.stdout


@pytest.mark.parametrize(
    ("name", "tb_per_s"),
    [
        ("NVIDIA H100 80GB HBM3", 3.35),
        ("NVIDIA H100 PCIe", 2.0),
        ("NVIDIA H200", 4.8),
        ("NVIDIA A100-SXM4-80GB", 2.0),
        ("NVIDIA A100 80GB PCIe", 2.0),
        ("NVIDIA H100 NVL", None),
        ("NVIDIA A10G", None),
    ],
)
def test_bench_peak_bandwidth(name, tb_per_s):
    assert _load_bench().peak_bandwidth(name) == tb_per_s


def test_bench_counted_bytes():
    bench = _load_bench()
    m, n = 4, 8
    # forward: x and y (2 bytes each), weight + bias, float32 mean + rstd
    assert bench.counted_bytes("layer", m, n, 2, backward=False) == 2 * m * n * 2 + 2 * n * 2 + 2 * m * 4
    # backward: x, dy, dx; weight, dweight, dbias; mean + rstd
    assert bench.counted_bytes("layer", m, n, 2, backward=True) == 3 * m * n * 2 + 3 * n * 2 + 2 * m * 4
    assert bench.counted_bytes("rms", m, n, 4, backward=True) == 3 * m * n * 4 + 2 * n * 4 + m * 4
