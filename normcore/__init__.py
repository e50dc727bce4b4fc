"""normcore: exact, mergeable feature statistics and normalization on any engine.

The public API for training code::

    import normcore
    art = normcore.load_artifact("stats.json")
    norm = normcore.Normalizer.from_artifact(art)
    y = norm.transform(data); x = norm.inverse_transform(y)
    art = normcore.fit(data, features=None, method="zscore")

``import normcore`` loads only this module and :mod:`normcore.errors`; each public name
below imports its module (NumPy, pyarrow, the statistics kernel) on first use, so a
command or a serving process pays only for what it touches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from normcore.errors import ArtifactError, ConfigError, InputError, NormcoreError
from normcore.lazy import lazy_attributes

__version__ = "0.1.0"

#: Public name -> the module that defines it (imported on first attribute access).
_LAZY = {
    "Artifact": "normcore.artifact",
    "load_artifact": "normcore.artifact",
    "Normalizer": "normcore.api",
    "fit": "normcore.api",
}

if TYPE_CHECKING:
    from normcore.api import Normalizer, fit
    from normcore.artifact import Artifact, load_artifact


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


__all__ = [
    "Artifact",
    "ArtifactError",
    "ConfigError",
    "InputError",
    "NormcoreError",
    "Normalizer",
    "__version__",
    "fit",
    "load_artifact",
]
