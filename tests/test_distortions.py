"""The distortion registry: names, suites, level checks, seeding, and the own distortions' maths."""

import io

import numpy as np
import pytest
from PIL import Image

from robust import distortions as D
from robust.errors import ParamError


def image(size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_registry_holds_the_19_package_corruptions_in_order_and_the_suites():
    from imagecorruptions import get_corruption_names

    assert D.IMAGENET_C + D.IMAGENET_C_EXTRA == tuple(get_corruption_names("all"))
    assert D.SUITES["imagenet_c"] == tuple(get_corruption_names("common"))
    assert D.SUITES["imagenet_c_extra"] == tuple(get_corruption_names("validation"))
    assert set(D.DISTORTIONS) == {n for names in D.SUITES.values() for n in names} - D.RELEASED_ONLY
    assert D.SUITES["cure_tsr"] == tuple(sorted(D.RELEASED_ONLY, key=D.CURE_TSR.index)) and len(D.CURE_TSR) == 12
    assert D.get("dc_blur").levels == 6 and D.get("fog").levels == 5 and D.get("ra_jpeg").levels == 5


@pytest.mark.parametrize("name", list(D.DISTORTIONS))
def test_every_distortion_is_a_pure_function_of_its_generator(name):
    d = D.get(name)
    x = image()
    for level in (1, d.levels):
        a = d(x, level, np.random.default_rng(7))
        b = d(x, level, np.random.default_rng(7))
        assert a.shape == x.shape and a.dtype == np.uint8
        assert np.array_equal(a, b), f"{name} level {level} is not repeatable"
    assert not np.array_equal(d(x, d.levels, np.random.default_rng(7)), x)


@pytest.mark.parametrize("name", ["gaussian_noise", "impulse_noise", "glass_blur", "dc_awgn", "ra_noise", "spatter"])
def test_random_distortions_change_with_the_generator(name):
    d = D.get(name)
    x = image(seed=1)
    assert not np.array_equal(d(x, 3, np.random.default_rng(1)), d(x, 3, np.random.default_rng(2)))


def test_unknown_name_and_bad_level_are_clear_errors():
    with pytest.raises(ParamError, match="did you mean gaussian_noise"):
        D.get("gausian_noise")
    with pytest.raises(ParamError, match="Level 6 is out of range for distortion fog.*1 to 5"):
        D.get("fog")(image(), 6, np.random.default_rng(0))
    with pytest.raises(ParamError, match="Level 0"):
        D.get("dc_blur")(image(), 0, np.random.default_rng(0))
    with pytest.raises(ParamError, match="Unknown distortion suite"):
        D.suite("weather")


def test_dc_blur_is_a_normalised_gaussian_with_4_sigma_plus_1_taps():
    x = np.zeros((33, 33, 3), np.uint8)
    x[16, 16] = 255
    sigma = 1.0
    out = D.get("dc_blur")(x, 2, np.random.default_rng(0)).astype(float)  # CIFAR table level 2: sigma 1
    taps = np.arange(-2, 3)
    kernel = np.exp(-(taps**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    expected = np.round(255 * np.outer(kernel, kernel))
    np.testing.assert_array_equal(out[14:19, 14:19, 0], expected)
    assert out[16, 13, 0] == 0 and out[13, 16, 0] == 0  # nothing beyond 2*sigma


def test_noise_distortions_have_their_table_sigma():
    x = np.full((200, 200, 3), 128, np.uint8)
    awgn = D.get("dc_awgn")(x, 4, np.random.default_rng(0)).astype(float) - 128  # sigma 20 on 0-255
    assert abs(awgn.std() - 20) < 0.5 and abs(awgn.mean()) < 0.5
    ra = D.get("ra_noise")(x, 3, np.random.default_rng(0)).astype(float) - 128  # sigma 0.1 on [0, 1]
    assert abs(ra.std() - 25.5) < 0.5


def test_ra_jpeg_and_bicubic_match_pil():
    x = image(64)
    buffer = io.BytesIO()
    Image.fromarray(x).save(buffer, format="JPEG", quality=10)
    assert np.array_equal(D.get("ra_jpeg")(x, 3, np.random.default_rng(0)), np.array(Image.open(buffer).convert("RGB")))
    down = Image.fromarray(x).resize((16, 16), Image.Resampling.BICUBIC).resize((64, 64), Image.Resampling.BICUBIC)
    assert np.array_equal(D.get("ra_bicubic")(x, 4, np.random.default_rng(0)), np.asarray(down))  # x4


def test_configured_tables_auto_cifar_imagenet_and_override():
    dc = {"table": "auto", "cifar": [0.5, 1, 1.5, 2, 2.5, 3], "imagenet": [1, 2, 3, 4, 5, 6]}
    assert D.configured("dc_blur", dc, 32).table == (0.5, 1, 1.5, 2, 2.5, 3)
    assert D.configured("dc_blur", dc, 224).table == (1, 2, 3, 4, 5, 6)
    assert D.configured("dc_blur", {**dc, "table": "imagenet"}, 32).table == (1, 2, 3, 4, 5, 6)
    three = D.configured("ra_noise", {"levels": [0.1, 0.2, 0.3]}, 32)
    assert three.levels == 3 and three.table == (0.1, 0.2, 0.3)
    with pytest.raises(ParamError, match="distortions.dc_blur.table"):
        D.configured("dc_blur", {**dc, "table": "tiny"}, 32)
    with pytest.raises(ParamError, match="constants table"):
        D.get("fog").with_table([1, 2])


def test_configured_imagenet_c_corruptions_take_the_constants_table_by_size_or_by_name():
    from robust.distortions import imagenet_c

    assert D.get("fog").constants == "imagenet"  # the registry's default: ImageNet-C's own (make_imagenet_c.py) at 224 px
    assert [D.configured("fog", None, size).constants for size in (32, 64, 224)] == ["cifar", "tinyimagenet", "imagenet"]
    assert D.configured("fog", None, 224) is D.get("fog")
    assert D.configured("fog", None, 32, constants="imagenet") is D.get("fog")
    x = image(32)
    fog = D.configured("fog", None, 32, constants="tinyimagenet")
    seed = D.package_seed(np.random.default_rng(5))
    np.testing.assert_array_equal(fog(x, 2, np.random.default_rng(5)), imagenet_c.corrupt(x, "fog", 2, imagenet_c.TINYIMAGENET, seed))
    with pytest.raises(ParamError, match="corrupt.constants"):
        D.configured("fog", None, 32, constants="cifar10")
    assert D.configured("dc_blur", None, 32, constants="imagenet").constants is None  # own distortions have none


def test_params_match_the_registry_defaults():
    """params.yaml's tables are the seeds' published tables held in the registry."""
    from pathlib import Path

    import yaml

    tables = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())["distortions"]
    for name, values in D.TABLES.items():
        for key, table in values.items():
            assert tuple(tables[name]["levels" if key == "default" else key]) == table, name


def test_sample_seed_depends_on_every_input():
    base = D.sample_seed(0, "fog", 3, "test_000001")
    assert 0 <= base < 2**32
    assert base == D.sample_seed(0, "fog", 3, "test_000001")
    others = {D.sample_seed(1, "fog", 3, "test_000001"), D.sample_seed(0, "snow", 3, "test_000001"),
              D.sample_seed(0, "fog", 4, "test_000001"), D.sample_seed(0, "fog", 3, "test_000002")}
    assert base not in others and len(others) == 4


def test_spatter_with_an_empty_water_layer_returns_the_image_not_nan_garbage():
    import warnings

    from robust.data.sources.builtin import BuiltinSource

    source = BuiltinSource({"train": 1, "val": 1, "test": 200})
    spatter = D.get("spatter")
    for index in range(200):
        x = source.make_sample(index % 12, "test", index)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the package's 0/0 would warn here
            out = spatter(x, 1, np.random.default_rng(index))
        if np.array_equal(out, x):
            return  # found an empty layer: the image came back unchanged, with no NaN warning
    pytest.fail("no 32-px image with an empty spatter layer found in 200 (expected about 3)")
