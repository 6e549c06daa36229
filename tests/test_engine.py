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
from robust.errors import ParamError
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
    assert history["kept"] is history["epochs"][-1]  # no keep_best: the last epoch's weights and record
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    curve = (tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in curve[1:]] == ["0", "1", "2"]  # one point per epoch, no duplicate


def test_zero_epochs_saves_the_start_weights_with_every_output_of_a_training(shards, tmp_path):
    """A pretrained network scored as it is: model.pt holds the start weights, the checkpoint is complete,
    DVCLive has the start weights' validation as step 0 (the train stage's outputs all exist)."""
    model = tiny_model()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    history = engine.train(model, shards / "train", tmp_path / "run", TrainParams(epochs=0, **FAST), val_dir=shards / "val", log_dir=tmp_path / "live")
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in start.items())
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["complete"]
    assert [e["epoch"] for e in history["epochs"]] == [0] and "val_top1" in history["epochs"][0]
    assert history["best_epoch"] == 0 and history["kept"] is history["epochs"][0]  # the start weights are what was kept
    curve = (tmp_path / "live" / "plots" / "metrics" / "val" / "top1.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in curve[1:]] == ["0"]
    assert "val" in json.loads((tmp_path / "live" / "metrics.json").read_text())


def test_a_run_killed_before_its_completion_mark_ends_without_logging_its_last_epoch_again(shards, tmp_path):
    params = TrainParams(epochs=2, **FAST)
    engine.train(tiny_model(), shards / "train", tmp_path / "run", params, log_dir=tmp_path / "live")
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    torch.save({**state, "complete": False}, tmp_path / "run" / "checkpoint.pt")  # killed after the last save, before the mark
    (tmp_path / "run" / "model.pt").unlink()
    history = engine.train(tiny_model(), shards / "train", tmp_path / "run", params, log_dir=tmp_path / "live")
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert history["resumed_from"] == 2 and all(torch.equal(saved[k], v) for k, v in state["model"].items())  # the last epoch's weights
    curve = (tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in curve[1:]] == ["0", "1"]  # no repeated last row


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


def test_cuda_means_the_process_own_gpu_under_torchrun(monkeypatch):
    from robust.engine import pick_device

    monkeypatch.setenv("LOCAL_RANK", "2")
    assert pick_device("cuda") == torch.device("cuda", 2)  # once: every rank on GPU 0
    assert pick_device("cuda:1") == torch.device("cuda", 1)  # an explicit index is taken as given
    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == torch.device("cuda", 2)
    monkeypatch.delenv("LOCAL_RANK")
    assert pick_device("cuda") == torch.device("cuda", 0)


def test_an_interrupted_method_run_does_not_resume_onto_a_changed_base(shards, tmp_path, monkeypatch):
    from robust.methods import train_from_params

    base = tmp_path / "models" / "net" / "model.pt"
    params = {"models": {"net": {"method": "baseline", "start": str(shards), "arch": "deepcorrect_net", "width": 0.1},
                         "ft": {"method": "finetune", "start": str(base), "base": "net", "fraction": 0.0}},
              "methods": {"finetune": {"train": {"epochs": 2}}}, "train": {"epochs": 1, **FAST}}
    train_from_params(params, "net", shards, tmp_path / "models", tmp_path / "live")
    real_train = engine.train
    monkeypatch.setattr(engine, "train", lambda *a, **k: real_train(*a, **{**k, "stop_after": 7}))  # killed in epoch 2
    with pytest.raises(KeyboardInterrupt):
        train_from_params(params, "ft", shards, tmp_path / "models", tmp_path / "live")
    monkeypatch.setattr(engine, "train", real_train)
    weights = torch.load(base, weights_only=True)
    torch.save({k: v + 0.01 if v.is_floating_point() else v for k, v in weights.items()}, base)  # the base was retrained meanwhile
    history = train_from_params(params, "ft", shards, tmp_path / "models", tmp_path / "live")
    assert history["resumed_from"] == 0  # once: resumed epoch 2 onto the old base's fine-tuned weights
    with pytest.raises(KeyboardInterrupt):  # the same inputs: an interruption still resumes
        monkeypatch.setattr(engine, "train", lambda *a, **k: real_train(*a, **{**k, "stop_after": 7}))
        (tmp_path / "models" / "ft" / "checkpoint.pt").unlink()
        train_from_params(params, "ft", shards, tmp_path / "models", tmp_path / "live")
    monkeypatch.setattr(engine, "train", real_train)
    assert train_from_params(params, "ft", shards, tmp_path / "models", tmp_path / "live")["resumed_from"] == 1


def test_validation_under_torchrun_scores_every_val_shard(shards, monkeypatch):
    # rank 0 of 2 (and of more ranks than val shards) once read only its 1/world of the val
    # shards, or raised while the other ranks waited
    from robust.data import loader

    model = tiny_model()
    alone = engine.evaluate(model, shards / "val", batch_size=10, desc=False)
    for world in (2, 5):
        monkeypatch.setattr(loader, "_rank_world", lambda world=world: (0, world))
        assert engine.evaluate(model, shards / "val", batch_size=10, desc=False) == alone
    assert alone["n"] == 24
    monkeypatch.setattr(loader, "_rank_world", lambda: (0, 2))
    assert len(loader.make_loader(shards / "train", 16).dataset) == 48  # training still splits its 4 shards by rank


def test_ranks_draw_their_own_noise_and_resume_their_own_random_state(tmp_path):
    # every rank once seeded the same (duplicated noise / distortions) and a resume gave every
    # rank rank 0's random state
    shards = tmp_path / "shards"
    prepare(DataParams(train_size=80, val_size=12, test_size=12, shard_size=20, workers=1), shards)
    script = tmp_path / "ddp_noise.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, sys, torch
        import torch.nn.functional as F
        from robust import engine
        from robust.models import create
        from robust.engine import TrainParams
        out, stop = sys.argv[1], (int(sys.argv[2]) or None)
        rank = int(os.environ["RANK"])
        draws = []
        def loss_fn(model, images, labels):
            noise = torch.rand(1)  # what a noise method draws from the global generator
            draws.append(float(noise))
            logits = model(images + 0 * noise)
            return F.cross_entropy(logits, labels), logits
        torch.manual_seed(0)
        model = create("deepcorrect_net", 12, width=0.1)
        try:
            engine.train(model, r"{shards / 'train'}", out, TrainParams(epochs=3, batch_size=10, workers=0, device="cpu"), loss_fn=loss_fn,
                         stop_after=stop)
        except KeyboardInterrupt:
            pass
        json.dump(draws, open(f"{{out}}-draws-{{rank}}.json", "w"))
        torch.distributed.destroy_process_group()
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def run(out: str, stop: int) -> list[list[float]]:
        result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
                                 str(tmp_path / out), str(stop)], capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return [json.loads((tmp_path / f"{out}-draws-{rank}.json").read_text()) for rank in (0, 1)]

    whole = run("whole", 0)  # 4 batches per rank per epoch
    assert len(whole[0]) == 12 and not set(whole[0]) & set(whole[1])  # each rank its own draws
    first = run("resumed", 6)  # killed in epoch 2, after the epoch-1 checkpoint
    assert [d[:4] for d in first] == [d[:4] for d in whole]
    resumed = run("resumed", 0)  # epochs 2 and 3 from the checkpoint: each rank continues its own stream
    assert resumed == [d[4:] for d in whole]


def test_per_image_results_are_indexed_by_folder_position_whatever_reads_them(shards, tmp_path):
    # a folder without its decoded copy, read by 2 DataLoader workers (batches interleave)
    import shutil

    folder = tmp_path / "tars"
    shutil.copytree(shards / "train", folder)
    info = json.loads((folder / "info.json").read_text())
    info["decoded"] = None
    (folder / "info.json").write_text(json.dumps(info))
    model = tiny_model()
    decoded = engine.evaluate(model, shards / "train", batch_size=10, desc=False, per_image=True)
    tars = engine.evaluate(model, folder, batch_size=10, workers=2, desc=False, per_image=True)
    assert decoded["n"] == tars["n"] == 96 and np_equal(decoded["correct"], tars["correct"])
    assert decoded["correct"].mean() == pytest.approx(decoded["top1"])


def np_equal(a, b) -> bool:
    import numpy as np

    return bool(np.array_equal(a, b))


def test_evaluation_under_torchrun_equals_one_process(tmp_path):
    from robust import distortions
    from robust.distortions.corrupt import corrupt
    from robust.distortions.settings import CorruptParams
    from robust.evaluation.scoring import evaluate_from_params, load_correct

    root = tmp_path / "data"  # 5 test shards of 10, 10, 10, 10, 6 for 2 ranks: uneven
    prepare(DataParams(train_size=24, val_size=12, test_size=46, shard_size=10, workers=1), root / "clean")
    for level in (1, 2):
        corrupt(root / "clean", root / "corrupt" / "fog" / str(level), distortions.get("fog"), level, CorruptParams(workers=1))
    (root / "models" / "net").mkdir(parents=True)
    torch.save(tiny_model().state_dict(), root / "models" / "net" / "model.pt")
    params = {"models": {"net": {"method": "baseline", "start": str(root / "clean"), "arch": "deepcorrect_net", "width": 0.1}},
              "corrupt": {"suites": {"imagenet_c": ["fog"]}}, "evaluate": {"batch_size": 7, "device": "cpu"}}
    (tmp_path / "params.json").write_text(json.dumps(params))
    one = evaluate_from_params(params, "net", root / "clean", root / "corrupt", root / "models", tmp_path / "one", tmp_path / "one-correct")
    script = tmp_path / "ddp_eval.py"
    script.write_text(textwrap.dedent(f"""
        import json, torch
        from robust.evaluation.scoring import evaluate_from_params
        params = json.load(open(r"{tmp_path / 'params.json'}"))
        evaluate_from_params(params, "net", r"{root / 'clean'}", r"{root / 'corrupt'}", r"{root / 'models'}", r"{tmp_path / 'ddp'}",
                             r"{tmp_path / 'ddp-correct'}")
        torch.distributed.destroy_process_group()
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp" / "net.json").read_text())
    assert ddp == json.loads((tmp_path / "one" / "net.json").read_text()) and ddp["n"] == 46
    assert one["distortions"]["fog"]["levels"]["2"]["n"] == 46
    a, b = load_correct(tmp_path / "one-correct" / "net" / "correct.npz"), load_correct(tmp_path / "ddp-correct" / "net" / "correct.npz")
    assert set(a) == set(b) == {"clean", "fog@1", "fog@2"} and all(np_equal(a[k], b[k]) for k in a)


class _Rows:
    """A BatchSource of fixed random rows: what the gradient detectors train on."""

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(32, 4, generator=gen), torch.randint(0, 2, (32,), generator=gen).float()
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return 4

    def __iter__(self):
        for i in range(4):
            yield self.x[i * 8:(i + 1) * 8], self.y[i * 8:(i + 1) * 8]


def _row_loss(model, rows, labels):
    return torch.nn.functional.binary_cross_entropy_with_logits(model(rows).squeeze(-1), labels), None


@pytest.mark.parametrize("interrupt", [False, True])
def test_keep_best_keeps_the_epoch_with_the_lowest_validation_value_also_across_a_resume(tmp_path, interrupt):
    scripted = iter([3.0, 1.0, 2.0, 5.0])  # validation values of epochs 1..4: epoch 2 is the best
    snapshots = []

    def validate(model):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"loss": next(scripted)}

    params = TrainParams(epochs=4, batch_size=8, optimizer="adam", lr=0.1, schedule="constant", augment="none", workers=0, device="cpu")
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    if interrupt:  # stopped inside epoch 3: the best so far (epoch 2) is in the checkpoint
        with pytest.raises(KeyboardInterrupt):
            engine.train(model, _Rows(), tmp_path, params, loss_fn=_row_loss, validate=validate, keep_best="val_loss", stop_after=9)
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
    history = engine.train(model, _Rows(), tmp_path, params, loss_fn=_row_loss, validate=validate, keep_best="val_loss")
    assert history["best_epoch"] == 2 and [e["val_loss"] for e in history["epochs"]] == [3.0, 1.0, 2.0, 5.0]
    assert history["kept"]["val_loss"] == 1.0
    assert "train_top1" not in history["epochs"][0]  # the loss step returned no logits
    saved = torch.load(tmp_path / "model.pt")
    assert all(torch.equal(saved[k], snapshots[1][k]) for k in saved) and all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    assert not torch.equal(saved["weight"], snapshots[-1]["weight"])  # not the last epoch's


def test_multistep_schedule_and_parameter_groups():
    """The seed-002 schedule (x0.1 after epochs 3 and 4) and an optimiser whose groups keep their own lr."""
    p = TrainParams.from_dict({"optimizer": "adam", "lr": 1e-4, "schedule": "multistep", "milestones": [3, 4], "epochs": 6})
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    b.bias.requires_grad_(False)
    optimizer = engine.build_optimizer([{"params": list(a.parameters())}, {"params": list(b.parameters()), "lr": 1e-2}], p)
    assert [len(g["params"]) for g in optimizer.param_groups] == [2, 1]  # the frozen bias left out
    schedule = engine.build_schedule(optimizer, p)
    lrs = []
    for _ in range(6):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs == pytest.approx([1e-4, 1e-4, 1e-4, 1e-5, 1e-6, 1e-6])
    assert optimizer.param_groups[1]["lr"] == pytest.approx(1e-4)  # 1e-2 decayed twice
    for bad in ({"schedule": "multistep"}, {"schedule": "multistep", "milestones": [4, 3]}, {"milestones": [0]},
                {"schedule": "multistep", "milestones": [10], "epochs": 10},  # would never fire
                {"schedule": "cosine", "milestones": [3]}):  # would be ignored
        with pytest.raises(ParamError, match="milestones"):
            TrainParams.from_dict(bad)


def test_flip_rotate_rotates_each_image_within_the_range_and_flips_half():
    ones = torch.ones(64, 3, 33, 33)
    out = engine.augment(ones, "flip-rotate", torch.Generator().manual_seed(0), degrees=15)
    zero = (out == 0).float().mean(dim=(1, 2, 3))  # rotated corners are filled with 0, as torchvision's RandomRotation
    # a square rotated by a in (0, 15] degrees loses (sin a)(1 - ...) of its area: at most 12 %, and < 1 % only near 0 degrees
    assert bool((zero <= 0.12).all()) and int((zero > 0.01).sum()) >= 48
    assert out[:, :, 16, 16].eq(1).all()  # the centre never moves
    ramp = torch.arange(33.0).expand(8, 3, 33, 33) / 32
    flipped = engine.augment(ramp, "flip-rotate", torch.Generator().manual_seed(1), degrees=0)
    assert 0 < sum(bool(torch.equal(f, ramp[0].flip(2))) for f in flipped) < 8  # degrees 0: flips only, about half
    assert all(torch.equal(f, ramp[0]) or torch.equal(f, ramp[0].flip(2)) for f in flipped)
    with pytest.raises(ParamError, match="rotate_degrees"):
        TrainParams.from_dict({"rotate_degrees": -1})
    with pytest.raises(ParamError, match="flip-rotate"):
        TrainParams.from_dict({"augment": "rotate"})
