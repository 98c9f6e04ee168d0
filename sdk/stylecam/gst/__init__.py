"""stylecam as a GStreamer element (``stylecam``): style transfer inside the pipelines Jetson, DeepStream and
robotics users already run. ``element.py`` holds it; ``python/`` is what GStreamer's Python plugin loader scans
(``GST_PLUGIN_PATH`` = this folder; ``stylecam gst-path`` prints the lines to set)."""
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent
