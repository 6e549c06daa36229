"""Seed 001: the VAE's shapes, per-sample gradient features from one batched forward pass
that equal plain autograd, and the balanced detector batches."""

import numpy as np
import pytest
import torch
from torch import nn

from robust.gradient_features.detectors import BalancedBatches, balanced, resampled
from robust.gradient_features.features import feature_sizes, loop_features, per_sample_features
from robust.models import available, create
from robust.models.gradient_vae import DECODER_WEIGHTS, ENCODER_WEIGHT, Detector, GradientVAE


def _vae(seed: int = 0) -> GradientVAE:
    torch.manual_seed(seed)
    return GradientVAE().eval()


def test_vae_shapes_28_15_8_5_3_and_back():
    vae = _vae()
    x = torch.rand(2, 3, 28, 28)
    sides = []
    h = x
    for layer in vae.encoder:
        h = layer(h)
        if isinstance(layer, nn.Conv2d):
            sides.append((h.shape[1], h.shape[-1]))
    assert sides == [(3, 15), (6, 8), (9, 5), (12, 3)]
    h = vae.project(vae.encode(x)[0]).view(-1, 12, 3, 3)
    back = []
    for layer in vae.decoder:
        h = layer(h)
        if isinstance(layer, nn.ConvTranspose2d):
            back.append((h.shape[1], h.shape[-1]))
    assert back == [(9, 4), (6, 8), (3, 14), (3, 28)]
    recon, mu, logvar = vae.reconstruct(x)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (2, 20) and 0 <= recon.min() and recon.max() <= 1
    params = dict(vae.named_parameters())
    assert params[ENCODER_WEIGHT].numel() == 1728 and params[DECODER_WEIGHTS["last"]].numel() == 144
    assert params[DECODER_WEIGHTS["first"]].numel() == 1728
    assert feature_sizes(vae) == {"kld": 1728, "bce": 144, "mu": 20}


def test_other_image_sizes_are_resized_and_the_registry_builds_the_vae():
    vae = _vae()
    bce, kld, mu = vae(torch.rand(3, 3, 32, 32))
    assert bce.shape == kld.shape == (3,) and mu.shape == (3, 20) and (bce > 0).all() and (kld >= 0).all()
    model = create("vae", num_classes=10, image_size=32).eval()  # eval: z = mu, no sampling
    assert isinstance(model.net, GradientVAE) and model.net.image_size == 28
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(model(x)[0], model.net(x)[0])  # no normalisation in front


def test_the_vae_trains_and_gives_gradients_through_the_same_resize(tmp_path):
    """As the pipeline builds it (methods.vae.setup): the engine's forward (the Classifier wrapper) and the gradient
    stage's (the bare VAE) see the same 28 px image, so the features compare what the VAE was trained on."""
    from robust.data.prepare import prepare
    from robust.methods import setup
    from robust.params import DataParams

    prepare(DataParams(train_size=12, val_size=12, test_size=12, shard_size=12, workers=1), tmp_path / "clean")
    params = {"models": {}, "study_models": {"vae": {"method": "vae", "start": "data/shards/clean", "arch": "vae"}},
              "methods": {"vae": {"image_size": 28}}, "train": {"device": "cpu"}}
    _, run = setup(params, "vae", tmp_path / "clean")
    model = run.model.eval()
    x = torch.rand(4, 3, 32, 32)
    engine_view = model(x)  # what training minimises
    gradient_view = model.net(x)  # what the gradients stage differentiates
    torch.testing.assert_close(engine_view[0], gradient_view[0], rtol=0, atol=0)
    torch.testing.assert_close(engine_view[2], gradient_view[2], rtol=0, atol=0)


@pytest.mark.parametrize("size", [12, 28, 44, 60])
def test_the_vae_is_built_for_the_sizes_its_decoder_reaches(size):
    vae = GradientVAE(image_size=size).eval()
    reconstruction, _, _ = vae.reconstruct(torch.rand(2, 3, size, size))
    assert reconstruction.shape == (2, 3, size, size)


@pytest.mark.parametrize("size", [8, 16, 32, 64, 512])
def test_every_other_vae_size_is_refused(size):
    from robust.errors import ParamError
    from robust.methods.vae import input_size

    with pytest.raises(ParamError, match="12 \\+ 16 k"):
        GradientVAE(image_size=size)
    with pytest.raises(ParamError, match="methods.vae.image_size"):
        input_size({"image_size": size})
    assert "vae" in available() and "vae" not in available(classifiers_only=True)


def test_robust_models_lists_the_vae(capsys):
    from robust.cli import main

    assert main(["models"]) == 0
    assert "vae" in capsys.readouterr().out.split()


@pytest.mark.parametrize("bce_layer", ["last", "first"])
def test_batched_features_equal_autograd_per_image(bce_layer):
    vae = _vae(1)
    images = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    grads, mu, loss = per_sample_features(vae, images, bce_layer=bce_layer)
    ref_grads, ref_mu, ref_loss = loop_features(vae, images, bce_layer=bce_layer)
    assert grads.shape == (6, 1728 + (144 if bce_layer == "last" else 1728))
    torch.testing.assert_close(grads, ref_grads, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(mu, ref_mu)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-4)
    # one sample alone gives the same row as inside the batch: nothing leaks between samples
    alone, _, _ = per_sample_features(vae, images[3:4], bce_layer=bce_layer)
    torch.testing.assert_close(alone[0], grads[3], rtol=1e-4, atol=1e-5)


def test_both_gradient_blocks_come_from_one_forward_pass():
    vae = _vae()
    calls = []
    vae.encoder.register_forward_hook(lambda *_: calls.append("encoder"))
    vae.decoder.register_forward_hook(lambda *_: calls.append("decoder"))
    per_sample_features(vae, torch.rand(5, 3, 28, 28))
    assert calls == ["encoder", "decoder"]
    # and the KLD block is the gradient of the KLD alone, the BCE block of the BCE alone
    x = torch.rand(1, 3, 28, 28)
    grads, _, _ = per_sample_features(vae, x)
    bce, kld, _ = vae(x)
    params = dict(vae.named_parameters())
    (kld_grad,) = torch.autograd.grad(kld.sum(), params[ENCODER_WEIGHT])
    (bce_grad,) = torch.autograd.grad(bce.sum(), params[DECODER_WEIGHTS["last"]])
    torch.testing.assert_close(grads[0, :1728], kld_grad.flatten(), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grads[0, 1728:], bce_grad.flatten(), rtol=1e-4, atol=1e-6)
    assert not any(p.grad is not None for p in vae.parameters())  # extraction leaves no .grad behind


def test_normalisation_scales_the_named_blocks_to_unit_length():
    vae = _vae()
    x = torch.rand(4, 3, 28, 28)
    raw, _, _ = per_sample_features(vae, x, normalise="none")
    bce_only, _, _ = per_sample_features(vae, x, normalise="bce")
    both, _, _ = per_sample_features(vae, x, normalise="both")
    torch.testing.assert_close(bce_only[:, :1728], raw[:, :1728])
    torch.testing.assert_close(bce_only[:, 1728:].norm(dim=1), torch.ones(4))
    torch.testing.assert_close(both[:, :1728].norm(dim=1), torch.ones(4))
    torch.testing.assert_close(both[:, 1728:], bce_only[:, 1728:])
    with pytest.raises(ValueError, match="normalise must be one of"):
        per_sample_features(vae, x, normalise="l2")


def test_detector_is_d_40_20_1_and_standardises_inside():
    det = Detector(5)
    assert [m.out_features for m in det.net if isinstance(m, nn.Linear)] == [40, 20, 1]
    x = torch.randn(7, 5) * 100 + 50
    det.set_standardisation(x.mean(0), x.std(0, unbiased=False))
    z = (x - x.mean(0)) / x.std(0, unbiased=False)
    torch.testing.assert_close(det(x), det.net(z).squeeze(-1), rtol=1e-5, atol=1e-5)
    assert det(x).shape == (7,) and {"shift", "scale"} <= set(det.state_dict())


def test_balanced_batches_pair_clean_and_distorted_and_repeat_per_epoch():
    clean, distorted = np.zeros((10, 2), np.float32), np.ones((7, 2), np.float32)
    batches = BalancedBatches(clean, distorted, per_class=3, seed=0)
    assert len(batches) == 3
    first = list(batches)
    for rows, labels in first:
        assert (labels == 0).sum() == (labels == 1).sum()
        assert torch.equal(rows[:, 0], labels)  # clean rows are 0, distorted rows 1
    assert [len(labels) for _, labels in first] == [6, 6, 2]
    batches.set_epoch(0)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, batches))  # same epoch, same batches


def test_balanced_test_sets_and_the_resampled_auroc_equal_scikit_learn():
    from sklearn.metrics import roc_auc_score

    ic, idist = balanced(10, 6, seed=1)
    assert len(ic) == len(idist) == 6 and len(set(ic.tolist())) == 6 and np.array_equal(idist, np.arange(6))
    rng = np.random.default_rng(0)
    clean, distorted = rng.random(40), rng.random(40) * 0.8 + 0.3
    clean[:5] = distorted[:5]  # ties count one half, as in the ROC area
    index = rng.integers(0, 40, size=(4, 40))
    got = resampled(clean, distorted, index)
    for r in range(4):
        c, d = clean[index[r]], distorted[index[r]]
        expected = roc_auc_score(np.r_[np.zeros(40), np.ones(40)], np.r_[c, d])
        assert got["auroc"][r] == pytest.approx(expected, abs=1e-12)
        assert got["accuracy"][r] == pytest.approx(((c < 0.5).sum() + (d >= 0.5).sum()) / 80)


def _features(rng, n, shift):
    """Features whose gradient block moves with ``shift`` and whose mu carries nothing."""
    from robust.gradient_features.features import Features

    grads = rng.normal(size=(n, 12)).astype(np.float32)
    grads[:, :3] += shift
    return Features(grads, rng.normal(size=(n, 20)).astype(np.float32), rng.random(n).astype(np.float32), np.arange(n) % 3)


@pytest.mark.parametrize("shift", [3.0, 0.0])
def test_detect_trains_both_detectors_and_reports_the_comparison(tmp_path, shift):
    from robust.gradient_features.detectors import detect_from_params
    from robust.gradient_features.features import save_features
    from robust.report.gradient_features import gradient_tables

    rng = np.random.default_rng(0)
    folder = tmp_path / "features"
    for split, n in (("train", 256), ("val", 64), ("test", 64)):
        save_features(folder / "clean" / f"{split}.npz", _features(rng, n, 0.0))
    for split, n in (("train", 256), ("val", 64)):
        save_features(folder / "gaussian_blur" / "1" / f"{split}.npz", _features(rng, n, shift))
    for level in (1, 2):
        save_features(folder / "fog" / str(level) / "test.npz", _features(rng, 64, shift * level))
        save_features(folder / "dc_blur" / str(level) / "test.npz", _features(rng, 64, shift))  # Gaussian blur under another name
    params = {"gradients": {"train_distortion": "gaussian_blur", "epochs": 8, "lr": 0.01, "per_class": 32, "bootstrap": 50},
              "corrupt": {"suites": {"imagenet_c": ["fog"], "deepcorrect": ["dc_blur"]}}}
    summary = detect_from_params(params, folder, tmp_path / "detectors", tmp_path / "out")
    # unseen types only: neither the training distortion nor dc_blur, which applies its operation (Gaussian blur)
    assert set(summary["distortions"]) == {"fog"} and set(summary["levels"]["fog"]) == {"1", "2"}
    assert summary["same_operation_left_out"] == ["dc_blur"]
    assert (tmp_path / "detectors" / "gradients" / "model.pt").is_file()
    row = summary["distortions"]["fog"]
    assert abs(row["activations"]["auroc"] - 0.5) < 0.15  # mu carries nothing
    lines = "\n".join(gradient_tables(summary))
    assert "| features | Fog | mean |" in lines and "| gradients - activations |" in lines
    if shift:  # the gradients carry the distortion: their detector finds it, significantly better than mu's
        assert row["gradients"]["auroc"] > 0.95 and row["difference_intervals"]["auroc"]["significant"]
        assert summary["detectors"]["gradients"]["val_loss"] < 0.5
        assert "**Warning:** the activations detector kept" in lines  # only mu's detector stayed at chance
    else:  # nothing to learn: the report says the detectors are at chance
        assert "**Warning:** the activations and the gradients detectors" in lines
    low, high = row["intervals"]["gradients"]["auroc"]
    assert low <= row["gradients"]["auroc"] <= high
    plot = (tmp_path / "out" / "plots" / "fog.csv").read_text().splitlines()
    assert plot[0] == "model,level,auroc,accuracy" and len(plot) == 5
