"""Released corrupted test sets (CIFAR-10-C, Tiny-ImageNet-C, CURE-TSR) -> corrupt-stage shards."""

import json
import pickle
import shutil

import numpy as np
import pytest
from formats import truncate, write_cifar, write_cifar_c, write_cure_tsr_challenges, write_tiny_imagenet, write_tiny_imagenet_c
from PIL import Image

from robust.distortions.settings import CorruptParams
from robust.data.loader import make_loader
from robust.data.prepare import fit_image, prepare
from robust.data.shards import decode_image, read_info, read_tar
from robust.data.sources.base import safe_key
from robust.data.sources.curetsr import CureTsrSource
from robust.errors import DataError
from robust.params import DataParams
from robust.distortions.released import write_released

ALL = {"train_size": None, "val_size": None, "shard_size": 4, "workers": 1}


def params(**kwargs):
    return CorruptParams(**{"source": "released", "root": "unused", "workers": 1, **kwargs})


def samples(folder):
    return [s for shard in read_info(folder)["shards"] for s in read_tar(folder / shard["name"])]


def assert_nothing_left(out):
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.tmp")]


def check_common_info(info, name, level, family, layout, root):
    assert info["split"] == "test" and info["distortion"] == {
        "name": name, "level": level, "levels": 5, "origin": "released", "family": family, "value": None}
    assert info["released"]["layout"] == layout and info["released"]["root"] == str(root) and info["released"]["constants"] == "released"
    assert info["params"]["splits"] == ["test"] and "suites" not in info["params"]
    assert info["decoded"] is not None and "software" in info and "clean_shards_sha256" in info


# -- CIFAR-10-C -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    base = tmp_path_factory.mktemp("cifar")
    truth = write_cifar(base / "raw", "cifar10", n_train=20, n_test=10)
    root = str(truth["path"])
    prepare(DataParams(source="cifar10", root=root, test_size=6, **ALL), base / "subset")  # a stratified subset of the 10
    prepare(DataParams(source="cifar10", root=root, test_size=None, **ALL), base / "full")
    return {"truth": truth, "subset": base / "subset", "full": base / "full"}


def write_c(cifar, root, **kwargs):
    test = cifar["truth"]
    return write_cifar_c(root, test["labels"]["test"], test["images"]["test"], **kwargs)


def test_cifar_c_pairs_with_the_clean_test_split_and_stores_the_released_pixels(cifar, tmp_path):
    released = write_c(cifar, tmp_path / "CIFAR-10-C", names=("fog", "gaussian_noise"))
    out = tmp_path / "out" / "fog"
    infos = write_released(cifar["subset"], out, "fog", tmp_path / "CIFAR-10-C", params(workers=2))
    assert sorted(infos) == [1, 2, 3, 4, 5] == sorted(int(p.name) for p in out.iterdir())
    clean = samples(cifar["subset"] / "test")
    clean_shards = read_info(cifar["subset"] / "test")["shards"]
    for level in range(1, 6):
        folder = out / str(level) / "test"
        got = samples(folder)
        assert [s["__key__"] for s in got] == [s["__key__"] for s in clean]  # same keys, order and labels as clean
        assert [s["cls"] for s in got] == [s["cls"] for s in clean]
        stored = []
        for sample, before in zip(got, clean):
            meta = json.loads(sample["json"])
            index = json.loads(before["json"])["index"]
            assert meta["index"] == index and meta["row"] == (level - 1) * 10 + index
            assert (meta["distortion"], meta["level"], meta["released"], meta["file"]) == ("fog", level, True, "fog.npy")
            pixels = decode_image(sample["png"])
            np.testing.assert_array_equal(pixels, released["arrays"]["fog"][meta["row"]])
            stored.append(pixels)
        info = read_info(folder)
        assert info == infos[level]["test"]
        check_common_info(info, "fog", level, "weather", "cifar-c", tmp_path / "CIFAR-10-C")
        assert (info["source"], info["format"], info["num_samples"], info["image_size"]) == ("cifar10", "png", 6, 32)
        assert info["classes"] == cifar["truth"]["names"] and info["num_classes"] == 10
        assert [s["num_samples"] for s in info["shards"]] == [s["num_samples"] for s in clean_shards]  # one shard per clean shard
        assert info["released"]["files"] == ["fog.npy", "labels.npy"] and info["released"]["rows"] == [(level - 1) * 10, level * 10]
        np.testing.assert_array_equal(np.load(folder / "images.npy"), np.stack(stored))
    # the complete test split needs every image of a severity
    write_released(cifar["full"], tmp_path / "full", "gaussian_noise", tmp_path / "CIFAR-10-C", params())
    assert read_info(tmp_path / "full" / "3" / "test")["num_samples"] == 10


def test_cifar_c_is_read_by_the_loader_with_the_right_labels(cifar, tmp_path):
    released = write_c(cifar, tmp_path / "C")
    write_released(cifar["subset"], tmp_path / "out", "fog", tmp_path / "C", params())
    folder = tmp_path / "out" / "4" / "test"
    rows = [json.loads(s["json"])["row"] for s in samples(folder)]
    for with_keys in (False, True):  # the decoded copy, and the tars
        batch = next(iter(make_loader(folder, batch_size=16, with_keys=with_keys)))
        images, labels = batch[0], batch[1]
        assert images.shape == (6, 3, 32, 32) and 0 <= images.min() and images.max() <= 1
        assert labels.tolist() == released["labels"][rows].tolist()
        np.testing.assert_array_equal((images * 255).round().byte().permute(0, 2, 3, 1).numpy(), released["arrays"]["fog"][rows])


def _cifar_broken(kind, cifar, root):
    if kind == "no root":
        return
    write_c(cifar, root)
    labels = np.load(root / "labels.npy")
    if kind == "no npy":
        (root / "fog.npy").unlink()
    elif kind == "no labels":
        (root / "labels.npy").unlink()
    elif kind == "shape":
        np.save(root / "fog.npy", np.zeros((50, 32, 32), np.uint8))
    elif kind == "dtype":
        np.save(root / "fog.npy", np.zeros((50, 32, 32, 3), np.float32))
    elif kind == "not divisible":
        np.save(root / "fog.npy", np.zeros((49, 32, 32, 3), np.uint8))
    elif kind == "not npy":
        (root / "fog.npy").write_bytes(b"this is no array")
    elif kind == "labels shape":
        np.save(root / "labels.npy", labels[:-1])
    elif kind == "label mismatch":
        labels[23] = (labels[23] + 1) % 10  # severity 3, image 3
        np.save(root / "labels.npy", labels)
    elif kind == "too few":
        np.save(root / "fog.npy", np.load(root / "fog.npy")[:15])
        np.save(root / "labels.npy", labels[:15])


@pytest.mark.parametrize(("kind", "match"), [
    ("no root", r"released CIFAR-10-C folder \(corrupt.root\) .*C does not exist"),
    ("no npy", r"file of fog .*fog.npy is missing. Fix: remove fog from corrupt.suites, or point corrupt.root"),
    ("no labels", r"label file .*labels.npy is missing"),
    ("shape", r"fog.npy holds uint8 of shape \(50, 32, 32\); expected uint8 of shape \(N, 32, 32, 3\)"),
    ("dtype", r"fog.npy holds float32 of shape \(50, 32, 32, 3\); expected uint8"),
    ("not divisible", r"fog.npy holds uint8 of shape \(49, 32, 32, 3\)"),
    ("not npy", r"fog.npy is not a readable .npy array"),
    ("labels shape", r"labels.npy holds uint8 of shape \(49,\); expected integers of shape \(50,\)"),
    ("label mismatch", r"labels.npy does not match the clean cifar10 test labels: 1 of 10 differ at severity 3 \(first: test image 3"),
    ("too few", r"fog.npy holds 3 images per severity .* but the clean cifar10 test split has 10 images"),
])  # fmt: skip
def test_cifar_c_errors_name_the_file_and_leave_nothing(cifar, tmp_path, kind, match):
    _cifar_broken(kind, cifar, tmp_path / "C")
    out = tmp_path / "out"
    with pytest.raises(DataError, match=match) as caught:
        write_released(cifar["full"], out, "fog", tmp_path / "C", params())
    assert caught.value.fix
    assert_nothing_left(out)


def test_a_failure_keeps_the_previous_output(cifar, tmp_path):
    write_c(cifar, tmp_path / "C")
    write_released(cifar["full"], tmp_path / "out", "fog", tmp_path / "C", params())
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "out").rglob("*"))
    (tmp_path / "C" / "labels.npy").unlink()
    with pytest.raises(DataError):
        write_released(cifar["full"], tmp_path / "out", "fog", tmp_path / "C", params())
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "out").rglob("*")) == before


@pytest.mark.parametrize(("name", "kwargs", "match"), [
    ("fog", {"splits": ("val", "test")}, r"Fix: set corrupt.splits: \[test\] with corrupt.source: released"),
    ("cure_haze", {}, r"cure_haze is a CURE-TSR challenge; the released set for data.source cifar10 is CIFAR-10-C"),
    ("dc_blur", {}, r"dc_blur is not one of the ImageNet-C corruptions"),
])  # fmt: skip
def test_wrong_splits_or_names_for_the_source_are_refused(cifar, tmp_path, name, kwargs, match):
    write_c(cifar, tmp_path / "C")
    with pytest.raises(DataError, match=match):
        write_released(cifar["full"], tmp_path / "out", name, tmp_path / "C", params(**kwargs))
    assert_nothing_left(tmp_path / "out")


def test_builtin_clean_data_has_no_released_set(tmp_path):
    prepare(DataParams(train_size=12, val_size=12, test_size=12, workers=1), tmp_path / "clean")
    with pytest.raises(DataError, match="No released corrupted set exists for data.source 'builtin'"):
        write_released(tmp_path / "clean", tmp_path / "out", "fog", tmp_path, params())
    assert_nothing_left(tmp_path / "out")


# -- Tiny-ImageNet-C ----------------------------------------------------------------------------
WNIDS = ("n01", "n02", "n03")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("tiny")
    write_tiny_imagenet(base / "raw", wnids=("n02", "n01", "n03"))
    prepare(DataParams(source="tinyimagenet", root=str(base / "raw"), image_size=64, test_size=None, **ALL), base / "clean")
    return base / "clean"


def test_tiny_imagenet_c_stores_the_released_files_unchanged_with_wnid_labels(tiny, tmp_path):
    root = tmp_path / "Tiny-ImageNet-C"
    write_tiny_imagenet_c(root, WNIDS, per_class=2, names=("fog",))
    Image.fromarray(np.full((64, 64, 3), 7, np.uint8)).save(root / "fog" / "2" / "n03" / "extra.png")
    (root / "fog" / "3" / "n02" / "val_1.JPEG").rename(root / "fog" / "3" / "n02" / "val_1.jpeg")
    (root / "fog" / "1" / "n01" / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    infos = write_released(tiny, out, "fog", root, params(format="png", workers=2))
    for level in range(1, 6):
        folder = out / str(level) / "test"
        got = samples(folder)
        assert len(got) == (7 if level == 2 else 6)
        for sample in got:
            meta = json.loads(sample["json"])
            fmt = "png" if "png" in sample else "jpg"
            assert sample[fmt] == (root / meta["file"]).read_bytes()  # no re-encode
            assert meta["file"].startswith(f"fog/{level}/{meta['wnid']}/")
            assert int(sample["cls"]) == meta["label"] == WNIDS.index(meta["wnid"])  # sorted wnids, as the source labels
            assert sample["__key__"] == safe_key(meta["file"].split("/", 2)[2].rsplit(".", 1)[0])
            assert (meta["distortion"], meta["level"], meta["released"]) == ("fog", level, True)
        info = infos[level]["test"]
        check_common_info(info, "fog", level, "weather", "imagenet-c", root)
        assert info["format"] == ("jpg+png" if level == 2 else "jpg")
        assert info["released"]["files"] == len(got) and info["released"]["folder"] == f"fog/{level}"
        assert (info["source"], info["num_classes"], info["image_size"]) == ("tinyimagenet", 3, 64)
        batch = next(iter(make_loader(folder, batch_size=16)))
        assert batch[0].shape == (len(got), 3, 64, 64) and 0 <= batch[0].min() and batch[0].max() <= 1
        assert batch[1].tolist() == [int(s["cls"]) for s in got]
    assert {s["__key__"] for s in samples(out / "1" / "test")} == {s["__key__"] for s in samples(out / "5" / "test")}  # keys pair levels


def _tiny_broken(kind, root):
    write_tiny_imagenet_c(root, WNIDS, per_class=2, names=("fog",))
    if kind == "unknown wnid":
        shutil.copytree(root / "fog" / "3" / "n01", root / "fog" / "3" / "n99")
    elif kind == "missing wnid":
        shutil.rmtree(root / "fog" / "4" / "n02")
    elif kind == "missing severity":
        shutil.rmtree(root / "fog" / "5")
    elif kind == "size":
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "fog" / "5" / "n01" / "small.JPEG")
    elif kind == "truncated":
        truncate(root / "fog" / "5" / "n03" / "val_1.JPEG")
    elif kind == "png named jpeg":
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "fog" / "2" / "n01" / "odd.JPEG", format="PNG")


@pytest.mark.parametrize(("kind", "name", "match"), [
    ("unknown wnid", "fog", r"fog/3 has class folders that the clean tinyimagenet classes lack: n99; the released set does not match data.source / data.root"),
    ("missing wnid", "fog", r"fog/4 lacks the folders of clean classes n02"),
    ("missing severity", "fog", r"severity 5 folder of released fog is missing: .*fog/5 does not exist"),
    ("none", "snow", r"Tiny-ImageNet-C folder of snow is missing"),
    ("size", "fog", r"small.JPEG is 32x32 px, the clean shards 64x64 px. Fix: set data.image_size to 32"),
    ("truncated", "fog", r"Unreadable or truncated released image .*fog/5/n03/val_1.JPEG"),
    ("png named jpeg", "fog", r"odd.JPEG holds a PNG image"),
])  # fmt: skip
def test_tiny_imagenet_c_errors_name_the_folder_and_leave_nothing(tiny, tmp_path, kind, name, match):
    _tiny_broken(kind, tmp_path / "TIC")
    out = tmp_path / "out"
    with pytest.raises(DataError, match=match):
        write_released(tiny, out, name, tmp_path / "TIC", params())
    assert_nothing_left(out)


# -- CURE-TSR -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cure(tmp_path_factory):
    base = tmp_path_factory.mktemp("cure")
    root = write_cure_tsr_challenges(base, ctypes=(7,))
    prepare(DataParams(source="cure-tsr", root=str(root), image_size=28, resize_mode="stretch", test_size=None, **ALL), base / "clean")
    return {"base": base, "root": root, "clean": base / "clean"}


def test_cure_tsr_challenge_levels_are_fitted_like_the_clean_images(cure, tmp_path):
    out = tmp_path / "out"
    infos = write_released(cure["clean"], out, "cure_gaussian_blur", cure["base"], params(format="png"))  # the parent of cure-tsr/ works
    for level in range(1, 6):
        source = CureTsrSource(cure["root"], challenge=f"07_{level:02d}")
        records = {r.key: r for r in source.splits()["test"]}
        got = samples(out / str(level) / "test")
        assert sorted(s["__key__"] for s in got) == sorted(records) and len(got) == 6
        for sample in got:
            record, meta = records[sample["__key__"]], json.loads(sample["json"])
            assert int(sample["cls"]) == record.label == meta["label"]
            assert (meta["challenge_type"], meta["challenge_level"], meta["released"], meta["file"]) == (7, level, True, record.ref)
            np.testing.assert_array_equal(decode_image(sample["png"]), fit_image(source.load(record), 28, None, "stretch"))
        info = infos[level]["test"]
        check_common_info(info, "cure_gaussian_blur", level, "blur", "cure-tsr", cure["base"])
        assert info["released"]["folder"] == f"RealChallenge/07_{level:02d}/test" and info["released"]["files"] == 6
        assert (info["source"], info["format"], info["num_classes"]) == ("cure-tsr", "png", 14)
    batch = next(iter(make_loader(out / "2" / "test", batch_size=8)))
    assert batch[0].shape == (6, 3, 28, 28) and 0 <= batch[0].min() and batch[0].max() <= 1
    assert sorted(batch[1].tolist()) == [0, 0, 4, 4, 13, 13]


@pytest.mark.parametrize(("name", "match"), [
    ("cure_haze", r"CURE-TSR test folder of cure_haze level 1 \(challenge 12_01\) is missing"),
    ("fog", r"fog is not a CURE-TSR challenge, and the clean shards are CURE-TSR"),
])  # fmt: skip
def test_cure_tsr_missing_challenge_or_imagenet_c_name(cure, tmp_path, name, match):
    with pytest.raises(DataError, match=match):
        write_released(cure["clean"], tmp_path / "out", name, cure["root"], params())
    assert_nothing_left(tmp_path / "out")


def test_the_shard_builders_are_picklable(cifar, tiny, cure, tmp_path):
    from robust.data.shards import read_info as info_of
    from robust.distortions.released import _plan_cifar_c, _plan_cure_tsr, _plan_imagenet_c

    write_c(cifar, tmp_path / "C")
    write_tiny_imagenet_c(tmp_path / "T", WNIDS, per_class=1)
    cases = [(_plan_cifar_c, cifar["full"], "fog", tmp_path / "C"), (_plan_imagenet_c, tiny, "fog", tmp_path / "T"),
             (_plan_cure_tsr, cure["clean"], "cure_gaussian_blur", cure["root"])]
    for plan_of, clean, name, root in cases:
        plan = plan_of(clean, info_of(clean / "test"), name, root, params())[3]
        builder, job = pickle.loads(pickle.dumps((plan.builder, plan.jobs[0])))
        assert [s["__key__"] for s in builder(job)] == [s["__key__"] for s in plan.builder(plan.jobs[0])]


def test_released_pixels_stay_lossless_whatever_corrupt_format_says(cifar, cure, tmp_path):
    """CIFAR-10-C's arrays are the benchmark itself: with corrupt.format jpg they are still stored
    as PNG (a JPEG re-encode would add a compression the benchmark never had); CURE-TSR's fitted
    images take the clean shards' own format (png here)."""
    released = write_c(cifar, tmp_path / "CIFAR-10-C", names=("fog",))
    infos = write_released(cifar["subset"], tmp_path / "out", "fog", tmp_path / "CIFAR-10-C", params(format="jpg", jpg_quality=85))
    folder = tmp_path / "out" / "4" / "test"
    assert infos[4]["test"]["format"] == "png"
    for sample in samples(folder):
        assert "png" in sample and "jpg" not in sample
        meta = json.loads(sample["json"])
        np.testing.assert_array_equal(decode_image(sample["png"]), released["arrays"]["fog"][meta["row"]])
    cure_infos = write_released(cure["clean"], tmp_path / "cure", "cure_gaussian_blur", cure["base"], params(format="jpg"))
    assert cure_infos[1]["test"]["format"] == read_info(cure["clean"] / "test")["format"] == "png"
