"""CURE-TSR traffic-sign crops, in the layout of the gradient-features paper (seed 001).

```
<root>/RealChallengeFree/{train,val,test}/*.bmp          challenge-free (clean)
<root>/RealChallenge/<TT>_<LL>/{train,val,test}/*.bmp    challenge type TT (01-12), level LL (1-5)
```
File names are underscore-separated numbers. Two namings are read:

* 7 fields, as in the paper's folds, e.g. ``01_01_00_00_00_05_0003.bmp``: field 3 is the
  challenge type, field 4 the challenge level, the second-to-last the sign type (1-14).
* 5 fields, as in the original CURE-TSR release,
  ``<sequence>_<sign>_<challenge type>_<challenge level>_<index>.bmp``.

The 7-field level position is **ambiguous** in the reference (fields 4 and 5 are equal in
every example); field 4 is used and checked against the folder's ``LL``: a mismatch is an
error, so a wrong guess cannot go unnoticed. Labels are ``sign type - 1``. Images have
varying sizes; ``prepare`` resizes them (the paper stretched to 28x28: ``data.resize_mode:
stretch``).
"""

from __future__ import annotations

from pathlib import Path

from robust.data.sources.base import FileSource, Record, list_images, require_dir
from robust.errors import DataError

#: the 12 challenge types, by their code
CHALLENGES = {
    0: "none",
    1: "decolorization",
    2: "lens_blur",
    3: "codec_error",
    4: "darkening",
    5: "dirty_lens",
    6: "exposure",
    7: "gaussian_blur",
    8: "noise",
    9: "rain",
    10: "shadow",
    11: "snow",
    12: "haze",
}
NUM_SIGNS = 14
FIX = "point data.root at the cure-tsr/ folder holding RealChallengeFree/{train,val,test}/*.bmp (and RealChallenge/TT_LL/...)."


def parse_name(filename: str) -> dict[str, int]:
    """Sign type, challenge type and level from a CURE-TSR file name (see module docstring)."""
    stem = filename.rsplit(".", 1)[0]
    fields = stem.split("_")
    if not all(f.isdigit() for f in fields) or len(fields) not in (5, 7):
        raise DataError(
            f"{filename!r} is not a CURE-TSR file name (5 or 7 underscore-separated numbers, e.g. 01_01_00_00_00_05_0003.bmp).",
            "keep the dataset's original file names.",
        )
    numbers = [int(f) for f in fields]
    sign = numbers[-2] if len(numbers) == 7 else numbers[1]
    if not 1 <= sign <= NUM_SIGNS or numbers[2] not in CHALLENGES or not 0 <= numbers[3] <= 5:
        raise DataError(
            f"{filename!r} names sign {sign}, challenge {numbers[2]}, level {numbers[3]}: out of range "
            f"(signs 1-{NUM_SIGNS}, challenges 0-12, levels 0-5).",
            "keep the dataset's original file names.",
        )
    return {"sign": sign, "challenge_type": numbers[2], "challenge_level": numbers[3]}


def archive_root(root: Path, marker: str = "RealChallengeFree") -> Path:
    """The folder holding CURE-TSR's ``marker`` folder: ``root`` itself, or its ``cure-tsr/``
    (the archive's top folder) when ``root`` is the folder above it."""
    return root / "cure-tsr" if not (root / marker).exists() and (root / "cure-tsr").is_dir() else root


class CureTsrSource(FileSource):
    """CURE-TSR; ``challenge`` is ``"00_00"`` (challenge-free) or ``"TT_LL"``."""

    name = "cure-tsr"

    def __init__(self, root: str | Path, challenge: str = "00_00") -> None:
        root = archive_root(Path(root))
        super().__init__(root)
        require_dir(root, "CURE-TSR folder (data.root)", FIX)
        try:
            ctype, level = (int(part) for part in challenge.split("_"))
        except ValueError:
            ctype, level = -1, -1
        if ctype not in CHALLENGES or not (ctype == 0) == (level == 0) or not 0 <= level <= 5:
            raise DataError(f"Unknown CURE-TSR challenge {challenge!r}.", "use '00_00' or 'TT_LL' with TT in 01..12 and LL in 01..05.")
        self.challenge = (ctype, level)
        self.folder = root / "RealChallengeFree" if ctype == 0 else root / "RealChallenge" / challenge
        require_dir(self.folder, f"CURE-TSR challenge folder {challenge}", FIX)

    @property
    def classes(self) -> list[str]:
        return [f"sign_{i:02d}" for i in range(1, NUM_SIGNS + 1)]

    def splits(self, need_train: bool = True) -> dict[str, list[Record]]:
        """Records per split folder present; ``need_train=False`` accepts a test-only
        challenge folder (what a released-set evaluation reads)."""
        out: dict[str, list[Record]] = {}
        for split in ("train", "val", "test"):
            folder = self.folder / split
            if not folder.is_dir():
                continue
            records = []
            for path in list_images(folder):
                fields = parse_name(path.name)
                if (fields["challenge_type"], fields["challenge_level"]) != self.challenge:
                    raise DataError(
                        f"{path} names challenge {fields['challenge_type']:02d}_{fields['challenge_level']:02d} "
                        f"but lies in the folder of challenge {self.challenge[0]:02d}_{self.challenge[1]:02d}.",
                        "keep the dataset's original folders and file names.",
                    )
                records.append(self.file_record(path, fields["sign"] - 1, **fields))
            out[split] = records
        if need_train and not out.get("train"):
            raise DataError(f"{self.folder}/train holds no .bmp image.", FIX)
        return out
