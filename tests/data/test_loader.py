"""Reading shards back: values, order, shuffling, worker and rank splitting, length."""

import pytest
import torch

from robust.data import loader as loader_module
from robust.data.loader import ShardDataset, make_loader
from robust.data.prepare import prepare
from robust.data.sources.builtin import BuiltinSource
from robust.errors import DataError
from robust.params import DataParams


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    prepare(DataParams(train_size=60, val_size=12, test_size=25, shard_size=8, workers=1, seed=5), out)
    return out


def keys_of(dataset):
    return [key for _, _, key in dataset]


def test_eval_order_values_and_labels(shards):
    loader = make_loader(shards / "test", batch_size=10, with_keys=True)
    assert len(loader.dataset) == 25
    images, labels, keys = [], [], []
    for x, y, k in loader:
        images.append(x), labels.append(y), keys.extend(k)
    x, y = torch.cat(images), torch.cat(labels)
    assert x.shape == (25, 3, 32, 32) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert keys == [f"test_{i:06d}" for i in range(25)]  # fixed order = shard order
    source = BuiltinSource({"train": 60, "val": 12, "test": 25}, seed=5)
    for i in (0, 13, 24):
        expected = torch.from_numpy(source.make_sample(i % 12, "test", i)).permute(2, 0, 1).float() / 255
        assert torch.equal(x[i], expected)
        assert y[i].item() == i % 12


def test_train_shuffle_is_seeded_and_changes_per_epoch(shards):
    a = ShardDataset(shards / "train", shuffle=True, seed=1, buffer_size=16, with_keys=True)
    b = ShardDataset(shards / "train", shuffle=True, seed=1, buffer_size=16, with_keys=True)
    first = keys_of(a)
    assert first == keys_of(b)
    assert sorted(first) == [f"train_{i:06d}" for i in range(60)]
    assert first != sorted(first)
    a.set_epoch(1)
    assert keys_of(a) != first and sorted(keys_of(a)) == sorted(first)
    assert keys_of(ShardDataset(shards / "train", shuffle=True, seed=2, with_keys=True)) != first


def test_worker_processes_read_every_sample_once(shards):
    loader = make_loader(shards / "train", batch_size=7, workers=2, train=True, with_keys=True)
    keys = [k for _, _, batch in loader for k in batch]
    assert sorted(keys) == [f"train_{i:06d}" for i in range(60)]


def test_ranks_split_shards_and_know_their_length(shards, monkeypatch):
    seen = []
    for rank in range(3):
        monkeypatch.setattr(loader_module, "_rank_world", lambda rank=rank: (rank, 3))
        dataset = ShardDataset(shards / "train", shuffle=True, seed=0, with_keys=True)
        dataset.set_epoch(4)
        keys = keys_of(dataset)
        assert len(keys) == len(dataset)
        seen.extend(keys)
    assert sorted(seen) == [f"train_{i:06d}" for i in range(60)]  # each sample once across ranks
    monkeypatch.setattr(loader_module, "_rank_world", lambda: (0, 9))
    with pytest.raises(DataError, match="8 shards for 9 ranks"):
        len(ShardDataset(shards / "train"))


def test_missing_info_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="info.json is missing"):
        make_loader(tmp_path, batch_size=4)


# -- the decoded copy (images.npy / labels.npy) ---------------------------------------------
def tar_loader(folder, batch_size, train=False, seed=0):
    """The DataLoader over the tars that make_loader gives a folder without a decoded copy."""
    dataset = ShardDataset(folder, shuffle=train, seed=seed)
    return dataset, torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=0)


def test_prepare_writes_a_decoded_copy_equal_to_the_tars(shards):
    import numpy as np

    from robust.data.shards import read_info

    info = read_info(shards / "test")
    assert info["decoded"]["shape"] == [25, 32, 32, 3]
    images, labels = np.load(shards / "test" / "images.npy"), np.load(shards / "test" / "labels.npy")
    _, loader = tar_loader(shards / "test", 25)
    x, y = next(iter(loader))
    assert torch.equal(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255, x) and labels.tolist() == y.tolist()


@pytest.mark.parametrize("split, train", [("train", True), ("test", False)])
def test_decoded_loader_gives_the_tar_loaders_batches_and_random_stream(shards, split, train):
    fast = make_loader(shards / split, batch_size=7, train=train, seed=3)
    assert isinstance(fast, loader_module.DecodedLoader) and len(fast.dataset) == len(ShardDataset(shards / split))
    dataset, slow = tar_loader(shards / split, 7, train=train, seed=3)
    for epoch in (0, 1):
        fast.dataset.set_epoch(epoch), dataset.set_epoch(epoch)
        torch.manual_seed(epoch)
        a = list(fast)
        after_fast = torch.get_rng_state()
        torch.manual_seed(epoch)
        b = list(slow)
        assert torch.equal(after_fast, torch.get_rng_state())  # dropout and the methods' draws see the same stream
        assert len(a) == len(b) == len(fast)
        for (xa, ya), (xb, yb) in zip(a, b):
            assert torch.equal(xa, xb) and torch.equal(ya, yb) and xa.is_contiguous()
    if train:
        fast.dataset.set_epoch(0)
        first = torch.cat([y for _, y in fast])
        fast.dataset.set_epoch(1)
        assert not torch.equal(first, torch.cat([y for _, y in fast]))  # a new order each epoch


def test_large_splits_keep_the_tars_only_and_a_missing_array_is_a_clear_error(shards, tmp_path):
    import shutil

    from robust.data.shards import read_info, write_decoded

    info = read_info(shards / "val")
    assert write_decoded(shards / "val", info["shards"], max_bytes=100) is None  # 12 x 32 x 32 x 3 bytes > 100
    copy = tmp_path / "val"
    shutil.copytree(shards / "val", copy)
    (copy / "images.npy").unlink()
    with pytest.raises(DataError, match="lacks images.npy"):
        make_loader(copy, batch_size=4)
    assert not isinstance(make_loader(shards / "val", batch_size=4, with_keys=True), loader_module.DecodedLoader)  # keys: the tars
