"""The ``corrupt:`` section: which distortions get corrupt stages, which splits, how they are
stored and where a released set is read from. Its own module, so that the generated
(:mod:`robust.distortions.corrupt`) and the released (:mod:`robust.distortions.released`)
corrupted sets both read it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from robust.distortions import SUITES
from robust.distortions.imagenet_c import CONSTANTS_CHOICES
from robust.params import Section, is_int, require


@dataclass(frozen=True)
class CorruptParams(Section):
    """The ``corrupt:`` section: which distortions get stages, which splits, how stored."""

    splits: tuple[str, ...] = ("test",)
    seed: int = 0
    format: str = "png"
    jpg_quality: int = 85
    workers: int = 2
    constants: str = "auto"
    source: str = "generate"
    root: str | None = None
    suites: dict[str, list[str]] = field(default_factory=dict)

    section: ClassVar[str] = "corrupt"
    tuple_fields: ClassVar[tuple[str, ...]] = ("splits",)

    def validate(self, section: str = "corrupt") -> None:
        require(isinstance(self.splits, tuple), f"{section}.splits", self.splits, "a list such as [test] or [val, test]")
        require(bool(self.splits) and set(self.splits) <= {"train", "val", "test"}, f"{section}.splits", list(self.splits), "a non-empty list of train, val, test")
        require(is_int(self.seed) and self.seed >= 0, f"{section}.seed", self.seed, "a non-negative integer")
        require(self.format in ("png", "jpg"), f"{section}.format", self.format, "png | jpg")
        require(is_int(self.jpg_quality) and 1 <= self.jpg_quality <= 100, f"{section}.jpg_quality", self.jpg_quality, "an integer from 1 to 100")
        require(is_int(self.workers) and self.workers >= 1, f"{section}.workers", self.workers, "an integer >= 1")
        require(self.constants in CONSTANTS_CHOICES, f"{section}.constants", self.constants, " | ".join(CONSTANTS_CHOICES))
        require(self.source in ("generate", "released"), f"{section}.source", self.source, "generate (corrupt the clean shards) | released (read a released corrupted set)")
        if self.source == "released":
            require(isinstance(self.root, str) and bool(self.root), f"{section}.root", self.root,
                    "the folder of the released set on this machine (CIFAR-10/100-C .npy files, Tiny-ImageNet-C / ImageNet-C folders, or CURE-TSR)")
        require(isinstance(self.suites, dict), f"{section}.suites", self.suites, "a mapping of suite name -> list of distortion names")
        for suite, names in self.suites.items():
            require(suite in SUITES, f"{section}.suites", suite, f"suite names from {', '.join(SUITES)}")
            require(isinstance(names, list), f"{section}.suites.{suite}", names, "a list (empty to skip the suite)")
            for name in names:
                require(name in SUITES[suite], f"{section}.suites.{suite} entry", name, f"names of that suite: {', '.join(SUITES[suite])}")
