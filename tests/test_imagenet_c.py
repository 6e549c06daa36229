"""The own ImageNet-C implementation: bit-identical to ``imagecorruptions`` with the
imagecorruptions table (32, 64 and 224 px); the imagenet table equal to ``make_imagenet_c.py``
where the package fork departs from it (frost, elastic), checked against a literal transcription
of the script; the CIFAR / Tiny-ImageNet tables pinned to their scripts' lists."""

import numpy as np
import pytest
from imagecorruptions import corrupt as package_corrupt
from PIL import Image

from robust.distortions import imagenet_c as C
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
def test_imagecorruptions_table_equals_the_package_bit_for_bit(name, size, photos):
    for which in range(photos):
        image = photo(size, which)
        for severity in range(1, 6):
            seed = 1000 * severity + 17 * which + size
            expected = package(image, name, severity, seed)
            ours = C.corrupt(image.copy(), name, severity, C.PACKAGE, seed)
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
        np.testing.assert_array_equal(C.corrupt(image, "spatter", 1, C.PACKAGE, seed), image)


def test_auto_picks_the_table_by_image_size():
    assert [C.choose_constants("auto", s).name for s in (16, 32, 33, 64, 65, 224)] == [
        "cifar", "cifar", "tinyimagenet", "tinyimagenet", "imagenet", "imagenet"]  # fmt: skip
    assert C.choose_constants("imagenet", 32).name == "imagenet" and C.choose_constants("imagecorruptions", 224).name == "imagecorruptions"
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


# -- make_imagenet_c.py (Hendrycks), transcribed literally as the reference for the imagenet table ----
def script_frost(x: np.ndarray, severity: int) -> np.ndarray:
    """``frost`` of make_imagenet_c.py on a 224 px image, drawing from ``np.random``."""
    import cv2

    c = [(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)][severity - 1]
    idx = np.random.randint(5)
    frost = C._frost_picture(idx)  # the script's cv2.imread of frost1.png ... frost5.jpg
    x_start, y_start = np.random.randint(0, frost.shape[0] - 224), np.random.randint(0, frost.shape[1] - 224)
    frost = frost[x_start:x_start + 224, y_start:y_start + 224][..., [2, 1, 0]]
    return np.clip(c[0] * np.array(x) + c[1] * frost, 0, 255)


def script_elastic(image: np.ndarray, severity: int) -> np.ndarray:
    """``elastic_transform`` of make_imagenet_c.py (its constants in pixels: 244, "should have been 224")."""
    import cv2
    from scipy.ndimage import map_coordinates
    from skimage.filters import gaussian

    c = [(244 * 2, 244 * 0.7, 244 * 0.1), (244 * 2, 244 * 0.08, 244 * 0.2), (244 * 0.05, 244 * 0.01, 244 * 0.02),
         (244 * 0.07, 244 * 0.01, 244 * 0.02), (244 * 0.12, 244 * 0.01, 244 * 0.02)][severity - 1]
    image = np.array(image, dtype=np.float32) / 255.
    shape = image.shape
    shape_size = shape[:2]
    center_square = np.float32(shape_size) // 2
    square_size = min(shape_size) // 3
    pts1 = np.float32([center_square + square_size, [center_square[0] + square_size, center_square[1] - square_size], center_square - square_size])
    pts2 = pts1 + np.random.uniform(-c[2], c[2], size=pts1.shape).astype(np.float32)
    M = cv2.getAffineTransform(pts1, pts2)
    image = cv2.warpAffine(image, M, shape_size[::-1], borderMode=cv2.BORDER_REFLECT_101)
    dx = (gaussian(np.random.uniform(-1, 1, size=shape[:2]), c[1], mode="reflect", truncate=3) * c[0]).astype(np.float32)
    dy = (gaussian(np.random.uniform(-1, 1, size=shape[:2]), c[1], mode="reflect", truncate=3) * c[0]).astype(np.float32)
    dx, dy = dx[..., np.newaxis], dy[..., np.newaxis]
    x, y, z = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
    indices = np.reshape(y + dy, (-1, 1)), np.reshape(x + dx, (-1, 1)), np.reshape(z, (-1, 1))
    return np.clip(map_coordinates(image, indices, order=1, mode="reflect").reshape(shape), 0, 1) * 255


@pytest.mark.parametrize("name,script", [("frost", script_frost), ("elastic_transform", script_elastic)])
def test_imagenet_table_equals_make_imagenet_c_py_for_frost_and_elastic_at_224_px(name, script):
    for which in range(2):
        image = photo(224, which)
        for severity in range(1, 6):
            seed = 100 * severity + which
            np.random.seed(seed)
            expected = np.uint8(script(image.copy(), severity))
            np.testing.assert_array_equal(C.corrupt(image, name, severity, C.IMAGENET, seed), expected, err_msg=f"{name} severity {severity}")


def test_imagenet_c_never_draws_the_sixth_frost_picture_and_the_package_fork_does():
    image = photo(224)
    drawn = {table.name: set() for table in (C.IMAGENET, C.PACKAGE)}
    for table in (C.IMAGENET, C.PACKAGE):
        for seed in range(60):
            rs = np.random.RandomState(seed)
            drawn[table.name].add(int(rs.randint(table.frost_pictures)))
    assert drawn["imagenet"] == {0, 1, 2, 3, 4} and 5 in drawn["imagecorruptions"]
    # the script's elastic moves a 224 px photo several times more than the package fork's field at severity 1
    script = np.abs(C.corrupt(image, "elastic_transform", 1, C.IMAGENET, 3).astype(float) - image).mean()
    fork = np.abs(C.corrupt(image, "elastic_transform", 1, C.PACKAGE, 3).astype(float) - image).mean()
    assert script > 3 * fork


def _zoom_steps(end: float) -> np.ndarray:
    return np.arange(1, end, 0.01)


#: make_cifar_c.py / make_tinyimagenet_c.py's lists, severity 1..5, as the scripts write them
SCRIPT_LISTS = {
    "cifar": {
        "gaussian_noise": [0.04, 0.06, .08, .09, .10], "shot_noise": [500, 250, 100, 75, 50], "impulse_noise": [.01, .02, .03, .05, .07],
        "speckle_noise": [.06, .1, .12, .16, .2], "gaussian_blur": [.4, .6, 0.7, .8, 1],
        "glass_blur": [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)],
        "defocus_blur": [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],
        "motion_blur": [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],
        "zoom_blur": [_zoom_steps(1.06), _zoom_steps(1.11), _zoom_steps(1.16), _zoom_steps(1.21), _zoom_steps(1.26)],
        "fog": [(.2, 3), (.5, 3), (.75, 2.5), (1, 2), (1.5, 1.75)],
        "frost": [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)],
        "snow": [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
                 (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)],
        "spatter": [(0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
                    (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)],
        "contrast": [.75, .5, .4, .3, 0.15], "brightness": [.05, .1, .15, .2, .3],
        "saturate": [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)], "jpeg_compression": [80, 65, 58, 50, 40],
        "pixelate": [0.95, 0.9, 0.85, 0.75, 0.65],
        "elastic_transform": [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)],
    },
    "tinyimagenet": {
        "gaussian_noise": [.04, .08, .12, .15, .18], "shot_noise": [250, 100, 50, 30, 15], "impulse_noise": [.01, .02, .05, .08, .14],
        "speckle_noise": [.15, .2, 0.25, 0.3, 0.35], "gaussian_blur": [.5, .75, 1, 1.25, 1.5],
        "glass_blur": [(0.1, 1, 1), (0.5, 1, 1), (0.6, 1, 2), (0.7, 2, 1), (0.9, 2, 2)],
        "defocus_blur": [(0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1)],
        "motion_blur": [(10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)],
        "zoom_blur": [_zoom_steps(1.06), _zoom_steps(1.11), _zoom_steps(1.16), _zoom_steps(1.21), _zoom_steps(1.26)],
        "fog": [(.4, 3), (.7, 3), (1, 2.5), (1.5, 2), (2, 1.75)],
        "frost": [(1, 0.3), (0.9, 0.4), (0.8, 0.45), (0.75, 0.5), (0.7, 0.55)],
        "snow": [(0.1, 0.2, 1, 0.6, 8, 3, 0.8), (0.1, 0.2, 1, 0.5, 10, 4, 0.8), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.7),
                 (0.25, 0.3, 2.25, 0.6, 12, 6, 0.65), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.6)],
        "spatter": [(0.62, 0.1, 0.7, 0.7, 0.6, 0), (0.65, 0.1, 0.8, 0.7, 0.6, 0), (0.65, 0.3, 1, 0.69, 0.6, 0),
                    (0.65, 0.1, 0.7, 0.68, 0.6, 1), (0.65, 0.1, 0.5, 0.67, 0.6, 1)],
        "contrast": [.4, .3, .2, .1, 0.05], "brightness": [.1, .2, .3, .4, .5],
        "saturate": [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (30, 0.2)], "jpeg_compression": [65, 58, 50, 40, 25],
        "pixelate": [0.9, 0.8, 0.7, 0.6, 0.5],
        "elastic_transform": [(0, 0, 0.08), (0.05, 0.3, 0.06), (0.1, 0.08, 0.06), (0.1, 0.03, 0.03), (0.16, 0.03, 0.02)],
    },
}


@pytest.mark.parametrize("table", [C.CIFAR, C.TINYIMAGENET], ids=["cifar", "tinyimagenet"])
def test_small_tables_are_the_scripts_literal_lists(table):
    expected = SCRIPT_LISTS[table.name]
    assert set(expected) == set(table.values)
    for name, levels in expected.items():
        for severity, value in enumerate(levels):
            np.testing.assert_array_equal(np.asarray(table.values[name][severity], dtype=float), np.asarray(value, dtype=float), err_msg=f"{name} {severity + 1}")
