import numpy as np
import pytest

from stylecam.frames import FrameError, check_frame, from_tensor, padded_size, to_tensor


@pytest.mark.parametrize("h,w", [(1, 1), (3, 5), (481, 639), (64, 64)])
@pytest.mark.parametrize("margin", [0, 16])
def test_pre_post_round_trip_is_exact(h, w, margin):
    rng = np.random.default_rng(h * w)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    x = to_tensor(frame, stride=4, margin=margin)
    assert x.shape == (1, 3, *padded_size(h, w, 4, margin)) and x.shape[2] % 4 == 0 and x.shape[3] % 4 == 0
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    # the tensor is RGB: channel 0 holds the frame's red (BGR index 2)
    assert np.allclose(x[0, 0, margin:margin + h, margin:margin + w] * 255, frame[:, :, 2], atol=1e-3)
    np.testing.assert_array_equal(from_tensor(x, frame, 1.0, margin), frame)


@pytest.mark.parametrize("h,w", [(2, 3), (17, 40), (481, 639)])
def test_pre_pads_by_mirroring_the_edge(h, w):
    frame = np.random.default_rng(h).integers(0, 256, (h, w, 3), dtype=np.uint8)
    ph, pw = padded_size(h, w, 4, 16)
    want = np.pad(frame, ((16, ph - h - 16), (16, pw - w - 16), (0, 0)), mode="symmetric")[:, :, ::-1]
    np.testing.assert_array_equal(to_tensor(frame, 4, 16)[0], want.transpose(2, 0, 1) * np.float32(1 / 255))


def test_post_clamps_and_blends():
    frame = np.full((2, 2, 3), 100, np.uint8)
    out = np.full((1, 3, 4, 4), 2.0, np.float32)  # out of range: clamps to white
    np.testing.assert_array_equal(from_tensor(out, frame, 1.0), np.full((2, 2, 3), 255))
    np.testing.assert_array_equal(from_tensor(out, frame, 0.5), np.full((2, 2, 3), 178))  # 0.5·255 + 0.5·100
    np.testing.assert_array_equal(from_tensor(out, frame, 0.0), frame)


@pytest.mark.parametrize("strength", [1.0, 0.3, 0.0])
def test_post_matches_the_formula_on_any_output(strength):
    rng = np.random.default_rng(7)
    out = (rng.random((1, 3, 37, 53)) * 1.6 - 0.3).astype(np.float16)  # FP16, beyond [0, 1] both ways
    frame = rng.integers(0, 256, (29, 45, 3), dtype=np.uint8)
    rgb = np.clip(out[0, :, 4:33, 4:49].astype(np.float64), 0, 1)  # the frame's area after a 4-pixel margin
    want = np.rint(strength * rgb[::-1].transpose(1, 2, 0) * 255 + (1 - strength) * frame)
    got = from_tensor(out, frame, strength, 4)
    assert got.shape == frame.shape and got.dtype == np.uint8 and got.flags.c_contiguous
    assert np.abs(got - want).max() <= (0 if strength in (0.0, 1.0) else 1)  # ties may round either way


@pytest.mark.parametrize("bad,expect", [
    (np.zeros((4, 4, 3), np.float32), "uint8"),
    (np.zeros((4, 4, 3), np.uint16), "uint8"),
    (np.zeros((0, 4, 3), np.uint8), "empty"),
    (np.zeros((4, 4, 2), np.uint8), "channels"),
    (np.zeros((1, 4, 4, 3), np.uint8), "H×W×3"),
    ([[1, 2, 3]], "numpy.ndarray"),
])
def test_bad_frames_say_what_was_expected(bad, expect):
    with pytest.raises(FrameError, match=expect):
        check_frame(bad)


def test_image_grid_lines_up_columns_of_portrait_and_landscape_photos():
    from stylecam.frames import image_grid

    land, port = np.full((40, 60, 3), 200, np.uint8), np.full((60, 40, 3), 100, np.uint8)
    grid = image_grid([[land, land], [port, port]], height=30)
    assert grid.shape == (60, 2 * 45, 3)  # cells as wide as the widest tile (60 × 30/40 = 45)
    row = grid[45, :, 0]  # the portrait row: 20 px tiles centred in 45 px cells
    assert (row[:12] == 0).all() and (row[12:32] == 100).all() and (row[32:45] == 0).all()
    assert (row[45 + 12:45 + 32] == 100).all()
