"""stylecam: real-time neural style transfer on OpenCV frames (TensorRT, ONNX Runtime, PyTorch).

The runtime imports only NumPy, OpenCV and (lazily) the chosen backend; never torch at import time.
"""
try:
    import cv2  # noqa: F401
except ImportError as e:  # on Linux ARM the install leaves OpenCV to the system (pyproject: a Jetson's has GStreamer)
    raise ImportError("stylecam needs OpenCV's Python module (cv2): pip install opencv-python-headless; on a Jetson, "
                      "use JetPack's (apt install python3-opencv; a virtualenv sees it when made with "
                      "--system-site-packages)") from e

from .bundle import Bundle, BundleError, load_bundle
from .frames import FrameError
from .live import Pipeline, keep_freed_memory, stream
from .profile import Profile, ProfileError
from .styles import bundled_styles
from .stylizer import Stylizer
from .temporal import TemporalSmoother, WarpingError
from .tiles import TileError

__version__ = "0.1.0"
__all__ = ["Stylizer", "Bundle", "BundleError", "FrameError", "load_bundle", "bundled_styles", "Pipeline", "stream",
           "keep_freed_memory",
           "Profile", "ProfileError", "TemporalSmoother", "WarpingError", "TileError", "__version__"]
