"""A user's saved look: style, strength, a second style to mix in, video smoothing, stroke scale and favourite
styles.

One JSON file, read by the API (``Stylizer.from_profile()``) and the CLI (``run``/``live`` start from it; their
flags override it; ``stylecam profile`` shows and edits it)::

    {"style": "wave", "strength": 0.8, "mix": "udnie", "mix_amount": 0.3, "smoothing": 0.5, "scale": 0.5,
     "favourites": ["wave", "udnie", "candy"]}

Location: ``$STYLECAM_PROFILE``, else ``$XDG_CONFIG_HOME/stylecam/profile.json`` (``~/.config/...``).
A missing file is the default look; a broken one is an error that names the file, never silently ignored.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .bundle import atomic_write_bytes
from .frames import check_scale, check_strength
from .styles import DEFAULT_STYLE
from .temporal import check_smoothing


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file and the fix."""


def profile_path() -> Path:
    if os.environ.get("STYLECAM_PROFILE"):
        return Path(os.environ["STYLECAM_PROFILE"])
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "stylecam" / "profile.json"


@dataclass
class Profile:
    style: str = DEFAULT_STYLE
    strength: float = 1.0
    mix: str | None = None
    mix_amount: float = 0.0
    smoothing: float = 0.0
    scale: float = 1.0
    favourites: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.strength = check_strength(self.strength)
        self.mix_amount = check_strength(self.mix_amount, "mix amount", "0 = the first style only, 1 = the second only")
        self.smoothing = check_smoothing(self.smoothing)
        self.scale = check_scale(self.scale)
        if not isinstance(self.style, str) or not self.style:
            raise ValueError(f"style must be a style name or bundle folder, got {self.style!r}")
        if not isinstance(self.favourites, list) or not all(isinstance(f, str) for f in self.favourites):
            raise ValueError(f"favourites must be a list of style names, got {self.favourites!r}")

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> Profile:
        path = Path(path) if path else profile_path()
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ProfileError(f"{path}: not a readable JSON profile ({e}); fix it or delete it") from e
        if not isinstance(data, dict):
            raise ProfileError(f"{path}: expected a JSON object, got {type(data).__name__}")
        try:
            return cls(**cls.check_keys(data))
        except (TypeError, ValueError) as e:
            raise ProfileError(f"{path}: {e}") from e

    @classmethod
    def check_keys(cls, data: dict) -> dict:
        """``data`` when every key is a profile field; ValueError naming the unknown ones otherwise."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown profile keys {unknown}; a profile has {', '.join(known)}")
        return data

    def save(self, path: str | os.PathLike | None = None) -> Path:
        path = Path(path) if path else profile_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, (json.dumps(asdict(self), indent=2) + "\n").encode())
        return path

    def update(self, **changes) -> Profile:
        """A new profile with ``changes`` applied (and validated)."""
        return Profile(**{**asdict(self), **self.check_keys(changes)})

    def stylizer_options(self) -> dict:
        return {"style": self.style, "strength": self.strength, "smoothing": self.smoothing, "scale": self.scale,
                "mix": (self.mix, self.mix_amount) if self.mix and self.mix_amount else None}
