"""Seed 003's training mix (issue 15): one corruption per image, uniform severities, and the
held-out protocol that never trains on a corruption mCE averages."""

from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from robust.methods.corruption import corrupt, draw, training_corruptions
from robust.distortions import IMAGENET_C, IMAGENET_C_EXTRA, configured, sample_seed
from robust.errors import ParamError


def test_each_image_gets_exactly_one_corruption_from_the_list_and_the_draw_repeats():
    names = ("brightness", "contrast", "saturate")
    distortions = {n: configured(n, None, 32) for n in names}
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for key in ("a", "b", "c", "d"):
        out, name, level = corrupt(image, 7, key, distortions)
        assert name in names and 1 <= level <= 5 and (name, level) == draw(7, key, list(names))
        alone = distortions[name](image, level, np.random.default_rng(sample_seed(7, name, level, key)))
        assert np.array_equal(out, alone)  # that one corruption, nothing else stacked on it
        assert np.array_equal(out, corrupt(image, 7, key, distortions)[0])  # the same key, the same image
    assert [draw(0, str(k), names) for k in range(50)] == [draw(0, str(k), names) for k in reversed(range(50))][::-1]  # order-free


def test_corruptions_and_levels_are_uniform_over_many_draws():
    names = training_corruptions("seed")
    draws = [draw(0, str(k), names) for k in range(19 * 300)]
    levels = Counter(level for _, level in draws)
    assert set(levels) == {1, 2, 3, 4, 5} and chisquare([levels[v] for v in range(1, 6)]).pvalue > 1e-3
    chosen = Counter(name for name, _ in draws)
    assert set(chosen) == set(names) and chisquare([chosen[n] for n in names]).pvalue > 1e-3


def test_held_out_never_draws_a_test_corruption():
    held = training_corruptions("held_out")
    assert held == IMAGENET_C_EXTRA and not set(held) & set(IMAGENET_C)
    assert not {name for name, _ in (draw(3, str(k), held) for k in range(2000))} & set(IMAGENET_C)
    assert len(training_corruptions("seed")) == 19
    with pytest.raises(ParamError, match="held_out protocol would train on fog"):
        training_corruptions("held_out", ["spatter", "fog"])
    with pytest.raises(ParamError, match="protocol"):
        training_corruptions("all")
    with pytest.raises(ParamError):
        training_corruptions("seed", ["no_such_corruption"])


# -- the method on real (tiny) shards ---------------------------------------------------------------
import torch  # noqa: E402

from robust.data.loader import make_loader, read_samples  # noqa: E402
from robust.data.prepare import prepare  # noqa: E402
from robust.methods import benchmark_distortions, context, setup, train_from_params  # noqa: E402
from robust.methods import corruption  # noqa: E402
from robust.models import create  # noqa: E402
from robust.params import DataParams  # noqa: E402

BASE = {"method": "baseline", "arch": "resnet18", "width": 0.125}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Tiny clean shards, a base trained one epoch, and seed 003's entries on it."""
    root = tmp_path_factory.mktemp("corruption")
    prepare(DataParams(train_size=48, val_size=12, test_size=12, shard_size=12, workers=1), root / "clean")
    start = str(root / "models" / "base" / "model.pt")
    entry = {"method": "corruption", "start": start, "base": "base"}
    params = {
        "models": {"base": {**BASE, "start": str(root / "clean")}, "b": {**entry, "data": "clean"}, "c": {**entry, "data": "corrupted"},
                   "held": {**entry, "data": "corrupted", "protocol": "held_out"}},
        "methods": {"corruption": {"train": {"epochs": 1, "batch_size": 12, "lr": 1e-3, "nesterov": False, "weight_decay": 0.0,
                                             "schedule": "constant", "augment": "flip-rotate"}}},
        "train": {"epochs": 1, "batch_size": 12, "workers": 0, "device": "cpu"},
    }
    train_from_params(params, "base", root / "clean", root / "models", root / "logs")
    return root, params


def test_corrupted_training_set_is_the_clean_split_with_each_images_drawn_corruption(trained):
    root, params = trained
    ctx, run = setup(params, "c", root / "clean")
    loader = run.train_data()
    keys, images, labels = read_samples(root / "clean" / "train")
    table = {n: corruption.configured_distortion(ctx, n) for n in corruption.training_corruptions("seed")}
    expected = np.stack([corrupt(image, 0, key, table)[0] for image, key in zip(images, keys)])
    assert np.array_equal(loader.images, expected) and not np.array_equal(loader.images, images)
    clean_batches = list(make_loader(root / "clean" / "train", 12, train=True, seed=0))
    loader.dataset.set_epoch(0)
    corrupted_batches = list(loader)
    # the clean loader's order and labels, image for image (the engine seeds the global RNG the same way for both)
    assert [b[1].tolist() for b in corrupted_batches] == [b[1].tolist() for b in clean_batches]
    forked = corruption.corrupt_images(images, keys, 0, table, workers=2)
    assert np.array_equal(forked, expected)  # the processes building it do not change a byte
    assert setup(params, "b", root / "clean")[1].train_data is None  # _b trains on the clean shards


def test_held_out_refuses_a_test_corruption_under_another_name():
    for name, same in corruption.SAME_AS_TESTED.items():
        with pytest.raises(ParamError, match=f"{name} \\(= {same}\\)"):
            training_corruptions("held_out", ["speckle_noise", name])
        assert name in training_corruptions("seed", [name])  # the seed protocol may
    with pytest.raises(ParamError, match="Unknown distortion 'cure_rain'"):  # released only: nothing to generate it with
        training_corruptions("seed", ["cure_rain"])


def test_held_out_training_set_never_carries_a_test_corruption(trained):
    root, params = trained
    ctx, _ = context(params, "held", root / "clean")
    settings = corruption.CorruptionSettings.from_dict(ctx.settings)
    keys, _, _ = read_samples(root / "clean" / "train")
    names = corruption.training_corruptions(settings.protocol, settings.corruptions)
    assert {draw(0, key, names)[0] for key in keys} <= set(IMAGENET_C_EXTRA)


def test_runs_train_evaluate_on_the_15_and_invalid_settings_are_one_clear_error(trained, capsys):
    root, params = trained
    history = train_from_params(params, "c", root / "clean", root / "models", root / "logs")
    assert len(history["epochs"]) == 1 and "every tensor fitted" in capsys.readouterr().out
    names = list(IMAGENET_C + IMAGENET_C_EXTRA) + ["dc_blur"]
    assert benchmark_distortions(params, "c", names) == list(IMAGENET_C)
    assert benchmark_distortions({**params, "models": {**params["models"], "c": {**params["models"]["c"], "benchmark": "all"}}}, "c", names) == names
    for bad, match in (({"data": "noisy"}, "data"), ({"protocol": "own"}, "protocol"), ({"data": "corrupted", "protocol": "held_out", "corruptions": ["fog"]}, "fog"),
                       ({"data": "corrupted", "corruptions": ["fgo"]}, "fgo"), ({"benchmark": True}, "benchmark")):
        bench = {**params, "models": {**params["models"], "x": {**params["models"]["b"], **bad}}}
        with pytest.raises(ParamError, match=match):
            setup(bench, "x", root / "clean")


def test_a_local_pretrained_file_loads_into_every_matching_layer_and_reports_the_rest(trained, tmp_path, capsys):
    root, params = trained
    foreign = create("resnet18", 1000, width=0.125)  # an "ImageNet" head: 1,000 classes
    torch.save(foreign.net.state_dict(), tmp_path / "imagenet.pth")
    entry = {**params["models"]["b"], "pretrained": str(tmp_path / "imagenet.pth"), "start": str(tmp_path / "imagenet.pth")}
    bench = {**params, "models": {**params["models"], "p": entry}}
    _, run = setup(bench, "p", root / "clean")
    assert run.model.skipped_weights == ["fc.bias", "fc.weight"]
    mine, theirs = run.model.net.state_dict(), foreign.net.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine if not k.startswith("fc."))  # every other tensor is the file's
    train_from_params({**bench, "methods": {"corruption": {**params["methods"]["corruption"]}}}, "p", root / "clean", tmp_path / "m", tmp_path / "l")
    assert "2 tensors did not fit and keep their initialisation: fc.bias, fc.weight" in capsys.readouterr().out
    with pytest.raises(ParamError, match="start"):  # DVC must track the file it starts from
        setup({**bench, "models": {**bench["models"], "p": {**entry, "start": params["models"]["b"]["start"]}}}, "p", root / "clean")
    with pytest.raises(ParamError, match="does not fit"):  # the pipeline's own start must fit entirely
        setup({**bench, "models": {**bench["models"], "q": {**params["models"]["b"], "start": str(tmp_path / "imagenet.pth")}}}, "q", root / "clean")
