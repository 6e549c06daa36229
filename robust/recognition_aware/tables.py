"""Seed 002's tables: every trained processor of a task, on several recognisers, with quality.

For each task (the ``method: ra`` entries of ``models:``, grouped by their task settings and ``seed``)
the ``ra`` stage degrades the clean test split once (per-sample seeds from the image's index,
:func:`robust.recognition_aware.tasks.eval_seeds`) and scores, per row:

* ``none``: the no-processing output (bicubic upsampling for ``sr``, the degraded input otherwise);
* one row per entry (its ``mode``): P's output, and what R sees (T's output for ``ra_transformer``);
* ``clean``: the undegraded test images (the recognisers' ceiling; PSNR / SSIM not defined).

Columns: top-1 of each recogniser in ``restoration.recognisers`` (the first should be the R
the processors were trained with; the others never saw P) with a 95 % bootstrap interval
over the test images, and P's mean PSNR / SSIM (:func:`robust.recognition_aware.tasks.quality`). Every
row is compared with the task's ``plain`` row by a paired bootstrap (the same resampled images
for both): ``vs_plain`` holds the difference and its interval for each recogniser and for
PSNR / SSIM. ``transfer`` says, per RA-type row, on how many of the OTHER recognisers the gain
over ``plain`` is significant (interval above 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm import tqdm

from robust.evaluation.bootstrap import interval, resample_indices
from robust.data.loader import make_loader
from robust.data.shards import write_json
from robust.engine import inference_model, pick_device
from robust.errors import ParamError
from robust.methods import context, is_classifier, load_model
from robust.methods.common import model_entries
from robust.methods.ra import MODES, RASettings, restored_scores
from robust.params import Section, is_int, require
from robust.recognition_aware.tasks import TASKS, Task, eval_seeds


@dataclass(frozen=True)
class TableParams(Section):
    """The ``restoration:`` section: which recognisers score the processors' outputs."""

    recognisers: tuple[str, ...] = ("deepcorrect_net", "alexnet_small")
    batch_size: int = 256
    bootstrap: int = 1000  # paired resamples of the test images (0: no intervals)
    bootstrap_seed: int = 0
    device: str = "auto"

    section: ClassVar[str] = "restoration"
    tuple_fields: ClassVar[tuple[str, ...]] = ("recognisers",)

    def validate(self, section: str) -> None:
        require(isinstance(self.recognisers, tuple) and len(self.recognisers) >= 1 and all(isinstance(r, str) for r in self.recognisers),
                f"{section}.recognisers", self.recognisers, "a non-empty list of models: entries (classifiers)")
        require(is_int(self.batch_size) and self.batch_size >= 1, f"{section}.batch_size", self.batch_size, "an integer >= 1")
        require(is_int(self.bootstrap) and (self.bootstrap == 0 or self.bootstrap >= 100), f"{section}.bootstrap", self.bootstrap, "0 or an integer >= 100")
        require(is_int(self.bootstrap_seed) and self.bootstrap_seed >= 0, f"{section}.bootstrap_seed", self.bootstrap_seed, "a non-negative integer")


def processors(params: dict[str, Any], clean_dir: Path) -> dict[tuple[Task, int], list[tuple[str, RASettings]]]:
    """The ``method: ra`` entries of ``models:`` and ``study_models:``, grouped by task and
    evaluation seed (the same degraded test images): tasks in :data:`~robust.recognition_aware.tasks.TASKS`
    order, entries in mode order (plain first)."""
    groups: dict[tuple[Task, int], list[tuple[str, RASettings]]] = {}
    for name, spec in model_entries(params).items():
        if spec.get("method") == "ra":
            ctx, _ = context(params, name, clean_dir)
            settings = RASettings.from_dict(ctx.settings, f"models.{name}")
            groups.setdefault((settings.task_spec(), settings.seed), []).append((name, settings))
    order = sorted(groups, key=lambda key: (TASKS.index(key[0].name) if key[0].name in TASKS else len(TASKS), key[1]))
    return {key: sorted(groups[key], key=lambda entry: MODES.index(entry[1].mode)) for key in order}


def check_recognisers(params: dict[str, Any], names: tuple[str, ...]) -> None:
    """Every ``restoration.recognisers`` entry is a trained plain classifier of ``models:``."""
    models = params.get("models") or {}
    for name in names:
        if name not in models:
            raise ParamError(f"restoration.recognisers names {name!r}, which is not a models: entry.", f"use entries of models: ({', '.join(models)}).")
        if (models[name] or {}).get("method") == "ra" or not is_classifier(params, name):
            raise ParamError(f"restoration.recognisers names {name!r}, which is not a plain classifier (method "
                             f"{(models[name] or {}).get('method', 'baseline')}).", "list classifier entries (baseline, finetune, noise, ...).")


def _bootstrap(values: np.ndarray, indices: np.ndarray | None) -> list[float] | None:
    """The 95 % interval of the mean of per-image ``values`` over the resamples."""
    return None if indices is None else interval(values[indices].mean(axis=1))


def _row(outputs: dict[str, np.ndarray], indices: np.ndarray | None) -> dict[str, Any]:
    row: dict[str, Any] = {"top1": {}, "interval": {}}
    for key, values in outputs.items():
        if key in ("psnr", "ssim"):
            row[key] = float(values.mean())
            row[f"{key}_interval"] = _bootstrap(values, indices)
        else:
            row["top1"][key] = float(values.mean())
            row["interval"][key] = _bootstrap(values.astype(np.float64), indices)
    return row


def _difference(a: np.ndarray, b: np.ndarray, indices: np.ndarray | None) -> dict[str, Any]:
    diff = a.astype(np.float64) - b.astype(np.float64)
    bounds = _bootstrap(diff, indices)
    return {"value": float(diff.mean()), "interval": bounds, "significant": bounds is not None and (bounds[0] > 0 or bounds[1] < 0)}


def _score(images: torch.Tensor, labels: torch.Tensor, clean: torch.Tensor | None, recognisers: dict[str, torch.nn.Module], batch: int,
           device: torch.device, make: Any) -> dict[str, np.ndarray]:
    """:func:`~robust.methods.ra.restored_scores` over ``images`` in batches of ``batch``."""
    chunks = ((images[i:i + batch], labels[i:i + batch], None if clean is None else clean[i:i + batch]) for i in range(0, len(images), batch))
    return restored_scores(chunks, recognisers, make, device)


def tables_from_params(params: dict[str, Any], clean_dir: str | Path, models_dir: str | Path, out_path: str | Path) -> dict[str, Any]:
    """The ``ra`` stage: seed 002's table per task -> ``out_path`` (``metrics/ra/summary.json``)."""
    settings = TableParams.from_dict(params.get("restoration"))
    clean_dir, models_dir = Path(clean_dir), Path(models_dir)
    groups = processors(params, clean_dir)
    entry_specs = model_entries(params)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if not groups:  # a pipeline without seed 002: an empty summary (the report leaves the section out)
        summary = {"recognisers": list(settings.recognisers), "tasks": {}, "note": "no models: entry has method: ra"}
        write_json(out_path, summary)
        return summary
    device = pick_device(settings.device)
    check_recognisers(params, settings.recognisers)
    recognisers = {}
    for name in settings.recognisers:
        model, _ = load_model(params, name, clean_dir, models_dir / name / "model.pt")
        recognisers[name] = inference_model(model, device)
    batches = list(make_loader(clean_dir / "test", settings.batch_size, with_index=True))
    images = torch.cat([b[0] for b in batches])
    labels = torch.cat([b[1] for b in batches])
    index = torch.cat([b[2] for b in batches])
    order = torch.argsort(index)  # the split's own order, whatever the loader's
    images, labels, index = images[order], labels[order], index[order]
    n = len(images)
    indices = resample_indices(n, settings.bootstrap, settings.bootstrap_seed) if settings.bootstrap else None
    ceiling = _score(images, labels, None, recognisers, settings.batch_size, device, lambda x: (x, x))
    summary: dict[str, Any] = {"recognisers": list(settings.recognisers), "trained_with": {}, "n": n,
                               "bootstrap": {"resamples": settings.bootstrap, "seed": settings.bootstrap_seed}, "tasks": {}}
    for (task, seed), entries in groups.items():
        inputs = task.degrade(images, eval_seeds(seed, task.name, index.tolist()))
        rows: dict[str, dict[str, np.ndarray]] = {}
        with tqdm(total=len(entries) + 1, desc=f"ra {task.name}", unit="row", disable=None) as bar:
            none = task.baseline(inputs)
            rows["none"] = _score(none, labels, images, recognisers, settings.batch_size, device, lambda x: (x, x))
            bar.update()
            for name, entry in entries:
                model, _ = load_model(params, name, clean_dir, models_dir / name / "model.pt")
                model.to(device).eval()
                summary["trained_with"][name] = entry_specs[name]["base"]
                rows[name] = _score(inputs, labels, images, recognisers, settings.batch_size, device, model.restore)
                bar.update()
        labels_of = {"none": "none"} | {name: entry.mode for name, entry in entries}
        plain = next((name for name, entry in entries if entry.mode == "plain"), None)
        table: dict[str, Any] = {"task": task.__dict__, "seed": seed, "rows": {}}
        for key, outputs in rows.items():
            row = {"mode": labels_of[key], **_row(outputs, indices)}
            if plain is not None and key != plain:
                row["vs_plain"] = {name: _difference(outputs[name], rows[plain][name], indices) for name in outputs}
            table["rows"][key] = row
        table["rows"]["clean"] = {"mode": "clean", **_row(ceiling, indices)}
        table["transfer"] = {}
        for name, entry in entries:
            if entry.mode != "plain" and plain is not None:
                own = entry_specs[name]["base"]
                others = [r for r in settings.recognisers if r != own]
                gains = table["rows"][name]["vs_plain"]
                table["transfer"][name] = {"on_own_recogniser": gains[own] if own in gains else None,
                                           "others_significantly_better": sum(1 for r in others if gains[r]["significant"] and gains[r]["value"] > 0),
                                           "others": len(others)}
        summary["tasks"][task.name if task.name not in summary["tasks"] else f"{task.name}-{len(summary['tasks'])}"] = table
    write_json(out_path, summary)
    return summary
