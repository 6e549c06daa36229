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
from robust.models.correctable import check_layout, correctable, deepcorrect_net_layout, features_layout, layout
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


correctable(Toy)(deepcorrect_net_layout)  # the same shape as deepcorrect_net: a user adds a family like this


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
    trainable = dc.correct(corrected, ranking, dc.DeepCorrectSettings(layers=3, unit=unit, unit_kernels=(3,)))
    assert all(isinstance(corrected.net.layers[k].conv, dc.CorrectedConv) and isinstance(corrected.net.layers[k].bn, nn.Identity) for k in range(3))
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
        "methods": {"deepcorrect": {"ranking": {"bases": ["base"], "per_class": 2, "layers": 2}, "layers": 2, "train": {"lr": 0.1}}},
        "train": {"epochs": 1, "batch_size": 12, "workers": 0, "device": "cpu"},
        "corrupt": {"seed": 0, "suites": {"deepcorrect": ["dc_blur"]}},
    }
    train_from_params(params, "base", root / "clean", root / "models", root / "logs")
    info = dc.activations_from_params(params, "base", root / "clean", root / "models", root / "cache")
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
    assert torch.equal(after["net.layers.0.conv.conv.weight"], before["net.layers.0.conv.weight"])  # frozen conv of a corrected layer
    untouched = [k for k in before if k.startswith("net.layers.") and not k.startswith(("net.layers.0.", "net.layers.1."))]
    weights = [k for k in untouched if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert weights and all(torch.equal(after[k], before[k]) for k in weights)
    stats = [k for k in untouched if k.endswith("running_mean")]
    same_stats = all(torch.equal(after[k], before[k]) for k in stats)
    assert same_stats is (frozen_bn == "eval")  # "batch" = the original Keras behaviour: frozen BN keeps updating
    assert any(not torch.equal(after[k], torch.zeros_like(after[k])) for k in after if ".unit." in k and k.endswith("weight"))


# -- networks without batch norm (seed 000's AlexNet setting) ------------------------------------
SEED_FRACTIONS = (0.75, 0.75, 0.5, 0.5, 0.5)


class CaffeAlexNetFeatures(nn.Module):
    """The original (Caffe) AlexNet's conv widths, 96 / 256 / 384 / 384 / 256, without its
    classifier: the network seed 000 corrected. Registered with ``@correctable`` here, the
    way a user adds a family."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2), nn.LocalResponseNorm(5),
            nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2), nn.LocalResponseNorm(5),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )  # fmt: skip
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(256, 10)

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def seed_ranking(model: Classifier) -> dict:
    channels = [model.net.get_submodule(layer.conv).out_channels for layer in layout(model.net).layers]
    return {"layers": {f"conv{k}": {"order": list(range(c))} for k, c in enumerate(channels, start=1)}}


def test_cw_units_on_torchvision_alexnet_at_the_seed_fractions_count_as_documented():
    model = create("alexnet", 1000, image_size=224)
    trainable = dc.correct(model, seed_ranking(model), dc.DeepCorrectSettings(layers=5, fraction=SEED_FRACTIONS, unit="cw"))
    # torchvision's AlexNet has 64 / 192 / 384 / 256 / 256 filters -> units on 48 / 144 / 192 / 128 / 128
    assert sum(p.numel() for p in trainable) == 1_933_568
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 1_933_568  # no BN in AlexNet: nothing else trains


def test_cw_units_on_the_caffe_alexnet_widths_reproduce_the_seeds_2_81_m():
    correctable(CaffeAlexNetFeatures)(features_layout)
    model = Classifier(CaffeAlexNetFeatures())
    trainable = dc.correct(model, seed_ranking(model), dc.DeepCorrectSettings(layers=5, fraction=SEED_FRACTIONS, unit="cw"))
    assert sum(p.numel() for p in trainable) == 2_816_848  # the reference's count, exactly


def test_alexnet_small_is_corrected_pre_activation_and_starts_as_the_baseline():
    torch.manual_seed(0)
    base = create("alexnet_small", 12, width=0.25).eval()
    corrected = create("alexnet_small", 12, width=0.25)
    corrected.load_state_dict(base.state_dict())
    ranking = {"layers": {f"conv{k}": {"order": torch.randperm(c).tolist()} for k, c in enumerate((16, 48, 96, 64, 64), start=1)}}
    trainable = dc.correct(corrected, ranking, dc.DeepCorrectSettings(layers=5, fraction=SEED_FRACTIONS, unit="cw"))
    corrected.eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(corrected(x), base(x))
    first = corrected.net.features[0]
    assert isinstance(first, dc.CorrectedConv) and isinstance(corrected.net.features[1], nn.ReLU)  # the layer's own ReLU follows
    assert len(first.fix) == 12 and first.unit[3].kernel_size == (5, 5) and corrected.net.features[3].unit[3].kernel_size == (3, 3)
    assert {id(p) for p in trainable} == {id(p) for p in corrected.parameters() if p.requires_grad}
    assert not any(p.requires_grad for p in corrected.net.classifier.parameters())
    with pytest.raises(ParamError, match="already carries correction units"):
        layout(corrected.net)  # a corrected network is not ranked or corrected again
    # a unit acts on the pre-activation: a negative input made positive by the unit passes the ReLU
    with torch.no_grad():
        first.unit[-1].bias.fill_(10.0)
        out = corrected.net.features[:2](torch.zeros(1, 3, 8, 8))
    keep = [c for c in range(16) if c not in set(first.fix.tolist())]
    assert (out[0, first.fix] > 0).all() and torch.equal(out[0, keep], torch.relu(first.conv(torch.zeros(1, 3, 8, 8)))[0, keep])


@pytest.mark.parametrize("arch, expected", [("deepcorrect_net", 9), ("alexnet_small", 5), ("alexnet", 5), ("vgg16_bn", 13)])
def test_adapters_name_every_conv_layer_and_rebuild_the_forward_pass(arch, expected):
    torch.manual_seed(0)
    size = 64 if arch == "alexnet" else 32
    model = create(arch, 10, image_size=size, **({"width": 0.25} if arch in ("deepcorrect_net", "alexnet_small") else {}))
    plan = layout(model.net)
    assert len(plan.layers) == expected
    assert all(isinstance(model.net.get_submodule(layer.conv), nn.Conv2d) for layer in plan.layers)
    assert (plan.layers[0].norm is None) is (arch in ("alexnet_small", "alexnet"))
    assert check_layout(model.net, torch.rand(2, 3, size, size))


def test_a_network_without_an_adapter_is_one_clear_error():
    with pytest.raises(ParamError, match="no adapter for ScaledResNet.*@correctable"):
        layout(create("resnet18", 10).net)


def test_ranking_runs_through_the_adapter_on_alexnet_small():
    torch.manual_seed(0)
    model = create("alexnet_small", 4, width=0.25).eval()
    images = torch.rand(6, 3, 32, 32)
    outs = dc.layer_outputs(model, images, 5, batch_size=4)
    assert [o.shape[1] for o in outs] == [16, 48, 96, 64, 64] and all((o >= 0).all() for o in outs)  # post-ReLU
    logits = dc.run_steps(model.net, layout(model.net).after(2), outs[1])
    with torch.no_grad():
        assert torch.allclose(logits, model(images), atol=1e-6)


def test_ranked_layers_per_base_and_their_errors():
    settings = dc.RankingSettings.from_dict({"bases": ["a", "b"], "layers": {"a": 3, "b": "all"}})
    assert settings.layers_of("a", 9) == 3 and settings.layers_of("b", 5) == 5
    assert dc.RankingSettings.from_dict({"bases": ["a"], "per_class": {"a": 5}}).per_class_of("a") == 5 and settings.per_class_of("b") == 10
    with pytest.raises(ParamError, match="ranking.per_class.*exactly the bases"):
        dc.RankingSettings.from_dict({"bases": ["a", "b"], "per_class": {"a": 5}})
    runs = {"a-x": {"base": "a", "distortion": "x"}}
    assert dc.RankingSettings.from_dict({"bases": ["a"], "runs": runs}).runs == runs
    with pytest.raises(ParamError, match="ranking.runs"):
        dc.RankingSettings.from_dict({"bases": ["a"], "runs": {"c-x": {"base": "c", "distortion": "x"}}})  # c is not ranked
    with pytest.raises(ParamError, match="Invalid methods.deepcorrect.ranking.bases"):  # a string, not a list: named before the mappings keyed by it
        dc.RankingSettings.from_dict({"bases": "a", "per_class": {"a": 5}})
    with pytest.raises(ParamError, match="ranking.bases.*b has none"):
        dc.RankingSettings.from_dict({"bases": ["a", "b"], "runs": runs})
    with pytest.raises(ParamError, match="asks for 3 conv layers of a"):
        settings.layers_of("a", 2)
    with pytest.raises(ParamError, match="ranking.layers"):
        dc.RankingSettings.from_dict({"bases": ["a"], "layers": {"a": 0}})
    with pytest.raises(ParamError, match="methods.deepcorrect.fraction"):
        dc.DeepCorrectSettings.from_dict({"layers": 3, "fraction": [0.5, 0.5]})
    with pytest.raises(ParamError, match="unit_kernels"):
        dc.DeepCorrectSettings.from_dict({"unit_kernels": [4]})


def _perturbed(model: Classifier, seed: int) -> Classifier:
    """``model`` with its trainable units / BN moved off their start and random BN statistics, so
    every folded term of the inference form matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.2 * torch.randn(p.shape, generator=g))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.3 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return model.eval()


@pytest.mark.parametrize(("arch", "settings"), [
    ("deepcorrect_net", dc.DeepCorrectSettings(layers=3, fraction=0.5, unit="cifar", unit_width=8)),
    ("alexnet_small", dc.DeepCorrectSettings(layers=5, fraction=SEED_FRACTIONS, unit="cw")),
    ("alexnet_small", dc.DeepCorrectSettings(layers=2, fraction=0.5, unit="bottleneck")),
])
def test_inference_form_is_exact_in_eval_mode_and_gathers_no_channels(trained, arch, settings):
    from robust.engine import evaluate, inference_model

    root, _, _ = trained
    torch.manual_seed(0)
    model = create(arch, 12, image_size=32, width=0.125)
    channels = [model.net.get_submodule(layer.conv).out_channels for layer in layout(model.net).layers]
    ranking = {"layers": {f"conv{k}": {"order": torch.randperm(c).tolist()} for k, c in enumerate(channels, start=1)}}
    dc.correct(model, ranking, settings)
    model = _perturbed(model, 1)
    fast = inference_model(model, torch.device("cpu"))
    assert not any(isinstance(m, dc.CorrectedConv) for m in fast.modules())  # every corrected layer replaced (no index_select / index_copy)
    x = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        reference, folded = model(x), fast(x)
    assert torch.allclose(reference, folded, rtol=1e-4, atol=1e-5 * float(reference.abs().max()))
    # the same top-1 decisions on every test set it is scored on (here the fixture's clean test and val splits)
    from robust.data.loader import make_loader

    for split in ("test", "val"):
        scored = evaluate(model, root / "clean" / split, batch_size=8, desc=False, per_image=True)["correct"]
        eager = np.zeros_like(scored)
        with torch.no_grad():
            for images, labels, index in make_loader(root / "clean" / split, 8, with_index=True):
                eager[index.numpy()] = (model(images).argmax(1) == labels).numpy()
        assert np.array_equal(scored, eager)
