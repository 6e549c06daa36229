"""Seed 000's section: DeepCorrect against fine-tuning (the seed's table: each distortion's
average over clean + 6 levels, trainable parameters, mCE) and their paired differences."""

from __future__ import annotations

from typing import Any

from robust.report.cells import cell, change_cell, of_method, pair_cell, with_interval

def deepcorrect_table(summary: dict[str, Any], models: dict[str, Any]) -> list[str]:
    """Seed 000's comparison: baseline / fine-tuning / DeepCorrect per distortion (top-1
    averaged over clean + 6 levels), their trainable parameters, and each one's mCE."""
    rows = summary["models"]
    lines: list[str] = []
    for name, spec in of_method(models, "deepcorrect").items():
        dist = spec.get("distortion", "dc_blur")
        tuned = comparison_finetune(models, spec, summary.get("control"))
        control = summary.get("control")
        same_base = control is not None and (models.get(control) or {}).get("base") == spec.get("base")
        trio = [("baseline", spec.get("base")), ("clean epochs (control)", control if same_base else None), ("fine-tuning", tuned), ("DeepCorrect", name)]
        trio = [(label, model) for label, model in trio if model in rows]
        if not lines:
            lines += ["", "## DeepCorrect against fine-tuning (seed 000's table)", "",
                      "Top-1 as fractions; `blur avg` / `AWGN avg` average clean + the 6 levels, as the seed does. mCE is on the 15 ImageNet-C "
                      "corruptions (normaliser = 100), which the seed never measured. The control (clean epochs) is trained from one base; "
                      "rows on another base show no control and no change against it.", "",
                      "| trained for | method | model | trainable params | clean | blur avg | AWGN avg | mCE | mCE change vs control |",
                      "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for label, model in trio:
            row = rows[model]
            params = (row.get("parameters") or {}).get("trainable")
            lines.append(f"| {dist} | {label} | {model} | {params if params is not None else '-'} | {row['clean_top1']:.4f} | "
                         f"{cell(row['deepcorrect'].get('dc_blur'), digits=4)} | {cell(row['deepcorrect'].get('dc_awgn'), digits=4)} | {with_interval(row, 'mce')} | "
                         f"{change_cell(row, rows.get(control or ''), 'mce') if same_base else '-'} |")
    pairs = summary.get("pairs") or {}
    corrected = set(of_method(models, "deepcorrect"))  # the pairs also hold P -> R against R (the RA table's)
    versus = [(key, value["mce"]) for key, value in pairs.items()
              if key.split(" - ")[0] in corrected and "mce" in value and value["mce"].get("interval")]
    if lines and versus:
        lines += ["", "DeepCorrect minus fine-tuning, mCE (paired 95 % interval): " + "; ".join(pair_cell(summary, key) for key, _ in versus).rstrip(".") + "."]
    return lines


def comparison_finetune(models: dict[str, Any], spec: dict[str, Any], control: str | None) -> str | None:
    """The fine-tuning entry seed 000 compares a DeepCorrect entry with: same base and
    distortion, distorted data (not the clean-only control)."""
    dist = spec.get("distortion", "dc_blur")
    return next((n for n, s in of_method(models, "finetune").items()
                 if n != control and s.get("fraction", 0.5) > 0 and s.get("distortion", "dc_blur") == dist and s.get("base") == spec.get("base")), None)
