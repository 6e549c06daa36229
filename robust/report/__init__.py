"""The ``report`` stage: every model's evaluation -> summary metrics, tables, plot data, figures
and one self-contained page. One module per section: :mod:`~robust.report.summary` (the
leaderboard, seed 003's CE table, the per-level tables), :mod:`~robust.report.deepcorrect`
(seed 000), :mod:`~robust.report.gradient_features` (seed 001), :mod:`~robust.report.recognition_aware`
(seed 002), :mod:`~robust.report.corruption` (seed 003), :mod:`~robust.report.noise` (seed 004),
with :mod:`~robust.report.cells` (the cells they share), :mod:`~robust.report.figures` and
:mod:`~robust.report.page` (the offline HTML). This module assembles them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from robust.data.shards import atomic_dir, write_csv, write_json
from robust.errors import RobustError
from robust.evaluation.scoring import EvaluateParams
from robust.report.cells import of_method
from robust.report.corruption import corruption_pairs, corruption_tables
from robust.report.deepcorrect import comparison_finetune, deepcorrect_table
from robust.report.gradient_features import gradient_tables, iqa_tables
from robust.report.noise import noise_table
from robust.report.page import html_page
from robust.report.published import published_lines
from robust.report.recognition_aware import ra_benchmark_table, ra_tables
from robust.report.summary import add_seed_spread, ce_table_lines, leaderboard_lines, level_table_lines, mean_eval, run_groups, severity_curves, summarise

FIGURES = "figures"


def comparison_pairs(models: dict[str, Any], control: str | None) -> tuple[tuple[str, str], ...]:
    """(DeepCorrect entry, its fine-tuning comparison) for every DeepCorrect entry, and
    (``P -> R`` entry, its recogniser R alone) for every RA entry (those not scored on the
    benchmark have no leaderboard row and drop out)."""
    pairs = [(name, comparison_finetune(models, spec, control)) for name, spec in of_method(models, "deepcorrect").items()]
    pairs += [(name, spec.get("base")) for name, spec in of_method(models, "ra").items()]
    pairs += corruption_pairs(models)
    return tuple((a, b) for a, b in pairs if b is not None)


def markdown(summary: dict[str, Any], evals: dict[str, dict[str, Any]], models: dict[str, Any] | None = None, figures: list[str] | None = None,
             gradients: dict[str, Any] | None = None, iqa: dict[str, Any] | None = None, ra: dict[str, Any] | None = None,
             published: dict[str, Any] | None = None) -> str:
    """``metrics/report.md``, one section after the other: the leaderboard, the figures, seed
    003's CE table, seed 000's and seed 004's comparisons (from the ``models:`` entries'
    methods), seed 001's detection and IQA tables (``gradients`` / ``iqa``: the detect and iqa
    stages' summaries), seed 002's tables (``ra``: the ra stage's summary) and its processors on
    the benchmark, seed 003's runs, the per-level tables, then the seed's published numbers
    beside ours (``published``: the params' ``published:`` section, an experiment's)."""
    specs = models or {}
    lines = ["# Results", "", *leaderboard_lines(summary)]
    if figures:
        lines += ["", "## Figures", ""] + [f"![{name}]({FIGURES}/{name}.png)" for name in figures]
    lines += (ce_table_lines(summary) + deepcorrect_table(summary, specs) + noise_table(summary, specs) + gradient_tables(gradients or {})
              + iqa_tables(iqa or {}) + ra_tables(ra or {}) + ra_benchmark_table(summary, specs) + corruption_tables(summary, specs)
              + level_table_lines(summary, evals))
    text = "\n".join(lines).rstrip()
    return "\n".join([text, *published_lines(published, {"report": summary, "gradients": gradients, "iqa": iqa, "ra": ra})]).rstrip() + "\n"


def write_report(params: dict[str, Any], evals_dir: str | Path, out_dir: str | Path, *, clean_dir: str | Path = "data/shards/clean",
                 corrupt_dir: str | Path = "data/shards/corrupt", models_dir: str | Path = "data/models",
                 deepcorrect_dir: str | Path = "metrics/deepcorrect", correct_dir: str | Path = "data/eval",
                 gradients_summary: str | Path | None = "metrics/gradients/summary.json",
                 iqa_summary: str | Path | None = "metrics/iqa/summary.json", ra_summary: str | Path | None = "metrics/ra/summary.json") -> dict[str, Any]:
    """The ``report`` stage: ``evals_dir/*.json`` -> ``out_dir/summary.json``, ``report.md``,
    ``report.html``, ``figures/*.png`` and ``plots/severity/<distortion>.csv`` (model, level,
    top1); models in the order of the ``models:`` section. Intervals come from the per-image
    correctness in ``correct_dir/<model>/correct.npz`` (models without it get none)."""
    settings = EvaluateParams.from_dict(params.get("evaluate"))
    evals = {p.stem: json.loads(p.read_text()) for p in sorted(Path(evals_dir).glob("*.json"))}
    gradients, iqa, ra = (json.loads(Path(f).read_text()) if f and Path(f).is_file() else None for f in (gradients_summary, iqa_summary, ra_summary))
    if not evals and not (gradients or iqa or ra):
        raise RobustError(f"No evaluation in {evals_dir} and no study summary.", "run the evaluate stages first (dvc repro).")
    order = list(params.get("models") or {})
    runs_evals = {name: evals[name] for name in sorted(evals, key=lambda n: (order.index(n) if n in order else len(order), n))}
    groups = run_groups(params.get("models") or {}, list(runs_evals))
    evals = {entry: runs_evals[runs[0]] if len(runs) == 1 else mean_eval([runs_evals[r] for r in runs]) for entry, runs in groups.items()}
    out_dir = Path(out_dir)
    intervals = None
    if settings.bootstrap:
        from robust.evaluation.bootstrap import intervals as bootstrap_intervals
        from robust.evaluation.scoring import load_correct

        correct = {name: load_correct(Path(correct_dir) / name / "correct.npz") for name in runs_evals if (Path(correct_dir) / name / "correct.npz").is_file()}
        intervals = bootstrap_intervals(correct, settings.normaliser, settings.control, settings.bootstrap, settings.bootstrap_seed,
                                        comparison_pairs(params.get("models") or {}, settings.control), groups)
    summary = summarise(evals, settings.normaliser, intervals, settings.control)
    add_seed_spread(summary, runs_evals, groups, settings.normaliser)
    from robust.report.figures import figure_makers, write_figures

    # no evaluation (an experiment of seed 001's studies alone): its tables, no model figures
    makers = figure_makers(params, evals, summary, Path(clean_dir), Path(corrupt_dir), Path(models_dir), Path(deepcorrect_dir)) if evals else {}
    # every text is made before anything is written: a table that fails leaves the previous report whole
    with atomic_dir(out_dir / FIGURES) as folder:
        drawn = write_figures(folder, makers)
        text = markdown(summary, evals, params.get("models") or {}, drawn, gradients, iqa, ra, params.get("published"))
        page = html_page(text, folder)
    write_json(out_dir / "summary.json", summary)
    (out_dir / "report.md").write_text(text)
    (out_dir / "report.html").write_text(page)
    with atomic_dir(out_dir / "plots" / "severity") as folder:
        for dist, rows in severity_curves(evals).items():
            write_csv(folder / f"{dist}.csv", rows, ["model", "level", "top1"])
    return summary
