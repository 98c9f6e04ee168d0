"""Model bundles: a folder with ``manifest.json`` and the files it lists, each checked by sha256 before use.

Layout (DESIGN.md)::

    NAME/
      manifest.json        format version, model card, and {file: {sha256, bytes}} for every file below
      weights.safetensors  generator weights (for fine-tuning; never pickled)
      model.onnx           FP32 network, dynamic H/W; variants: model.fp16.onnx, model.int8.onnx (TensorRT),
                           model.int8-cpu.onnx (ONNX Runtime's CPU provider)
      style.jpg            thumbnail of the style image

The manifest is the single source of truth: the runtime reads the input contract (stride, range, channel
order) from it, never from code.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "stylecam-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VARIANT_FILES = {"fp32": "model.onnx", "fp16": "model.fp16.onnx", "int8": "model.int8.onnx",
                 "int8-cpu": "model.int8-cpu.onnx"}
VARIANTS = list(VARIANT_FILES)


class BundleError(RuntimeError):
    """A bundle that cannot be used as it is; the message says which file and what to do."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write then rename, so a crash never leaves a half-written file under the real name."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass
class Bundle:
    path: Path
    manifest: dict = field(repr=False)

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def stride(self) -> int:
        return int(self.manifest["input"]["stride"])

    @property
    def margin(self) -> int:
        return int(self.manifest["input"].get("margin", 0))

    @property
    def variants(self) -> list[str]:
        return [v for v, f in VARIANT_FILES.items() if f in self.manifest["files"]]

    def file(self, name: str) -> Path:
        """Path of a listed file, verified against its size and sha256."""
        entry = self.manifest["files"].get(name)
        if entry is None:
            raise BundleError(f"{self.path}: manifest lists no '{name}' (has: {sorted(self.manifest['files'])})")
        p = self.path / name
        if not p.is_file():
            raise BundleError(f"{p}: listed in the manifest but missing; re-export or re-download the bundle")
        size = p.stat().st_size
        if size != entry["bytes"]:
            raise BundleError(f"{p}: {size} bytes, manifest says {entry['bytes']} (truncated or replaced?); "
                              "re-export or re-download the bundle")
        if sha256_file(p) != entry["sha256"]:
            raise BundleError(f"{p}: sha256 does not match the manifest (corrupt or modified); "
                              "re-export or re-download the bundle")
        return p

    def model_file(self, variant: str = "fp32") -> Path:
        if variant not in VARIANT_FILES:
            raise BundleError(f"unknown variant '{variant}'; choose one of {list(VARIANT_FILES)}")
        if VARIANT_FILES[variant] not in self.manifest["files"]:
            raise BundleError(f"bundle '{self.name}' has no {variant} model (has {self.variants}); "
                              f"run: stylecam export {self.path} --precision {variant}")
        return self.file(VARIANT_FILES[variant])

    def verify(self) -> None:
        for name in self.manifest["files"]:
            self.file(name)


def load_bundle(path: str | os.PathLike, verify: bool = True) -> Bundle:
    """Open a bundle folder; with ``verify`` every listed file is checked against its sha256."""
    path = Path(path)
    mf = path / MANIFEST
    if not mf.is_file():
        raise BundleError(f"{path}: no {MANIFEST}; not a stylecam bundle (see `stylecam styles`)")
    try:
        manifest = json.loads(mf.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{mf}: not valid JSON ({e}); the bundle is corrupt, re-export it") from None
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{mf}: format is {manifest.get('format')!r}, expected {FORMAT!r}")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(f"{mf}: bundle format version {version!r}, this stylecam reads version {FORMAT_VERSION}; "
                          "upgrade stylecam or re-export the bundle")
    check_manifest(manifest, mf)
    bundle = Bundle(path, manifest)
    if verify:
        bundle.verify()
    return bundle


def check_manifest(manifest: dict, where: Path) -> None:
    """The fields the runtime reads, with the types and ranges it needs: a hand-edited manifest fails here with
    the field's name, not later in a division or an index."""
    def bad(field_name: str, wanted: str, got) -> BundleError:
        return BundleError(f"{where}: {field_name} must be {wanted}, got {got!r}; fix that field, or re-export the "
                           "bundle (stylecam export) to write a correct manifest")

    def whole(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if not isinstance(manifest, dict):
        raise bad("the manifest", "a JSON object", type(manifest).__name__)
    for key, kind in (("name", str), ("input", dict), ("files", dict)):
        if key not in manifest:
            raise BundleError(f"{where}: required field '{key}' is missing; re-export the bundle (stylecam export)")
        if not isinstance(manifest[key], kind) or (kind is str and not manifest[key]):
            raise bad(key, {str: "a non-empty string", dict: "an object"}[kind], manifest[key])
    inp = manifest["input"]
    if not whole(inp.get("stride")) or inp["stride"] < 1:
        raise bad("input.stride", "a whole number of at least 1 (the network's downsampling, e.g. 4)",
                  inp.get("stride"))
    if not whole(inp.get("margin", 0)) or inp.get("margin", 0) < 0:
        raise bad("input.margin", "a whole number of at least 0 (pixels reflect-padded around the frame)",
                  inp.get("margin"))
    for name, entry in manifest["files"].items():
        if not (isinstance(entry, dict) and whole(entry.get("bytes")) and entry["bytes"] >= 0
                and isinstance(entry.get("sha256"), str) and len(entry["sha256"]) == 64):
            raise bad(f"files.{name}", "{\"sha256\": 64 hex digits, \"bytes\": a size}", entry)
    arch = manifest.get("architecture", {})
    if not isinstance(arch, dict) or not isinstance(arch.get("name", ""), str):
        raise bad("architecture", "an object with a name", arch)


def write_manifest(path: str | os.PathLike, manifest: dict, files: list[str] | None = None) -> dict:
    """Hash ``files`` (default: those already listed plus any known bundle file present) into the manifest
    and write it atomically. Returns the manifest written."""
    path = Path(path)
    known = set(manifest.get("files", {})) | {"weights.safetensors", "style.jpg", *VARIANT_FILES.values()}
    names = files if files is not None else sorted(n for n in known if (path / n).is_file())
    manifest = {**manifest, "format": FORMAT, "format_version": FORMAT_VERSION,
                "files": {n: {"sha256": sha256_file(path / n), "bytes": (path / n).stat().st_size}
                          for n in names}}
    atomic_write_bytes(path / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest
