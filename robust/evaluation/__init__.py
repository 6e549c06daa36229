"""Evaluation and statistics: scoring a model on the clean and every distorted test set
(:mod:`~robust.evaluation.scoring`, the ``evaluate`` stage), CE / mCE / relative mCE
(:mod:`~robust.evaluation.metrics`), the paired two-level bootstrap over test images and
training seeds (:mod:`~robust.evaluation.bootstrap`) and distortion-detection metrics
(:mod:`~robust.evaluation.detection`). The submodules are imported by name: this file imports
nothing, so the engine can use the metrics without pulling in the model registry."""
