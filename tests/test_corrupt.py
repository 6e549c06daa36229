"""The corrupt stage: pairing with clean shards, parity with imagecorruptions, constants provenance, byte-identical rebuilds."""

import json

import numpy as np
import pytest
from imagecorruptions import corrupt as package_corrupt

from robust import distortions as D
from robust.distortions.corrupt import corrupt
from robust.data.prepare import prepare
from robust.data.shards import decode_image, read_info, read_tar
from robust.errors import DataError, ParamError
from robust.distortions.settings import CorruptParams
from robust.params import DataParams


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    prepare(DataParams(train_size=12, val_size=12, test_size=14, shard_size=8, workers=1), out)
    return out


def samples(folder):
    info = read_info(folder)
    return [s for shard in info["shards"] for s in read_tar(folder / shard["name"])]


def test_output_pairs_with_clean_and_records_provenance(clean, tmp_path):
    infos = corrupt(clean, tmp_path / "fog3", D.get("fog"), 3, CorruptParams(splits=("val", "test"), workers=1))
    assert set(infos) == {"val", "test"}
    for split in ("val", "test"):
        before, after = samples(clean / split), samples(tmp_path / "fog3" / split)
        assert [s["__key__"] for s in after] == [s["__key__"] for s in before]
        assert [s["cls"] for s in after] == [s["cls"] for s in before]
        meta = json.loads(after[0]["json"])
        assert (meta["distortion"], meta["level"]) == ("fog", 3)
        assert meta["seed"] == D.sample_seed(0, "fog", 3, after[0]["__key__"])
        assert meta["label"] == int(before[0]["cls"])
    info = read_info(tmp_path / "fog3" / "test")
    assert info["distortion"]["name"] == "fog" and info["num_samples"] == 14
    assert info["clean_shards_sha256"] == [s["sha256"] for s in read_info(clean / "test")["shards"]]


@pytest.mark.parametrize("name", D.IMAGENET_C + D.IMAGENET_C_EXTRA)
def test_stored_samples_equal_the_package_called_with_the_recorded_seed(clean, tmp_path, name):
    level = 4
    corrupt(clean, tmp_path / name, D.configured(name, None, 32, constants="imagecorruptions"), level, CorruptParams(workers=1))
    by_key = {s["__key__"]: s for s in samples(clean / "test")}
    for sample in samples(tmp_path / name / "test")[:3]:
        meta = json.loads(sample["json"])
        source = decode_image(by_key[sample["__key__"]]["png"])
        np.random.seed(meta["np_random_seed"])
        kwargs = {"seed": meta["np_random_seed"]} if name in D.OWN_RNG else {}
        expected = package_corrupt(source, corruption_name=name, severity=level, **kwargs)
        np.testing.assert_array_equal(decode_image(sample["png"]), expected)


@pytest.mark.parametrize("name", list(D.DISTORTIONS))
def test_rebuild_is_byte_identical_for_every_distortion(clean, tmp_path, name):
    d = D.get(name)
    first = corrupt(clean, tmp_path / "a", d, d.levels, CorruptParams(workers=2))
    second = corrupt(clean, tmp_path / "b", d, d.levels, CorruptParams(workers=1))
    assert [s["sha256"] for s in first["test"]["shards"]] == [s["sha256"] for s in second["test"]["shards"]]
    assert (tmp_path / "a" / "test" / "shard-00001.tar").read_bytes() == (tmp_path / "b" / "test" / "shard-00001.tar").read_bytes()


def test_jpeg_storage_option(clean, tmp_path):
    corrupt(clean, tmp_path / "j", D.get("dc_blur"), 2, CorruptParams(format="jpg", jpg_quality=85, workers=1))
    stored = samples(tmp_path / "j" / "test")
    assert all("jpg" in s and s["jpg"][:2] == b"\xff\xd8" for s in stored)
    assert read_info(tmp_path / "j" / "test")["format"] == "jpg"


def test_imagenet_c_corruptions_work_down_to_8_px_and_refuse_smaller(tmp_path):
    prepare(DataParams(image_size=28, train_size=12, val_size=12, test_size=12, workers=1), tmp_path / "clean")
    corrupt(tmp_path / "clean", tmp_path / "fog", D.configured("fog", None, 28), 5, CorruptParams(workers=1))
    assert read_info(tmp_path / "fog" / "test")["distortion"]["constants"] == "cifar"
    prepare(DataParams(image_size=6, train_size=12, val_size=12, test_size=12, workers=1), tmp_path / "tiny")
    with pytest.raises(DataError, match="at least 8 px"):
        corrupt(tmp_path / "tiny", tmp_path / "out", D.get("fog"), 1, CorruptParams(workers=1))
    assert not (tmp_path / "out").exists()
    corrupt(tmp_path / "tiny", tmp_path / "out", D.get("dc_awgn"), 1, CorruptParams(workers=1))  # own ones work at any size
    assert read_info(tmp_path / "out" / "test")["image_size"] == 6


def test_each_level_records_its_constants_table_and_values(clean, tmp_path):
    from robust.distortions.corrupt import corrupt_from_params
    from robust.distortions import imagenet_c

    params = {"corrupt": {"workers": 1}}
    infos = corrupt_from_params(params, "fog", clean, tmp_path / "auto")  # 32 px -> cifar
    for level in (1, 5):
        recorded = infos[level]["test"]["distortion"]
        assert recorded["constants"] == "cifar" and recorded["origin"] == "imagenet-c"
        assert recorded["value"] == list(imagenet_c.CIFAR.level("fog", level))
        assert recorded["table"] == imagenet_c.level_values(imagenet_c.CIFAR, "fog")
        assert read_info(tmp_path / "auto" / str(level) / "test")["distortion"] == recorded
    sample = json.loads(samples(tmp_path / "auto" / "1" / "test")[0]["json"])
    assert "constants" not in sample and "value" not in sample  # per level, not per sample
    imagenet = corrupt_from_params({"corrupt": {"workers": 1, "constants": "imagenet"}}, "fog", clean, tmp_path / "imagenet")
    assert imagenet[3]["test"]["distortion"]["constants"] == "imagenet"
    assert imagenet[3]["test"]["shards"] != infos[3]["test"]["shards"]
    with pytest.raises(ParamError, match="corrupt.constants"):
        corrupt_from_params({"corrupt": {"constants": "cifar10"}}, "fog", clean, tmp_path / "bad")
    with pytest.raises(DataError, match="only as released files"):
        corrupt_from_params({"corrupt": {}}, "cure_haze", clean, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_missing_clean_split_fails_without_output(clean, tmp_path):
    with pytest.raises(DataError, match="info.json is missing"):
        corrupt(tmp_path / "nowhere", tmp_path / "out", D.get("fog"), 1, CorruptParams(workers=1))
    assert not (tmp_path / "out").exists()


def test_corrupt_params_validation():
    with pytest.raises(Exception, match="corrupt.suites.imagenet_c entry"):
        CorruptParams.from_dict({"suites": {"imagenet_c": ["speckle_noise"]}})
    with pytest.raises(Exception, match="corrupt.splits"):
        CorruptParams.from_dict({"splits": ["holdout"]})
    with pytest.raises(Exception, match="Unknown parameter corrupt.level"):
        CorruptParams.from_dict({"level": 3})


def test_a_stage_writes_every_level_of_its_distortion_with_decoded_copies(clean, tmp_path):
    import yaml

    from robust.distortions.corrupt import corrupt_from_params
    from robust.data.loader import make_loader

    from pathlib import Path

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params["corrupt"].update(splits=["test"], workers=1)
    infos = corrupt_from_params(params, "dc_awgn", clean, tmp_path / "dc_awgn")
    assert sorted(infos) == [1, 2, 3, 4, 5, 6] == sorted(int(p.name) for p in (tmp_path / "dc_awgn").iterdir())
    for level in (1, 6):
        folder = tmp_path / "dc_awgn" / str(level) / "test"
        assert infos[level]["test"]["distortion"]["value"] == params["distortions"]["dc_awgn"]["cifar"][level - 1]
        stored = np.stack([decode_image(s["png"]) for s in samples(folder)])
        assert np.array_equal(np.load(folder / "images.npy"), stored)  # the decoded copy is what the tars hold
        images, _ = next(iter(make_loader(folder, batch_size=14)))
        assert torch_equal_pixels(images, stored)
    with pytest.raises(ParamError, match="no_such_distortion"):
        corrupt_from_params(params, "no_such_distortion", clean, tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


def torch_equal_pixels(images, pixels):
    import torch

    return torch.equal(images, torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255)
