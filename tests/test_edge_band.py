"""No edge band: every shipped style paints a frame's border as it paints the same pixels inside a larger frame
(within 12 grey levels on average over each 8-px strip), on a flat grey frame and on a photo."""
import cv2
import numpy as np
import pytest

import stylecam
from stylecam.quality import edge_band
from stylecam.sources import DEMO_CLIP
from stylecam.styles import bundled_styles

from conftest import BATCHNORM_STYLES

LIMIT = 12.0


def _photo() -> np.ndarray:
    cap = cv2.VideoCapture(str(DEMO_CLIP))
    for _ in range(40):
        ok, frame = cap.read()
    cap.release()
    assert ok
    return cv2.resize(frame, (320, 180), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("name", bundled_styles())
def test_no_edge_band(name):
    s = stylecam.Stylizer(name, backend="onnxruntime", variant="fp32", threads=1)
    grey = np.full((180, 320, 3), 128, np.uint8)
    bands = {"grey": edge_band(s.stylize, grey), "photo": edge_band(s.stylize, _photo())}
    assert max(bands.values()) <= LIMIT, bands


def test_the_band_measure_sees_a_band():
    """A stylizer that darkens its frame's left 8 columns has a band of that size; one that does not, none."""
    def banded(frame):
        out = frame.copy()
        out[:, :8] //= 2
        return out

    photo = _photo()
    assert edge_band(lambda f: f.copy(), photo) == 0.0
    assert edge_band(banded, photo) == pytest.approx(photo[:, :8].mean() - (photo[:, :8] // 2).mean(), abs=1)


def test_a_zero_padded_network_paints_a_band():
    """The earlier candy_nano, zero-padded: a stride-2 convolution pads only the left and top edges, and it learned
    to paint there (72 grey levels on the grey frame when it shipped); the InstanceNorm networks pad by reflection."""
    s = stylecam.Stylizer(BATCHNORM_STYLES / "candy_nano", backend="onnxruntime", variant="fp32", threads=1)
    assert edge_band(s.stylize, np.full((180, 320, 3), 128, np.uint8)) > 5 * LIMIT
