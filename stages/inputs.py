"""Stage ``inputs`` (paper-scale experiments): every dataset, released set and weights file the params name -> data/inputs.json, or one error per missing input before any work."""

from robust.errors import run_step
from robust.inputs import inputs_from_params
from robust.params import load_params

if __name__ == "__main__":
    raise SystemExit(run_step(lambda: inputs_from_params(load_params("params.yaml"), "data/inputs.json")))
