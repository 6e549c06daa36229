"""The numerics pin: every library choice that decides the bytes of a result, fixed in one
place before any torch op runs, so the same code and params give the same models and
metrics on every x86-64 machine with AVX2 or AVX-512, Intel or AMD.

What decides the bytes of a float computation on a CPU, and what fixes it here:

* **MKL** (torch's BLAS, and its vector maths: ``sqrt`` / ``exp`` in Adam, ``nn.Linear``,
  L-BFGS's dot products) picks its code path from the CPU it runs on. ``MKL_CBWR=COMPATIBLE``
  is the one branch Intel documents as giving the same results on Intel and non-Intel CPUs
  (``AVX2`` falls back to the automatic branch on AMD); ``MKL_DYNAMIC=FALSE`` keeps the
  thread count fixed.
* **ATen**'s own vectorised kernels (cross-entropy's backward, reductions) are compiled for
  AVX2 and AVX-512 and differ between them: ``ATEN_CPU_CAPABILITY=avx2``.
* **oneDNN** (convolutions) JIT-compiles for the widest ISA it finds:
  ``ONEDNN_MAX_CPU_ISA=AVX2``. NNPACK is switched off so every convolution takes oneDNN.
* **Thread count**: reductions split by thread, so results depend on it from the first step.
  torch caps ``OMP_NUM_THREADS`` at the core count, so :data:`THREADS` is set with
  ``torch.set_num_threads`` (a one-core machine runs two threads on it, with the same bytes).
* **OpenBLAS** inside numpy / scipy (whitening, statistics): ``OPENBLAS_CORETYPE=Haswell``
  (AVX2 kernels on both vendors) and a fixed thread count.
* **Versions**: the byte-deciding packages are pinned exactly in ``constraints.txt`` (which
  the README's install commands use) and checked here, so another torch is one clear error
  instead of other numbers.

:func:`pin` runs when :mod:`robust` is imported (``robust/__init__.py``), so every stage and
every ``robust`` command goes through it before its first torch op. It sets the environment
(inherited by worker processes), sets the thread count and then checks what the libraries
report: if torch already ran an op before :mod:`robust` was imported, MKL's branch or ATen's
capability were decided already, and the check fails with a :class:`NumericsError` instead
of running unpinned. ``ROBUST_NUMERICS=off`` skips everything (the tests' control, and speed
experiments whose bytes do not matter); results made so will not match the committed ones.

The cost of each pin per kind of work is measured by ``python benchmarks/numerics.py``.
"""

from __future__ import annotations

import os
import platform
import sys
import warnings
from pathlib import Path

#: the environment every process of the pipeline runs under (set before torch loads)
ENVIRONMENT: dict[str, str] = {
    "MKL_CBWR": "COMPATIBLE",
    "MKL_DYNAMIC": "FALSE",
    "OMP_DYNAMIC": "FALSE",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
    "OPENBLAS_NUM_THREADS": "1",
}
#: torch's intra-op threads (the same on every machine: reductions split by thread)
THREADS = 2
#: what MKL's ``mkl_serv_cbwr_get(MKL_CBWR_BRANCH)`` reports for ``MKL_CBWR=COMPATIBLE``
MKL_COMPATIBLE = 3
#: ATen's capability name for ``ATEN_CPU_CAPABILITY=avx2``
ATEN_CAPABILITY = "AVX2"
#: the packages whose version decides bytes (models, shards, figures, the lock file): checked against constraints.txt
BYTE_DECIDERS = ("torch", "torchvision", "numpy", "scipy", "opencv-python", "pillow", "scikit-image", "scikit-learn", "numba", "llvmlite",
                 "imagecorruptions-imaug", "webdataset", "matplotlib", "dvc", "dvclive", "pyyaml", "vl-convert-python")
CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints.txt"
OFF = "ROBUST_NUMERICS"

_pinned = False


class NumericsError(RuntimeError):
    """The process cannot run pinned: torch computed before :mod:`robust` was imported, or a
    byte-deciding package has another version than ``constraints.txt``."""


def enabled() -> bool:
    """False when ``ROBUST_NUMERICS=off`` (unpinned: results do not reproduce)."""
    return os.environ.get(OFF, "").lower() != "off"


def pinned_versions(path: Path = CONSTRAINTS) -> dict[str, str]:
    """``name -> version`` of the byte-deciding packages in a constraints file (``name==version``
    lines; names compared in pip's normalised form)."""
    versions = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = (part.strip() for part in line.split("==", 1))
            versions[normalise(name)] = version.split(";", 1)[0].strip()
    return {name: versions[name] for name in map(normalise, BYTE_DECIDERS) if name in versions}


def normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def version_mismatches(path: Path = CONSTRAINTS) -> list[str]:
    """One line per byte-deciding package whose installed version is not the pinned one."""
    from importlib.metadata import PackageNotFoundError, version

    problems = []
    for name, wanted in pinned_versions(path).items():
        try:
            have = version(name)
        except PackageNotFoundError:
            have = "not installed"
        if have.split("+", 1)[0] != wanted.split("+", 1)[0]:
            problems.append(f"{name} {have} (pinned: {wanted})")
    return problems


def _mkl_branch() -> int | None:
    """MKL's code branch as MKL itself reports it (None where the symbol is not exported)."""
    import ctypes

    import torch

    library = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        get = ctypes.CDLL(str(library)).mkl_serv_cbwr_get
    except (OSError, AttributeError):
        return None
    get.restype, get.argtypes = ctypes.c_int, [ctypes.c_int]
    return int(get(1))  # 1: MKL_CBWR_BRANCH


def effective_problems() -> list[str]:
    """What the libraries report that differs from the pins (empty when pinned)."""
    import torch

    problems = []
    if torch.get_num_threads() != THREADS:
        problems.append(f"torch runs {torch.get_num_threads()} threads, not {THREADS}")
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != ATEN_CAPABILITY:
        problems.append(f"ATen's CPU capability is {capability}, not {ATEN_CAPABILITY}")
    branch = _mkl_branch()
    if branch is not None and branch != MKL_COMPATIBLE:
        problems.append(f"MKL's code branch is {branch}, not COMPATIBLE ({MKL_COMPATIBLE})")
    return problems


def pin() -> None:
    """Fix every numeric choice for this process (see the module doc); idempotent. Raises
    :class:`NumericsError` when torch already computed unpinned or a pinned version differs."""
    global _pinned
    if _pinned or not enabled():
        return
    torch_first = "torch" in sys.modules
    os.environ.update(ENVIRONMENT)
    if CONSTRAINTS.is_file():
        mismatches = version_mismatches()
        if mismatches:
            raise NumericsError(f"installed versions differ from constraints.txt: {'; '.join(mismatches)}. Other versions give other bytes. "
                                "Fix: pip install -c constraints.txt -e . (the README's install command).")
    import torch

    torch.set_num_threads(THREADS)
    torch.backends.nnpack.set_flags(False)
    torch.set_float32_matmul_precision("highest")
    if platform.machine() not in ("x86_64", "AMD64") or not torch.backends.cpu.get_cpu_capability().startswith("AVX"):
        warnings.warn(f"robust pins numerics for x86-64 CPUs with AVX2; this {platform.machine()} CPU "
                      f"({torch.backends.cpu.get_cpu_capability()}) gives other bytes than the committed results.", stacklevel=2)
        _pinned = True
        return
    problems = effective_problems()
    if problems:
        cause = "torch ran an operation before robust was imported" if torch_first else "the pins did not take effect"
        raise NumericsError(f"numerics not pinned ({cause}): {'; '.join(problems)}. Fix: import robust before any torch "
                            f"computation (or start the process with robust.numerics.ENVIRONMENT set); {OFF}=off runs unpinned.")
    _pinned = True
