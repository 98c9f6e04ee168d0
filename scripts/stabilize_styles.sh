#!/usr/bin/env bash
# Phase 4 of the bundled styles: a temporal-loss fine-tune from each shipped style (video stability, README).
# usage: [STEPS=400] scripts/stabilize_styles.sh CONTENT_DIR STYLES_DIR OUT_DIR [STYLE...]
# CONTENT_DIR must leave out the held-out photos (shared/data/content minus bsds_val_*). Runs two styles at a
# time with one thread each: 7-12 min a style on a 2-core CPU. Style weight, crop size and temporal weight come from
# each shipped manifest's recipe: 256 px (the H100 size) for candy, mosaic and the_scream, which kept more of their
# style that way (the_scream lost it at 192 px, with or without the temporal loss); 192 px for starry_night, udnie
# and wave. Temporal weight 5e6, but 1.5e7 for the_scream, 6e7 for udnie and 1e7 (style weight 1.2) for wave,
# which 5e6 steadied by only 16-35 % (docs/video-stability.md).
# BatchNorm statistics stay frozen (the --init default); then: stylecam export OUT/S --precision fp16,int8,int8-cpu.
set -eu
content=$1 styles=$2 out=$3
shift 3
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(candy mosaic starry_night the_scream udnie wave)
mkdir -p "$out"
finetune() {
  local name=$1 weight size temporal
  read -r weight size temporal < <(python -c "import sys; from stylecam.styles import resolve
r = resolve(sys.argv[1]).manifest['training']['recipe']; w = r['weights']; print(w['style'], r['size'], w['temporal'])" "$name")
  OMP_NUM_THREADS=1 stylecam train --init "$name" --style "$styles/$name.jpg" --content "$content" \
    --out "$out/$name" --name "$name" --steps "${STEPS:-400}" --batch 2 --size "$size" --lr 2e-4 --style-weight "$weight" \
    --temporal-weight "$temporal" --checkpoint-every 100 --seed 0 > "$out/$name.log" 2>&1
}
export -f finetune
export content styles out
printf '%s\n' "${names[@]}" | xargs -P 2 -n 1 bash -c 'finetune "$0"'  # two at a time, one thread each
tail -n 1 "$out"/*.log
