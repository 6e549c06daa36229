"""The numerics pin (robust/numerics.py): the same bytes whatever code path the libraries would pick.

Every kind of training that once differed between machines (an Adam and an SGD classifier with a
Linear head, the VAE, the L-BFGS autoencoder, the detector MLP, ANT's generator, and an
evaluation forward) runs a few steps in fresh processes under different library code paths: MKL's
branches, ATen's AVX2 / AVX-512 kernels (where this CPU has AVX-512), oneDNN's ISA, 1 or 2 threads
requested. With the pins every process prints the same hashes; the control runs the same without
the pins and shows that the paths do differ, so the first test can fail.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

import robust.numerics as numerics

PROBE = Path(__file__).resolve().parent / "numerics_probe.py"


def _cpu_has_avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


#: library code paths a machine could pick (requested in the environment, or a thread count)
PATHS = [{}, {"MKL_CBWR": "AVX2"}, {"MKL_CBWR": "COMPATIBLE"}, {"ATEN_CPU_CAPABILITY": "avx2"}, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, {"threads": "1"}]
if _cpu_has_avx512():
    PATHS += [{"MKL_CBWR": "AVX512"}, {"ATEN_CPU_CAPABILITY": "avx512"}, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}]


def probe(path: dict[str, str], pinned: bool) -> dict[str, str]:
    """The probe's hashes per kind in a fresh process on ``path``."""
    env = {k: v for k, v in os.environ.items() if k not in numerics.ENVIRONMENT and k != numerics.OFF}
    env.update({k: v for k, v in path.items() if k != "threads"})
    if not pinned:
        env[numerics.OFF] = "off"
    command = [sys.executable, str(PROBE), "--steps", "2"] + (["--request-threads", path["threads"]] if "threads" in path else [])
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return {kind: value["sha"] for kind, value in result.items() if isinstance(value, dict)}


def test_the_pins_give_identical_bytes_on_every_code_path():
    first, *others = [probe(path, pinned=True) for path in PATHS]
    assert set(first) == {"linear-adam", "linear-sgd", "conv-sgd", "vae", "lbfgs-autoencoder", "detector", "ant-generator", "evaluate"}
    for path, hashes in zip(PATHS[1:], others):
        assert hashes == first, f"pinned run on {path} differs: {[k for k in first if hashes[k] != first[k]]}"


def test_control_without_the_pins_the_code_paths_differ():
    default = probe({}, pinned=False)
    differing = {kind for path in ({"MKL_CBWR": "COMPATIBLE"}, {"ATEN_CPU_CAPABILITY": "avx2"}, {"threads": "1"})
                 for kind, sha in probe(path, pinned=False).items() if sha != default[kind]}
    # MKL's branch moves Adam / Linear / L-BFGS, ATen's kernels and the thread count move the conv nets' training
    assert {"linear-adam", "lbfgs-autoencoder", "conv-sgd"} <= differing


def test_this_process_is_pinned():
    assert torch.get_num_threads() == numerics.THREADS and numerics.effective_problems() == []
    assert all(os.environ[k] == v for k, v in numerics.ENVIRONMENT.items())


def test_torch_computing_before_robust_is_a_clear_error():
    code = "import torch; torch.ones(3).sqrt(); import robust"
    env = {k: v for k, v in os.environ.items() if k not in numerics.ENVIRONMENT and k != numerics.OFF}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "NumericsError: numerics not pinned (torch ran an operation before robust was imported)" in done.stderr
    # importing torch first without computing is fine: the pins still take effect
    ok = subprocess.run([sys.executable, "-c", "import torch, robust, robust.numerics as n; assert n.effective_problems() == []"], env=env,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr


def test_a_version_other_than_the_constraints_is_named(tmp_path):
    lines = [line for line in numerics.CONSTRAINTS.read_text().splitlines() if not line.lower().startswith("numpy==")]
    path = tmp_path / "constraints.txt"
    path.write_text("\n".join([*lines, "numpy==0.0.1"]) + "\n")
    assert numerics.version_mismatches(path) == [f"numpy {__import__('numpy').__version__} (pinned: 0.0.1)"]
    assert numerics.version_mismatches() == []  # this environment is the pinned one


def test_every_byte_deciding_package_is_pinned_in_the_constraints_file():
    pinned = numerics.pinned_versions()
    assert set(pinned) == {numerics.normalise(n) for n in numerics.BYTE_DECIDERS}
    assert pinned["torch"] == torch.__version__.split("+")[0]


def test_readme_install_commands_use_the_constraints_file():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "pip install -c constraints.txt -e ." in readme and 'pip install -c constraints.txt -e ".[test]"' in readme


def test_every_stage_depends_on_the_pins():
    import yaml

    stages = yaml.safe_load((Path(__file__).resolve().parents[1] / "dvc.yaml").read_text())["stages"]
    for name, spec in stages.items():
        deps = (spec.get("do") or spec)["deps"]
        assert "robust/numerics.py" in deps and "constraints.txt" in deps, name
