"""The report's table cells: a value with its interval, a difference with its verdict and seed
count, short corruption names; shared by every section."""

from __future__ import annotations

from typing import Any

from robust.distortions import IMAGENET_C

SHORT = {"brightness": "Bright.", "contrast": "Contrast", "defocus_blur": "Defocus", "elastic_transform": "Elastic", "fog": "Fog", "frost": "Frost",
         "gaussian_noise": "Gauss.", "glass_blur": "Glass", "impulse_noise": "Impulse", "jpeg_compression": "jpeg", "motion_blur": "Motion",
         "pixelate": "Pixel.", "shot_noise": "Shot", "snow": "Snow", "zoom_blur": "Zoom",
         # CURE-TSR's challenge types, as seed 001's tables name them (the unnamed ones by their initials)
         "cure_decolorization": "DE", "cure_lens_blur": "LB", "cure_codec_error": "CE", "cure_darkening": "DR", "cure_dirty_lens": "DL",
         "cure_exposure": "EX", "cure_gaussian_blur": "GB", "cure_noise": "NO", "cure_rain": "RA", "cure_shadow": "SH", "cure_snow": "SN",
         "cure_haze": "HZ"}  # fmt: skip


def cell(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    """A table cell: ``value * scale`` with ``digits`` decimals, ``-`` when missing."""
    return "-" if value is None else f"{value * scale:.{digits}f}"


def percent(value: float | None) -> str:
    return cell(value, 100)


def ratio_cell(value: float | None) -> str:
    """A percent CE as seed 003's ratio (AlexNet = 1.00)."""
    return cell(None if value is None else value / 100, digits=2)


def interval_suffix(row: dict[str, Any], key: str, scale: float) -> str:
    """`` [low, high]`` of a statistic's 95 % interval, or nothing without one."""
    bounds = (row.get("intervals") or {}).get(key)
    return "" if not bounds else f" [{bounds[0] * scale:.1f}, {bounds[1] * scale:.1f}]"


def with_interval(row: dict[str, Any], key: str, scale: float = 1.0) -> str:
    """A cell: the value and its 95 % interval, e.g. ``47.5 [46.1, 48.9]``."""
    return cell(row.get(key), scale) + ("" if row.get(key) is None else interval_suffix(row, key, scale))


def partial_note(row: dict[str, Any], key: str) -> str:
    """`` (partial: k of 15)`` after an mCE averaged over fewer than the 15 corruptions."""
    count = row.get(key)
    return "" if count is None or count >= len(IMAGENET_C) or row.get(key.replace("_over", "")) is None else f" (partial: {count} of {len(IMAGENET_C)})"


def change_cell(row: dict[str, Any], control: dict[str, Any] | None, key: str, scale: float = 1.0, versus: dict[str, Any] | None = None) -> str:
    """A model's difference from the control with its paired 95 % interval (``versus``, default
    the row's ``vs_control`` entry); ``n.s.`` when the interval contains 0 (no difference shown)."""
    if control is None or row is control or row.get(key) is None or control.get(key) is None:
        return "-"
    text = f"{(row[key] - control[key]) * scale:+.1f}"
    versus = versus if versus is not None else (row.get("vs_control") or {}).get(key)
    if versus and versus.get("interval"):
        low, high = versus["interval"]
        text += f" [{low * scale:+.1f}, {high * scale:+.1f}]" + ("" if versus["significant"] else " n.s.") + holds_note(versus)
    return text


def holds_note(versus: dict[str, Any]) -> str:
    """`` (1 seed)`` or `` (3 seeds, holds in 2)``: in how many training seeds the verdict holds."""
    seeds = versus.get("seeds", 1)
    return " (1 seed)" if seeds <= 1 else f" ({seeds} seeds, holds in {versus.get('holds', 0)})"


def of_method(models: dict[str, Any], method: str) -> dict[str, dict[str, Any]]:
    """The entries of ``method`` (not their replicates: an entry's row pools its seeds)."""
    return {name: spec for name, spec in models.items() if isinstance(spec, dict) and spec.get("method") == method and "replicate" not in spec}


def pair_cell(summary: dict[str, Any], key: str) -> str:
    a, b = key.split(" - ")
    rows = summary["models"]
    entry = ((summary.get("pairs") or {}).get(key) or {}).get("mce") or {}
    if rows[a].get("mce") is None or rows[b].get("mce") is None or not entry.get("interval"):
        return f"`{a}` - `{b}` no interval (mCE or its resamples undefined)"
    value = rows[a]["mce"] - rows[b]["mce"]
    low, high = entry["interval"]
    return f"`{a}` - `{b}` {value:+.1f} [{low:+.1f}, {high:+.1f}]" + ("" if entry["significant"] else " n.s.") + holds_note(entry)


def short_name(name: str) -> str:
    return SHORT.get(name, name)


def detection_cell(value: float, bounds: list[float] | None, scale: float = 100.0) -> str:
    text = f"{value * scale:.1f}"
    return f"{text} [{bounds[0] * scale:.1f}, {bounds[1] * scale:.1f}]" if bounds else text


def signed_cell(value: float, test: dict[str, Any] | None, scale: float = 100.0) -> str:
    bounds = (test or {}).get("interval")
    text = f"{value * scale:+.1f}"
    if bounds:
        text += f" [{bounds[0] * scale:+.1f}, {bounds[1] * scale:+.1f}]" + ("" if test.get("significant") else " n.s.")
    return text


def corr_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def interval_cell(value: float, bounds: list[float] | None, scale: float = 100.0, digits: int = 1) -> str:
    text = f"{value * scale:.{digits}f}"
    return text + (f" [{bounds[0] * scale:.{digits}f}, {bounds[1] * scale:.{digits}f}]" if bounds else "")


def gain_cell(entry: dict[str, Any], scale: float = 100.0, digits: int = 1) -> str:
    bounds = entry.get("interval")
    text = f"{entry['value'] * scale:+.{digits}f}" + (f" [{bounds[0] * scale:+.{digits}f}, {bounds[1] * scale:+.{digits}f}]" if bounds else "")
    return text + ("" if entry.get("significant") else " n.s.")
