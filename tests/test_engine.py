"""The training engine: learning, resume after an interruption, DVCLive curves, DDP under torchrun."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from robust import engine
from robust.data.prepare import prepare
from robust.models import create
from robust.engine import TrainParams
from robust.params import DataParams

FAST = dict(batch_size=16, workers=0, lr=0.05, augment="flip-crop")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    prepare(DataParams(train_size=96, val_size=24, test_size=24, shard_size=24, workers=1), out)
    return out


def tiny_model():
    torch.manual_seed(0)
    return create("deepcorrect_net", 12, width=0.1)


def test_training_lowers_the_loss_and_writes_model_checkpoint_and_curves(shards, tmp_path):
    model = tiny_model()
    history = engine.train(model, shards / "train", tmp_path / "run", TrainParams(epochs=3, **FAST),
                           val_dir=shards / "val", log_dir=tmp_path / "live")
    epochs = history["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and all(e["samples_seen"] == 96 for e in epochs)
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert (tmp_path / "run" / "model.pt").is_file() and (tmp_path / "run" / "checkpoint.pt").is_file()
    loss_curve = (tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert loss_curve[0].split("\t") == ["step", "loss"] and len(loss_curve) == 4
    assert (tmp_path / "live" / "plots" / "metrics" / "val" / "top1.tsv").is_file()
    scores = engine.evaluate(model, shards / "test", batch_size=10, desc=False)
    assert scores["n"] == 24 and 0 <= scores["top1"] <= scores["top5"] <= 1


def test_interrupted_training_resumes_and_ends_where_an_uninterrupted_run_ends(shards, tmp_path):
    params = TrainParams(epochs=3, **FAST)
    reference = tiny_model()
    engine.train(reference, shards / "train", tmp_path / "ref", params, log_dir=tmp_path / "ref-live")

    interrupted = tiny_model()
    with pytest.raises(KeyboardInterrupt):  # killed in the middle of epoch 2 (6 batches per epoch)
        engine.train(interrupted, shards / "train", tmp_path / "run", params, log_dir=tmp_path / "live", stop_after=9)
    assert not (tmp_path / "run" / "model.pt").exists()
    resumed = tiny_model()
    history = engine.train(resumed, shards / "train", tmp_path / "run", params, log_dir=tmp_path / "live")
    assert history["resumed_from"] == 1 and [e["epoch"] for e in history["epochs"]] == [1, 2, 3]
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    curve = (tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in curve[1:]] == ["0", "1", "2"]  # one point per epoch, no duplicate


def test_other_settings_or_a_finished_run_start_afresh_instead_of_resuming(shards, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        engine.train(tiny_model(), shards / "train", tmp_path / "run", TrainParams(epochs=2, **FAST), stop_after=7)
    history = engine.train(tiny_model(), shards / "train", tmp_path / "run", TrainParams(epochs=2, **{**FAST, "lr": 0.01}))
    assert history["resumed_from"] == 0  # other settings
    history = engine.train(tiny_model(), shards / "train", tmp_path / "run", TrainParams(epochs=2, **{**FAST, "lr": 0.01}))
    assert history["resumed_from"] == 0 and len(history["epochs"]) == 2  # the same settings, but that run had finished


def test_frozen_parameters_stay_frozen(shards, tmp_path):
    model = tiny_model()
    head = model.net.layers[-1]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    engine.train(model, shards / "train", tmp_path / "run", TrainParams(epochs=1, **{**FAST, "weight_decay": 0.0}), parameters=head.parameters())
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k]) and "running" not in k and "num_batches" not in k}
    assert changed and all(k.startswith("net.layers.8.") for k in changed)


def test_two_process_torchrun_sees_every_sample_once_per_epoch(tmp_path):
    shards = tmp_path / "shards"  # 5 shards of 20, 20, 20, 20, 16: the ranks get 56 and 36 samples (uneven)
    prepare(DataParams(train_size=96, val_size=12, test_size=12, shard_size=20, workers=1), shards)
    script = tmp_path / "ddp_train.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, torch
        from robust import engine
        from robust.models import create
        from robust.engine import TrainParams
        torch.manual_seed(0)
        model = create("deepcorrect_net", 12, width=0.1)
        history = engine.train(model, r"{shards / 'train'}", r"{tmp_path / 'run'}", TrainParams(epochs=2, batch_size=10, workers=0, device="cpu"))
        if int(os.environ["RANK"]) == 0:
            json.dump(history, open(r"{tmp_path / 'history.json'}", "w"))
        torch.distributed.destroy_process_group()
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    history = json.loads((tmp_path / "history.json").read_text())
    assert [e["samples_seen"] for e in history["epochs"]] == [96, 96]  # every sample once per epoch across the ranks
    assert (tmp_path / "run" / "model.pt").is_file()


def test_a_baseline_trains_to_the_same_weights_twice(shards, tmp_path):
    from robust.methods import train_from_params

    params = {"models": {"net": {"method": "baseline", "start": str(shards), "arch": "deepcorrect_net", "width": 0.1}},
              "train": {"epochs": 1, **FAST}}
    for run in ("a", "b"):
        train_from_params(params, "net", shards, tmp_path / run, tmp_path / f"{run}-live")
    a = torch.load(tmp_path / "a" / "net" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "net" / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("arch", ["deepcorrect_net", "alexnet_small"])
def test_inference_model_folds_batch_norm_keeps_the_scores_and_leaves_the_model_alone(arch):
    torch.manual_seed(1)
    model = create(arch, 12, width=0.25)
    with torch.no_grad():  # BN statistics that are not the identity, so folding has something to do
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0), m.weight.uniform_(0.5, 1.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    fast = engine.inference_model(model)
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert fast.folded and not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert engine.inference_model(fast) is fast
    x = torch.rand(64, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        expected, got = model(x), fast(x)
    assert torch.allclose(expected, got, atol=1e-4) and torch.equal(expected.argmax(1), got.argmax(1))


def test_evaluate_counts_what_the_model_predicts(shards):
    from robust.data.loader import make_loader

    model = tiny_model().eval()
    x, y = next(iter(make_loader(shards / "test", batch_size=24)))
    with torch.no_grad():
        top1 = (model(x).argmax(1) == y).float().mean().item()
    scores = engine.evaluate(model, shards / "test", batch_size=5, desc=False)  # uneven last batch
    assert scores["n"] == 24 and scores["top1"] == pytest.approx(top1)
