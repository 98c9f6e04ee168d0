#!/usr/bin/env bash
# The recipe of the InstanceNorm styles (docs/styles.md): a new painting fine-tuned from a trained network, then a
# temporal phase for video stability. Each run's bundle lands in ~/stylecam-runs (outside the source tree) and its
# manifest lists every phase, the --init bundle's included.
# usage: scripts/finetune_style.sh NAME STYLE_WEIGHT STEPS INIT_BUNDLE [TEMPORAL_WEIGHT=3e7]
#   e.g. scripts/finetune_style.sh the_scream 8 1500 ~/stylecam-runs/study/wave_small_in
#        scripts/finetune_style.sh the_scream_nano 8 1000 ~/stylecam-runs/study/wave_nano_in  (paints the_scream.jpg)
# Needs CONTENT (a folder of photos without the held-out bsds_val_*) and STYLES (the paintings, NAME.jpg); TITLE and
# LICENCE name the painting; CONTENT_LAYER (default relu2_2) is the layer the content loss holds, LAYER_WEIGHTS
# (default 1,1,1,1) the style layers' shares. One thread: run two at a time on a 2-core CPU (~1.6 s a step for
# small_in, 256 px; the temporal steps take twice as long).
# Interrupted? Rerun the same line: the first phase resumes.
set -eu
name=$1 weight=$2 steps=$3 init=$4 temporal=${5:-3e7}
runs=${RUNS:-$HOME/stylecam-runs/ship}
mkdir -p "$runs"
common=(--style "$STYLES/${name%_nano}.jpg" --content "$CONTENT" --name "$name" --title "${TITLE:-$name}"
        --style-licence "${LICENCE:-unknown}" --batch 2 --size 256 --style-weight "$weight" --seed 0
        --content-layer "${CONTENT_LAYER:-relu2_2}" --style-layer-weights "${LAYER_WEIGHTS:-1,1,1,1}")
export OMP_NUM_THREADS=1
stylecam train --init "$init" --out "$runs/${name}_s1" "${common[@]}" --steps "$steps" --lr 1e-3 \
  --checkpoint-every 250 --resume > "$runs/${name}_s1.log" 2>&1
stylecam train --init "$runs/${name}_s1" --out "$runs/$name" "${common[@]}" --steps 400 --lr 2e-4 \
  --temporal-weight "$temporal" --checkpoint-every 100 > "$runs/$name.log" 2>&1
echo "next: scripts/ship_style.sh $runs/$name"
