"""Training photos: decoded at the reduction they need, in a fixed order, unreadable ones skipped."""
import cv2
import numpy as np
import pytest

pytest.importorskip("torch")
from PIL import Image  # noqa: E402

from conftest import shared  # noqa: E402
from stylecam.train.data import ContentImages, _decode_flag, read_rgb  # noqa: E402


@pytest.fixture(scope="module")
def camera_photo(tmp_path_factory):
    """A real photo at a phone camera's 2400×1800, and the same photo stored rotated with an EXIF orientation."""
    d = tmp_path_factory.mktemp("camera")
    bgr = cv2.resize(cv2.imread(str(shared("content/imagenet_n01440764_tench.jpg"))), (2400, 1800),
                     interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(d / "photo.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(bgr, 1)[:, :, ::-1]))  # 1800×2400 as stored
    exif = stored.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to show"
    stored.save(d / "rotated.jpg", exif=exif, quality=92)
    return d, bgr


def test_a_large_photo_decodes_at_the_largest_reduction_that_keeps_the_size_asked(camera_photo):
    d, bgr = camera_photo
    photo = d / "photo.jpg"
    assert _decode_flag(photo, None, 192) == cv2.IMREAD_REDUCED_COLOR_8  # 1800 / 8 = 225 ≥ 192
    assert _decode_flag(photo, None, 300) == cv2.IMREAD_REDUCED_COLOR_4  # 1800 / 8 < 300 ≤ 1800 / 4
    assert _decode_flag(photo, 1000, None) == cv2.IMREAD_REDUCED_COLOR_2  # longer side 2400 → 1000
    assert _decode_flag(photo, None, 1000) == _decode_flag(photo, None, None) == cv2.IMREAD_COLOR
    assert _decode_flag(d / "missing.jpg", None, 192) == cv2.IMREAD_COLOR  # OpenCV says what is wrong
    cv2.imwrite(str(d / "photo.png"), bgr)
    assert _decode_flag(d / "photo.png", None, 192) == cv2.IMREAD_COLOR  # no reduced decoder: no dropped pixels
    for kw, shape in (({"min_side": 192}, (192, 256, 3)), ({"min_side": 300}, (300, 400, 3)),
                      ({"max_side": 1000}, (750, 1000, 3))):
        got = read_rgb(photo, **kw)
        full = cv2.resize(cv2.imread(str(photo)), shape[1::-1], interpolation=cv2.INTER_AREA)[:, :, ::-1]
        assert got.shape == shape, kw
        assert np.abs(got.astype(int) - full).mean() < 1.5, kw  # the same picture as a full decode
    shown = read_rgb(d / "rotated.jpg", min_side=192)
    assert shown.shape == (192, 256, 3)  # EXIF rotation still applied
    assert np.abs(shown.astype(int) - read_rgb(photo, min_side=192)).mean() < 3


def test_content_images_keep_the_folders_order_and_skip_what_they_cannot_read(tmp_path):
    names = ["imagenet_n01440764_tench.jpg", "bsds_train_2092.jpg", "imagenet_n01443537_goldfish.jpg"]
    for i, name in enumerate(names):
        (tmp_path / f"{i}_{name}").write_bytes(shared(f"content/{name}").read_bytes())
    (tmp_path / "1b_broken.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="1b_broken.jpg: not a readable image"):
        images = ContentImages(tmp_path, 96).images
    for image, name in zip(images, names, strict=True):  # read by several threads, kept in path order
        assert np.array_equal(image, read_rgb(shared(f"content/{name}"), min_side=96))


def test_content_scale_sets_the_photos_size_and_crops_keep_theirs(tmp_path):
    (tmp_path / "tench.jpg").write_bytes(shared("content/imagenet_n01440764_tench.jpg").read_bytes())
    at_crop, camera = ContentImages(tmp_path, 64), ContentImages(tmp_path, 64, scale=160)
    assert min(at_crop.images[0].shape[:2]) == 64 and min(camera.images[0].shape[:2]) == 160
    assert camera.sample(3, np.random.default_rng(0)).shape == (3, 3, 64, 64)
    with pytest.raises(ValueError, match="smaller than the crop size 64"):
        ContentImages(tmp_path, 64, scale=32)
