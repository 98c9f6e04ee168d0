"""The ``stylecam`` command line."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import __version__
from .bundle import VARIANTS


def _needs_train_extra(what: str):
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit(f"stylecam {what} needs PyTorch: pip install 'stylecam[train]'")


def cmd_styles(args) -> None:
    from .bundle import load_bundle
    from .styles import STYLES_DIR, bundled_styles

    bundles = {name: load_bundle(STYLES_DIR / name, verify=False) for name in bundled_styles()}
    name_w = max(map(len, bundles), default=0)
    title_w = max((len(b.manifest.get("title", "")) for b in bundles.values()), default=0)
    for name, bundle in bundles.items():
        m, arch = bundle.manifest, bundle.manifest.get("architecture", {})
        q = m.get("metrics", {})
        quality = (f"style ratio {q['style_ratio']:.2f}, content error {q['content_error']:.2f}  "
                   if "style_ratio" in q else "")
        print(f"{name:<{name_w}}  {m.get('title', ''):<{title_w}}  {arch.get('name', '?'):<8} "
              f"{arch.get('params', 0) / 1e3:5.0f}K params  {quality}variants: {', '.join(bundle.variants)}")
    if args.plot:
        from .quality import tradeoff_plot

        # the numbers `stylecam eval --write-manifest` stored: one protocol for every style, nothing re-measured
        points = [{"label": name, "arch": b.manifest["architecture"]["name"], **b.manifest["metrics"]}
                  for name, b in bundles.items() if "style_ratio" in b.manifest.get("metrics", {})]
        print(f"trade-off plot: {tradeoff_plot(points, args.plot)}")


def cmd_backends(args) -> None:
    from .backends import available
    from .ops import backend

    for name, status in available().items():
        print(f"{name:<12} {'ok' if status['ok'] else 'unavailable: ' + status['why']}")
    print(f"{'pre/post':<12} {backend().name}: {backend().reason}")
    print(f"{'opencv':<12} {cv2_summary()}")


def cmd_gst_path(args) -> None:
    """Shell lines that let GStreamer find the stylecam element: eval "$(stylecam gst-path)"."""
    import platform
    import site

    from .gst import PLUGIN_DIR

    sites = [p for p in site.getsitepackages() if Path(p).is_dir()]
    print(f'export GST_PLUGIN_PATH="{PLUGIN_DIR}${{GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}}"')
    print(f'export PYTHONPATH="{":".join(sites)}${{PYTHONPATH:+:$PYTHONPATH}}"')
    print(f"# GStreamer's Python plugin loader (gstreamer1.0-python3-plugin-loader) runs the system's Python, which "
          f"must be {platform.python_version_tuple()[0]}.{platform.python_version_tuple()[1]} like this one: "
          "gst-inspect-1.0 stylecam checks")


def cv2_summary() -> str:
    """OpenCV's version and what it can capture from and show, with the fix for what a user will miss."""
    import cv2

    from .sources import opencv_build

    hints = {"GStreamer": "csi cameras and GStreamer pipelines need it; README: Jetson",
             "window": "headless: --http or --output, or pip install opencv-python"}
    parts = [f"{k} {'yes' if ok else 'no'}" + ("" if ok or k not in hints else f" ({hints[k]})")
             for k, ok in opencv_build().items()]
    return f"{cv2.__version__}: " + ", ".join(parts)


def _look(args):
    """The user's profile with this command's flags applied (flags win)."""
    from .profile import Profile

    profile = Profile.load(args.profile)
    changes = {k: v for k in ("style", "strength", "mix", "mix_amount", "smoothing", "scale")
               if (v := getattr(args, k)) is not None}
    if args.mix and args.mix_amount is None and not profile.mix_amount:
        changes["mix_amount"] = 0.5
    return profile.update(**changes)


def _stylizer(args, profile=None, threads: int | None = None):
    from .stylizer import Stylizer

    return Stylizer.from_profile(profile or _look(args), backend=args.backend, variant=args.variant,
                                 threads=threads or args.threads, tile=args.tile)


def _run_pipeline(pipeline):
    """Run with SIGTERM handled like Ctrl-C (devices released, files finalized), then print the summary."""
    import signal

    from tqdm.contrib.logging import logging_redirect_tqdm

    signal.signal(signal.SIGTERM, lambda *_: pipeline.stop("SIGTERM"))
    with logging_redirect_tqdm([logging.getLogger("stylecam")]):  # warnings above the progress bar, not inside it
        stats = pipeline.run()
    info, workers = pipeline.stylizer.info(), len(pipeline.stylizers)
    on = f"{info['backend']} ({info['variant']}" + (f", {workers} workers)" if workers > 1 else ")")
    skipped = getattr(pipeline.source, "skipped", [])
    skips = f", {len(skipped)} unreadable skipped ({', '.join(skipped[:5])}{', …' if len(skipped) > 5 else ''})" \
        if skipped else ""
    if stats.frames == 1 and not pipeline.source.live:  # one photo: one line, not a table of one-sample stages
        stages = pipeline.stylizer.timer.stats()
        ms = sum(stages[s]["median"] for s in ("pre", "infer", "post", "device") if s in stages)
        print(f"\n{info['style']} on {on}: 1 image stylized in {ms:.0f} ms{skips}")
        return stats
    print(f"\n{info['style']} on {on}: {stats.frames} frames in "
          f"{stats.seconds:.2f} s, {stats.fps:.1f} FPS end to end, {stats.dropped} dropped, "
          f"{stats.reconnects} reconnects ({stats.stop_reason}){skips}")
    if pipeline.fit is not None:
        print(f"fitting {pipeline.fit.fps:g} FPS: network scale {pipeline.stylizer.scale:g} at the end "
              f"(ceiling {pipeline.fit.ceiling:g})")
    print(pipeline.stylizer.timer.table())
    return stats


def cmd_run(args) -> None:
    from .live import Pipeline, threads_per_worker
    from .sinks import PreviewSink, ProgressSink, WindowSink, file_sink, output_kind
    from .sources import open_source

    if not (args.output or args.show or args.preview):
        raise ValueError("nothing to write: add --output FILE (or a folder), --preview PNG, or --show")
    if args.input is None:
        print("no --input given: stylizing the bundled demo clip (--input demo)")
        args.input = "demo"
    if args.output and Path(args.output).resolve() == Path(args.input).resolve():
        raise ValueError(f"--output {args.output} is the input: that would overwrite it; name another file or folder")
    kind = output_kind(args.output) if args.output else None  # said before the model loads
    look = _look(args)
    if args.workers > 1 and look.smoothing:
        raise ValueError(f"--workers {args.workers} stylize frames side by side, so they cannot smooth each against "
                         f"the last (smoothing {look.smoothing:g}{'' if args.smoothing else ', from your profile'}): "
                         "add --smoothing 0, or use one worker")
    stylizer = _stylizer(args, look, threads_per_worker(args.workers))
    source = open_source(args.input)
    total = min(filter(None, (source.frame_count, args.max_frames)), default=None)
    sinks = [ProgressSink(total, desc=f"stylizing ({stylizer.style})")]
    if args.output:
        if kind == "image" and total != 1:
            raise ValueError(f"--output {args.output} is one image, but the input has {total or 'many'} frames; "
                             "give a folder (no suffix), a video file or an animation (.webp, .gif)")
        sinks.append(file_sink(args.output, fps=source.fps, frames=total))
    if args.preview:
        sinks.append(PreviewSink(args.preview, at_frame=(total or 0) // 2))
    if args.show:
        sinks.append(WindowSink(instead="--output FILE or --preview PNG"))
    with stylizer:
        stats = _run_pipeline(Pipeline(source, stylizer, sinks, max_frames=args.max_frames, workers=args.workers))
    if stats.stop_reason.startswith(("capture failed", "output failed")) or not stats.frames:
        raise RuntimeError(f"{stats.stop_reason or 'no frames in ' + args.input}; stylized {stats.frames} frames")
    if kind == "video" and not source.live:
        _keep_sound(args.input, args.output)
    for label, path in (("output", args.output), ("preview", args.preview)):
        if path:
            print(f"{label + ':':<9}{path}")


def _keep_sound(video_in: str, video_out: str) -> None:
    """A video file's sound into its stylized copy (``stylecam.audio``); without PyAV, one line on how to keep it."""
    from .audio import keep_audio, pyav
    from .sources import DEMO_CLIP, IMAGE_SUFFIXES

    path = Path(video_in)
    if not path.is_file() or path.suffix.lower() in IMAGE_SUFFIXES or path.resolve() == DEMO_CLIP.resolve():
        return  # a folder, a photo, a camera, a URL, or the bundled clip (silent)
    log = logging.getLogger("stylecam")
    if pyav() is None:
        log.info("the output has no sound: OpenCV writes pictures only; pip install 'stylecam[av]' copies the "
                 "input's")
        return
    try:
        copied = keep_audio(path, video_out)
    except Exception as e:  # noqa: BLE001 - PyAV's errors; the stylized video is kept as it was
        log.warning("could not copy the sound of %s (%s): %s is kept without it", path, e, video_out)
        return
    if copied:
        print(f"{'sound:':<9}{copied} audio stream{'s' if copied > 1 else ''} copied from {path}")


def cmd_live(args) -> None:
    from .live import Controls, Pipeline
    from .server import MJPEGServer
    from .sinks import WindowSink, WindowUnavailable, file_sink, output_kind
    from .sources import open_source

    if args.output:  # a wrong --output or --http is said before the model loads and the camera opens
        output_kind(args.output)
    http = _http_address(args.http) if args.http else None
    profile = _look(args)
    stylizer = _stylizer(args, profile)
    source = open_source(args.source, loop=args.loop, width=args.width, height=args.height, fps=args.fps)
    controls = Controls(stylizer, styles=profile.favourites or None, screenshot_dir=args.screenshots,
                        profile=args.profile)
    sinks = []
    if args.http:
        sinks.append(MJPEGServer(*http, controls, token=args.http_token, allowed_hosts=tuple(args.http_allow_host)))
    if args.output:
        sinks.append(file_sink(args.output, fps=source.fps))
    if not args.no_window:
        try:
            sinks.append(WindowSink(controls, fullscreen=args.fullscreen))
        except WindowUnavailable as e:
            if not sinks:
                raise WindowUnavailable(f"{e}; add --no-window with them to say so") from None
            logging.getLogger("stylecam").info("no window here (headless OpenCV or no display): running without one")
    if not sinks:
        raise ValueError("nothing to show: drop --no-window, or add --http HOST:PORT or --output FILE")
    # a file or folder plays at its own frame rate, as a camera would
    with stylizer:
        _run_pipeline(Pipeline(source, stylizer, sinks, controls=controls, side_by_side=args.side_by_side,
                               overlay=args.overlay, max_frames=args.max_frames, realtime=True, fit_fps=args.fit_fps))


def _http_address(text: str) -> tuple[str, int]:
    """'HOST:PORT', '[::1]:PORT' or 'PORT' → (host, port); the host defaults to loopback."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--http {text}: give HOST:PORT or PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]") or "127.0.0.1", int(port)


def _add_stylizer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--style", help="bundled style name or bundle folder (default: the profile's, else candy)")
    p.add_argument("--strength", type=float, help="0 = original, 1 = fully stylized (default: the profile's, else 1)")
    p.add_argument("--mix", metavar="STYLE", help="blend a second style in (runs both networks)")
    p.add_argument("--mix-amount", type=float, help="share of --mix in the output, 0..1 (default 0.5)")
    p.add_argument("--smoothing", type=float, help="video: blend with the flow-warped previous output, 0..<1")
    p.add_argument("--scale", type=float, help="the network's resolution relative to the frame, 0.1..2 (0.5: strokes "
                   "twice as large, about 4x less compute; default: the profile's, else 1)")
    p.add_argument("--profile", help="profile file (default: $STYLECAM_PROFILE or ~/.config/stylecam/profile.json)")
    p.add_argument("--backend", default="auto", choices=["auto", "onnxruntime", "torch", "tensorrt"],
                   help="auto: TensorRT where it and a GPU run, else ONNX Runtime on the CPU; torch is the CUDA "
                        "reference (stylecam backends says which run here)")
    p.add_argument("--variant", default="auto", choices=["auto", *VARIANTS],
                   help="auto: FP16 on TensorRT, INT8-CPU on ONNX Runtime's CPU provider, else FP32, where the "
                        "bundle has it")
    p.add_argument("--threads", type=_positive_int, help="CPU threads for ONNX Runtime")
    p.add_argument("--tile", type=int, help="largest network input side in pixels: bigger frames run in overlapping "
                   "tiles stitched into the same image, in a tile's memory (e.g. 1024 for 12 MP photos on a Jetson)")
    p.add_argument("--max-frames", type=_positive_int, help="stop after this many frames")


def _profile_value(key: str, text: str):
    if key in ("strength", "mix_amount", "smoothing", "scale"):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{key} takes a number, got '{text}'") from None
    if key == "favourites":
        return [f.strip() for f in text.split(",") if f.strip()]
    if key == "mix" and text.lower() in ("", "none", "off"):
        return None
    return text


def cmd_profile(args) -> None:
    from dataclasses import asdict

    from .profile import Profile, profile_path
    from .styles import resolve

    path = args.profile or profile_path()
    profile = Profile.load(path)
    if args.action == "reset":
        profile = Profile()
    elif args.action == "set":
        changes = {}
        for item in args.settings:
            key, eq, value = item.partition("=")
            if not eq:
                raise ValueError(f"'{item}': settings are KEY=VALUE (e.g. strength=0.8 favourites=wave,udnie)")
            changes[key] = _profile_value(key, value)
        profile = profile.update(**changes)
        for style in filter(None, [profile.style, profile.mix, *profile.favourites]):
            resolve(style)  # a typo is caught now, not at the next start
    if args.action in ("set", "reset"):
        profile.save(path)
    print(f"{path}{'' if Path(path).is_file() else ' (not written yet: defaults)'}")
    print(json.dumps(asdict(profile), indent=2))


def cmd_train(args) -> None:
    _needs_train_extra("train")
    from stylecam.train.trainer import main

    main(args)


def cmd_export(args) -> None:
    _needs_train_extra("export")
    from stylecam.export.onnx_export import export_bundle

    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    unknown = set(precisions) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown precision {sorted(unknown)}; use {', '.join(VARIANTS)}")
    manifest = export_bundle(args.bundle, args.check_image, ["fp32", *precisions], args.calib, args.calib_count,
                             args.calib_method, args.eval, args.eval_count)
    print(f"fp32: parity with torch {manifest['export']['parity']['max_abs_error_vs_torch']:.2e} (model.onnx)")
    failed = []
    for p in precisions:
        v = manifest["variants"].get(p, {})
        if p == "fp32":
            continue
        acc = v.get("accuracy", {})
        if trunk := v.get("trunk_only"):
            why = trunk.get("because", {})
            missed = (f"; more INT8 missed the {why['missed']}: {why['psnr_db']} dB" + (
                f", {why['flicker_vs_fp32']}× FP32's flicker" if why.get("flicker_vs_fp32") else "")) if why else ""
            layout = (f" (INT8 in the residual trunk only: {len(trunk['convs'])} convolutions, "
                      f"{v['int8_mac_share']:.0%} of the MACs{missed})")
        elif m := v.get("mixed_precision"):
            layout = (f" (mixed precision, {m['order']}: {len(m['float_nodes'])} nodes in float, "
                      f"{m['float_convs']} of {m['of_convs']} convolutions among them, "
                      f"{m['int8_mac_share']:.0%} of the MACs in INT8; INT8 everywhere gave "
                      f"{m['int8_everywhere_psnr_db']} dB)")
        else:
            layout = ""
        cpu = f", {v['flicker_vs_fp32']}× FP32's flicker" if "flicker_vs_fp32" in v else ""
        cpu += f", {v['cpu_speedup_vs_fp32']}× FP32's speed here" if "cpu_speedup_vs_fp32" in v else ""
        if (search := v.get("percentile_search")) and search["chosen"]:
            cpu += (f", calibration percentile {search['chosen']} ({search['tries'][0]['percentile']} flickered "
                    f"{search['tries'][0]['flicker_vs_fp32']}×)")
        print(f"{p}: {v['status']}: PSNR {acc.get('psnr_db')} dB, SSIM {acc.get('ssim')}, max abs error "
              f"{acc.get('max_abs_error')} vs fp32 (gate {v['gate_psnr_db']} dB){layout}{cpu}")
        if v["status"] != "passed":
            failed.append(f"{p} {v['status']}")
            print(f"  {v.get('message', '')}")
    if failed:
        hint = "; for accuracy, quantization-aware fine-tuning is the way forward" if any(
            "accuracy" in f for f in failed) else ""
        sys.exit(f"stylecam export: {', '.join(failed)}, so not written (numbers in the manifest){hint}")


def _fit_fps(text: str) -> float | str:
    if text == "source":
        return text
    try:
        fps = float(text)
    except ValueError:
        fps = float("nan")
    if not 0 < fps < float("inf"):  # NaN fails too
        raise argparse.ArgumentTypeError(f"takes a positive frame rate (e.g. 30) or 'source', got '{text}'")
    return fps


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"takes a whole number of at least 1, got '{text}'")
    return int(text)


def _sizes(text: str) -> list[tuple[int, int]]:
    try:
        return [tuple(int(v) for v in s.lower().split("x")) for s in text.split(",") if s]
    except ValueError:
        raise ValueError(f"sizes are HxW, comma separated (e.g. 480x640,720x1280), got '{text}'") from None


def cmd_build(args) -> None:
    from stylecam.export.engine import build_engine

    from .styles import resolve

    bundle = resolve(args.bundle)
    shapes = _sizes(args.shapes) + _sizes(",".join(filter(None, (args.min, args.max))))
    opt = _sizes(args.opt)[0] if args.opt else _sizes(args.shapes)[-1]
    for precision in args.precision.split(","):
        path = build_engine(bundle, precision, shapes, opt, sm=args.sm, force=args.force)
        print(f"{precision}: {path}")


def cmd_bench(args) -> None:
    from stylecam.benchmarks import harness, report, results

    from .bundle import VARIANT_FILES
    from .styles import resolve

    if args.action == "report":
        print(f"wrote {report.render()}")
        return
    if args.action == "kernels":
        return bench_kernels(args)
    if args.action == "estimate":
        return bench_estimate(args)
    if args.action == "engines":
        return bench_engines(args)
    sizes = _sizes(args.sizes or "480x640,720x1280")
    timing = {"warmup_s": args.warmup, "iters": args.iters}
    styles = args.models.split(",")
    bundles = {style: resolve(style) for style in styles}
    pairs = [(style, precision) for style in styles for precision in (args.precisions or "auto").split(",")]
    # a precision the bundle lacks ("auto" always picks one it holds; unknown names fail in load_style)
    missing = [(s, p) for s, p in pairs if p in VARIANT_FILES and p not in bundles[s].variants]
    for style, precision in missing:
        why = bundles[style].manifest.get("variants", {}).get(precision, {}).get("status", "not exported")
        print(f"skipped: {style} has no {precision} model ({why})")
    cases = [harness.load_style(style, backend, precision, args.threads, smoothing, scale, tile, workers)
             for style, precision in pairs if (style, precision) not in missing for backend in args.backends.split(",")
             for smoothing in (float(v) for v in args.smoothing.split(","))
             for scale in (float(v) for v in args.scale.split(","))
             for tile in (int(v) or None for v in args.tile.split(","))
             for workers in (_positive_int(v) for v in args.workers.split(",")) if not (workers > 1 and smoothing)]
    device, apart = peer_device({c[0]["backend"]["backend"] for c in cases}) if args.peer else ("auto", [])
    if apart:
        print(f"note: peers run on ONNX Runtime, not {' or '.join(apart)}: set them against this run's onnxruntime "
              f"rows (--backends {','.join([*apart, 'onnxruntime'])}), not against those")
    cases += [harness.load_peer(spec, args.threads, device) for spec in args.peer]
    rows = harness.run(cases, sizes, **timing)  # side by side: the cases take turns at each size
    device = results.device_block()
    print("device:", report.device_line(device))  # as the results README shows it
    print(f"{'model':<24}{'precision':<10}{'backend':<13}{'frame':>11}{'median ms':>11}{'p95 ms':>9}{'FPS':>8}"
          f"{'host MB':>9}")
    for r in rows:
        warn = "  ⚠ CV {:.0%} > 5%".format(r["end_to_end_ms"]["cv"]) if r["unstable"] else ""
        held = "–" if r["model_mb"] is None else f"{r['model_mb']:.0f}"
        print(f"{r['model']:<24}{r['precision']:<10}{r['backend']['backend']:<13}"
              f"{'{}x{}'.format(*r['size']):>11}{r['end_to_end_ms']['median']:>11.2f}"
              f"{r['end_to_end_ms']['p95']:>9.2f}{r['fps']:>8.1f}{held:>9}{warn}")
    stolen = {"{}x{}".format(*r["size"]): r["stolen"] for r in rows if (r["stolen"] or 0) > harness.STOLEN_WARNING}
    if stolen:  # the same for every case of a size: they took turns
        print("⚠ the virtual machine's host took " + ", ".join(f"{v:.0%} at {k}" for k, v in stolen.items()) +
              " of its CPU time: these milliseconds are this VM's today, the ratios within the run still hold")
    if args.save:
        print(f"saved {results.save_run(rows, device)}")


def peer_device(backends: set[str], available: list[str] | None = None) -> tuple[str, list[str]]:
    """Where peers run beside cases on ``backends``: ONNX Runtime's TensorRT provider beside TensorRT engines where
    onnxruntime-gpu has it, else ONNX Runtime as our onnxruntime backend runs; and the backends they still differ
    from, which the run's note names."""
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    device = "tensorrt" if "tensorrt" in backends and "TensorrtExecutionProvider" in available else "auto"
    return device, sorted(backends - {"onnxruntime", *(["tensorrt"] if device == "tensorrt" else [])})


def bench_kernels(args) -> None:
    from stylecam import ops
    from stylecam.benchmarks import kernels, results

    print(f"pre/post-processing path: {ops.backend().name} ({ops.backend().reason})")
    rows = [r for size in _sizes(args.sizes or "1080x1920") for r in kernels.bench_kernels(size)]
    print(f"{'op':<16}{'path':<7}{'dtype':<6}{'frame':>11}{'scale':>7}{'median ms':>11}{'GB/s':>9}{'of copy':>9}")
    for r in rows:
        share = f"{r['of_copy']:.0%}" if r["of_copy"] else "–"
        print(f"{r['op']:<16}{r['path']:<7}{r['dtype']:<6}{'{}x{}'.format(*r['size']):>11}{r['scale']:>7g}"
              f"{r['ms']['median']:>11.3f}{r['gb_s']:>9.1f}{share:>9}")
    if args.save:
        print(f"saved {results.save_run(rows, results.device_block())}")


def bench_engines(args) -> None:
    from stylecam.benchmarks import engines, results
    from stylecam.export.engine import DEFAULT_SHAPES

    from .styles import resolve

    shapes = _sizes(args.sizes) if args.sizes else DEFAULT_SHAPES
    rows = [engines.bench_engine(resolve(style), precision, shapes, sm=args.sm)
            for style in args.models.split(",") for precision in (args.precisions or "fp16").split(",")]
    print(f"{'model':<14}{'precision':<10}{'target':<8}{'build s':>9}{'MB':>8}{'load s':>9}")
    for r in rows:
        load = f"{r['load_s']:>9.3f}" if r["load_s"] is not None else f"{'–':>9}  ({r['load_note']})"
        print(f"{r['model']:<14}{r['precision']:<10}{r['target']:<8}{r['build_s']:>9.1f}{r['engine_mb']:>8.1f}{load}")
    if args.save:
        print(f"saved {results.save_run(rows, results.device_block())}")


def bench_estimate(args) -> None:
    _needs_train_extra("bench estimate")  # onnx, for shape inference
    from stylecam.benchmarks import estimate
    from stylecam.benchmarks.results import RESULTS_DIR
    from stylecam.export.precision import int8_convs
    from stylecam.styles import resolve

    sizes, precisions = _sizes(args.sizes or "480x640,720x1280"), (args.precisions or "fp32,fp16,int8").split(",")
    rows = []
    for style in args.models.split(","):
        bundle = resolve(style)
        int8 = set(int8_convs(bundle.model_file("int8"))) if "int8" in bundle.variants else None  # mixed INT8
        rows += estimate.estimate(bundle.model_file("fp32"), bundle.name, precisions, sizes, int8_layers=int8)
    print("predicted, not measured (assumptions in stylecam/benchmarks/estimate.py)")
    width = max(len(r["model"]) for r in rows) + 2
    print(f"{'model':<{width}}{'device':<24}{'precision':<10}{'frame':>10}{'ms':>9}{'FPS':>8}  bound")
    for r in rows:
        mixed = f" ({r['int8_mac_share']:.0%} of MACs in INT8, the rest FP16)" if r.get("int8_mac_share", 1) < 1 else ""
        print(f"{r['model']:<{width}}{r['device']:<24}{r['precision']:<10}{'{}x{}'.format(*r['size']):>10}"
              f"{r['ms']:>9.2f}{r['fps']:>8.0f}  {r['bound']}{mixed}")
    if args.save:
        print(f"saved {estimate.save(rows, RESULTS_DIR / 'estimate.json')}")


def _label(bundle, spec: str, taken) -> str:
    """The bundle's name, or with its folder when two compared bundles share a name."""
    return bundle.name if bundle.name not in taken else f"{bundle.name} ({Path(spec).name})"


def _frame_size(text: str) -> tuple[int, int]:
    """'640x480' → (480, 640)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size {text!r}: give the frame as WIDTHxHEIGHT, e.g. 640x480") from None
    if min(w, h) < 32:
        raise ValueError(f"--size {text}: at least 32x32 (VGG16's deepest style layer sees 1/8 of it)")
    return h, w


def _eval_models(args) -> list[tuple[str, object]]:
    """(label, model) for each bundle at each ``--scale`` (labelled "NAME @0.5x" below 1 or above), then each
    ``--peer`` (labelled "NAME (peer)"), in the order given."""
    from .frames import check_scale
    from .peer import Peer
    from .stylizer import Stylizer

    if not args.bundles and not args.peer:
        raise ValueError("nothing to evaluate: name bundled styles or bundle folders, and/or --peer MODEL.onnx:CONTRACT")
    scales = [check_scale(float(v)) for v in args.scale.split(",")]
    if args.write_manifest and scales != [1.0]:
        raise ValueError("--write-manifest stores the metrics of the network at full scale; drop --scale for it")
    models: dict[str, object] = {}
    for spec in args.bundles:
        label = None
        for scale in scales:
            stylizer = Stylizer(spec, backend="onnxruntime", variant=args.variant, threads=args.threads, scale=scale)
            label = label or _label(stylizer.bundle, spec, models)
            models[label if scale == 1 else f"{label} @{scale:g}x"] = stylizer
    for spec in args.peer:
        peer = Peer.from_spec(spec, args.threads)
        models[f"{peer.style} (peer)"] = peer
    return list(models.items())


def cmd_eval_video(args) -> None:
    """Flicker: temporal warping error per style and clip (ONNX Runtime; no torch needed)."""
    import cv2

    from .bundle import write_manifest
    from .temporal import flicker_strip, measure_flicker, read_clip

    models = _eval_models(args)
    width = max(16, *(len(label) + 1 for label, _ in models))  # the nanos' names are longer than 15
    print(f"{'style':<{width}} {'clip':<22}{'frames':>7}{'input':>10}{'stylized':>10}{'relative':>10}"
          + (f"{'smoothed':>10}" if args.smoothing else ""))
    for clip in args.video:
        frames = read_clip(clip, args.frames)
        strip = {}
        for label, model in models:
            raw, strip[label] = measure_flicker(model, frames)
            line = (f"{label:<{width}} {Path(clip).name:<22}{len(frames):>7}{raw['input_warping_error']:>10.5f}"
                    f"{raw['warping_error']:>10.5f}{raw['relative']:>10.3f}")
            bundle = getattr(model, "bundle", None)  # None for a peer: no smoothing, no manifest
            if args.smoothing:
                if bundle:
                    model.smoothing = args.smoothing
                    smoothed, _ = measure_flicker(model, frames)
                    model.smoothing = 0.0
                line += f"{smoothed['relative']:>10.3f}" if bundle else f"{'–':>10}"
            print(line)
            if args.write_manifest and bundle:
                m = dict(bundle.manifest)
                flicker = m.setdefault("metrics", {}).setdefault("flicker", {})
                flicker[Path(clip).name] = {"relative_warping_error": round(raw["relative"], 4),
                                            "frames": len(frames)}
                write_manifest(bundle.path, m)
        if args.strip:
            path = Path(args.strip)
            if len(args.video) > 1:
                path = path.with_name(f"{path.stem}_{Path(clip).stem}{path.suffix}")
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), flicker_strip(frames, strip, start=len(frames) // 2))
            print(f"strip: {path}")


def _painting(bundle, photo_folders) -> Path:
    """The bundle's original painting in a ``styles`` folder beside the photos' (or the shared data's); else its
    thumbnail, with a warning: a smaller picture has other Gram matrices, so its style ratios compare with nothing."""
    name = bundle.manifest.get("style_image", {}).get("file", "-")
    for folder in filter(None, photo_folders):
        if (original := Path(folder).parent / "styles" / name).is_file():
            return original
    thumbnail = bundle.file("style.jpg")
    print(f"stylecam eval: {bundle.path.name}: its painting {name!r} is not in a styles folder beside the photos; "
          f"judging against its {thumbnail.name} thumbnail, whose style ratios do not compare with the README's "
          "(pass --style-image PAINTING)", file=sys.stderr)
    return thumbnail


def cmd_eval(args) -> None:
    if args.video:
        return cmd_eval_video(args)
    _needs_train_extra("eval")
    from stylecam.export.precision import images, shared_content
    from stylecam.train.data import read_rgb
    from stylecam.train.metrics import Evaluator, contact_sheet, frame_photos

    from .bundle import write_manifest
    from .quality import tradeoff_plot

    folder = args.photos or shared_content()
    if folder is None:
        raise ValueError("no held-out photos: pass --photos FOLDER")
    models = _eval_models(args)
    pattern = "*" if args.photos else "bsds_val_*"
    h, w = _frame_size(args.size)
    photos = frame_photos(images(folder, args.count, max_side=max(h, w) * 4, pattern=pattern), (h, w))
    evaluator = Evaluator(photos, vgg=args.vgg)
    print(f"{'style':<16} {'arch':<9}{'style ratio':>12}{'content err':>12}{'edge band':>10}{'content':>12}"
          f"{'style dist':>12}{'VGG16-KID':>11}{'edge SSIM':>11}")
    columns, paintings, points, first_painting = {}, {}, [], None
    painting_folders = [folder, shared_content()]  # where a bundle's original painting may lie, beside the photos
    for label, model in models:
        bundle = getattr(model, "bundle", None)
        if bundle:
            style_image = args.style_image or _painting(bundle, painting_folders)
            first_painting = first_painting or style_image
        else:  # a peer is judged against the painting of the bundles beside it, or --style-image
            style_image = args.style_image or first_painting
            if style_image is None:
                raise ValueError(f"{label}: a peer has no painting of its own; pass --style-image PAINTING "
                                 "(or name one of our styles before it to use that one's)")
        metrics, columns[label] = evaluator.evaluate(model, style_image)
        paintings[label] = read_rgb(style_image, max_side=512)[:, :, ::-1]
        arch = bundle.manifest["architecture"]["name"] if bundle else "peer"
        points.append({"label": label, "arch": arch, **metrics})
        print(f"{label:<16} {arch:<9}{metrics['style_ratio']:>12.3f}{metrics['content_error']:>12.3f}"
              f"{metrics['edge_band']:>10.1f}"
              f"{metrics['content_loss']:>12.4g}"
              f"{metrics['style_distance']:>12.4g}{metrics['vgg16_kid']:>11.4f}{metrics['edge_ssim']:>11.3f}")
        if args.write_manifest and bundle:
            m = dict(bundle.manifest)
            m["metrics"] = {**m.get("metrics", {}), **metrics,  # keeps the flicker numbers
                            "photos_from": f"{Path(folder).name}/{pattern}", "size": f"{w}x{h}",
                            "style_reference": Path(style_image).name}
            write_manifest(bundle.path, m)
    if args.sheet:
        print(f"contact sheet: {contact_sheet(photos[: args.sheet_rows], columns, args.sheet, paintings=paintings)}")
    if args.plot:
        print(f"trade-off plot: {tradeoff_plot(points, args.plot)}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stylecam", description="Real-time neural style transfer.")
    p.add_argument("--version", action="version", version=f"stylecam {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    styles = sub.add_parser("styles", help="list the bundled styles")
    styles.add_argument("--plot", help="also write a PNG of their style ratio against content error, as measured "
                        "when they shipped (needs matplotlib: the bench extra)")
    styles.set_defaults(func=cmd_styles)
    sub.add_parser("backends", help="which inference backends run here, and why not").set_defaults(
        func=cmd_backends)
    sub.add_parser("gst-path", help="print the shell lines that let GStreamer find the stylecam element "
                   "(eval \"$(stylecam gst-path)\")").set_defaults(func=cmd_gst_path)

    run = sub.add_parser("run", help="stylize a video file, folder or camera into a file and/or a window")
    run.add_argument("--input", help="video file, image or image folder, camera index, URL, or 'demo' (the "
                     "bundled clip; the default)")
    run.add_argument("--output", help="video file (.mp4, .avi), animated image (.webp, .gif), image file (.jpg, "
                     ".png) for one frame, or a folder (no suffix) for one image per frame, named after the input's "
                     "files")
    run.add_argument("--show", action="store_true", help="show frames in a window (q or Esc quits)")
    run.add_argument("--preview", help="write a side-by-side PNG (original | stylized)")
    run.add_argument("--workers", type=_positive_int, default=1, help="stylize this many frames at once, each on its "
                     "own copy of the network with its share of the CPU threads (--threads: each one's); frames "
                     "stay in order. More frames a second, more memory (README, Python)")
    _add_stylizer_options(run)
    run.set_defaults(func=cmd_run)

    live = sub.add_parser("live", help="real-time: camera or stream to a window, an HTTP stream and/or a file")
    live.add_argument("--source", default="0", help="camera index, video file, image folder, URL, GStreamer "
                      "pipeline, 'csi' or 'csi:N' (Jetson CSI camera), or 'demo'")
    live.add_argument("--http", metavar="HOST:PORT", help="serve MJPEG with controls (e.g. 127.0.0.1:8080)")
    live.add_argument("--output", help="also record: a video file, an animated image (.webp, .gif), or a folder "
                      "(no suffix) for one image per frame")
    live.add_argument("--fullscreen", action="store_true", help="kiosk mode")
    live.add_argument("--no-window", action="store_true", help="headless: HTTP and/or file only")
    live.add_argument("--http-token", help="the secret the HTTP stream's controls (and, bound beyond loopback, the "
                      "stream itself) need (default: a new random one each run, printed in the URL)")
    live.add_argument("--http-allow-host", action="append", default=[], metavar="NAME",
                      help="another name the HTTP Host header may carry, e.g. a reverse proxy's; repeatable")
    live.add_argument("--side-by-side", action="store_true", help="show original | stylized")
    live.add_argument("--overlay", action="store_true", help="write style and strength on the frame")
    live.add_argument("--loop", action="store_true", help="loop a video file or folder")
    live.add_argument("--width", type=int, help="camera width to ask for")
    live.add_argument("--height", type=int, help="camera height to ask for")
    live.add_argument("--fps", type=float, help="camera frame rate to ask for")
    live.add_argument("--screenshots", default=".", help="folder for screenshots (key s)")
    live.add_argument("--fit-fps", type=_fit_fps, metavar="FPS", help="lower the network scale until stylizing keeps "
                      "up with this frame rate ('source': the camera's own); the scale you set ([ ]) is its ceiling")
    _add_stylizer_options(live)
    live.set_defaults(func=cmd_live)

    prof = sub.add_parser("profile", help="show or edit your saved look (style, strength, mix, smoothing, scale, "
                          "favourites), which run, live and Stylizer.from_profile() start from")
    prof.add_argument("action", nargs="?", default="show", choices=["show", "set", "reset"],
                      help="show (default), set the given options, or reset to defaults")
    prof.add_argument("settings", nargs="*", metavar="KEY=VALUE",
                      help="for set: style=wave strength=0.8 mix=udnie mix_amount=0.3 smoothing=0.5 "
                      "scale=0.5 favourites=wave,udnie,candy")
    prof.add_argument("--profile", help="profile file (default: $STYLECAM_PROFILE or ~/.config/stylecam/profile.json)")
    prof.set_defaults(func=cmd_profile)

    train = sub.add_parser("train", help="train a style into a bundle (needs stylecam[train])")
    from stylecam.train.options import add_arguments  # plain argparse, no torch

    add_arguments(train)
    train.set_defaults(func=cmd_train)

    build = sub.add_parser("build", help="build (or reuse) cached TensorRT engines for a bundle")
    build.add_argument("bundle", help="bundled style name or bundle folder")
    build.add_argument("--precision", default="fp16", help="comma list of fp32, fp16, int8 (variants in the bundle)")
    build.add_argument("--shapes", default="480x640,720x1280", help="frame sizes HxW the engine must take")
    build.add_argument("--min", help="smallest frame HxW (default: smallest of --shapes)")
    build.add_argument("--opt", help="frame size to optimize for (default: last of --shapes)")
    build.add_argument("--max", help="largest frame HxW (default: largest of --shapes)")
    build.add_argument("--sm", help="tensorrt_rtx only: build ahead of time for SM75/80/86/89/120/121")
    build.add_argument("--force", action="store_true", help="rebuild even when the cached engine is valid")
    build.set_defaults(func=cmd_build)

    bench = sub.add_parser("bench", help="latency per model, backend, precision and frame size; 'report' "
                           "renders benchmarks/results/README.md")
    bench.add_argument("action", nargs="?", default="run", choices=["run", "report", "kernels", "estimate",
                                                                   "engines"],
                       help="run: models; kernels: pre/post-processing (CUDA kernels against a device copy, and the "
                       "CPU path) at --sizes (default 1080x1920); estimate: predicted FPS on Jetson Orin Nano/NX, AGX Orin and "
                       "Thor from each model's graph; engines: TensorRT engine build time, size and load time "
                       "(--sm for tensorrt_rtx's ahead-of-time target); report: render the results database")
    bench.add_argument("--models", default="candy", help="comma list of bundled styles or bundle folders")
    bench.add_argument("--backends", default="onnxruntime", help="comma list of onnxruntime, tensorrt, torch "
                       "(default %(default)s)")
    bench.add_argument("--precisions", help="comma list of auto, fp32, fp16, int8, int8-cpu (default auto: what "
                                            "each backend runs by default; estimate: fp32, fp16, int8)")
    bench.add_argument("--sizes", help="comma list of HxW (default 480x640,720x1280; kernels: 1080x1920)")
    bench.add_argument("--peer", action="append", default=[], metavar="MODEL.onnx:CONTRACT",
                       help="a peer network and its input contract: rgb01, rgb255, bgr255, rgb-11 (,nhwc; ,out255 "
                            "where its output range differs)")
    bench.add_argument("--smoothing", default="0", help="comma list of runtime smoothing amounts to time "
                       "(e.g. 0,0.5: the cost of smoothing, side by side)")
    bench.add_argument("--scale", default="1", help="comma list of network scales to time (e.g. 1,0.5: the network "
                       "at half the frame's size, side by side with full size)")
    bench.add_argument("--tile", default="0", help="comma list of tile sides to time (e.g. 0,1024: the whole "
                       "frame, then 1024-pixel tiles, side by side; Stylizer(tile=))")
    bench.add_argument("--workers", default="1", help="comma list of worker counts to time (e.g. 1,2: frames per "
                       "second with that many copies stylizing at once, as run --workers; --threads is each one's)")
    bench.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per case")
    bench.add_argument("--iters", type=int, default=30, help="timed calls per case, at least (default %(default)s)")
    bench.add_argument("--threads", type=_positive_int, help="CPU threads for ONNX Runtime (default: its own choice)")
    bench.add_argument("--sm", help="engines with tensorrt_rtx: build for SM75/80/86/89/120/121 (default: this GPU, "
                       "else SM86)")
    bench.add_argument("--save", action="store_true", help="add the run to benchmarks/results/<device>/")
    bench.set_defaults(func=cmd_bench)

    ev = sub.add_parser("eval", help="quality metrics of styles on held-out photos, and a contact sheet")
    ev.add_argument("bundles", nargs="*", help="bundled style names or bundle folders")
    ev.add_argument("--peer", action="append", default=[], metavar="MODEL.onnx:CONTRACT",
                    help="another ONNX style network, judged by the same metrics (contract: rgb01, rgb255, bgr255, "
                         "rgb-11, optionally ,nhwc and ,out255); its painting: --style-image or the first style's")
    ev.add_argument("--photos", help="held-out photos (default: shared/data/content bsds_val_*)")
    ev.add_argument("--count", type=int, default=20, help="how many photos, in name order (default 20)")
    ev.add_argument("--size", default="640x480", help="WxH each photo is centre-cropped and resized to "
                    "(default %(default)s, a camera frame)")
    ev.add_argument("--style-image", help="style reference (default: the original painting in a styles folder "
                    "beside the photos' or in shared/data/styles; else, with a warning, the bundle's style.jpg "
                    "thumbnail)")
    ev.add_argument("--vgg", help="VGG16 weights (default: $STYLECAM_VGG16 or shared/data/vgg16)")
    ev.add_argument("--sheet", help="write a contact sheet PNG (rows: photos, columns: styles)")
    ev.add_argument("--sheet-rows", type=int, default=4, help="photos on the contact sheet (default 4)")
    ev.add_argument("--plot", help="write a PNG of style ratio against content error, one point per style, one "
                    "colour per architecture (needs matplotlib: the bench extra)")
    ev.add_argument("--video", action="append", help="measure flicker (temporal warping error relative to the "
                    "input's) on this clip instead; repeatable; needs no torch")
    ev.add_argument("--frames", type=int, default=60, help="with --video: frames per clip (default 60)")
    ev.add_argument("--smoothing", type=float, default=0.0, help="with --video: also measure runtime smoothing")
    ev.add_argument("--strip", help="with --video: PNG of consecutive frames and a flicker heat map per style")
    ev.add_argument("--variant", default="fp32", choices=VARIANTS,
                    help="which of each bundle's networks to judge (default fp32, the reference; int8-cpu is what "
                         "ONNX Runtime on a CPU runs by default)")
    ev.add_argument("--threads", type=_positive_int, help="CPU threads for ONNX Runtime")
    ev.add_argument("--scale", default="1", help="comma list of network scales (Stylizer.scale), each judged as its "
                    "own column, e.g. 1,0.5")
    ev.add_argument("--write-manifest", action="store_true", help="store the metrics in each bundle's manifest")
    ev.set_defaults(func=cmd_eval)

    export = sub.add_parser("export", help="write model.onnx for a bundle (needs stylecam[train])")
    export.add_argument("bundle", help="bundle folder (a trained style)")
    export.add_argument("--check-image", help="photo for the torch/ONNX parity check (default: style.jpg)")
    export.add_argument("--precision", default="fp32", help="comma list of fp32, fp16, int8 (TensorRT), int8-cpu "
                                                            "(ONNX Runtime on CPUs)")
    export.add_argument("--calib", help="INT8 calibration photos (default: shared/data/content imagenet_*)")
    export.add_argument("--calib-count", type=int, default=32, help="INT8 calibration photos (default %(default)s)")
    export.add_argument("--calib-method", default="percentile", choices=["percentile", "minmax"],
                        help="INT8 activation ranges (default %(default)s)")
    export.add_argument("--eval", help="held-out photos for the gate (default: shared/data/content bsds_val_*)")
    export.add_argument("--eval-count", type=int, default=8,
                        help="held-out photos for the accuracy gate (default %(default)s)")
    export.set_defaults(func=cmd_export)
    return p


def main(argv: list[str] | None = None) -> None:
    log = logging.getLogger("stylecam")  # our lines only; libraries keep their own levels
    if not log.handlers:  # main() may be called more than once in one process
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("stylecam: %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    args = build_parser().parse_args(argv)
    from .live import keep_freed_memory

    keep_freed_memory()  # the CLI owns its process
    try:
        args.func(args)
    except KeyboardInterrupt:
        sys.exit(130)
    except (OSError, ValueError, RuntimeError) as e:  # our errors carry the what-to-do; no traceback
        sys.exit(f"stylecam {args.command}: {e}")


if __name__ == "__main__":
    main()
