"""Report section "Published beside ours": the seed's own numbers next to this run's.

A paper-scale experiment's ``params.yaml`` carries the seed's published table as
``published:`` (``source``: where the numbers come from; ``rows``: one per number, each
``label``, ``published`` and ``ours``, a ``<summary>:<dotted.key>`` path into one of the
stages' summaries). ``<summary>`` is ``report`` (metrics/summary.json), ``gradients``,
``iqa`` or ``ra``; ``percent: true`` prints a fraction of ours as a percentage, as the
papers print theirs. A number this run did not produce prints as "not run", so a partial run
still shows what it has. The default pipeline has no ``published:`` section (it is CPU-sized:
nothing there is comparable with a paper's ImageNet numbers).
"""

from __future__ import annotations

from typing import Any

from robust.errors import ParamError

SUMMARIES = ("report", "gradients", "iqa", "ra")


def _lookup(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def check_published(spec: Any) -> list[dict[str, Any]]:
    """The rows of a ``published:`` section, each checked (one clear error for a bad row)."""
    if not spec:
        return []
    if not isinstance(spec, dict) or not isinstance(spec.get("rows"), list):
        raise ParamError("published: must be a mapping with source: and rows: (a list).", "see docs/experiments.md for the form of a row.")
    for i, row in enumerate(spec["rows"]):
        ours = row.get("ours") if isinstance(row, dict) else None
        if not (isinstance(ours, str) and ours.split(":", 1)[0] in SUMMARIES and ":" in ours and isinstance(row.get("published"), (int, float))
                and isinstance(row.get("label"), str)):
            raise ParamError(f"Invalid published.rows[{i}]: {row!r}.",
                             f"give label: text, published: a number, ours: '<{'|'.join(SUMMARIES)}>:<dotted.key>' (and optionally percent: true).")
    return spec["rows"]


def published_lines(spec: Any, summaries: dict[str, dict[str, Any] | None]) -> list[str]:
    """The section's markdown lines (none without a ``published:`` section)."""
    rows = check_published(spec)
    if not rows:
        return []
    lines = ["", "## Published beside ours", "", f"Published: {spec.get('source', 'the seed')}. Ours: this run (the same quantity, read from its summaries).",
             "", "| quantity | published | ours | ours - published |", "| --- | ---: | ---: | ---: |"]
    for row in rows:
        name, key = row["ours"].split(":", 1)
        value = _lookup(summaries.get(name) or {}, key)
        digits = 3 if abs(row["published"]) < 1 else 2  # correlations (0.865) keep their third digit, percentages two
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            ours = 100 * float(value) if row.get("percent") else float(value)
            lines.append(f"| {row['label']} | {row['published']:.{digits}f} | {ours:.{digits}f} | {ours - row['published']:+.{digits}f} |")
        else:
            lines.append(f"| {row['label']} | {row['published']:.{digits}f} | not run | |")
    return lines
