"""Stage ``iqa``: PSNR, SSIM, UNIQUE and the gradient index on the IQA set of ``iqa.source`` ->
metrics/iqa/summary.json (robust/gradient_features/iqa/run.py)."""

from robust.errors import run_step
from robust.gradient_features.iqa.run import run_from_params
from robust.params import load_params

if __name__ == "__main__":
    raise SystemExit(run_step(lambda: run_from_params(load_params("params.yaml"), "data/iqa/autoencoder", "metrics/iqa/summary.json")))
