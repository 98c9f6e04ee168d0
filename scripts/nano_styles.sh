#!/usr/bin/env bash
# The fast tier's new styles: candy_nano's network fine-tuned to another painting, distilled from that painting's
# shipped `small` style (README, Bundled styles: "A nano that paints one style learns the next in 2,000 steps").
# usage: [STEPS=2000] scripts/nano_styles.sh CONTENT_DIR STYLES_DIR OUT_DIR [STYLE...]
#        (default: udnie wave the_scream starry_night, the shipped ones)
# CONTENT_DIR must leave out the held-out photos (shared/data/content minus bsds_val_*). Runs two styles at a time
# with one thread each: about 34 min a style on a 2-core CPU. Style and temporal weights come from the shipped
# STYLE_nano manifest where there is one (udnie 1.0 and 5e6, wave 1.2 and 1e7, the_scream 1.0 and 5e6,
# starry_night 0.3 and 5e6), else the teacher's style weight and 5e6. Then: stylecam export OUT/S --precision fp16,int8,int8-cpu (INT8-CPU is rejected for nano so far).
set -eu
content=$1 styles=$2 out=$3
shift 3
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(udnie wave the_scream starry_night)
mkdir -p "$out"
finetune() {
  local name=$1 weight temporal
  read -r weight temporal < <(python -c "import sys; from stylecam.styles import STYLES_DIR, resolve
nano = STYLES_DIR / (sys.argv[1] + '_nano')
w = resolve(nano if nano.is_dir() else sys.argv[1]).manifest['training']['recipe']['weights']
print(w['style'], w['temporal'] if nano.is_dir() else 5e6)" "$name")
  OMP_NUM_THREADS=1 stylecam train --init candy_nano --teacher "$name" --style "$styles/$name.jpg" \
    --content "$content" --out "$out/${name}_nano" --name "${name}_nano" --steps "${STEPS:-2000}" --batch 2 \
    --size 192 --lr 1e-3 --style-weight "$weight" --temporal-weight "$temporal" --checkpoint-every 200 --seed 0 \
    > "$out/${name}_nano.log" 2>&1
}
export -f finetune
export content styles out
printf '%s\n' "${names[@]}" | xargs -P 2 -n 1 bash -c 'finetune "$0"'  # two at a time, one thread each
tail -n 1 "$out"/*.log
