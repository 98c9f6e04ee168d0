#!/usr/bin/env bash
# The recipe of the bundled InstanceNorm styles, on a CPU: wave from scratch, then each other painting fine-tuned
# from it and steadied for video (scripts/finetune_style.sh), two at a time with one thread each. Each shipped
# manifest's training.phases has the exact history (some took an extra phase at another style weight).
# usage: scripts/train_styles.sh CONTENT_DIR STYLES_DIR [RUNS_DIR=~/stylecam-runs/ship]
# CONTENT_DIR must leave out the held-out photos (shared/data/content minus bsds_val_*). About 7 h on 2 cores.
# Interrupted? Run it again: each phase resumes from its checkpoint or starts over (the temporal ones, 400 steps).
set -eu
export CONTENT=$1 STYLES=$2 RUNS=${3:-$HOME/stylecam-runs/ship}
mkdir -p "$RUNS"
# wave from scratch, once per tier (full: small_in, fast: nano_in), one thread each, side by side
for arch in small_in:wave_s0:2750 nano_in:wave_nano_s0:3000; do
  IFS=: read -r net out steps <<< "$arch"
  OMP_NUM_THREADS=1 stylecam train --style "$STYLES/wave.jpg" --content "$CONTENT" --arch "$net" --out "$RUNS/$out" \
    --name wave --steps "$steps" --batch 2 --size 256 --style-weight 2 --checkpoint-every 250 --seed 0 --resume \
    > "$RUNS/$out.log" 2>&1 &
done
wait
# name, style weight, steps, temporal weight, title, licence[, content layer[, style layers' shares]] (style weight:
# the paintings' Gram matrices differ in scale; the temporal weight follows it). A *_nano name fine-tunes the fast
# tier's wave.
while IFS='|' read -r name weight steps temporal title licence layer shares; do
  init=$RUNS/wave_s0; [[ $name == *_nano ]] && init=$RUNS/wave_nano_s0
  TITLE=$title LICENCE=$licence CONTENT_LAYER=$layer LAYER_WEIGHTS=$shares \
    scripts/finetune_style.sh "$name" "$weight" "$steps" "$init" "$temporal" &
  [ "$(jobs -r | wc -l)" -lt 2 ] || wait -n
done <<'STYLES'
wave|6|900|3e7|The Great Wave|public domain (Hokusai, The Great Wave off Kanagawa, c. 1831)
the_scream|8|1500|3e7|The Scream|public domain (Edvard Munch, The Scream, 1893)
udnie|22|2900|8e7|Udnie|public domain (Francis Picabia, Udnie, 1913)
candy|1|2100|2e7|Candy|research-only (jcjohnson/fast-neural-style images; artist not stated)
mosaic|1.5|1750|3e7|Mosaic|research-only (jcjohnson/fast-neural-style images; artist not stated)
starry_night|0.6|3850|6e6|The Starry Night|public domain (Vincent van Gogh, The Starry Night, 1889)|relu3_3|0.5,0.5,3,3
wave_nano|2|500|3e7|The Great Wave (fast)|public domain (Hokusai, The Great Wave off Kanagawa, c. 1831)
the_scream_nano|8|1000|3e7|The Scream (fast)|public domain (Edvard Munch, The Scream, 1893)
udnie_nano|8|1000|3e7|Udnie (fast)|public domain (Francis Picabia, Udnie, 1913)
candy_nano|1|1600|2e7|Candy (fast)|research-only (jcjohnson/fast-neural-style images; artist not stated)
starry_night_nano|0.55|1700|6e6|The Starry Night (fast)|public domain (Vincent van Gogh, The Starry Night, 1889)|relu3_3
STYLES
wait
ls -d "$RUNS"/*/ | grep -v "_s[01]/$"
