"""Each source reads its dataset's real on-disk format (written by tests/formats.py)."""

import numpy as np
import pytest
from formats import cure_name, truncate, write_cifar, write_cure_tsr, write_image_folder, write_tiny_imagenet

from robust.data.sources import create_source
from robust.data.sources.builtin import BuiltinSource
from robust.data.sources.cifar import CifarSource
from robust.data.sources.curetsr import CureTsrSource, parse_name
from robust.data.sources.imagefolder import ImageFolderSource
from robust.data.sources.tinyimagenet import TinyImageNetSource
from robust.errors import BadImageError, DataError
from robust.params import DataParams


@pytest.mark.parametrize("variant", ["cifar10", "cifar100"])
@pytest.mark.parametrize("as_tarball", [False, True])
def test_cifar_reads_pixels_labels_and_names(tmp_path, variant, as_tarball):
    truth = write_cifar(tmp_path, variant, as_tarball=as_tarball)
    for root in (truth["path"], tmp_path):  # the file/folder itself, or its parent
        source = CifarSource(root, variant)
        assert source.classes == truth["names"]
        splits = source.splits()
        assert set(splits) == {"train", "test"}
        for split in ("train", "test"):
            records = splits[split]
            assert [r.label for r in records] == truth["labels"][split]
            for i in (0, len(records) - 1):
                np.testing.assert_array_equal(source.load(records[i]), truth["images"][split][i])


def test_cifar_wrong_layout_and_corrupt_pickle(tmp_path):
    partial = tmp_path / "partial" / "cifar-10-batches-py"
    partial.mkdir(parents=True)
    (partial / "batches.meta").write_bytes(b"")
    with pytest.raises(DataError, match="missing data_batch_1"):
        CifarSource(partial, "cifar10")
    truth = write_cifar(tmp_path / "ok", "cifar10")
    truncate(truth["path"] / "data_batch_2")
    with pytest.raises(DataError, match="data_batch_2 is corrupt or truncated"):
        CifarSource(truth["path"], "cifar10")
    with pytest.raises(DataError, match="does not exist"):
        CifarSource(tmp_path / "nowhere", "cifar10")


def test_tiny_imagenet_classes_val_annotations_and_sorted_wnids(tmp_path):
    truth = write_tiny_imagenet(tmp_path)
    source = TinyImageNetSource(tmp_path)  # parent of tiny-imagenet-200 is accepted
    assert source.wnids == truth["wnids"]
    assert source.classes == [truth["words"][w] for w in truth["wnids"]]
    splits = source.splits()
    assert set(splits) == {"train", "val"}  # official test is unlabelled
    assert len(splits["train"]) == 3 * 4
    for record in splits["train"]:
        assert record.ref.split("/")[1] == truth["wnids"][record.label]
    for record in splits["val"]:
        name = record.ref.rsplit("/", 1)[1]
        assert truth["wnids"][record.label] == truth["val_labels"][name]
    assert np.asarray(source.load(splits["val"][0])).shape == (64, 64, 3)


def test_tiny_imagenet_missing_files_are_named(tmp_path):
    truth = write_tiny_imagenet(tmp_path)
    (truth["path"] / "val" / "val_annotations.txt").unlink()
    with pytest.raises(DataError, match="val_annotations.txt is missing"):
        TinyImageNetSource(truth["path"])


def test_image_folder_classes_sorted_and_all_images_found(tmp_path):
    write_image_folder(tmp_path, classes=("zebra", "ant"))
    source = ImageFolderSource(tmp_path)
    assert source.classes == ["ant", "zebra"]
    splits = source.splits()
    assert set(splits) == {"train", "val"}
    assert len(splits["train"]) == 10 and len(splits["val"]) == 4
    assert {r.ref.split("/")[1] for r in splits["train"] if r.label == 0} == {"ant"}
    assert {r.ref.rsplit(".", 1)[1] for r in splits["train"]} == {"png", "JPEG"}


def test_image_folder_layout_errors(tmp_path):
    with pytest.raises(DataError, match="train"):
        ImageFolderSource(tmp_path)
    write_image_folder(tmp_path, per_class={"train": 1})
    with pytest.raises(DataError, match="val is missing"):
        ImageFolderSource(tmp_path)
    write_image_folder(tmp_path / "b", classes=("cat",), per_class={"train": 1, "val": 1})
    (tmp_path / "b" / "val" / "emu").mkdir()
    with pytest.raises(DataError, match="class folders that train/ lacks: emu"):
        ImageFolderSource(tmp_path / "b").splits()


@pytest.mark.parametrize("fields", [7, 5])
def test_cure_tsr_parses_sign_challenge_and_level(tmp_path, fields):
    write_cure_tsr(tmp_path, fields=fields)
    clean = CureTsrSource(tmp_path)
    splits = clean.splits()
    assert set(splits) == {"train", "val", "test"}
    assert sorted({r.label for r in splits["train"]}) == [0, 4, 13]
    assert all(r.meta["challenge_type"] == 0 for r in splits["test"])
    blur = CureTsrSource(tmp_path / "cure-tsr", challenge="07_01")
    record = blur.splits()["val"][0]
    assert (record.meta["challenge_type"], record.meta["challenge_level"]) == (7, 1)
    assert len(clean.classes) == 14


def test_cure_tsr_name_parsing_and_errors(tmp_path):
    assert parse_name("01_01_00_00_00_05_0003.bmp") == {"sign": 5, "challenge_type": 0, "challenge_level": 0}
    assert parse_name(cure_name(14, 12, 5, 7, fields=5)) == {"sign": 14, "challenge_type": 12, "challenge_level": 5}
    with pytest.raises(DataError, match="not a CURE-TSR file name"):
        parse_name("stop_sign.bmp")
    with pytest.raises(DataError, match="out of range"):
        parse_name("01_01_00_00_00_15_0003.bmp")
    base = write_cure_tsr(tmp_path)
    wrong = base / "RealChallengeFree" / "train" / cure_name(1, 7, 1, 99)
    wrong.write_bytes((base / "RealChallengeFree" / "train").glob("*.bmp").__next__().read_bytes())
    with pytest.raises(DataError, match="names challenge 07_01 but lies in the folder of challenge 00_00"):
        CureTsrSource(base).splits()
    with pytest.raises(DataError, match="Unknown CURE-TSR challenge"):
        CureTsrSource(base, challenge="13_01")


def test_truncated_and_non_image_files_raise_bad_image(tmp_path):
    base = write_cure_tsr(tmp_path)
    source = CureTsrSource(base)
    records = source.splits()["train"]
    truncate(base / records[0].ref)
    (base / records[1].ref).write_bytes(b"not an image at all")
    for record in records[:2]:
        with pytest.raises(BadImageError, match=record.ref.rsplit("/", 1)[1]):
            source.load(record)
    assert np.asarray(source.load(records[2])).ndim == 3


def test_builtin_is_deterministic_balanced_and_textured():
    a = BuiltinSource({"train": 36, "val": 12, "test": 12}, seed=3)
    b = BuiltinSource({"train": 36, "val": 12, "test": 12}, seed=3)
    records = a.splits()["train"]
    assert np.bincount([r.label for r in records]).tolist() == [3] * 12
    for record in records[:5]:
        np.testing.assert_array_equal(a.load(record), b.load(record))
    images = np.stack([a.load(r) for r in records])
    assert images.shape == (36, 32, 32, 3) and images.dtype == np.uint8
    assert images.reshape(36, -1).std(axis=1).min() > 2  # no flat images
    other_seed = BuiltinSource({"train": 36, "val": 12, "test": 12}, seed=4)
    assert not np.array_equal(a.load(records[0]), other_seed.load(records[0]))


def test_builtin_splits_use_disjoint_cells_of_each_photo():
    source = BuiltinSource({"train": 1, "val": 1, "test": 1})
    for label in range(len(source.classes)):
        cells = [set(source._cells(label, s).tolist()) for s in ("train", "val", "test")]
        assert not (cells[0] & cells[1]) and not (cells[0] & cells[2]) and not (cells[1] & cells[2])
        assert sum(map(len, cells)) == 16


def test_registry_knows_every_source_name_and_rejects_others(tmp_path):
    from robust.data.sources import SOURCES
    from robust.params import SOURCES as NAMES

    assert set(SOURCES) == set(NAMES)
    write_image_folder(tmp_path)
    assert isinstance(create_source(DataParams(source="imagefolder", root=str(tmp_path))), ImageFolderSource)
