"""Writers of tiny datasets in the exact on-disk formats of the real ones.

Each writer returns what it wrote (arrays, labels, names) so tests can compare what the
sources read back with the truth.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image


def _image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def write_cifar(root: Path, variant: str = "cifar10", n_train: int = 20, n_test: int = 10, as_tarball: bool = False, seed: int = 0) -> dict:
    """CIFAR python version: pickled dicts with bytes keys, data rows R-plane|G-plane|B-plane."""
    rng = np.random.default_rng(seed)
    n_classes = 10 if variant == "cifar10" else 100
    folder_name = "cifar-10-batches-py" if variant == "cifar10" else "cifar-100-python"
    label_key = b"labels" if variant == "cifar10" else b"fine_labels"
    images = {s: _image(rng, 32 * n, 32).reshape(n, 32, 32, 3) for s, n in (("train", n_train), ("test", n_test))}
    labels = {s: [int(v) for v in rng.integers(0, n_classes, len(images[s]))] for s in images}
    names = [f"class{i}" for i in range(n_classes)]

    def batch(split: str, part: slice) -> bytes:
        imgs = images[split][part]
        data = imgs.transpose(0, 3, 1, 2).reshape(len(imgs), 3072)
        d = {b"batch_label": split.encode(), label_key: labels[split][part], b"data": data,
             b"filenames": [f"img_{i}.png".encode() for i in range(len(imgs))]}
        if variant == "cifar100":
            d[b"coarse_labels"] = [0] * len(imgs)
        return pickle.dumps(d, protocol=2)

    files: dict[str, bytes] = {}
    if variant == "cifar10":
        bounds = np.linspace(0, n_train, 6).astype(int)
        for i in range(5):
            files[f"data_batch_{i + 1}"] = batch("train", slice(bounds[i], bounds[i + 1]))
        files["test_batch"] = batch("test", slice(None))
        files["batches.meta"] = pickle.dumps({b"label_names": [n.encode() for n in names], b"num_vis": 3072}, protocol=2)
    else:
        files["train"] = batch("train", slice(None))
        files["test"] = batch("test", slice(None))
        files["meta"] = pickle.dumps({b"fine_label_names": [n.encode() for n in names], b"coarse_label_names": [b"c"]}, protocol=2)
    root.mkdir(parents=True, exist_ok=True)
    if as_tarball:
        path = root / ("cifar-10-python.tar.gz" if variant == "cifar10" else "cifar-100-python.tar.gz")
        with tarfile.open(path, "w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(f"{folder_name}/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        path = root / folder_name
        path.mkdir()
        for name, data in files.items():
            (path / name).write_bytes(data)
    return {"path": path, "images": images, "labels": labels, "names": names}


def write_tiny_imagenet(root: Path, wnids: tuple[str, ...] = ("n02", "n01", "n03"), per_class: int = 4, n_val: int = 6, seed: int = 0) -> dict:
    """tiny-imagenet-200 layout with 64x64 JPEGs, wnids.txt, words.txt, val_annotations.txt."""
    rng = np.random.default_rng(seed)
    base = root / "tiny-imagenet-200"
    (base / "val" / "images").mkdir(parents=True)
    (base / "test" / "images").mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    words = {w: f"thing {w}, alias" for w in wnids}
    (base / "words.txt").write_text("".join(f"{w}\t{n}\n" for w, n in {**words, "n99": "unused"}.items()))
    for wnid in wnids:
        folder = base / "train" / wnid / "images"
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(_image(rng, 64, 64)).save(folder / f"{wnid}_{i}.JPEG", quality=95)
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    lines, val_labels = [], {}
    for i in range(n_val):
        wnid = wnids[i % len(wnids)]
        name = f"val_{i}.JPEG"
        Image.fromarray(_image(rng, 64, 64)).save(base / "val" / "images" / name, quality=95)
        lines.append(f"{name}\t{wnid}\t0\t0\t63\t63")
        val_labels[name] = wnid
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    Image.fromarray(_image(rng, 64, 64)).save(base / "test" / "images" / "test_0.JPEG")
    return {"path": base, "wnids": sorted(wnids), "words": words, "val_labels": val_labels}


def write_image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog"), per_class: dict | None = None, seed: int = 0) -> Path:
    """ImageNet-style train/<class>/*.JPEG and val/<class>/*.JPEG of varying sizes (and a PNG)."""
    rng = np.random.default_rng(seed)
    per_class = per_class or {"train": 5, "val": 2}
    for split, n in per_class.items():
        for c in classes:
            folder = root / split / c
            folder.mkdir(parents=True)
            for i in range(n):
                h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
                ext = ".png" if i == 0 else ".JPEG"
                Image.fromarray(_image(rng, h, w)).save(folder / f"{c}_{i}{ext}")
    return root


def cure_name(sign: int, ctype: int, level: int, index: int, fields: int = 7) -> str:
    if fields == 7:
        return f"01_01_{ctype:02d}_{level:02d}_{level:02d}_{sign:02d}_{index:04d}.bmp"
    return f"01_{sign:02d}_{ctype:02d}_{level:02d}_{index:04d}.bmp"


def write_cure_tsr(root: Path, signs: tuple[int, ...] = (1, 5, 14), per_split: int = 2, challenges: tuple[str, ...] = ("07_01",), fields: int = 7, seed: int = 0) -> Path:
    """cure-tsr/RealChallengeFree/{train,val,test}/*.bmp and RealChallenge/TT_LL/... of varying sizes."""
    rng = np.random.default_rng(seed)
    base = root / "cure-tsr"
    for challenge in ("00_00", *challenges):
        ctype, level = (int(x) for x in challenge.split("_"))
        top = base / "RealChallengeFree" if ctype == 0 else base / "RealChallenge" / challenge
        for split in ("train", "val", "test"):
            folder = top / split
            folder.mkdir(parents=True)
            index = 0
            for sign in signs:
                for _ in range(per_split):
                    size = int(rng.integers(20, 60))
                    Image.fromarray(_image(rng, size, size + 3)).save(folder / cure_name(sign, ctype, level, index, fields))
                    index += 1
    return base


def truncate(path: Path) -> None:
    """Cut an image file in half, as an interrupted copy would."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# -- released corrupted test sets -------------------------------------------------------------
def write_cifar_c(root: Path, labels, images: np.ndarray | None = None, names: tuple[str, ...] = ("fog",), severities: int = 5, seed: int = 0) -> dict:
    """CIFAR-10-C / CIFAR-100-C: ``<name>.npy`` uint8 (severities x n, 32, 32, 3), severity-major
    (rows ``(s - 1) * n + i`` = severity s of test image i), and ``labels.npy`` (the test labels
    repeated per severity). With the clean test ``images`` each severity is a noisier copy of
    them, otherwise random images."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, dtype=np.uint8)
    n = len(labels)
    base = images if images is not None else _image(rng, 32 * n, 32).reshape(n, 32, 32, 3)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name in names:
        levels = [np.clip(base.astype(np.int16) + rng.integers(-8 * s, 8 * s + 1, size=base.shape), 0, 255).astype(np.uint8) for s in range(1, severities + 1)]
        arrays[name] = np.concatenate(levels)
        np.save(root / f"{name}.npy", arrays[name])
    np.save(root / "labels.npy", np.tile(labels, severities))
    return {"path": root, "arrays": arrays, "labels": np.tile(labels, severities)}


def write_tiny_imagenet_c(root: Path, wnids: tuple[str, ...] = ("n01", "n02", "n03"), per_class: int = 2, names: tuple[str, ...] = ("fog",),
                          severities: int = 5, size: int = 64, seed: int = 0) -> dict:
    """Tiny-ImageNet-C / ImageNet-C: ``<name>/<severity>/<wnid>/val_<i>.JPEG`` (JPEG quality 85,
    ``size`` x ``size``). Returns the relative path of every file written."""
    rng = np.random.default_rng(seed)
    files = []
    for name in names:
        for severity in range(1, severities + 1):
            for wnid in wnids:
                folder = root / name / str(severity) / wnid
                folder.mkdir(parents=True)
                for i in range(per_class):
                    path = folder / f"val_{i}.JPEG"
                    Image.fromarray(_image(rng, size, size)).save(path, format="JPEG", quality=85)
                    files.append(path.relative_to(root).as_posix())
    return {"path": root, "files": files}


def write_cure_tsr_challenges(root: Path, ctypes: tuple[int, ...] = (7,), levels: tuple[int, ...] = (1, 2, 3, 4, 5), **kwargs) -> Path:
    """cure-tsr/ with RealChallengeFree/ and RealChallenge/TT_LL/{train,val,test}/*.bmp for every
    challenge type in ``ctypes`` at every level in ``levels`` (see :func:`write_cure_tsr`)."""
    challenges = tuple(f"{t:02d}_{level:02d}" for t in ctypes for level in levels)
    return write_cure_tsr(root, challenges=challenges, **kwargs)


# -- IQA databases -----------------------------------------------------------------------------
def iqa_pairs(n_refs: int = 3, levels: tuple[int, ...] = (1, 2, 3, 4), size: int = 96, seed: int = 0) -> dict:
    """Reference textures (crops of scikit-image photographs, so there is natural structure) and
    their blurred / noised copies, stronger with the level; ``mos`` falls with the level.
    Returns ``{"refs": [uint8 HxWx3], "pairs": [(ref index, type, level, uint8 image, mos)]}``."""
    from scipy.ndimage import gaussian_filter
    from skimage import data

    rng = np.random.default_rng(seed)
    photos = [data.astronaut(), data.chelsea(), data.coffee()]
    refs = []
    for i in range(n_refs):
        photo = photos[i % len(photos)]
        top, left = rng.integers(0, photo.shape[0] - size), rng.integers(0, photo.shape[1] - size)
        refs.append(np.ascontiguousarray(photo[top : top + size, left : left + size]))
    pairs = []
    for r, ref in enumerate(refs):
        x = ref.astype(np.float64) / 255
        for kind in ("blur", "noise"):
            for level in levels:
                if kind == "blur":
                    out = gaussian_filter(x, sigma=(0.6 * level, 0.6 * level, 0))
                else:
                    out = x + rng.normal(0, 0.04 * level, x.shape)
                pairs.append((r, kind, level, (np.clip(out, 0, 1) * 255).round().astype(np.uint8), 9.0 - 1.5 * level))
    return {"refs": refs, "pairs": pairs}


def write_tid2013(root: Path, **kwargs) -> dict:
    """TID2013's layout: mos_with_names.txt ("MOS name"), reference_images/I01.BMP.., distorted_images/iRR_TT_L.bmp,
    some distorted names with an upper-case I (as in the release); types 01 (noise) and 08 (blur) as TID2013 numbers them."""
    made = iqa_pairs(**kwargs)
    (root / "reference_images").mkdir(parents=True)
    (root / "distorted_images").mkdir()
    for r, ref in enumerate(made["refs"]):
        Image.fromarray(ref).save(root / "reference_images" / f"I{r + 1:02d}.BMP")
    lines = []
    for k, (r, kind, level, image, mos) in enumerate(made["pairs"]):
        name = f"i{r + 1:02d}_{'08' if kind == 'blur' else '01'}_{level}.bmp"
        on_disk = name.upper().replace(".BMP", ".bmp") if k % 3 == 0 else name  # I01_08_1.bmp
        Image.fromarray(image).save(root / "distorted_images" / on_disk)
        lines.append(f"{mos:.5f} {name}")
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    return made


def write_livemd(root: Path, **kwargs) -> dict:
    """LIVE Multiply Distorted: Part 1/blurjpeg and Part 2/blurnoise, each with its references and
    distorted images side by side and the .mat files written by scipy (cell arrays of names,
    1-based ref4dist, DMOSscores 1 x N: higher = worse)."""
    from scipy.io import savemat

    made = iqa_pairs(**kwargs)
    for part, kind, folder in (("Part 1", "blur", "blurjpeg"), ("Part 2", "noise", "blurnoise")):
        where = root / part / folder
        where.mkdir(parents=True)
        refimgs = []
        for r, ref in enumerate(made["refs"]):
            refimgs.append(f"ref{r + 1}.bmp")
            Image.fromarray(ref).save(where / refimgs[-1])
        names, ref4dist, dmos = [], [], []
        for r, k, level, image, mos in made["pairs"]:
            if k == kind:
                names.append(f"ref{r + 1}_{folder}_{level}.bmp")
                Image.fromarray(image).save(where / names[-1])
                ref4dist.append(r + 1)
                dmos.append(10 * (9.0 - mos))
        cells = lambda items: np.array(items, dtype=object).reshape(-1, 1)  # noqa: E731 -- a MATLAB cell column
        savemat(where / "Imagelists.mat", {"distimgs": cells(names), "refimgs": cells(refimgs), "ref4dist": np.array(ref4dist, dtype=float)})
        savemat(where / "Scores.mat", {"DMOSscores": np.array([dmos])})
    return made


def write_iqa_csv(root: Path, **kwargs) -> Path:
    """A plain reference,distorted,mos,type CSV with PNG images beside it."""
    made = iqa_pairs(**kwargs)
    (root / "images").mkdir(parents=True)
    for r, ref in enumerate(made["refs"]):
        Image.fromarray(ref).save(root / "images" / f"ref{r}.png")
    rows = ["reference,distorted,mos,type"]
    for k, (r, kind, level, image, mos) in enumerate(made["pairs"]):
        Image.fromarray(image).save(root / "images" / f"d{k}.png")
        rows.append(f"images/ref{r}.png,images/d{k}.png,{mos},{kind}")
    (root / "scores.csv").write_text("\n".join(rows) + "\n")
    return root / "scores.csv"


def _jpegs(folder: Path, names: list[str], rng: np.random.Generator) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        Image.fromarray(_image(rng, h, w)).save(folder / name, format="JPEG", quality=90)


def write_caltech(root: Path, variant: int = 101, counts: dict | None = None, seed: int = 0) -> dict:
    """Caltech-101 (``101_ObjectCategories/<class>/image_NNNN.jpg``, BACKGROUND_Google included)
    or Caltech-256 (``256_ObjectCategories/NNN.<name>/NNN_NNNN.jpg``, 257.clutter included), as
    they extract; ``counts`` maps class folder -> number of JPEGs."""
    rng = np.random.default_rng(seed)
    if counts is None:
        counts = ({"BACKGROUND_Google": 5, "Faces": 4, "accordion": 6, "airplanes": 5} if variant == 101
                  else {"001.ak47": 5, "002.american-flag": 4, "003.backpack": 6, "257.clutter": 5})
    folder = root / f"{variant}_ObjectCategories"
    for name, n in counts.items():
        prefix = name.split(".")[0]
        files = [f"image_{i + 1:04d}.jpg" for i in range(n)] if variant == 101 else [f"{prefix}_{i + 1:04d}.jpg" for i in range(n)]
        _jpegs(folder / name, files, rng)
    return {"folder": folder, "counts": counts}


def write_sun397(root: Path, classes: tuple[str, ...] = ("/a/abbey", "/a/apartment_building/outdoor", "/b/bakery/shop"),
                 per_class: tuple[int, int] = (3, 2), partitions: int = 2, seed: int = 0) -> dict:
    """SUN397: ``SUN397/<letter>/<class>/sun_<id>.jpg`` and ``Partitions/ClassName.txt`` +
    ``Training_0N.txt`` / ``Testing_0N.txt`` (the official lists' line format)."""
    rng = np.random.default_rng(seed)
    n_train, n_test = per_class
    lists: dict[str, list[str]] = {}
    for part in range(1, partitions + 1):
        lists[f"Training_{part:02d}.txt"], lists[f"Testing_{part:02d}.txt"] = [], []
    for c in classes:
        names = [f"sun_{c.strip('/').replace('/', '')[:6]}{i:04d}.jpg" for i in range(n_train + n_test + partitions)]
        _jpegs(root / "SUN397" / c.strip("/"), names, rng)
        for part in range(1, partitions + 1):
            rolled = names[part - 1:] + names[: part - 1]  # each partition a different draw
            lists[f"Training_{part:02d}.txt"] += [f"{c}/{n}" for n in rolled[:n_train]]
            lists[f"Testing_{part:02d}.txt"] += [f"{c}/{n}" for n in rolled[n_train:n_train + n_test]]
    (root / "Partitions").mkdir(parents=True)
    (root / "Partitions" / "ClassName.txt").write_text("".join(f"{c}\n" for c in classes))
    for name, lines in lists.items():
        (root / "Partitions" / name).write_text("".join(f"{line}\n" for line in lines))
    return {"classes": classes, "lists": lists}
