"""Bundled styles: every folder under ``stylecam/styles/`` with a manifest is one."""
from __future__ import annotations

import os
from pathlib import Path

from .bundle import Bundle, BundleError, load_bundle

STYLES_DIR = Path(__file__).parent / "styles"
DEFAULT_STYLE = "candy"


def bundled_styles() -> list[str]:
    return sorted(p.name for p in STYLES_DIR.iterdir() if (p / "manifest.json").is_file())


def resolve(style: str | os.PathLike | Bundle) -> Bundle:
    """A Bundle from a bundled style name, a bundle folder, or a Bundle (returned as is)."""
    if isinstance(style, Bundle):
        return style
    path = Path(style)
    if path.is_dir():
        return load_bundle(path)
    if (STYLES_DIR / str(style) / "manifest.json").is_file():
        return load_bundle(STYLES_DIR / str(style))
    raise BundleError(f"no style named '{style}' and no bundle folder at that path; "
                      f"bundled styles: {', '.join(bundled_styles()) or 'none'}")
