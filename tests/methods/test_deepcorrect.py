"""DeepCorrect: the channel swap, the priority formula, the activation cache, correction
units that start as the identity, and that frozen weights stay frozen while units train."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from robust.data.prepare import prepare
from robust.errors import ParamError
from robust.methods import deepcorrect as dc
from robust.methods import train_from_params
from robust.models import Classifier, create
from robust.models.small_nets import ConvBNReLU
from robust.params import DataParams


def test_swap_channels_takes_the_masked_channels_from_clean():
    distorted = torch.zeros(2, 3, 1, 1)
    clean = torch.arange(1.0, 7.0).view(2, 3, 1, 1)  # image 0: 1 2 3, image 1: 4 5 6
    masks = torch.tensor([[True, False, False], [False, True, True]])
    swap = dc.swap_channels(distorted, clean, masks)
    assert swap.shape == (4, 3, 1, 1)
    expected = torch.tensor([[1, 0, 0], [4, 0, 0], [0, 2, 3], [0, 5, 6]], dtype=torch.float32)
    assert torch.equal(swap.view(4, 3), expected)


def test_priority_is_the_relative_error_change_summed_over_levels():
    base = torch.tensor([0.5, 0.8])
    swapped = torch.tensor([[0.25, 0.5, 0.6], [0.4, 0.8, 1.0]])  # levels x filters
    # filter 0: |0.5-0.25|/0.5 + |0.8-0.4|/0.8 = 0.5 + 0.5; filter 1: 0 + 0; filter 2: 0.2 + 0.25
    assert torch.allclose(dc.priority(swapped, base, "absolute"), torch.tensor([1.0, 0.0, 0.45]))
    assert torch.allclose(dc.priority(swapped, base, "signed"), torch.tensor([1.0, 0.0, -0.45]))
    # a level without errors divides by 1 / N instead of 0
    assert torch.allclose(dc.priority(torch.tensor([[0.1]]), torch.tensor([0.0]), "absolute", num_images=10), torch.tensor([1.0]))


class Toy(nn.Module):
    """Two 1x1 blocks; after block 1, class 0 wins exactly when channel 0 > 0.5 (channel 1 is ignored)."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(ConvBNReLU(3, 2, 1), ConvBNReLU(2, 2, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        with torch.no_grad():
            self.layers[1].conv.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]).view(2, 2, 1, 1))
            self.layers[1].bn.bias.copy_(torch.tensor([-0.5, 0.5]))

    def forward(self, x):
        return self.pool(self.layers(x)).flatten(1)


def test_rank_layer_finds_the_filter_that_decides_on_a_toy_network(tmp_path):
    model = Classifier(Toy()).eval()
    n = 8
    clean = torch.zeros(n, 2, 2, 2)
    clean[:, 0] = 1.0  # every image right when clean (all labels are 0)
    clean[:, 1] = torch.rand(n, 2, 2)
    level1 = clean.clone()
    level1[:, 0] = 0.0  # channel 0 destroyed on every image: error 1
    level2 = clean.clone()
    level2[: n // 2, 0] = 0.0  # on half of them: error 0.5
    level1[:, 1] = level2[:, 1] = torch.rand(n, 2, 2)  # channel 1 distorted too, but it does not matter
    (tmp_path / "layer1").mkdir()
    np.save(tmp_path / "labels.npy", np.zeros(n, dtype=np.int64))
    for name, act in (("clean", clean), ("d-1", level1), ("d-2", level2)):
        np.save(tmp_path / "layer1" / f"{name}.npy", act.numpy())
    settings = dc.RankingSettings(filters_per_pass=2, batch_size=3, curves=(50,))
    result = dc.rank_layer(model, tmp_path, 1, "d", 2, settings)
    assert result["base_error"] == [1.0, 0.5]
    assert result["swap_error"] == [[0.0, 1.0], [0.0, 0.5]]
    assert result["priority"] == [pytest.approx(2.0), 0.0]  # |0-1|/1 + |0-0.5|/0.5
    assert result["order"] == [0, 1]
    assert result["curve"]["50"] == {"1": 1.0, "2": 1.0, "mean": 1.0}  # the top 50 % = channel 0 restores everything
    assert result["curve"]["0"]["mean"] == pytest.approx(0.25)
    one_at_a_time = dc.rank_layer(model, tmp_path, 1, "d", 2, dc.RankingSettings(filters_per_pass=1, batch_size=8, curves=(50,)))
    assert one_at_a_time["priority"] == result["priority"]


def test_filters_per_pass_auto_is_one_on_a_cpu_and_the_whole_layer_on_a_gpu():
    auto = dc.RankingSettings()
    assert auto.per_pass(24, torch.device("cpu")) == 1 and auto.per_pass(24, torch.device("cuda", 0)) == 24
    assert dc.RankingSettings(filters_per_pass=5).per_pass(24, torch.device("cpu")) == 5
    with pytest.raises(Exception, match="filters_per_pass"):
        dc.RankingSettings.from_dict({"filters_per_pass": 0})


@pytest.mark.parametrize("key, value", [("priority", "relative"), ("curves", [0, 50]), ("per_class", 0), ("device", "tpu")])
def test_invalid_ranking_settings_are_one_clear_error(key, value):
    with pytest.raises(ParamError, match=f"methods.deepcorrect.ranking.{key}"):
        dc.RankingSettings.from_dict({key: value})


@pytest.mark.parametrize("key, value", [("unit", "wide"), ("frozen_bn", "train"), ("fraction", 0), ("layers", 0)])
def test_invalid_correction_settings_are_one_clear_error(key, value):
    with pytest.raises(ParamError, match=f"methods.deepcorrect.{key}"):
        dc.DeepCorrectSettings.from_dict({key: value})


@pytest.mark.parametrize("unit", ["cifar", "cw", "bottleneck"])
def test_corrected_network_equals_the_baseline_before_training(unit):
    torch.manual_seed(0)
    base = create("deepcorrect_net", 5, width=0.25)
    for module in base.modules():  # non-trivial BN statistics
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1), module.running_var.uniform_(0.5, 2), module.weight.data.uniform_(0.5, 1.5)
    corrected = create("deepcorrect_net", 5, width=0.25)
    corrected.load_state_dict(base.state_dict())
    ranking = {"layers": {f"conv{k}": {"order": list(torch.randperm(24 if k < 4 else 48).tolist())} for k in (1, 2, 3)}}
    trainable = dc.correct(corrected, ranking, dc.DeepCorrectSettings(layers=3, unit=unit))
    assert all(isinstance(corrected.net.layers[k], dc.CorrectedBlock) for k in range(3))
    x = torch.rand(4, 3, 32, 32)
    base.eval(), corrected.eval()
    with torch.no_grad():
        assert torch.equal(corrected(x), base(x))
    base.train(), corrected.train()
    with torch.no_grad():
        assert torch.allclose(corrected(x), base(x), atol=1e-5)
    assert {id(p) for p in trainable} == {id(p) for p in corrected.parameters() if p.requires_grad}


def test_correction_units_are_small_and_zero_at_their_output():
    unit = dc.correction_unit("cifar", 12, width=16)
    assert torch.count_nonzero(unit[-1].weight) == 0 and torch.count_nonzero(unit[-1].bias) == 0
    assert sum(p.numel() for p in unit.parameters()) == 24 + 12 * 16 + 32 + 2 * (16 * 16 * 9 + 32) + 16 * 12 + 12
    with pytest.raises(Exception, match="Unknown correction unit"):
        dc.correction_unit("wide", 12)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Tiny clean shards, a baseline trained one epoch, its activation cache and dc_blur ranking."""
    root = tmp_path_factory.mktemp("dc")
    prepare(DataParams(train_size=72, val_size=12, test_size=12, shard_size=24, workers=1), root / "clean")
    params = {
        "models": {"base": {"method": "baseline", "start": str(root / "clean"), "arch": "deepcorrect_net", "width": 0.25},
                   "dc": {"method": "deepcorrect", "start": str(root / "rank" / "ranking.json"), "base": "base", "distortion": "dc_blur"}},
        "methods": {"deepcorrect": {"ranking": {"base": "base", "per_class": 2, "layers": 2}, "layers": 2, "train": {"lr": 0.1}}},
        "train": {"epochs": 1, "batch_size": 12, "workers": 0, "device": "cpu"},
        "corrupt": {"seed": 0, "suites": {"deepcorrect": ["dc_blur"]}},
    }
    train_from_params(params, "base", root / "clean", root / "models", root / "logs")
    info = dc.activations_from_params(params, root / "clean", root / "models", root / "cache")
    dc.rank_from_params(params, "dc_blur", root / "clean", root / "cache", root / "rank")
    return root, params, info


def test_activation_cache_is_class_balanced_fp16_and_reports_its_size(trained):
    root, _, info = trained
    labels = np.load(root / "cache" / "labels.npy")
    assert np.bincount(labels).tolist() == [2] * 12
    act = np.load(root / "cache" / "layer1" / "dc_blur-6.npy")
    assert act.dtype == np.float16 and act.shape == (24, 24, 32, 32)
    assert sorted(p.name for p in (root / "cache" / "layer2").iterdir()) == sorted(["clean.npy"] + [f"dc_blur-{i}.npy" for i in range(1, 7)])
    assert info["bytes"] == sum(p.stat().st_size for p in (root / "cache").rglob("*.npy"))
    ranking = json.loads((root / "rank" / "ranking.json").read_text())
    assert sorted(ranking["layers"]["conv1"]["order"]) == list(range(24)) and set(ranking["layers"]) == {"conv1", "conv2"}
    assert (root / "rank" / "curves.csv").read_text().startswith("percent,conv1,conv2\n0,")


@pytest.mark.parametrize("frozen_bn", ["eval", "batch"])
def test_only_units_and_their_bn_train_and_frozen_weights_stay_frozen(trained, frozen_bn):
    root, params, _ = trained
    params = json.loads(json.dumps(params))
    params["methods"]["deepcorrect"]["frozen_bn"] = frozen_bn
    train_from_params(params, "dc", root / "clean", root / f"models-{frozen_bn}", root / "logs")
    before = torch.load(root / "models" / "base" / "model.pt", weights_only=True)
    after = torch.load(root / f"models-{frozen_bn}" / "dc" / "model.pt", weights_only=True)
    assert torch.equal(after["net.layers.0.conv.weight"], before["net.layers.0.conv.weight"])  # frozen conv of a corrected block
    untouched = [k for k in before if k.startswith("net.layers.") and not k.startswith(("net.layers.0.", "net.layers.1."))]
    weights = [k for k in untouched if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert weights and all(torch.equal(after[k], before[k]) for k in weights)
    stats = [k for k in untouched if k.endswith("running_mean")]
    same_stats = all(torch.equal(after[k], before[k]) for k in stats)
    assert same_stats is (frozen_bn == "eval")  # "batch" = the original Keras behaviour: frozen BN keeps updating
    assert any(not torch.equal(after[k], torch.zeros_like(after[k])) for k in after if ".unit." in k and k.endswith("weight"))
