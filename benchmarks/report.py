"""``stylecam bench report``: benchmarks/results/README.md with a table per device and latency plots."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from .harness import STOLEN_WARNING
from .results import RESULTS_DIR, device_slug, load_runs


def _clock(name: str, c: dict) -> str:
    """e.g. "cpu0 2600 MHz (800–3500, powersave)"; a range pinned to one value (jetson_clocks) says "locked"."""
    span = ("locked" if c["min"] == c["max"] else f"{c['min']:.0f}–{c['max']:.0f}") if "min" in c and "max" in c \
        else (f"max {c['max']:.0f}" if "max" in c else "")
    extra = ", ".join(x for x in (span, c.get("governor")) if x)
    return f"{name} {c['cur']:.0f} MHz" + (f" ({extra})" if extra else "")


def _gpu_state(gpu: dict) -> str:
    """nvidia-smi's driver, clocks and power limit where the run recorded them."""
    parts = [f"driver {gpu['driver']}" if "driver" in gpu else "",
             f"SM {gpu['sm_mhz']:.0f} of {gpu['max_sm_mhz']:.0f} MHz" if "sm_mhz" in gpu and "max_sm_mhz" in gpu
             else "", f"memory {gpu['mem_mhz']:.0f} MHz" if "mem_mhz" in gpu else "", gpu.get("pstate", ""),
             f"{gpu['power_limit_w']:.0f} W limit" if "power_limit_w" in gpu else ""]
    return ", ".join(p for p in parts if p)


def device_line(d: dict) -> str:
    gpu = d.get("gpu") or {}
    features = f", {' '.join(d['cpu_features'])}" if d.get("cpu_features") else ""
    signature = f"{d['cpu_signature']}, " if d.get("cpu_signature") else ""
    kept = ", freed memory kept (keep_freed_memory)" if d.get("freed_memory_kept") else ""
    parts = [f"CPU {d['cpu']} ({signature}{d['cores']} cores{features})", f"{d['os']}, Python {d['python']}{kept}"]
    if d.get("clocks"):
        parts.insert(1, "clocks: " + ", ".join(_clock(name, c) for name, c in d["clocks"].items()))
    if gpu:
        state = _gpu_state(gpu)
        parts.insert(1, f"GPU {gpu['name']} (compute {gpu['compute_capability']}{', ' + state if state else ''})")
    if d.get("jetson"):
        j = d["jetson"]
        module = ", ".join(filter(None, (j.get("sku"), j.get("part_number"))))
        release = f"JetPack {j['jetpack']} (L4T {j.get('l4t')})" if j.get("jetpack") else \
            (f"L4T {j['l4t']}" if j.get("l4t") else "")
        parts.insert(0, ", ".join(filter(None, (j["module"] + (f" ({module})" if module else ""),
                                                f"power mode {j.get('power_mode')}", release))))
    parts.append(", ".join(f"{k} {v}" for k, v in sorted(d["versions"].items())))
    return "; ".join(parts)


def _plot(rows: list[dict], path: Path, title: str) -> None:
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("plots need matplotlib: pip install 'stylecam[bench]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = defaultdict(list)
    for r in rows:
        if r.get("workers", 1) > 1:  # their ms are per frame at a throughput, not a latency
            continue
        series[f"{r['model']} {r['precision']} ({r['backend']['backend']})"].append(
            (r["size"][0] * r["size"][1] / 1e6, r["end_to_end_ms"]["median"]))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, pts in sorted(series.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    ax.set(xlabel="megapixels per frame", ylabel="median latency, ms (BGR8 in → BGR8 out)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _stolen(run: dict) -> str:
    """The most CPU time the VM's host took while a run timed (``harness.cpu_ticks``), where it was enough to matter;
    runs from before it was recorded say nothing."""
    most = max((r.get("stolen") or 0 for r in run["results"]), default=0)
    return f", {most:.0%} of CPU time stolen by the VM's host" if most > STOLEN_WARNING else ""


def _row_key(r: dict) -> tuple:
    return (r["model"], r["precision"], r["backend"]["backend"], tuple(r["size"]), r.get("smoothing", 0.0),
            r.get("scale", 1.0), r.get("workers", 1))


def _stages(s: dict) -> str:
    """Median ms per stage: host pre / infer / post (or cpp_ext's one ``device`` call), then TensorRT's GPU-timed
    copies and kernels inside it, then runtime smoothing."""
    ms = lambda k: f"{s[k]['median']:.1f}" if k in s else "–"  # noqa: E731
    text = f"device {ms('device')}" if "device" in s else " / ".join(ms(k) for k in ("pre", "infer", "post"))
    if "gpu" in s:
        text += f" (GPU: h2d {ms('h2d')}, run {ms('gpu')}, d2h {ms('d2h')})"
    return text + (f" + smooth {ms('smooth')}" if "smooth" in s else "")


def _memory(r: dict) -> str:
    """What the model added to the process's RSS (runs before it was recorded: the whole process's RSS, in
    brackets), and what the backend holds on the GPU where it says (TensorRT)."""
    gpu = r["backend"].get("gpu_memory_mb")
    host = f"{r['model_mb']:.0f}" if r.get("model_mb") is not None else f"({r.get('rss_mb') or 0:.0f})"
    return host if not gpu else f"{host} + GPU {gpu['buffers'] + gpu['activations']:.0f}"


def _style_distance(r: dict) -> float | None:
    """The bundle's measured style distance; None for peers, smoothed and rescaled runs (not what was measured), and
    workers (their ms are per frame at a throughput, not a latency)."""
    return None if r.get("smoothing") or r.get("scale", 1.0) != 1 or r.get("workers", 1) > 1 else \
        (r.get("quality") or {}).get("style_distance")


def _quality_plot(rows: list[dict], path: Path, title: str) -> bool:
    """Speed against quality at 480×640 (else the largest frame measured): one series per style image (style
    distances of different paintings are not comparable). False when no result carries quality metrics."""
    rated = [r for r in rows if _style_distance(r) is not None]
    if not rated:
        return False
    sizes = {tuple(r["size"]) for r in rated}
    size = (480, 640) if (480, 640) in sizes else max(sizes, key=lambda s: s[0] * s[1])
    points = defaultdict(list)
    for r in rated:
        q = r["quality"]
        if tuple(r["size"]) == size:
            points[q.get("style_reference", "?")].append((r["end_to_end_ms"]["median"], _style_distance(r),
                                                          f"{r['arch']} {r['precision']}"))
    import matplotlib.pyplot as plt  # _plot has checked and configured matplotlib

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for style, pts in sorted(points.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"style image {style}")
        for x, y, label in pts:
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set(xscale="log", xlabel=f"median latency at {size[0]}×{size[1]}, ms (log)", ylabel="Gram style distance (lower is closer)",
           title=f"{title}: speed against quality")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _side_by_side(devices: dict) -> list[str]:
    """Median ms of each bundled style, precision and backend at 480×640 and 720p, one column per device, for the
    rows measured on at least two devices (no smoothing, full network scale)."""
    cells, slugs = defaultdict(dict), sorted(devices)
    for slug in slugs:
        for run, r in devices[slug].values():
            if not r["peer"] and not r.get("smoothing") and r.get("scale", 1.0) == 1 and \
                    tuple(r["size"]) in ((480, 640), (720, 1280)):
                key = (tuple(r["size"]), r["model"], r["precision"], r["backend"]["backend"])
                cells[key][slug] = f"{r['end_to_end_ms']['median']:.1f}{' ⚠' if r['unstable'] else ''}"
    keys = sorted(k for k, row in cells.items() if len(row) > 1)
    if not keys:
        return []
    lines = ["## Devices side by side", "",
             "Median end-to-end ms of the bundled styles measured on two devices or more: the newest result on "
             "each (the sections below name the runs). Columns come from different runs and days, so they compare "
             "loosely: on a VM one day's milliseconds can be twice another's (steal time, above). Ratios from one "
             "run are firmer.", "",
             "| frame | model | precision | backend | " + " | ".join(slugs) + " |",
             "|---|---|---|---|" + "---|" * len(slugs)]
    for size, model, precision, backend in keys:
        row = cells[(size, model, precision, backend)]
        lines.append(f"| {size[0]}×{size[1]} | {model} | {precision} | {backend} | " +
                     " | ".join(row.get(slug, "–") for slug in slugs) + " |")
    return lines + [""]


def _kernel_table(keyed) -> list[str]:
    lines = ["", "Pre/post-processing alone (`stylecam bench kernels`): CUDA kernels as effective GB/s (bytes read and "
             "written / time) against a device-to-device copy timed in the same run; the CPU path in ms.", "",
             "| op | path | dtype | frame | network scale | median ms | GB/s | of copy | run |",
             "|---|---|---|---|---|---|---|---|---|"]
    for run, r in sorted(keyed, key=lambda x: (x[1]["path"], x[1]["op"], x[1]["dtype"], -x[1].get("scale", 1))):
        share = f"{r['of_copy']:.0%} of {r['copy_gb_s']:.0f} GB/s" if r["of_copy"] else "–"
        lines.append(f"| {r['op']} | {r['path']} | {r['dtype']} | {r['size'][0]}×{r['size'][1]} | "
                     f"{r.get('scale', 1):g} | "
                     f"{r['ms']['median']:.3f} | {r['gb_s']:.1f} | {share} | {Path(run['file']).stem} |")
    return lines + [""]


def _engine_table(keyed) -> list[str]:
    lines = ["", "TensorRT engines (`stylecam bench engines`): build once per device, then load at start-up.", "",
             "| model | precision | TensorRT | target | profile (network input) | build s | MB | load s | run |",
             "|---|---|---|---|---|---|---|---|---|"]
    for run, r in sorted(keyed, key=lambda x: (x[1]["model"], x[1]["precision"])):
        p = r["profile"]
        load = f"{r['load_s']:.3f}" if r["load_s"] is not None else f"– ({r['load_note']})"
        lines.append(f"| {r['model']} | {r['precision']} | {r['tensorrt']['module']} {r['tensorrt']['version']} | "
                     f"{r['target']} | {p['min'][2]}×{p['min'][3]} … {p['max'][2]}×{p['max'][3]} | "
                     f"{r['build_s']:.1f} | {r['engine_mb']:.1f} | {load} | {Path(run['file']).stem} |")
    return lines + [""]


def _estimate_section(root: Path) -> list[str]:
    """``stylecam bench estimate --save``'s predictions, and how they compare with any measured GPU."""
    import json

    from .estimate import check

    path = root / "estimate.json"
    if not path.is_file():
        return []
    doc = json.loads(path.read_text())
    a = doc["assumptions"]
    lines = ["## Jetson on paper (predicted, not measured)", "",
             f"From `stylecam bench estimate` ({doc['created']}): a roofline per layer over each model's ONNX graph "
             f"(MACs and bytes by shape inference), with tensor cores at {a['tensor_efficiency']:.0%} of peak, "
             f"CUDA cores at {a['cuda_core_efficiency']:.0%}, DRAM at {a['dram_efficiency']:.0%} and "
             f"{a['layer_overhead_us']:.0f} µs per fused layer. Every assumption is written out in "
             "`benchmarks/estimate.py`.", "",
             "| model | device (power mode) | precision | frame | ms | FPS | bound |", "|---|---|---|---|---|---|---|"]
    for e in doc["estimates"]:
        precision = e["precision"] + (f" ({e['int8_mac_share']:.0%} INT8, rest FP16)"
                                      if e.get("int8_mac_share", 1) < 1 else "")
        lines.append(f"| {e['model']} | {e['device']} ({e['power_mode']}) | {precision} | "
                     f"{e['size'][0]}×{e['size'][1]} | {e['ms']:.1f} | {e['fps']:.0f} | {e['bound']} |")
    checked = check(doc["estimates"], load_runs(root))
    lines += [""]
    if checked:
        lines += ["Checked against measured TensorRT `infer` times:", "",
                  "| model | device | precision | frame | predicted ms | measured ms | predicted / measured |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {c['model']} | {c['device']}{_measured_in(c)} | {c['precision']} | "
                  f"{c['size'][0]}×{c['size'][1]} | {c['network_ms']:.2f} | {c['measured_ms']:.2f} | "
                  f"{c['ratio']:.2f} |" for c in checked]
    else:
        lines.append("No TensorRT result from a listed GPU is in the database yet, so these efficiencies are "
                     "unchecked. A `stylecam bench --backends tensorrt --save` run on an H100 or a Jetson adds the "
                     "check here.")
    return lines + [""]


def _measured_in(checked: dict) -> str:
    """A Jetson measured in another power mode than the one estimated says so beside its name."""
    mode = checked.get("measured_power_mode")
    name = lambda m: m.split(" (")[0].replace("_", " ").upper()  # noqa: E731 - "MAXN_SUPER (mode 2)": "MAXN SUPER"
    return f" (measured in {mode})" if mode and name(mode) != name(checked["power_mode"]) else ""


def render(root: Path = RESULTS_DIR) -> Path:
    """Every device's newest result per (model, precision, backend, size, smoothing, scale) → tables and plots."""
    devices, kernels, engines = defaultdict(dict), defaultdict(dict), defaultdict(dict)
    for run in load_runs(root):  # sorted by time within a device: newer results replace older ones
        for r in run["results"]:
            slug = device_slug(run["device"])
            if r.get("kind") == "kernel":
                kernels[slug][(r["op"], r["path"], r["dtype"], tuple(r["size"]), r.get("scale", 1))] = (run, r)
            elif r.get("kind") == "engine":
                engines[slug][(r["model"], r["precision"], r["target"], r["tensorrt"]["version"])] = (run, r)
            else:
                devices[slug][_row_key(r)] = (run, r)
    lines = ["# Benchmark results", "",
             "Generated by `stylecam bench report` from the JSON runs beside this file (the newest result per model, "
             "precision, backend, frame size, smoothing and network scale on each device). Latency is end to end: a uint8 BGR frame "
             "in, a uint8 BGR frame out, pre- and post-processing included. Only numbers from the same run are "
             "measured side by side. ⚠ marks a coefficient of variation above 5%. Host MB is what the model added to "
             "the process's resident memory (its load and its first calls at that frame size and the ones before; "
             "older runs give the whole process's RSS, in brackets). On a virtual machine, a run's line says how much "
             "CPU time the host gave to other guests while it timed, where that was over 2%: such a run's milliseconds "
             "are that VM's on that day, slower and noisier than its CPU, and its ratios still hold. A model "
             "\"×N workers\" stylized N frames at once on N copies of the network, each with its share of the "
             "cores: its ms are the wall time per frame at that throughput, not one frame's latency.", ""]
    lines += _side_by_side(devices)
    for slug in sorted(devices.keys() | kernels.keys() | engines.keys()):
        keyed = devices[slug]
        runs = {run["file"]: run for run, _ in [*keyed.values(), *kernels[slug].values(), *engines[slug].values()]}
        newest = max(runs.values(), key=lambda run: run["created"])
        rows = [r for _, r in keyed.values()]
        lines += [f"## {slug}", "", device_line(newest["device"]), "",
                  "Runs: " + ", ".join(f"`{f}` ({run['created']}{_stolen(run)})" for f, run in sorted(runs.items())),
                  ""]
        if rows:
            lines += ["| model | arch | precision | backend | frame | median ms | p95 ms | p99 ms | FPS | pre / infer / "
                      "post ms | host (+ GPU) MB | style distance | run |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for run, r in keyed.values():
            e, s = r["end_to_end_ms"], r["stages_ms"]
            stages = _stages(s)
            flag = " ⚠" if r["unstable"] else ""
            q = _style_distance(r)
            lines.append(f"| {r['model']}{' (peer)' if r['peer'] else ''} | {r['arch']} | {r['precision']} | "
                         f"{r['backend']['backend']} | {r['size'][0]}×{r['size'][1]} | {e['median']:.1f}{flag} | "
                         f"{e['p95']:.1f} | {e['p99']:.1f} | {r['fps']:.1f} | {stages} | "
                         f"{_memory(r)} | {f'{q:.3g}' if q else '–'} | {Path(run['file']).stem} |")
        if rows:
            _plot(rows, root / slug / "latency.png", slug)
            lines += ["", f"![latency against resolution]({slug}/latency.png)", ""]
        if rows and _quality_plot(rows, root / slug / "quality.png", slug):
            lines += [f"![speed against quality]({slug}/quality.png)", ""]
        if kernels[slug]:
            lines += _kernel_table(kernels[slug].values())
        if engines[slug]:
            lines += _engine_table(engines[slug].values())
    lines += _estimate_section(root)
    out = root / "README.md"
    out.write_text("\n".join(lines) + "\n")
    return out
