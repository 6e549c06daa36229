"""The own ImageNet-C implementation: bit-identical to ``imagecorruptions`` with the imagenet
table (32, 64 and 224 px), and the CIFAR / Tiny-ImageNet tables sized to small images."""

import numpy as np
import pytest
from imagecorruptions import corrupt as package_corrupt
from PIL import Image

from robust import imagenet_c as C
from robust.distortions import OWN_RNG


def photo(size: int, which: int = 0) -> np.ndarray:
    """A natural photo (scikit-image's bundled astronaut / cat / coffee) at ``size`` px."""
    from skimage import data

    picture = (data.astronaut, data.chelsea, data.coffee)[which]()
    side = min(picture.shape[:2])
    return np.asarray(Image.fromarray(picture[:side, :side]).resize((size, size), Image.Resampling.BICUBIC))


def package(image: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray | None:
    """The package's output under ``np.random.seed(seed)`` (and ``seed=`` where it takes one);
    None where the package's spatter divides an empty water layer by 0 (its NaN bug)."""
    np.random.seed(seed)
    kwargs = {"seed": seed} if name in OWN_RNG else {}
    try:
        with np.errstate(invalid="raise"):
            return np.asarray(package_corrupt(image.copy(), corruption_name=name, severity=severity, **kwargs))
    except FloatingPointError:
        assert name == "spatter", f"{name} produced NaN in the package"
        return None


# At 32 and 64 px: every severity on two photos; at 224 px: every severity on one photo (the
# package's zoom blur and glass blur take ~0.1-0.2 s per 224 px image).
PARITY_CASES = [(32, 2), (64, 2), (224, 1)]


@pytest.mark.parametrize("size,photos", PARITY_CASES)
@pytest.mark.parametrize("name", C.CORRUPTIONS)
def test_imagenet_table_equals_the_package_bit_for_bit(name, size, photos):
    for which in range(photos):
        image = photo(size, which)
        for severity in range(1, 6):
            seed = 1000 * severity + 17 * which + size
            expected = package(image, name, severity, seed)
            ours = C.corrupt(image.copy(), name, severity, C.IMAGENET, seed)
            if expected is None:  # documented deviation: no drops fell, the image stays as it was
                np.testing.assert_array_equal(ours, image)
                continue
            assert ours.dtype == np.uint8 and ours.shape == image.shape
            np.testing.assert_array_equal(ours, expected, err_msg=f"{name} severity {severity} at {size} px, photo {which}")


def test_spatter_on_an_empty_water_layer_returns_the_image_where_the_package_gives_nan():
    image = np.full((32, 32, 3), 128, np.uint8)
    empty = [seed for seed in range(200) if package(image, "spatter", 1, seed) is None]
    assert empty, "no seed gave the package's empty water layer: the deviation is untested"
    for seed in empty[:3]:
        np.testing.assert_array_equal(C.corrupt(image, "spatter", 1, C.IMAGENET, seed), image)


def test_auto_picks_the_table_by_image_size():
    assert [C.choose_constants("auto", s).name for s in (16, 32, 33, 64, 65, 224)] == [
        "cifar", "cifar", "tinyimagenet", "tinyimagenet", "imagenet", "imagenet"]  # fmt: skip
    assert C.choose_constants("imagenet", 32).name == "imagenet"
    assert C.choose_constants("cifar", 224).name == "cifar"
    with pytest.raises(KeyError, match="tiny"):
        C.choose_constants("tiny", 32)


@pytest.mark.parametrize("table", list(C.CONSTANTS.values()), ids=list(C.CONSTANTS))
def test_every_table_has_five_severities_for_all_19(table):
    assert set(table.values) == set(C.CORRUPTIONS)
    assert all(len(levels) == 5 for levels in table.values.values())


def distance(name: str, table: C.Constants, severity: int, size: int = 32) -> float:
    """Mean absolute change of three photos under one corruption (grey levels)."""
    return float(np.mean([np.abs(C.corrupt(photo(size, i), name, severity, table, 7 * severity + i).astype(float) - photo(size, i)).mean() for i in range(3)]))


@pytest.mark.parametrize("name", [n for n in C.CORRUPTIONS if n != "elastic_transform"])
def test_cifar_constants_are_milder_than_imagenet_at_32_px(name):
    # elastic differs in kind (the scripts' affine + field vs the package's field), not in strength
    cifar = sum(distance(name, C.CIFAR, s) for s in range(1, 6))
    imagenet = sum(distance(name, C.IMAGENET, s) for s in range(1, 6))
    assert cifar < imagenet


@pytest.mark.parametrize("name", ["fog", "defocus_blur", "gaussian_blur"])
def test_the_corruptions_that_left_models_at_chance_keep_the_image_at_severity_1(name):
    # the measurement: imagenet fog / defocus at 32 px destroyed the image from severity 1
    assert distance(name, C.CIFAR, 1) < 0.5 * distance(name, C.IMAGENET, 1)


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "pixelate",
                                  "jpeg_compression", "contrast", "brightness", "fog"])  # fmt: skip
@pytest.mark.parametrize("table", [C.CIFAR, C.TINYIMAGENET], ids=["cifar", "tinyimagenet"])
def test_strength_grows_with_severity_for_monotone_corruptions(name, table):
    size = table.size
    values = [distance(name, table, s, size) for s in range(1, 6)]
    assert values == sorted(values), values


@pytest.mark.parametrize("table", list(C.CONSTANTS.values()), ids=list(C.CONSTANTS))
@pytest.mark.parametrize("size", [20, 48, 100])
def test_every_corruption_keeps_shape_and_is_a_pure_function_of_its_seed_at_any_size(table, size):
    image = photo(size)
    for name in C.CORRUPTIONS:
        a = C.corrupt(image, name, 5, table, 3)
        assert a.shape == image.shape and a.dtype == np.uint8, name
        np.testing.assert_array_equal(a, C.corrupt(image, name, 5, table, 3), err_msg=name)


def test_the_fog_map_follows_the_image_size():
    # the plasma map is the next power of two of the image side, cropped: 48 px -> a 64 px map
    fractal = C._plasma_fractal(64, 2.0, np.random.RandomState(0))
    assert fractal.shape == (64, 64) and fractal.min() == 0 and fractal.max() == 1
    grey = 0.5
    image = np.full((48, 48, 3), 255 * grey, np.uint8)
    grey = image[0, 0, 0] / 255.0
    strength, decay = C.CIFAR.level("fog", 3)
    heights = C._plasma_fractal(64, decay, np.random.RandomState(5))[:48, :48]
    expected = np.uint8(np.clip((grey + strength * heights) * grey / (grey + strength), 0, 1) * 255)
    fogged = C.corrupt(image, "fog", 3, C.CIFAR, 5)
    np.testing.assert_array_equal(fogged[..., 0], expected)
    assert len(np.unique(fogged)) > 20  # the map varies across the image


def test_the_scripts_trim_a_zoomed_image_around_its_centre_and_the_package_from_its_corner():
    zoomed = np.arange(36 * 36, dtype=np.float32).reshape(36, 36, 1)
    np.testing.assert_array_equal(C._trim(zoomed, 32, 32, "center"), zoomed[2:34, 2:34])
    np.testing.assert_array_equal(C._trim(zoomed, 32, 32, "top-left"), zoomed[:32, :32])
    assert C._zoom(np.zeros((32, 32, 3), np.float32), 1.25).shape[2] == 3


def test_level_values_are_json_ready():
    import json

    for table in C.CONSTANTS.values():
        for name in C.CORRUPTIONS:
            values = C.level_values(table, name)
            assert len(values) == 5
            json.dumps(values)
    # np.arange(1, 1.06, 0.01) ends at 1.06 by float rounding, in the scripts as here
    assert C.level_values(C.CIFAR, "zoom_blur")[0] == [1.0, 1.01, 1.02, 1.03, 1.04, 1.05, 1.06]
