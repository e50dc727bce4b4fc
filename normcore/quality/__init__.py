"""Data quality: validation of normalized outputs, drift of new data, the visual report.

``checks`` (what an output must satisfy, derived from the artifact), ``conformity``
(engine-agnostic combiner: share of values in range), ``checksum`` (pass-through
columns), ``expectations`` (the only module importing Great Expectations),
``validate``, ``drift`` and ``report``. Import the submodules you need; this package
imports nothing heavy.
"""
