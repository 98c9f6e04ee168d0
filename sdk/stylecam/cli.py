"""The ``stylecam`` command line."""
from __future__ import annotations

import argparse
import json
import sys
import time

from . import __version__


def _needs_train_extra(what: str):
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit(f"stylecam {what} needs PyTorch: pip install 'stylecam[train]'")


def cmd_styles(args) -> None:
    from .bundle import load_bundle
    from .styles import STYLES_DIR, bundled_styles

    for name in bundled_styles():
        m = load_bundle(STYLES_DIR / name, verify=False).manifest
        arch = m.get("architecture", {})
        print(f"{name:<16} {m.get('title', ''):<24} {arch.get('name', '?'):<8} "
              f"{arch.get('params', 0) / 1e3:7.0f}K params  variants: {', '.join(m.get('variants', {}))}")


def cmd_backends(args) -> None:
    from .backends import available

    for name, status in available().items():
        print(f"{name:<12} {'ok' if status['ok'] else 'unavailable: ' + status['why']}")


def cmd_run(args) -> None:
    from .stylizer import Stylizer
    from .video import stylize_video

    stylizer = Stylizer(args.style, backend=args.backend, strength=args.strength, variant=args.variant,
                        threads=args.threads)
    t0 = time.perf_counter()
    n = stylize_video(stylizer, args.input, args.output, show=args.show, preview_png=args.preview,
                      max_frames=args.max_frames)
    wall = time.perf_counter() - t0
    info = stylizer.info()
    print(f"\n{info['style']} on {info['backend']} ({info['variant']}): {n} frames in {wall:.2f} s, "
          f"{n / wall:.1f} FPS end to end")
    print(stylizer.timer.table())
    if args.output:
        print(f"video:   {args.output}")
    if args.preview:
        print(f"preview: {args.preview}")


def cmd_train(args) -> None:
    _needs_train_extra("train")
    from stylecam.train.trainer import main

    main(args)


def cmd_export(args) -> None:
    _needs_train_extra("export")
    from stylecam.export.onnx_export import export_bundle

    manifest = export_bundle(args.bundle, check_image=args.check_image)
    print(json.dumps(manifest["export"], indent=2))
    print(f"wrote {args.bundle}/model.onnx")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stylecam", description="Real-time neural style transfer.")
    p.add_argument("--version", action="version", version=f"stylecam {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("styles", help="list the bundled styles").set_defaults(func=cmd_styles)
    sub.add_parser("backends", help="which inference backends run here, and why not").set_defaults(
        func=cmd_backends)

    run = sub.add_parser("run", help="stylize a video file or camera into a file and/or a window")
    run.add_argument("--style", default="candy", help="bundled style name or bundle folder")
    run.add_argument("--input", default="demo", help="video file, camera index, URL, or 'demo' (bundled clip)")
    run.add_argument("--output", help="video file to write (.mp4, .avi)")
    run.add_argument("--show", action="store_true", help="show frames in a window (q or Esc quits)")
    run.add_argument("--preview", help="write a side-by-side PNG (original | stylized)")
    run.add_argument("--strength", type=float, default=1.0, help="0 = original, 1 = fully stylized")
    run.add_argument("--backend", default="auto", choices=["auto", "onnxruntime", "torch", "tensorrt"])
    run.add_argument("--variant", default="fp32", choices=["fp32", "fp16", "int8"])
    run.add_argument("--threads", type=int, help="CPU threads for ONNX Runtime")
    run.add_argument("--max-frames", type=int)
    run.set_defaults(func=cmd_run)

    train = sub.add_parser("train", help="train a style into a bundle (needs stylecam[train])")
    from stylecam.train.options import add_arguments  # plain argparse, no torch

    add_arguments(train)
    train.set_defaults(func=cmd_train)

    export = sub.add_parser("export", help="write model.onnx for a bundle (needs stylecam[train])")
    export.add_argument("bundle")
    export.add_argument("--check-image", help="photo for the torch/ONNX parity check (default: style.jpg)")
    export.set_defaults(func=cmd_export)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        sys.exit(130)
    except (OSError, ValueError, RuntimeError) as e:  # our errors carry the what-to-do; no traceback
        sys.exit(f"stylecam {args.command}: {e}")


if __name__ == "__main__":
    main()
