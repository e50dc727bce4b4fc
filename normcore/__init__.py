"""normcore: exact, mergeable feature statistics and normalization on any engine.

The public API for training code::

    import normcore
    art = normcore.load_artifact("stats.json")
    norm = normcore.Normalizer.from_artifact(art)
    y = norm.transform(data); x = norm.inverse_transform(y)
    art = normcore.fit(data, features=None, method="zscore")
"""

__version__ = "0.1.0"

from normcore.api import Normalizer, fit  # noqa: E402
from normcore.artifact import Artifact, load_artifact  # noqa: E402
from normcore.errors import ArtifactError, ConfigError, InputError, NormcoreError  # noqa: E402

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
