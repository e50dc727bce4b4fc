"""Fixtures of the torch tests: Triton's CPU interpreter where there is no GPU, and a small block cap.

``TRITON_INTERPRET=1`` must be in the environment before triton builds the kernels (at
the import of ``normcore.torch``), so it is set here, at collection, before any test
module imports normcore.torch.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

#: Block cap of the tests: N = 4096 fits one block, N = 5000 takes the split-row path.
TEST_MAX_BLOCK = "4096"


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cap the kernels' blocks at 4096 elements, so a cheap N = 5000 exercises the split-row path."""
    monkeypatch.setenv("NORMCORE_TRITON_MAX_BLOCK", TEST_MAX_BLOCK)
