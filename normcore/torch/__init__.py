"""PyTorch support: an artifact as a layer (``Normalization``), fused LayerNorm / RMSNorm
(``normcore.torch.functional``, the modules) and ``make_norm``.

``normcore`` itself never imports this package: training code opts in with
``from normcore.torch import Normalization, LayerNorm, RMSNorm, make_norm``.
"""

from normcore.torch import functional
from normcore.torch.modules import LayerNorm, RMSNorm, make_norm
from normcore.torch.normalization import Normalization

__all__ = ["LayerNorm", "Normalization", "RMSNorm", "functional", "make_norm"]
