import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from stylecam.styles import STYLES_DIR

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# The earlier `small` and `nano` styles (zero-padded BatchNorm networks, every variant exported), no longer shipped:
# the tests of what only such networks show (BatchNorm folding and freezing, tiles, mixed-precision INT8, an INT8-CPU
# that flickers at the first calibration percentile) run on them.
BATCHNORM_STYLES = Path(__file__).resolve().parent / "data" / "batchnorm_styles"


def shared(path: str) -> Path:
    p = SHARED_DATA / path
    if not p.exists():
        pytest.skip(f"{p} not found: these tests need ../shared/data beside the checkout")
    return p


@pytest.fixture
def photo() -> np.ndarray:
    """A real held-out photo (BSDS500 val, never trained on), BGR uint8."""
    img = cv2.imread(str(shared("content/bsds_val_3096.jpg")))
    assert img is not None
    return img


def _style_copy(tmp_path, name: str, styles: Path = STYLES_DIR) -> Path:
    return Path(shutil.copytree(styles / name, tmp_path / name))


@pytest.fixture
def candy_copy(tmp_path) -> Path:
    """A private copy of the bundled candy style (an InstanceNorm network), free to tamper with."""
    return _style_copy(tmp_path, "candy")


@pytest.fixture
def scream_copy(tmp_path) -> Path:
    """A private copy of the_scream: a zero-padded BatchNorm network with every variant, INT8-CPU included."""
    return _style_copy(tmp_path, "the_scream", BATCHNORM_STYLES)


def _bundled_files() -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for styles in (STYLES_DIR, BATCHNORM_STYLES)
            for p in sorted(styles.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="session", autouse=True)
def bundled_styles_untouched():
    """The bundled styles are the package: a test that writes into them (an export, an optimized graph) fails the
    run, instead of leaving files for the next commit to ship."""
    before = _bundled_files()
    yield
    after = _bundled_files()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"tests changed the bundled styles: {changed}; write to tmp_path instead"


@pytest.fixture(autouse=True)
def private_profile(tmp_path, monkeypatch) -> Path:
    """Every test (and the CLI it starts) gets its own empty profile, never the developer's."""
    path = tmp_path / "profile.json"
    monkeypatch.setenv("STYLECAM_PROFILE", str(path))
    return path


@pytest.fixture(scope="session")
def content(tmp_path_factory):
    """Three real photos and one unreadable file that training must skip with a warning."""
    d = tmp_path_factory.mktemp("content")
    for name in ("imagenet_n01440764_tench.jpg", "bsds_train_2092.jpg", "imagenet_n01443537_goldfish.jpg"):
        shutil.copy(shared(f"content/{name}"), d)
    (d / "broken.jpg").write_bytes(b"not a jpeg")
    return d


def tiny(content, out, steps, **kw):
    """A training config that runs in seconds on a CPU: nano, 64 px crops, batch 2."""
    from stylecam.train.trainer import TrainConfig

    kw.setdefault("arch", None if kw.get("init") else "nano")  # a fine-tune keeps its bundle's network
    return TrainConfig(style=str(shared("styles/wave.jpg")), content=str(content), out=str(out),
                       steps=steps, size=64, style_size=128, batch=2, checkpoint_every=2, **kw)
