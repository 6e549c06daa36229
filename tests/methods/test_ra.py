"""Recognition-aware processing (seed 002): P's shapes, the tasks' degradations, the modes'
losses and what each trains, R frozen in eval mode, quality scores, and seed 002's tables."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robust.data.prepare import prepare
from robust.errors import ParamError
from robust.methods import benchmark_distortions, context, is_classifier, load_model, setup, train_from_params
from robust.methods import ra
from robust.models import create
from robust.params import DataParams
from robust.recognition_aware.tables import check_recognisers, processors, tables_from_params
from robust.report.recognition_aware import ra_tables
from robust.recognition_aware.tasks import PSNR_CAP, Task, TaskParams, eval_seeds, quality

BASE = {"method": "baseline", "arch": "deepcorrect_net", "width": 0.25}


@pytest.mark.parametrize("scale, side", [(1, 32), (2, 16), (4, 8)])
def test_processor_output_is_the_clean_size_in_0_1_for_each_scale(scale, side):
    p = create("srresnet", 2, scale=scale, width=8, blocks=2)
    out = p(torch.rand(3, 3, side, side))
    assert out.shape == (3, 3, 32, 32) and out.min() > 0 and out.max() < 1
    assert len(p.net.upsample) == {1: 0, 2: 1, 4: 2}[scale]


def test_seed_sized_processor_and_transformer():
    # the seed's P: 64 wide, 5 residual blocks, x4; T: 64 wide, two downsamplings to 256 channels, 6 blocks
    p = create("srresnet", 2, scale=4).net
    assert len(p.blocks) == 5 and p.head[0].kernel_size == (9, 9) and p.head[0].out_channels == 64 and p.tail.kernel_size == (9, 9)
    assert [m.upscale_factor for m in p.modules() if isinstance(m, torch.nn.PixelShuffle)] == [2, 2]
    t = create("resnet_generator", 2).net
    convs = [m for m in t.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].kernel_size == (7, 7) and max(c.out_channels for c in convs) == 256 and len([m for m in t.modules() if isinstance(m, torch.nn.ConvTranspose2d)]) == 2
    out = t(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 3, 32, 32) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match="divisible by 4"):
        t(torch.rand(1, 3, 30, 30))
    with pytest.raises(ParamError, match="scale"):
        create("srresnet", 2, scale=3)


def test_degradations_repeat_for_a_seed_and_do_not_depend_on_the_batch():
    images = torch.randint(0, 256, (6, 3, 32, 32)).float() / 255
    seeds = eval_seeds(0, "denoise", range(6))
    assert seeds == eval_seeds(0, "denoise", range(6)) and seeds != eval_seeds(1, "denoise", range(6))
    for task in (Task("sr", scale=2), Task("denoise"), Task("jpeg")):
        a = task.degrade(images, seeds)
        assert torch.equal(a, task.degrade(images, seeds))
        assert torch.equal(a[2:4], task.degrade(images[2:4], seeds[2:4]))  # per sample, whatever the batch
    noisy = Task("denoise").degrade(images, seeds)
    assert not torch.equal(noisy, Task("denoise").degrade(images, eval_seeds(1, "denoise", range(6))))
    assert noisy.min() >= 0 and noisy.max() <= 1 and not torch.equal(noisy * 255, (noisy * 255).round())  # unquantised
    assert (noisy - images)[(images > 0.3) & (images < 0.7)].std().item() == pytest.approx(0.1, rel=0.1)
    small = Task("sr", scale=2).degrade(images, seeds)
    assert small.shape == (6, 3, 16, 16) and torch.equal(small * 255, (small * 255).round())  # stored as uint8, as PIL gives it
    assert Task("sr", scale=2).baseline(small).shape == (6, 3, 32, 32)
    assert torch.equal(Task("jpeg").sensor(images), images) and Task("sr", scale=2).sensor(images).shape == (6, 3, 16, 16)


def test_psnr_and_ssim_agree_with_closed_forms():
    a = torch.full((1, 3, 32, 32), 0.5)
    b = a + 0.1
    psnr, ssim = quality(b, a)
    assert psnr[0] == pytest.approx(20.0, abs=1e-5)  # 10 log10(1 / 0.01) (float32 inputs)
    c1 = 0.01**2
    assert ssim[0] == pytest.approx((2 * 0.5 * 0.6 + c1) / (0.5**2 + 0.6**2 + c1), rel=1e-6)  # luminance term only: no variance
    x = torch.rand(2, 3, 32, 32)
    psnr, ssim = quality(x, x)
    assert psnr.tolist() == [PSNR_CAP, PSNR_CAP] and ssim == pytest.approx([1.0, 1.0])
    # random pairs: the library's SSIM with seed 002's window (11 x 11 Gaussian, sigma 1.5), written out independently here
    y = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    psnr, ssim = quality(y, x)
    assert psnr == pytest.approx((10 * torch.log10(1 / ((y - x) ** 2).mean(dim=(1, 2, 3)))).numpy(), rel=1e-6)
    assert ssim == pytest.approx(_gaussian_ssim(y, x), rel=1e-6)
    from skimage.metrics import structural_similarity

    uniform = structural_similarity(x[0].permute(1, 2, 0).double().numpy(), y[0].permute(1, 2, 0).double().numpy(), data_range=1.0, channel_axis=-1)
    assert abs(uniform - ssim[0]) > 1e-3  # the library's default 7 x 7 uniform window would give another value


def _gaussian_ssim(a, b):
    """Per-image SSIM: 11 x 11 Gaussian window (sigma 1.5), population variances, the map's mean
    over the positions where the window fits, averaged over channels."""
    side = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(side**2) / (2 * 1.5**2))
    window = (g[:, None] * g[None, :] / (g.sum() ** 2))[None, None].repeat(3, 1, 1, 1)
    a, b = a.double(), b.double()

    def blur(t):
        return F.conv2d(t, window, groups=3)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim_map.mean(dim=(1, 2, 3)).numpy()


def test_invalid_settings_are_one_clear_error():
    with pytest.raises(ParamError, match="mode"):
        ra.RASettings.from_dict({"mode": "raw"})
    with pytest.raises(ParamError, match="scale"):
        ra.RASettings.from_dict({"task": "sr", "tasks": {"sr": {"scale": 3}}})
    with pytest.raises(ParamError, match="tasks.jpeg.sigma"):
        ra.RASettings.from_dict({"task": "jpeg", "tasks": {"jpeg": {"sigma": 0.1}}})
    with pytest.raises(ParamError, match="processor.depth"):
        ra.RASettings.from_dict({"processor": {"depth": 3}})
    with pytest.raises(ParamError, match="ra.task"):
        ra.RASettings.from_dict({"task": "deblur"})
    with pytest.raises(ParamError, match="lam"):
        ra.RASettings.from_dict({"mode": "plain", "lam": 0.1})  # plain has no recognition term
    with pytest.raises(ParamError, match="transformer_lr"):
        ra.RASettings.from_dict({"mode": "ra_transformer", "transformer_lr": 0})
    with pytest.raises(ParamError, match=r"models\.x\.tasks\.sr"):  # a task's settings must be a mapping; errors name the entry
        ra.RASettings.from_dict({"task": "sr", "tasks": {"sr": 2}}, "models.x")
    with pytest.raises(ParamError, match=r"models\.x\.tasks\.sr\.scale"):
        ra.RASettings.from_dict({"task": "sr", "tasks": {"sr": {"scale": 3}}}, "models.x")
    with pytest.raises(ParamError, match="unsupervised_classes"):
        ra.RASettings.from_dict({"unsupervised_classes": 1})
    assert TaskParams.from_dict({}).task("sr").scale == 2 and ra.RASettings.from_dict({"mode": "ra_unsupervised"}).weight == 10.0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Tiny clean shards, a recogniser trained one epoch, and its params."""
    root = tmp_path_factory.mktemp("ra")
    prepare(DataParams(train_size=48, val_size=12, test_size=12, shard_size=12, workers=1), root / "clean")
    start = str(root / "models" / "r" / "model.pt")
    entry = {"method": "ra", "start": start, "base": "r"}
    params = {
        "models": {"r": {**BASE, "start": str(root / "clean")}, "other": {**BASE, "start": str(root / "clean"), "width": 0.1},
                   **{f"ra-{t}-{m}": {**entry, "task": t, "mode": m} for t in ("sr", "denoise") for m in ra.MODES}},
        "methods": {"ra": {"processor": {"width": 4, "blocks": 1}, "transformer": {"width": 4, "blocks": 1},
                           "train": {"epochs": 1, "batch_size": 12, "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0}}},
        "train": {"epochs": 1, "batch_size": 12, "workers": 0, "device": "cpu"},
        "restoration": {"recognisers": ["r", "other"], "bootstrap": 100},
    }
    for name in ("r", "other"):
        train_from_params(params, name, root / "clean", root / "models", root / "logs")
    return root, params


def _batch(root, n=6):
    from robust.data.loader import make_loader

    return next(iter(make_loader(root / "clean" / "train", n)))


def test_entry_settings_merge_into_the_section_and_errors_name_the_entry(trained):
    root, params = trained
    entry = {**params["models"]["ra-sr-ra_transformer"], "processor": {"width": 6}}
    bench = {**params, "models": {**params["models"], "x": entry}}
    ctx, _ = context(bench, "x", root / "clean")
    assert ctx.settings["processor"] == {"width": 6, "blocks": 1}  # the section's blocks kept
    run = ra.setup(ctx)
    assert run.model.processor.head[0].out_channels == 6
    # T trains at its own learning rate (the seed's 1e-4 by default), P at the training lr
    groups = run.parameters
    assert [g.get("lr") for g in groups] == [None, 1e-4] and groups[1]["params"] == list(run.model.transformer.parameters())
    from robust.engine import build_optimizer

    optimizer = build_optimizer(groups, ctx.train)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3, 1e-4]
    with pytest.raises(ParamError, match=r"models\.x\.train\.optimizer is lbfgs"):
        ra.setup(context({**bench, "models": {**bench["models"], "x": {**entry, "train": {"optimizer": "lbfgs", "weight_decay": 0.0}}}}, "x", root / "clean")[0])
    with pytest.raises(ParamError, match=r"models\.x\.processor"):
        ra.setup(context({**bench, "models": {**bench["models"], "x": {**entry, "processor": {"width": 0}}}}, "x", root / "clean")[0])
    with pytest.raises(ParamError, match=r"models\.x\.transformer.*divisible by 64"):  # 32 px halved 6 times
        ra.setup(context({**bench, "models": {**bench["models"], "x": {**entry, "transformer": {"downsamplings": 6}}}}, "x", root / "clean")[0])


def test_recogniser_gets_no_update_and_stays_in_eval_mode(trained):
    root, params = trained
    before = torch.load(root / "models" / "r" / "model.pt", weights_only=True)
    train_from_params(params, "ra-denoise-ra", root / "clean", root / "models", root / "logs")
    after = torch.load(root / "models" / "ra-denoise-ra" / "model.pt", weights_only=True)
    for key, value in before.items():  # every tensor of R, batch-norm statistics included
        assert torch.equal(after[f"recogniser.{key}"], value), key
    _, run = setup(params, "ra-denoise-ra", root / "clean")  # the seeded initial weights
    start = run.model.state_dict()
    assert any(not torch.equal(after[k], start[k]) for k in after if k.startswith("processor."))  # P did train
    model, counts = load_model(params, "ra-denoise-ra", root / "clean", root / "models" / "ra-denoise-ra" / "model.pt")
    model.train()
    assert model.processor.training and not model.recogniser.training and not any(m.training for m in model.recogniser.modules())
    assert counts["trainable"] == sum(p.numel() for p in model.processor.parameters())


def test_each_mode_trains_what_it_should_with_the_seeds_loss(trained):
    root, params = trained
    images, labels = _batch(root)
    for mode in ra.MODES:
        ctx, _ = context(params, f"ra-denoise-{mode}", root / "clean")
        settings = ra.settings_of(ctx)
        torch.manual_seed(0)
        model = ra.setup(ctx).model.train()
        loss_fn = ra.ra_loss(settings)
        torch.manual_seed(5)
        loss, logits = loss_fn(model, images, labels)
        torch.manual_seed(5)
        inputs = settings.task_spec().degrade(images, torch.randint(0, 2**31 - 1, (len(images),)).tolist())
        with torch.no_grad():
            restored = model.processor(inputs)
            mse = F.mse_loss(restored, images)
            shown = model.transformer(restored)
            expected = {"plain": mse, "ra": mse + 1e-3 * F.cross_entropy(model.recogniser(restored), labels),
                        "ra_transformer": mse + 1e-2 * F.cross_entropy(model.recogniser(shown), labels),
                        # the seed's mean over 1,000 softmax outputs: summed over the classes / 1000
                        "ra_unsupervised": mse + 10 * F.mse_loss(F.softmax(model.recogniser(restored), 1), F.softmax(model.recogniser(images), 1))
                        * model.recogniser(images).shape[1] / 1000}
        assert loss.item() == pytest.approx(expected[mode].item(), rel=1e-5), mode
        assert (logits is None) == (mode == "plain")
        # training draws fresh degradations every step (the engine seeds the stream once per run)
        assert loss_fn(model, images, labels)[0].item() != loss.item()
        if mode == "ra_unsupervised":  # no labels: any labels give the same loss
            torch.manual_seed(5)
            assert loss_fn(model, images, labels.flip(0))[0].item() == pytest.approx(loss.item(), rel=1e-6)
            # unsupervised_classes null: the seed's code literally, a mean over this dataset's classes
            literal = ra.ra_loss(ra.RASettings.from_dict({**ctx.settings, "unsupervised_classes": None}))
            torch.manual_seed(5)
            with torch.no_grad():
                term = 10 * F.mse_loss(F.softmax(model.recogniser(restored), 1), F.softmax(model.recogniser(images), 1))
            assert literal(model, images, labels)[0].item() == pytest.approx((mse + term).item(), rel=1e-5)


def test_ra_transformer_sends_no_recognition_gradient_into_p(trained):
    root, params = trained
    images, labels = _batch(root)
    ctx, _ = context(params, "ra-denoise-ra_transformer", root / "clean")
    model = ra.setup(ctx).model.train()
    inputs = ra.settings_of(ctx).task_spec().degrade(images, list(range(len(images))))
    restored, logits = model(inputs)
    F.cross_entropy(logits, labels).backward()  # the recognition term alone
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in model.processor.parameters())
    assert any(p.grad is not None and torch.count_nonzero(p.grad) > 0 for p in model.transformer.parameters())
    assert all(p.grad is None for p in model.recogniser.parameters())
    # and in plain RA the same term does reach P
    ctx, _ = context(params, "ra-denoise-ra", root / "clean")
    model = ra.setup(ctx).model.train()
    F.cross_entropy(model(inputs)[1], labels).backward()
    assert any(p.grad is not None and torch.count_nonzero(p.grad) > 0 for p in model.processor.parameters())


def test_processed_classifier_is_p_then_r_and_only_benchmark_entries_are_leaderboard_rows(trained):
    root, params = trained
    ctx, _ = context(params, "ra-sr-ra", root / "clean")
    model = ra.setup(ctx).model.eval()
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        expected = model.recogniser(model.processor(ra.settings_of(ctx).task_spec().sensor(x)))
        assert torch.allclose(model(x), expected)
    names = ["contrast", "dc_blur", "ra_jpeg", "speckle_noise", "gaussian_noise"]
    bench = {**params, "models": {**params["models"], "b": {**params["models"]["ra-sr-ra"], "benchmark": "imagenet_c"}}}
    assert benchmark_distortions(bench, "b", names) == ["contrast", "gaussian_noise"]  # the mCE corruptions only
    assert benchmark_distortions({**bench, "models": {"b": {**bench["models"]["b"], "benchmark": "all"}}}, "b", names) == names
    assert benchmark_distortions(params, "r", names) == names
    with pytest.raises(ParamError, match="benchmark"):
        ra.RASettings.from_dict({"benchmark": True})
    assert not is_classifier(params, "ra-sr-ra") and is_classifier({**params, "models": {**params["models"], "x": {**params["models"]["ra-sr-ra"],
                                                                                                                  "benchmark": "imagenet_c"}}}, "x")


def test_seed_002_tables_on_every_recogniser(trained):
    root, params = trained
    for task in ("sr", "denoise"):
        for mode in ra.MODES:
            name = f"ra-{task}-{mode}"
            if not (root / "models" / name / "model.pt").is_file():
                train_from_params(params, name, root / "clean", root / "models", root / "logs")
    summary = tables_from_params(params, root / "clean", root / "models", root / "out" / "summary.json")
    assert json.loads((root / "out" / "summary.json").read_text()) == summary
    assert list(summary["tasks"]) == ["sr", "denoise"] and summary["recognisers"] == ["r", "other"]
    table = summary["tasks"]["denoise"]
    assert list(table["rows"]) == ["none", *(f"ra-denoise-{m}" for m in ra.MODES), "clean"]
    for key, row in table["rows"].items():
        assert set(row["top1"]) == {"r", "other"}
        for name, value in row["top1"].items():
            low, high = row["interval"][name]
            assert low <= value <= high and value in {k / 12 for k in range(13)}
        if key != "clean":
            assert 0 < row["ssim"] <= 1 and row["psnr"] > 0
    # ra_transformer: quality is P's (identical to plain's P when trained alike), accuracy is R(T(P))
    assert "vs_plain" in table["rows"]["ra-denoise-ra"] and "vs_plain" not in table["rows"]["ra-denoise-plain"]
    # P of ra_transformer trains on MSE alone from the same seeded start: its quality is plain's, its accuracy R(T(P))'s
    assert table["rows"]["ra-denoise-ra_transformer"]["psnr"] == table["rows"]["ra-denoise-plain"]["psnr"]
    assert table["transfer"]["ra-denoise-ra"]["others"] == 1
    # a second evaluation seed is a separate table (other degraded images); recognisers are plain classifiers
    seeded = {**params, "models": {**params["models"], "ra-denoise-plain-s1": {**params["models"]["ra-denoise-plain"], "seed": 1}}}
    groups = processors(seeded, root / "clean")
    assert [(task.name, seed, len(entries)) for (task, seed), entries in groups.items()] == [("sr", 0, 4), ("denoise", 0, 4), ("denoise", 1, 1)]
    for bad in ("ra-sr-ra", "missing"):
        with pytest.raises(ParamError, match=f"recognisers names '{bad}'"):
            check_recognisers(params, ("r", bad))
    # a pipeline without method: ra entries gets an empty summary, which the report leaves out
    bare = {**params, "models": {k: v for k, v in params["models"].items() if v.get("method") != "ra"}}
    empty = tables_from_params(bare, root / "clean", root / "models", root / "out" / "empty.json")
    assert empty["tasks"] == {} and ra_tables(empty) == []
    # the no-processing row's PSNR is the degraded input's
    images, _ = _batch(root, 12)
    assert table["rows"]["none"]["psnr"] < 25 and summary["tasks"]["sr"]["rows"]["clean"]["top1"] == table["rows"]["clean"]["top1"]
