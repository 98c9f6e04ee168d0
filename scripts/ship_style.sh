#!/usr/bin/env bash
# Turns a trained bundle into a shippable one: ONNX variants with their accuracy gates, then the quality numbers
# the model card carries (held-out photos and three video clips). Review the contact sheet before copying it into
# sdk/stylecam/styles/.
# usage: scripts/ship_style.sh TRAINED_BUNDLE [DEST=/tmp/ship/NAME]
set -u
src=$1 name=$(basename "$1")
dst=${2:-/tmp/ship/$name}
video=${VIDEO:-../shared/data/video}
rm -rf "$dst"; mkdir -p "$(dirname "$dst")"; cp -r "$src" "$dst"; rm -rf "$dst/.train"
OMP_NUM_THREADS=1 stylecam export "$dst" --precision fp16,int8,int8-cpu > "$dst.export.log" 2>&1
grep -E "^(fp32|fp16|int8|int8-cpu|stylecam)" "$dst.export.log"
stylecam eval "$dst" --count 20 --threads 1 --write-manifest --sheet "$dst.sheet.png" > "$dst.eval.log" 2>&1
grep -A1 "^style " "$dst.eval.log"
stylecam eval "$dst" --video "$video/vtest.avi" --video "$video/tree.avi" --video "$video/demo_640x360.mp4" \
  --frames 60 --threads 1 --write-manifest 2>&1 | grep -v -i warn
echo "contact sheet: $dst.sheet.png; ship: cp -r $dst sdk/stylecam/styles/$name"
