"""Build step for the one C kernel (the placement search); everything else is in pyproject.toml."""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NEEDS = ("building presplit's C placement kernel needs a C compiler and the Python headers (Python.h) of the "
         "interpreter installing it: on Debian or Ubuntu `apt-get install gcc python3-dev`, or run "
         "scripts/install.sh, which installs them and presplit")


class BuildKernel(build_ext):
    """build_ext whose failure says what the build needs, not only the compiler's last words."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - CompileError, LinkError, a missing compiler: all the same advice
            raise SystemExit(f"error: {exc}\nerror: {NEEDS}") from exc


setup(ext_modules=[Extension("presplit.policies.cloudsim._placement", ["src/presplit/policies/cloudsim/_placement.c"],
                             extra_compile_args=["-O2"])],
      cmdclass={"build_ext": BuildKernel})
