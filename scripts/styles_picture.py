#!/usr/bin/env python3
"""The README's picture: a frame of the demo clip and every bundled style on it (full tier, then fast tier), each
in the variant ONNX Runtime on a CPU runs by default.

  scripts/styles_picture.py [OUT.jpg] [FRAME_INDEX]     (default docs/styles.jpg, frame 60)
"""
import sys

import cv2

from stylecam import Stylizer
from stylecam.frames import draw_label, image_grid
from stylecam.sources import DEMO_CLIP
from stylecam.styles import bundled_styles


def demo_frame(index: int):
    clip = cv2.VideoCapture(str(DEMO_CLIP))
    clip.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = clip.read()
    if not ok:
        raise ValueError(f"the demo clip has no frame {index}")
    return frame


def main(out="docs/styles.jpg", index="60", columns=4):
    frame = demo_frame(int(index))
    styles = sorted(bundled_styles(), key=lambda s: (s.endswith("_nano"), s))
    tiles = [frame.copy()] + [Stylizer(s, backend="onnxruntime").stylize(frame) for s in styles]
    for tile, label in zip(tiles, ["input", *styles]):
        draw_label(tile, label, (8, 24), scale=0.7)
    rows = [tiles[i:i + columns] for i in range(0, len(tiles), columns)]
    cv2.imwrite(out, image_grid(rows, height=180), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"{out}: {len(styles)} styles on frame {index} of the demo clip")


if __name__ == "__main__":
    main(*sys.argv[1:])
