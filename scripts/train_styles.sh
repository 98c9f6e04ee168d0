#!/usr/bin/env bash
# The recipe of the bundled InstanceNorm styles, on a CPU: wave from scratch, then each other painting fine-tuned
# from it and steadied for video (scripts/finetune_style.sh), two at a time with one thread each. Each shipped
# manifest's training.phases has the exact history (some took an extra phase at another style weight).
# usage: scripts/train_styles.sh CONTENT_DIR STYLES_DIR [RUNS_DIR=~/stylecam-runs/ship]
# CONTENT_DIR must leave out the held-out photos (shared/data/content minus bsds_val_*). About 6 h on 2 cores.
# Interrupted? Run it again: each phase resumes from its checkpoint or starts over (the temporal ones, 400 steps).
set -eu
export CONTENT=$1 STYLES=$2 RUNS=${3:-$HOME/stylecam-runs/ship}
mkdir -p "$RUNS"
OMP_NUM_THREADS=2 stylecam train --style "$STYLES/wave.jpg" --content "$CONTENT" --arch small_in --out "$RUNS/wave_s0" \
  --name wave --steps 2750 --batch 2 --size 256 --style-weight 2 --checkpoint-every 250 --seed 0 --resume \
  > "$RUNS/wave_s0.log" 2>&1
# name, style weight, steps, title, licence (style weight: the painting's Gram matrices differ in scale)
while IFS='|' read -r name weight steps title licence; do
  TITLE=$title LICENCE=$licence scripts/finetune_style.sh "$name" "$weight" "$steps" "$RUNS/wave_s0" &
  [ "$(jobs -r | wc -l)" -lt 2 ] || wait -n
done <<'STYLES'
wave|2|500|The Great Wave|public domain (Hokusai, The Great Wave off Kanagawa, c. 1831)
the_scream|8|1500|The Scream|public domain (Edvard Munch, The Scream, 1893)
udnie|8|2000|Udnie|public domain (Francis Picabia, Udnie, 1913)
candy|0.5|1500|Candy|research-only (jcjohnson/fast-neural-style images; artist not stated)
starry_night|0.25|1250|The Starry Night|public domain (Vincent van Gogh, The Starry Night, 1889)
STYLES
wait
ls -d "$RUNS"/*/ | grep -v "_s[01]/$"
