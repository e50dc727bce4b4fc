"""The compiled moments kernel (normcore/stats/_moments.c); everything else is in pyproject.toml.

Strict IEEE arithmetic is part of the kernel's contract: no -ffast-math (re-association
would turn ``(x - pivot) - shift`` into ``x - (pivot + shift)``) and no contraction
into fused multiply-adds, so every build sums in the order the source says.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "normcore.stats._moments",
            ["normcore/stats/_moments.c"],
            extra_compile_args=["-O3", "-std=c11", "-fno-fast-math", "-ffp-contract=off"],
        )
    ]
)
