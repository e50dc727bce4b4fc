"""Fused Triton LayerNorm / RMSNorm: kernels (:mod:`.kernels`) and ``torch.library`` ops (:mod:`.ops`).

Importing this package registers ``torch.ops.normcore.norm_forward`` and
``torch.ops.normcore.norm_backward``. It needs ``triton``; on a CPU, the kernels run only
in Triton's interpreter, which ``TRITON_INTERPRET=1`` must select before triton is imported.
"""
