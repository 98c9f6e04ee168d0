#!/usr/bin/env python3
"""Does another CPU compute the same frames? Save every bundled style's FP32, FP16 and INT8-CPU frames of some
photos on one machine, then compare two machines' files (scripts/arm64_emulated.sh runs it on x86 and arm64).

  variant_frames.py save OUT.npz PHOTO...       (VARIANTS=fp32,int8-cpu to save fewer)
  variant_frames.py compare REF.npz OTHER.npz
"""
import os
import platform
import sys

import cv2
import numpy as np

from stylecam import Stylizer
from stylecam.quality import psnr
from stylecam.styles import bundled_styles


def save(out, photos):
    frames = {}
    for style in bundled_styles():
        for variant in os.environ.get("VARIANTS", "fp32,fp16,int8-cpu").split(","):
            stylizer = Stylizer(style, backend="onnxruntime", variant=variant)
            for i, photo in enumerate(photos):
                frames[f"{style}|{variant}|{i}"] = stylizer.stylize(cv2.imread(photo))
            print(style, variant, flush=True)
    np.savez_compressed(out, machine=platform.machine(), **frames)


def compare(ref_path, other_path):
    ref, other = np.load(ref_path), np.load(other_path)
    print(f"worst photo; {other['machine']} against {ref['machine']}: the same variant's PSNR and largest LSB "
          "difference | each variant against its machine's FP32")
    keys = [k for k in other.files if k != "machine"]
    for style in sorted({k.split("|")[0] for k in keys}):
        cells = []
        for variant in ("fp32", "fp16", "int8-cpu"):
            mine = [k for k in keys if k.startswith(f"{style}|{variant}|")]
            if not mine:
                continue
            same = min(psnr(other[k], ref[k]) for k in mine)
            lsb = max(int(np.abs(other[k].astype(int) - ref[k].astype(int)).max()) for k in mine)
            cell = f"{variant} {same:.1f} dB ({lsb} LSB)"
            if variant != "fp32":
                fp32 = [k.replace(f"|{variant}|", "|fp32|") for k in mine]
                if all(k in other.files for k in fp32):
                    cell += f" | {min(psnr(other[k], other[f]) for k, f in zip(mine, fp32)):.2f}"
                cell += f" | {ref['machine']} {min(psnr(ref[k], ref[f]) for k, f in zip(mine, fp32)):.2f}"
            cells.append(cell)
        print(f"{style:18s} " + "   ".join(cells))


if __name__ == "__main__":
    command, first, *rest = sys.argv[1:]
    if command == "save":
        save(first, rest)
    else:
        compare(first, *rest)
