import numpy as np
import pytest
from helpers import blob

from cellsdf.dataset.binarise import binarise, looks_like_intensity
from cellsdf.errors import InputError


def test_label_image_keeps_all_or_one_label():
    labels = np.zeros((1, 20, 20, 20), np.uint16)
    labels[0, 2:8, 2:8, 2:8] = 3
    labels[0, 12:18, 12:18, 12:18] = 7
    assert not looks_like_intensity(labels[0])
    assert binarise(labels, "x.tif").sum() == 2 * 6**3
    np.testing.assert_array_equal(binarise(labels, "x.tif", label=7), labels == 7)
    with pytest.raises(InputError, match="label 5 does not occur"):
        binarise(labels, "x.tif", label=5)


def test_intensity_image_needs_a_threshold():
    rng = np.random.default_rng(0)
    image = (blob((20, 20, 20)) * 100 + rng.integers(1, 50, (20, 20, 20))).astype(np.uint16)[None]
    assert looks_like_intensity(image[0])
    with pytest.raises(InputError, match="intensity image.*threshold"):
        binarise(image, "img.tif")
    np.testing.assert_array_equal(binarise(image, "img.tif", threshold=60)[0], blob((20, 20, 20)))


def test_largest_component():
    mask = np.zeros((1, 20, 20, 20), bool)
    mask[0, 1:9, 1:9, 1:9] = True
    mask[0, 15:17, 15:17, 15:17] = True
    kept = binarise(mask, "m.tif", components="largest")
    assert kept.sum() == 8**3


@pytest.mark.parametrize(("fill", "message"), [(False, "frame 1 is empty"), (True, "frame 1 is entirely")])
def test_empty_or_full_frame_is_named(fill, message):
    masks = np.stack([blob((10, 10, 10), radii=(3, 3, 3))] * 2)
    masks[1] = fill
    with pytest.raises(InputError, match=message) as err:
        binarise(masks, "seq.tif")
    assert str(err.value).startswith("seq.tif:")
