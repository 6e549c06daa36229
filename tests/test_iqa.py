"""Seed 001's IQA application: the sparse autoencoder, the four indices, the database readers,
the field's evaluation (SROCC / KROCC / PLCC / RMSE after the logistic fit) and ``robust iqa``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from formats import truncate, write_iqa_csv, write_livemd, write_tid2013
from scipy import stats

from robust.cli import main
from robust.engine import TrainParams, train
from robust.errors import DataError, ParamError
from robust.gradient_features.iqa import scoring
from robust.gradient_features.iqa.autoencoder import SparseAutoencoder, sparse_autoencoder_loss
from robust.gradient_features.iqa.databases import read_database
from robust.gradient_features.iqa.indices import (INDICES, IndexSettings, decoder_gradient, gradient_features, patches, spearman_rows, unit_weights, ygcr,
                                zca_matrix, zca_whiten)
from robust.gradient_features.iqa.run import IQAParams, score_root
from robust.gradient_features.iqa.train import PatchBatches, natural_images, sample_patches, train_autoencoder

SMALL_AE = {"iqa": {"autoencoder": {"patches": 2000, "train": {"epochs": 2, "lbfgs_iterations": 10}}}}


@pytest.fixture(scope="module")
def autoencoder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("iqa") / "autoencoder"
    train_autoencoder(SMALL_AE, out)
    return out


@pytest.fixture(scope="module")
def databases(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("iqa-databases")
    write_tid2013(base / "tid")
    write_livemd(base / "live")
    return {"tid2013": base / "tid", "livemd": base / "live", "csv": write_iqa_csv(base / "csv")}


# -- the autoencoder -----------------------------------------------------------------------------
def test_autoencoder_stage_writes_weights_with_the_whitening_and_lowers_its_loss(autoencoder):
    info = json.loads((autoencoder / "info.json").read_text())
    assert info["patches"] == 2000 and info["final_loss"] < info["loss_per_epoch"][0] / 10  # the KL term at init is ~1,000
    state = torch.load(autoencoder / "model.pt", weights_only=True)
    assert state["encoder.weight"].shape == (400, 192) and state["decoder.weight"].shape == (192, 400)
    assert state["mean_patch"].shape == (192,) and not torch.equal(state["zca"], torch.eye(192))  # the training ZCA, stored
    assert not (autoencoder / "checkpoint.pt").exists()


def test_an_untrained_autoencoder_is_an_ablation_with_no_loss_curve(tmp_path):
    """epochs 0 (does the index need a trained autoencoder?): the start weights are saved, no curve."""
    info = train_autoencoder({"iqa": {"autoencoder": {"patches": 500, "train": {"epochs": 0}}}}, tmp_path / "ae")
    assert info["loss_per_epoch"] == [] and (tmp_path / "ae" / "model.pt").is_file()


def test_patches_come_from_the_colour_photographs_and_repeat_for_a_seed():
    photos = natural_images(None)
    assert 0 < len(photos) < 12 and all(not np.array_equal(p[..., 0], p[..., 1]) for p in photos)  # the grey photos are left out
    a, b, c = sample_patches(photos, 50, 0), sample_patches(photos, 50, 0), sample_patches(photos, 50, 1)
    assert a.shape == (50, 192) and torch.equal(a, b) and not torch.equal(a, c)


def test_patches_root_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        natural_images(str(tmp_path / "missing"))
    (tmp_path / "notes.txt").write_text("no images")
    with pytest.raises(DataError, match="No image"):
        natural_images(str(tmp_path))


def test_engine_lbfgs_epochs_continue_one_lbfgs_run(tmp_path):
    """``optimizer: lbfgs`` through the engine (2 epochs x 5 iterations) ends where torch's L-BFGS
    run for 10 iterations in one call ends: the history carries over between batches."""
    torch.manual_seed(0)
    x = torch.randn(300, 192)
    torch.manual_seed(1)
    reference = SparseAutoencoder(hidden=20)
    engine_model = SparseAutoencoder(hidden=20)
    engine_model.load_state_dict(reference.state_dict())
    optimizer = torch.optim.LBFGS(reference.parameters(), lr=1.0, max_iter=10, max_eval=30, history_size=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = sparse_autoencoder_loss(reference, x)
        loss.backward()
        return loss

    optimizer.step(closure)
    p = TrainParams.from_dict({"optimizer": "lbfgs", "lr": 1.0, "lbfgs_iterations": 5, "epochs": 2, "batch_size": 1000, "weight_decay": 0.0,
                               "schedule": "constant", "augment": "none", "workers": 0, "device": "cpu"})
    train(engine_model, PatchBatches(x, 1000, 0), tmp_path, p, loss_fn=lambda m, b, _: (sparse_autoencoder_loss(m, b), None))
    for (name, a), b in zip(reference.state_dict().items(), engine_model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name


def test_lbfgs_rejects_a_weight_decay_outside_the_loss():
    with pytest.raises(ParamError, match="weight_decay"):
        TrainParams.from_dict({"optimizer": "lbfgs", "weight_decay": 0.1})


# -- preprocessing and features ------------------------------------------------------------------
def test_ygcr_is_matlab_rgb2ycbcr_with_g_for_cb():
    images = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]).view(3, 3, 1, 1)
    out = ygcr(images).view(3, 3) * 255
    assert torch.allclose(out[0], torch.tensor([235.0, 255.0, 128.0]), atol=1e-3)  # white: Y 235, G 1, Cr 128
    assert torch.allclose(out[1], torch.tensor([16.0, 0.0, 128.0]), atol=1e-3)
    assert torch.allclose(out[2], torch.tensor([16 + 65.481, 0.0, 128 + 112.0]), atol=1e-3)  # red


def test_patches_are_y_first_192_vectors():
    images = torch.zeros(1, 3, 16, 24)
    images[:, 0] = 1.0
    cols = patches(images)
    assert cols.shape == (1, 192, 6) and torch.all(cols[:, :64] == 1) and torch.all(cols[:, 64:] == 0)


def test_zca_whitening_without_the_matrix_equals_the_matrix_and_whitens():
    x = torch.randn(2, 192, 800, dtype=torch.float64) * torch.linspace(0.1, 3, 192, dtype=torch.float64).view(1, -1, 1)
    x = x - x.mean(dim=-1, keepdim=True)
    white = zca_whiten(x, 1e-6)
    assert torch.allclose(white, zca_matrix(x, 1e-6) @ x, atol=1e-8)
    covariance = white @ white.transpose(1, 2) / x.shape[-1]
    assert torch.allclose(covariance, torch.eye(192, dtype=torch.float64).expand(2, -1, -1), atol=1e-3)
    few = torch.randn(1, 192, 12, dtype=torch.float64)  # fewer patches than dimensions (a 32 px image)
    few = few - few.mean(dim=-1, keepdim=True)
    assert torch.allclose(zca_whiten(few, 0.1), zca_matrix(few, 0.1) @ few, atol=1e-8)


def test_decoder_gradient_equals_autograd_per_image():
    torch.manual_seed(0)
    model = SparseAutoencoder(hidden=30).double()
    columns = torch.randn(3, 192, 7, dtype=torch.float64)
    closed = decoder_gradient(model, columns).detach()
    for b in range(3):
        model.zero_grad()
        x = columns[b].T
        x_hat, _ = model(x)
        (0.5 * (x_hat - x).pow(2).sum() / x.shape[0]).backward()
        assert torch.allclose(closed[b], model.decoder.weight.grad, atol=1e-12)
    # and a finite difference on one weight
    w = model.decoder.weight
    eps, (i, j) = 1e-6, (5, 7)

    def loss() -> float:
        x = columns[0].T
        return float(0.5 * (model(x)[0] - x).pow(2).sum() / x.shape[0])

    with torch.no_grad():
        w[i, j] += eps
        up = loss()
        w[i, j] -= 2 * eps
        down = loss()
        w[i, j] += eps
    assert abs((up - down) / (2 * eps) - float(closed[0, i, j])) < 1e-6


def _matlab_unit_weights(gradient: np.ndarray) -> list[float]:
    """mslCompute_Gradients.m step by step: the Y block minus its mean, each row divided by its
    largest |value| over the units, kurtosis(., 0, 2) per unit (bias-corrected), > 3 -> 2."""
    y = gradient[:64, :].T.copy()  # units x 64
    y -= y.mean()
    for d in range(64):
        y[:, d] /= np.abs(y[:, d]).max()
    weights = []
    for row in y:
        n, centred = len(row), row - row.mean()
        k0 = (centred**4).mean() / (centred**2).mean() ** 2
        k = 3 + (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * k0 - 3 * (n - 1))
        weights.append(2.0 if k > 3 else 1.0)
    return weights


def test_unit_weights_follow_the_released_normalisation_and_kurtosis():
    rng = np.random.default_rng(0)
    gradient = rng.standard_t(4, size=(192, 400)) * rng.uniform(0.1, 10, size=(192, 1))  # heavy tails, rows of unequal scale
    ours = unit_weights(torch.from_numpy(gradient).unsqueeze(0))[0].tolist()
    assert ours == _matlab_unit_weights(gradient)
    unnormalised = np.where(stats.kurtosis(gradient[:64], axis=0, fisher=False) > 3, 2.0, 1.0).tolist()
    assert ours != unnormalised  # the normalisation matters on this case, so the check above is sensitive to it


def test_gradient_features_are_the_complex_logit():
    y = torch.tensor([[[0.25], [-0.5]]])  # y / (1 - y): 1/3 (real log) and -1/3 (angle pi)
    features = gradient_features(y, torch.tensor([[1.0, 2.0]]))
    assert torch.allclose(features[0, 0, :, 0], torch.tensor([abs(np.log(1 / 3)), 2 * abs(complex(np.log(1 / 3), np.pi))], dtype=torch.float32))
    assert torch.allclose(features[0, 1, :, 0], torch.tensor([np.pi, 2 * np.angle(complex(np.log(1 / 3), np.pi))], dtype=torch.float32))


def test_spearman_rows_equal_scipy_and_handle_constants():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 50)), rng.normal(size=(4, 50))
    a[1, :10] = 0  # ties
    ours = spearman_rows(torch.from_numpy(a), torch.from_numpy(b))
    assert np.allclose(ours, [stats.spearmanr(x, y).statistic for x, y in zip(a, b)])
    assert spearman_rows(torch.zeros(1, 5), torch.zeros(1, 5)).tolist() == [1.0]  # identical
    assert spearman_rows(torch.zeros(1, 5), torch.arange(5.0).view(1, 5)).tolist() == [0.0]  # undefined


def test_identical_images_score_one_and_distortion_lowers_every_index(autoencoder):
    from robust.gradient_features.iqa.train import load_autoencoder

    model = load_autoencoder(autoencoder)
    torch.manual_seed(0)
    reference = torch.from_numpy(natural_images(None)[0][:96, :96]).permute(2, 0, 1).unsqueeze(0).contiguous()
    noisy = (reference + 0.1 * torch.randn_like(reference)).clamp(0, 1)
    settings = IndexSettings()
    for name in ("unique", "gradient"):
        assert INDICES[name](reference, reference, model, settings).item() == 1.0
        assert INDICES[name](reference, noisy, model, settings).item() < 1.0
    assert INDICES["ssim"](reference, reference).item() == pytest.approx(1.0)
    assert INDICES["psnr"](reference, reference).item() == 100.0 > INDICES["psnr"](reference, noisy).item()


def test_the_gradient_index_takes_the_gradient_of_the_reference_only(autoencoder):
    from robust.gradient_features.iqa.indices import gradient, whitened_patches
    from robust.gradient_features.iqa.train import load_autoencoder

    model = load_autoencoder(autoencoder)
    photo = torch.from_numpy(natural_images(None)[0]).permute(2, 0, 1)
    a, b = photo[:, :64, :64].unsqueeze(0).contiguous(), photo[:, 100:164, 100:164].unsqueeze(0).contiguous()
    settings = IndexSettings()
    ref, dist = whitened_patches(a, model, settings), whitened_patches(b, model, settings)
    grad = decoder_gradient(model, ref).detach()
    w = unit_weights(grad)
    by_hand = [gradient_features(grad.transpose(1, 2) @ x, w).flatten(1) for x in (ref, dist)]
    by_hand = [torch.where(f < settings.threshold, 0.0, f) for f in by_hand]
    expected = abs(stats.spearmanr(by_hand[0][0].numpy(), by_hand[1][0].numpy()).statistic) ** 10
    assert gradient(a, b, model, settings).item() == pytest.approx(expected, rel=1e-6)
    assert gradient(a, b, model, settings).item() != pytest.approx(gradient(b, a, model, settings).item(), rel=1e-6)


def test_psnr_and_ssim_are_scikit_images():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(0)
    a = rng.random((2, 3, 32, 32))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    assert INDICES["psnr"](ta, tb)[1].item() == pytest.approx(peak_signal_noise_ratio(a[1], b[1], data_range=1.0))
    luma = lambda x: np.tensordot(np.array([0.299, 0.587, 0.114]), x, axes=1)  # noqa: E731
    expected = structural_similarity(luma(a[0]), luma(b[0]), data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert INDICES["ssim"](ta, tb)[0].item() == pytest.approx(expected)


# -- evaluation ------------------------------------------------------------------------------------
def test_logistic_fit_plcc_rmse_and_the_dmos_sign():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, 200)
    mos = scoring.logistic5(x, 4.0, 1.2, 5.0, 0.05, 3.0) + rng.normal(0, 0.01, 200)
    good = scoring.agreement(x, mos, higher_is_better=True)
    assert good["fit"] == "logistic" and good["plcc"] > 0.999 and good["rmse"] < 0.02 and good["srocc"] > 0.99
    dmos = scoring.agreement(x, 10 - mos, higher_is_better=False)  # DMOS: higher = worse, sign-corrected
    assert dmos["srocc"] == pytest.approx(good["srocc"]) and dmos["krocc"] > 0.9
    assert scoring.agreement(np.ones(5), np.arange(5.0))["srocc"] is None


def test_each_format_reads_back_and_every_index_follows_the_distortion_strength(databases, autoencoder):
    tid, live, table = (read_database(databases[f], f) for f in ("tid2013", "livemd", "csv"))
    assert len(tid.pairs) == len(live.pairs) == len(table.pairs) == 24  # 3 references x 2 types x 4 levels
    assert {p.kind for p in tid.pairs} == {"01", "08"} and {p.kind for p in live.pairs} == {"blurjpeg", "blurnoise"}
    assert {p.group for p in tid.pairs} == {"01", "02", "03"} and tid.higher_is_better and not live.higher_is_better and table.higher_is_better
    assert any(p.distorted.name.startswith("I") for p in tid.pairs)  # matched case-insensitively
    for fmt, root in databases.items():
        result = score_root(root, fmt, autoencoder)
        assert list(result) == ["psnr", "ssim", "unique", "gradient"]
        for name, metrics in result.items():
            assert metrics["srocc"] > 0.5, (fmt, name, metrics)
            assert set(metrics) == {"srocc", "krocc", "plcc", "rmse"}


def test_robust_iqa_prints_json_for_each_format(databases, autoencoder, capsys):
    for fmt, root in databases.items():
        assert main(["iqa", str(root), "--format", fmt, "--autoencoder", str(autoencoder)]) == 0
        printed = json.loads(capsys.readouterr().out)
        assert set(printed) == {"psnr", "ssim", "unique", "gradient"} and printed["gradient"]["plcc"] > 0


def test_robust_iqa_without_the_autoencoder_says_how_to_train_it(databases, tmp_path, capsys):
    assert main(["iqa", str(databases["csv"]), "--format", "csv", "--autoencoder", str(tmp_path / "none")]) == 2
    assert "dvc repro iqa-autoencoder" in capsys.readouterr().err


def test_bad_databases_get_one_clear_error(tmp_path, autoencoder):
    write_tid2013(tmp_path / "tid")
    (tmp_path / "tid" / "mos_with_names.txt").write_text("5.1 i01_01_1.bmp\n4.0 i09_01_1.bmp\n")
    with pytest.raises(DataError, match="i09_01_1.bmp, which is not in"):
        read_database(tmp_path / "tid", "tid2013")
    (tmp_path / "tid" / "mos_with_names.txt").unlink()
    with pytest.raises(DataError, match="mos_with_names.txt not found"):
        read_database(tmp_path / "tid", "tid2013")
    with pytest.raises(DataError, match="No Imagelists.mat"):
        read_database(tmp_path, "livemd")
    csv_path = write_iqa_csv(tmp_path / "csv")
    truncate(tmp_path / "csv" / "images" / "d0.png")
    with pytest.raises(DataError, match="Unreadable image .*d0.png"):
        score_root(csv_path, "csv", autoencoder)
    (tmp_path / "bad.csv").write_text("ref,dist,score\na.png,b.png,1\n")
    with pytest.raises(DataError, match="reference, distorted and mos"):
        read_database(tmp_path / "bad.csv", "csv")
    with pytest.raises(DataError, match="Unknown IQA database format"):
        read_database(tmp_path, "kadid")


def test_batches_of_mixed_sizes_score_as_single_pairs(tmp_path, autoencoder):
    from PIL import Image

    from robust.gradient_features.iqa.run import score_database
    from robust.gradient_features.iqa.train import load_autoencoder

    rng = np.random.default_rng(0)
    rows = ["reference,distorted,dmos"]
    for k, (h, w) in enumerate([(48, 64), (48, 64), (64, 48), (48, 64)]):
        ref = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        Image.fromarray(ref).save(tmp_path / f"r{k}.png")
        Image.fromarray(np.clip(ref + rng.normal(0, 20, ref.shape), 0, 255).astype(np.uint8)).save(tmp_path / f"d{k}.png")
        rows.append(f"r{k}.png,d{k}.png,{k}")
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    db = read_database(tmp_path / "s.csv", "csv")
    assert not db.higher_is_better  # a dmos column: higher = worse
    model = load_autoencoder(autoencoder)
    together, alone = (score_database(db, model, IndexSettings(), size) for size in (3, 1))
    for name in INDICES:
        assert np.allclose(together.scores[name], alone.scores[name]), name


def test_livemd_without_ref4dist_uses_the_name_prefix_and_a_bad_index_is_an_error(tmp_path):
    from scipy.io import loadmat, savemat

    write_livemd(tmp_path / "live")
    part = tmp_path / "live" / "Part 1" / "blurjpeg"
    lists = loadmat(part / "Imagelists.mat")
    savemat(part / "Imagelists.mat", {"distimgs": lists["distimgs"]})  # no refimgs / ref4dist: "ref1_blurjpeg_1.bmp" -> "ref1.bmp"
    pairs = [p for p in read_database(tmp_path / "live", "livemd").pairs if p.kind == "blurjpeg"]
    assert len(pairs) == 12 and all(p.reference.name == p.distorted.name.split("_")[0] + ".bmp" for p in pairs)
    assert len({p.group for p in read_database(tmp_path / "live", "livemd").pairs}) == 3  # both parts share the 3 references
    savemat(part / "Imagelists.mat", {"distimgs": lists["distimgs"], "refimgs": lists["refimgs"], "ref4dist": np.zeros(12)})
    with pytest.raises(DataError, match="ref4dist"):
        read_database(tmp_path / "live", "livemd")


def test_tid2013_missing_reference_is_an_error(tmp_path):
    write_tid2013(tmp_path / "tid")
    (tmp_path / "tid" / "reference_images" / "I02.BMP").unlink()
    with pytest.raises(DataError, match="reference i02.bmp"):
        read_database(tmp_path / "tid", "tid2013")


def test_iqa_params_are_validated():
    with pytest.raises(ParamError, match="iqa.source"):
        IQAParams.from_dict({"source": "kadid"})
    with pytest.raises(ParamError, match="iqa.root"):
        IQAParams.from_dict({"source": "tid2013"})
    with pytest.raises(ParamError, match="iqa.index.whitening"):
        IQAParams.from_dict({"index": {"whitening": "global"}})
    assert IQAParams.from_dict({}).index_settings().scale == 0.5  # pipeline: full-resolution crops, halved as TID2013
    assert IQAParams.from_dict({"source": "csv", "root": "x.csv"}).index_settings().scale == 0.5  # a database: the original's 0.5
    with pytest.raises(ParamError, match="iqa.crop"):
        IQAParams.from_dict({"crop": 32})  # the 32 px set of old: 16 patches, a rank-deficient whitening


def test_the_pipeline_set_is_full_resolution_crops_of_the_photographs():
    from robust.gradient_features.iqa.run import patch_count, reference_crops
    from robust.gradient_features.iqa.train import colour_photographs

    photos = colour_photographs()
    crops = reference_crops(len(photos) + 1, 256)
    assert all(c.shape == (256, 256, 3) and c.dtype == np.uint8 for c in crops)
    # one crop of each photograph first (its top-left tile), then the second tile of the first photograph with one
    for photo, crop in zip(photos, crops):
        np.testing.assert_array_equal(crop, photo[:256, :256])
    assert not any(np.array_equal(crops[-1], c) for c in crops[:-1])
    assert patch_count(256, 256, 0.5) == 256 >= 192  # a full-rank 192-dimensional covariance per image
    with pytest.raises(DataError, match="iqa.images"):
        reference_crops(1000, 256)


def test_bootstrap_over_references_is_paired_and_finds_a_real_difference():
    rng = np.random.default_rng(0)
    level = np.tile(np.arange(1, 6, dtype=float), 40)
    groups = np.repeat(np.arange(40), 5)
    kinds = np.array(["a"] * 100 + ["b"] * 100)
    good, noisy = -level + rng.normal(0, 0.3, 200), -level + rng.normal(0, 3.0, 200)
    draws = scoring.bootstrap({"good": good, "noisy": noisy}, level, kinds, groups, False, scoring.mean_within_type, 100, 0)
    diff = scoring.paired_difference(draws["good"], draws["noisy"], 0.0)
    assert diff["significant"] and diff["interval"][0] > 0
    same = scoring.paired_difference(draws["good"], draws["good"], 0.0)
    assert not same["significant"]
