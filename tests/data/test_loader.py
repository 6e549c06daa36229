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
