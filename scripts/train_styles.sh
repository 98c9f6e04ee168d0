#!/usr/bin/env bash
# The recipe of the bundled styles: every style trained with the same settings, in parallel on one GPU.
# usage: scripts/train_styles.sh CONTENT_DIR STYLES_DIR OUT_DIR [STEPS] [extra stylecam-train flags...]
# Each bundle is written at every checkpoint, so a run cut short by $TRAIN_TIMEOUT still leaves a usable one
# (its manifest says how many steps it got); rerun with --resume to continue.
# Video stability: the shipped styles then got scripts/stabilize_styles.sh (docs/video-stability.md); or add
# --temporal-weight 5e6 here to train it in from the start (not measured at this recipe).
set -u
content=$1 styles=$2 out=$3 steps=${4:-6000}
shift $(( $# < 4 ? $# : 4 ))
declare -A licence=(
  [candy]="research-only (jcjohnson/fast-neural-style images; artist not stated)"
  [mosaic]="research-only (jcjohnson/fast-neural-style images; artist not stated)"
  [udnie]="public domain (Francis Picabia, Udnie, 1913)"
  [starry_night]="public domain (Vincent van Gogh, The Starry Night, 1889)"
  [the_scream]="public domain (Edvard Munch, The Scream, 1893)"
  [wave]="public domain (Hokusai, The Great Wave off Kanagawa, c. 1831)"
  [composition_vii]="public domain (Wassily Kandinsky, Composition VII, 1913)"
  [shipwreck]="public domain (J. M. W. Turner, The Shipwreck of the Minotaur, c. 1810)"
)
mkdir -p "$out"
for img in "$styles"/*.jpg; do
  name=$(basename "$img" .jpg)
  OMP_NUM_THREADS=2 timeout "${TRAIN_TIMEOUT:-3600}" stylecam train --style "$img" --content "$content" \
    --out "$out/$name" --steps "$steps" --batch 8 --size 256 --style-size 512 --checkpoint-every 500 \
    --style-licence "${licence[$name]:-unknown}" "$@" > "$out/$name.log" 2>&1 &
done
wait
tail -n 2 "$out"/*.log
