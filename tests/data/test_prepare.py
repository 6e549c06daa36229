"""The prepare stage end to end on every source: splits, shards, info.json, errors."""

import json
import tarfile

import numpy as np
import pytest
from formats import truncate, write_caltech, write_cifar, write_cure_tsr, write_image_folder, write_sun397, write_tiny_imagenet

from robust.data.prepare import assign_splits, fit_image, prepare, stratified_order
from robust.data.shards import decode_image, read_info, sha256_file
from robust.data.sources import Record
from robust.errors import BadImageError, DataError, ParamError
from robust.params import DataParams


def params(**kw) -> DataParams:
    base = {"train_size": None, "val_size": None, "test_size": None, "workers": 1, "shard_size": 4}
    base.update(kw)
    return DataParams.from_dict(base)


def read_shard(path):
    """Samples of one tar, grouped by key: {key: {ext: bytes}}."""
    out: dict = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            key, ext = member.name.split(".", 1)
            out.setdefault(key, {})[ext] = tar.extractfile(member).read()
    return out


def all_samples(folder):
    info = read_info(folder)
    samples = {}
    for shard in info["shards"]:
        samples.update(read_shard(folder / shard["name"]))
    return info, samples


def test_cifar_prepare_holds_out_val_and_stores_exact_pixels(tmp_path):
    truth = write_cifar(tmp_path / "raw", "cifar10", n_train=40, n_test=10, as_tarball=True)
    infos = prepare(params(source="cifar10", root=str(truth["path"]), val_fraction=0.25), tmp_path / "out")
    assert {s: i["num_samples"] for s, i in infos.items()} == {"train": 30, "val": 10, "test": 10}
    _, train = all_samples(tmp_path / "out" / "train")
    _, val = all_samples(tmp_path / "out" / "val")
    assert not set(train) & set(val)
    _, test = all_samples(tmp_path / "out" / "test")
    for key, sample in test.items():
        index = json.loads(sample["json"])["index"]
        np.testing.assert_array_equal(decode_image(sample["png"]), truth["images"]["test"][index])
        assert int(sample["cls"]) == truth["labels"]["test"][index]
    info = read_info(tmp_path / "out" / "test")
    assert info["classes"] == truth["names"] and info["num_classes"] == 10
    assert [s["num_samples"] for s in info["shards"]] == [4, 4, 2]
    for shard in info["shards"]:
        assert shard["sha256"] == sha256_file(tmp_path / "out" / "test" / shard["name"])
    assert info["params"]["source"] == "cifar10"


def test_tiny_imagenet_official_val_becomes_test(tmp_path):
    truth = write_tiny_imagenet(tmp_path / "raw")
    infos = prepare(params(source="tinyimagenet", root=str(truth["path"]), image_size=64), tmp_path / "out")
    assert infos["test"]["num_samples"] == 6
    assert infos["train"]["num_samples"] + infos["val"]["num_samples"] == 12
    _, test = all_samples(tmp_path / "out" / "test")
    for sample in test.values():
        meta = json.loads(sample["json"])
        assert truth["val_labels"][meta["file"].rsplit("/", 1)[1]] == meta["wnid"]
        assert decode_image(sample["png"]).shape == (64, 64, 3)


def test_image_folder_resizes_shorter_side_and_center_crops(tmp_path):
    write_image_folder(tmp_path / "raw")
    prepare(params(source="imagefolder", root=str(tmp_path / "raw"), image_size=24, resize_shorter=28, format="jpg", jpg_quality=90), tmp_path / "out")
    info, samples = all_samples(tmp_path / "out" / "test")
    assert info["format"] == "jpg" and len(samples) == 4
    assert all(decode_image(s["jpg"]).shape == (24, 24, 3) for s in samples.values())
    assert all(s["jpg"][:2] == b"\xff\xd8" for s in samples.values())


def test_fit_image_center_crop_and_stretch():
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, 12:68] = 255  # a white band wider than the central square, black sides
    cropped = fit_image(image, 20)
    assert cropped.shape == (20, 20, 3) and cropped.min() == 255  # crop keeps the middle only
    stretched = fit_image(image, 20, mode="stretch")
    assert stretched[:, 0].max() == 0 and stretched[:, 10].min() == 255
    assert fit_image(image[:20, :20], 20) is not None and np.array_equal(fit_image(image[:20, :20], 20), image[:20, :20])


@pytest.mark.parametrize("kind", ["tinyimagenet", "imagefolder", "cure-tsr"])
def test_bad_image_error_names_file_and_leaves_nothing(tmp_path, kind):
    root, bad = _dataset_with_bad_image(tmp_path / "raw", kind)
    out = tmp_path / "out"
    with pytest.raises(BadImageError, match=bad.name) as excinfo:
        prepare(params(source=kind, root=str(root), workers=2), out)
    assert "on_bad_image: skip" in str(excinfo.value)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temp folder left


@pytest.mark.parametrize("kind", ["tinyimagenet", "imagefolder", "cure-tsr"])
def test_bad_image_skip_counts_and_lists_it(tmp_path, kind):
    root, bad = _dataset_with_bad_image(tmp_path / "raw", kind)
    infos = prepare(params(source=kind, root=str(root), on_bad_image="skip", workers=2), tmp_path / "out")
    skipped = [s for info in infos.values() for s in info["skipped"]]
    assert len(skipped) == 1 and bad.stem.replace(".", "_") in skipped[0]["key"]
    assert sum(i["num_skipped"] for i in infos.values()) == 1
    split = next(s for s, i in infos.items() if i["num_skipped"])
    _, samples = all_samples(tmp_path / "out" / split)
    assert len(samples) == infos[split]["num_samples"] and skipped[0]["key"] not in samples


def _dataset_with_bad_image(root, kind):
    if kind == "tinyimagenet":
        base = write_tiny_imagenet(root)["path"]
        bad = base / "val" / "images" / "val_1.JPEG"
    elif kind == "imagefolder":
        base = write_image_folder(root)
        bad = base / "train" / "dog" / "dog_3.JPEG"
    else:
        base = write_cure_tsr(root)
        bad = sorted((base / "RealChallengeFree" / "test").glob("*.bmp"))[2]
    truncate(bad)
    return base, bad


def test_rebuild_is_byte_identical_and_independent_of_workers(tmp_path):
    p1 = DataParams(train_size=48, val_size=12, test_size=12, shard_size=10, workers=1)
    p2 = DataParams(train_size=48, val_size=12, test_size=12, shard_size=10, workers=2)
    prepare(p1, tmp_path / "a")
    prepare(p2, tmp_path / "b")
    prepare(p2, tmp_path / "b")  # rebuilding over an existing output replaces it whole
    for split in ("train", "val", "test"):
        a, b = read_info(tmp_path / "a" / split), read_info(tmp_path / "b" / split)
        assert [s["sha256"] for s in a["shards"]] == [s["sha256"] for s in b["shards"]]
        for shard in a["shards"]:
            assert (tmp_path / "a" / split / shard["name"]).read_bytes() == (tmp_path / "b" / split / shard["name"]).read_bytes()
    assert read_info(tmp_path / "a" / "train")["shards"][0]["sha256"] != _sha_with_seed(tmp_path, 1)


def _sha_with_seed(tmp_path, seed):
    prepare(DataParams(train_size=48, val_size=12, test_size=12, shard_size=10, workers=1, seed=seed), tmp_path / "c")
    return read_info(tmp_path / "c" / "train")["shards"][0]["sha256"]


def test_sizes_limit_with_class_balance():
    records = [Record(key=f"k{i}", label=i % 3 if i < 60 else 0, ref=i) for i in range(90)]  # class 0 is 4x the others
    order = stratified_order(records, seed=0)
    assert sorted(order) == list(range(90))
    first = [records[i].label for i in order[:30]]
    assert np.bincount(first).tolist() == [10, 10, 10]
    p = DataParams(source="imagefolder", root="x", train_size=15, val_size=None, test_size=6)
    splits = assign_splits({"train": records, "val": records[:9]}, p)
    assert len(splits["train"]) == 15 and len(splits["test"]) == 6 and len(splits["val"]) == 9
    assert np.bincount([r.label for r in splits["train"]]).tolist() == [5, 5, 5]
    assert [r.ref for r in splits["train"]] == sorted(r.ref for r in splits["train"])  # source order kept


def test_missing_root_and_wrong_layout_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        prepare(params(source="cifar100", root=str(tmp_path / "missing")), tmp_path / "out")
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="cure-tsr/ folder holding RealChallengeFree"):
        prepare(params(source="cure-tsr", root=str(tmp_path / "flat")), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "values, match",
    [
        ({"source": "mnist"}, "data.source"),
        ({"source": "cifar10"}, "data.root"),
        ({"image_size": 4}, "data.image_size"),
        ({"image_size": 32, "resize_shorter": 16}, "data.resize_shorter"),
        ({"format": "webp"}, "data.format"),
        ({"on_bad_image": "ignore"}, "data.on_bad_image"),
        ({"train_size": None}, "data.train_size"),
        ({"val_fraction": 1.5}, "data.val_fraction"),
        ({"workers": 0}, "data.workers"),
        ({"shard_sise": 10}, "Unknown parameter data.shard_sise"),
    ],
)
def test_invalid_parameters_are_named(values, match):
    with pytest.raises(ParamError, match=match):
        DataParams.from_dict(values)


@pytest.mark.parametrize("variant, excluded", [(101, "BACKGROUND_Google"), (256, "257.clutter")])
def test_caltech_prepares_a_seeded_per_class_split_with_the_right_counts(tmp_path, variant, excluded):
    made = write_caltech(tmp_path / "raw", variant)
    p = params(source=f"caltech{variant}", root=str(tmp_path / "raw"), image_size=24, train_per_class=3, val_fraction=0.25)
    infos = prepare(p, tmp_path / "out")
    counts = made["counts"]
    assert infos["train"]["classes"] == sorted(counts)  # the background / clutter class is a class unless excluded
    assert infos["train"]["num_samples"] + infos["val"]["num_samples"] == 3 * len(counts)
    assert infos["val"]["num_samples"] == 3  # round(0.25 * 12) held out of train, class-stratified
    assert infos["test"]["num_samples"] == sum(counts.values()) - 3 * len(counts)
    _, test = all_samples(tmp_path / "out" / "test")
    per_class = np.bincount([int(s["cls"]) for s in test.values()], minlength=len(counts))
    assert per_class.tolist() == [counts[c] - 3 for c in sorted(counts)]
    again = prepare(p, tmp_path / "again")
    assert [s["sha256"] for s in again["train"]["shards"]] == [s["sha256"] for s in infos["train"]["shards"]]
    kept = prepare(params(source=f"caltech{variant}", root=str(made["folder"]), image_size=24, train_per_class=3, exclude_classes=[excluded]), tmp_path / "kept")
    assert excluded not in kept["train"]["classes"] and kept["train"]["num_classes"] == len(counts) - 1
    # each class is drawn with its own seed: leaving one class out changes no other class's split
    def training_keys(out):
        return {k for split in ("train", "val") for k in all_samples(out / split)[1]}
    assert training_keys(tmp_path / "kept") == {k for k in training_keys(tmp_path / "out") if not k.startswith(excluded.replace(".", "_"))}


def test_caltech_layout_errors_are_clear(tmp_path):
    write_caltech(tmp_path / "raw", 101)
    with pytest.raises(DataError, match="Faces has 4 images.*train_per_class"):
        prepare(params(source="caltech101", root=str(tmp_path / "raw"), train_per_class=4), tmp_path / "out")
    with pytest.raises(DataError, match="exclude_classes names clutter"):
        prepare(params(source="caltech101", root=str(tmp_path / "raw"), train_per_class=2, exclude_classes=["clutter"]), tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no class folder"):
        prepare(params(source="caltech256", root=str(tmp_path / "empty")), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_sun397_follows_the_official_partition_lists(tmp_path):
    made = write_sun397(tmp_path / "raw")
    infos = prepare(params(source="sun397", root=str(tmp_path / "raw"), image_size=24, partition=2, val_fraction=0.34), tmp_path / "out")
    assert infos["train"]["classes"] == ["abbey", "apartment_building/outdoor", "bakery/shop"]
    assert infos["train"]["num_samples"] + infos["val"]["num_samples"] == 9 and infos["val"]["num_samples"] == 3 and infos["test"]["num_samples"] == 6
    _, test = all_samples(tmp_path / "out" / "test")
    files = sorted(json.loads(s["json"])["file"] for s in test.values())
    assert files == sorted(line.lstrip("/") for line in made["lists"]["Testing_02.txt"])
    with pytest.raises(DataError, match="Training_03.txt not found"):
        prepare(params(source="sun397", root=str(tmp_path / "raw"), partition=3), tmp_path / "bad")
    (tmp_path / "raw" / "Partitions" / "Training_01.txt").write_text("abbey.jpg\n")
    with pytest.raises(DataError, match="is not a SUN397 partition list"):
        prepare(params(source="sun397", root=str(tmp_path / "raw"), partition=1), tmp_path / "bad")
    with pytest.raises(DataError, match="neither SUN397/ nor Partitions/"):
        prepare(params(source="sun397", root=str(tmp_path)), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
