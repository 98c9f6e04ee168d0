"""GStreamer's Python plugin loader imports this file (GST_PLUGIN_PATH names the folder above it) in its own
interpreter: the system's Python. ``stylecam gst-path`` puts the environment's site-packages on PYTHONPATH; they
are added as site directories here, so their .pth files run too (an editable install maps its packages in one).
Then the element is registered."""
import os
import site
import sys
from pathlib import Path

for entry in filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)):
    site.addsitedir(entry)
try:
    import stylecam  # noqa: F401
except ImportError:  # a copy of the package without an install: the folder that holds it
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from stylecam.gst.element import StylecamFilter  # noqa: E402

__gstelementfactory__ = ("stylecam", 0, StylecamFilter)  # Gst.Rank.NONE: used when named, never auto-plugged
