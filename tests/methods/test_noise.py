"""Noise augmentation and ANT: the exact norm projection, noise in pixel space before
normalisation, the replay mix, and a generator that starts as Gaussian noise."""

import math

import pytest
import torch
from torch import nn

from robust.methods import ant, noise
from robust.models import Classifier, create
from robust.models.noise_generator import NoiseGenerator


def _norm(x, d, eta):
    return ((x + eta * d).clamp(0, 1) - x).flatten().norm().item()


def _bisect(x, d, eps):
    lo, hi = 0.0, 1.0
    while _norm(x, d, hi) < eps and hi < 1e6:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _norm(x, d, mid) < eps else (lo, mid)
    return hi


def test_solver_matches_bisection_on_random_inputs():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(20, 3, 6, 6, generator=gen)
    x[::5] = (x[::5] > 0.5).float()  # some images already at the bounds
    d = torch.randn(20, 3, 6, 6, generator=gen)
    eps = torch.rand(20, generator=gen) * 4 + 0.05
    eta = ant.solve_eta(x, d, eps)
    for i in range(20):
        assert _norm(x[i], d[i], eta[i].item()) == pytest.approx(eps[i].item(), rel=1e-4)
        assert eta[i].item() == pytest.approx(_bisect(x[i].double(), d[i].double(), eps[i].item()), rel=1e-4)


def test_unreachable_epsilon_saturates_every_pixel():
    x = torch.rand(3, 3, 4, 4)
    d = torch.randn(3, 3, 4, 4)
    eta = ant.solve_eta(x, d, 1e3)
    full = ((x + 1e6 * d).clamp(0, 1) - x).flatten(1).norm(dim=1)  # the largest reachable norm
    for i in range(3):
        assert _norm(x[i], d[i], eta[i].item()) == pytest.approx(full[i].item(), rel=1e-5)
        assert _norm(x[i], d[i], eta[i].item() * 0.999) < full[i].item()  # the smallest eta that saturates all
    assert ant.solve_eta(x[:1], torch.zeros(1, 3, 4, 4), 1.0).item() == 0.0  # no direction: no noise


def test_pixels_the_direction_does_not_move_never_saturate():
    # a direction with exact zeros (a ReLU'd generator can give them): before the fix an
    # unreachable epsilon returned eta = inf, a reachable one could too
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 4, 4, generator=gen)
    d = torch.randn(4, 3, 4, 4, generator=gen)
    d[:, 0] = 0
    d[3] = 0
    d[3, 1, 0, 0] = 1.0  # one moving pixel only
    far = ant.solve_eta(x, d, 1e3)
    assert torch.isfinite(far).all()
    full = ((x + 1e6 * d).clamp(0, 1) - x).flatten(1).norm(dim=1)
    for i in range(4):
        assert _norm(x[i], d[i], far[i].item()) == pytest.approx(full[i].item(), rel=1e-5)
    near = ant.solve_eta(x, d, 0.2 * full)
    for i in range(4):
        assert _norm(x[i], d[i], near[i].item()) == pytest.approx(0.2 * full[i].item(), rel=1e-4)


def test_projection_gives_the_per_pixel_rms_norm():
    x = torch.rand(4, 3, 16, 16)
    out = ant.project(x, torch.randn(4, 3, 16, 16), 0.1)
    norms = (out - x).flatten(1).norm(dim=1)
    assert torch.allclose(norms, torch.full((4,), 0.1 * math.sqrt(3 * 16 * 16)), rtol=1e-4)
    assert out.min() >= 0 and out.max() <= 1


def test_projection_stays_float32_for_a_bf16_generator():
    # under bf16 autocast the generator's direction is bf16; eta was cast to bf16 with it and
    # the noise missed its norm by up to ~0.5 %
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 16, 16, generator=gen)
    delta = torch.randn(4, 3, 16, 16, generator=gen).bfloat16()
    out = ant.project(x, delta, 0.1)
    assert out.dtype == torch.float32
    norms = (out - x).flatten(1).norm(dim=1)
    assert torch.allclose(norms, torch.full((4,), 0.1 * math.sqrt(3 * 16 * 16)), rtol=1e-4)


class Spy(nn.Module):
    """Records what reaches the bare network, i.e. after the Classifier's normalisation."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        self.seen = x.detach().clone()
        return x.mean((2, 3)) + self.w


@pytest.mark.parametrize("kind", ["gauss", "gauss_mult", "speckle"])
def test_noise_is_added_in_pixel_space_before_normalisation_and_clamped(kind):
    torch.manual_seed(0)
    model = Classifier(Spy())
    images = torch.rand(40, 3, 8, 8) * 0.8 + 0.1
    settings = noise.NoiseSettings(kind=kind, fraction=0.5)
    noisy = noise.add_noise(images, settings)
    assert noisy.min() >= 0 and noisy.max() <= 1
    changed = (noisy != images).flatten(1).any(1)
    assert int(changed.sum()) == 20  # half the batch, the rest bit-identical
    if kind != "gauss":  # one sigma per image, from the table
        table = settings.gauss_mult_sigmas if kind == "gauss_mult" else settings.speckle_sigmas
        spread = ((noisy - images)[changed] / (images[changed] if kind == "speckle" else 1)).flatten(1).std(1)
        assert all(min(abs(s - t) for t in table) < 0.06 for s in spread.tolist() if s < 0.25)
    torch.manual_seed(1)
    expected = noise.add_noise(images, settings)
    torch.manual_seed(1)
    noise.noise_loss(settings)(model, images, torch.zeros(40, dtype=torch.long))  # the method's training step
    assert torch.allclose(model.net.seen * model.std + model.mean, expected, atol=1e-6)  # normalised after the noise
    assert not torch.allclose(model.net.seen, expected)


def test_generator_starts_as_nearly_gaussian_noise():
    torch.manual_seed(0)
    for variant in ("1x1", "3x3"):
        out = NoiseGenerator(variant)(64, 16, 16).detach().flatten()
        assert abs(out.mean().item()) < 0.02 and abs(out.std().item() - 1) < 0.02
        kurtosis = ((out - out.mean()) ** 4).mean() / out.var() ** 2
        assert abs(kurtosis.item() - 3) < 0.1
        assert out.shape[0] == 64 * 3 * 16 * 16


def test_replay_mix_has_the_configured_shares():
    assert ant.mix_counts(70, 0.3, 0.2) == (21, 14, 35)
    assert ant.mix_counts(10, 0.7, 0.5) == (7, 3, 0)

    class Constant(nn.Module):  # a "generator" whose noise marks who made it
        def __init__(self, value):
            super().__init__()
            self.value = value
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, n, h, w):
            return torch.full((n, 3, h, w), self.value) + self.w

    model = Classifier(Spy())
    state = ant.AntState(model, ant.AntSettings(epsilon=0.05), "unused", 8, 0)
    state.generator, state.pool = Constant(1.0), [Constant(-1.0)]
    images = torch.full((40, 3, 4, 4), 0.5)
    mixed = state.mixed_batch(images)
    sign = torch.sign((mixed - images).flatten(1).mean(1))
    assert (sign > 0).sum() == 12 and (sign < 0).sum() == 8 and (sign == 0).sum() == 20


def test_the_generator_step_runs_on_the_plain_module_not_the_ddp_wrapper():
    class Wrapper(nn.Module):  # stands in for DistributedDataParallel: counts the forwards through it
        def __init__(self, module):
            super().__init__()
            self.module, self.calls = module, 0

        def forward(self, x):
            self.calls += 1
            return self.module(x)

    torch.manual_seed(0)
    model = create("deepcorrect_net", 12, width=0.1)
    state = ant.AntState(model, ant.AntSettings(epsilon=0.05), "unused", 8, 0)
    state.generator = NoiseGenerator("1x1", hidden=4)
    state.optimizer = torch.optim.Adam(state.generator.parameters(), lr=1e-3)
    wrapped = Wrapper(model)
    loss, logits = ant.ant_loss(state)(wrapped, torch.rand(8, 3, 32, 32), torch.randint(0, 12, (8,)))
    assert wrapped.calls == 1 and logits.shape == (8, 12)  # only the classifier's forward goes through the wrapper


@pytest.mark.parametrize("stop_after", [6, 10])  # 4 batches per epoch: stopped in epoch 2 (empty pool) or 3 (one replayed generator)
def test_interrupted_ant_resumes_with_its_generators_and_ends_where_an_uninterrupted_run_ends(tmp_path, stop_after):
    from robust import engine
    from robust.data.prepare import prepare
    from robust.engine import TrainParams
    from robust.models import create
    from robust.params import DataParams

    prepare(DataParams(train_size=48, val_size=12, test_size=12, shard_size=12, workers=1), tmp_path / "clean")
    params = TrainParams(epochs=3, batch_size=12, workers=0, device="cpu", lr=0.01)
    settings = ant.AntSettings(fresh_steps=2, epsilon=0.1)

    def run(out, stop_after=None):
        torch.manual_seed(0)
        model = create("deepcorrect_net", 12, width=0.1)
        state = ant.AntState(model, settings, tmp_path / "clean" / "train", 12, 0)
        engine.train(model, tmp_path / "clean" / "train", out, params, loss_fn=ant.ant_loss(state), hooks=state, stop_after=stop_after)
        return model, state

    reference, ref_state = run(tmp_path / "ref")
    assert len(ref_state.pool) == 2  # the generators of epochs 1 and 2 kept for replay
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "run", stop_after=stop_after)
    resumed, state = run(tmp_path / "run")
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert all(torch.equal(a, b) for a, b in zip(ref_state.generator.state_dict().values(), state.generator.state_dict().values()))
    for g_ref, g in zip(ref_state.pool, state.pool, strict=True):  # restoring the pool drew nothing from the restored RNG
        assert all(torch.equal(a, b) for a, b in zip(g_ref.state_dict().values(), g.state_dict().values()))
