"""Seed 003's training mix (issue 15): one corruption per image, uniform severities, and the
held-out protocol that never trains on a corruption mCE averages."""

from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from robust.corruption_mix import corrupt, draw, training_corruptions
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
