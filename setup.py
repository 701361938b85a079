"""Build step for the one C kernel (the placement search); everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("presplit.policies.cloudsim._placement", ["src/presplit/policies/cloudsim/_placement.c"],
                             extra_compile_args=["-O2"])])
