#!/usr/bin/env bash
# HEIC photos: triage (libheif's heif-convert in a worker, then PDQ) beside
# Pillow + pillow-heif + pdqhash (the issue's reference), decode included,
# in one run. Prints the ratio and peak RSS; raw timings go to
# benches/work/heic-N/heic.tsv.
#
#   bash benches/heic.sh          # 200 photos
#   N=40 bash benches/heic.sh     # fewer
#
# The photos: synthetic 12-megapixel-class pictures (4032x3024, as an
# iPhone's main camera writes) at a few sizes, encoded by heif-enc
# (Debian's libheif-examples, x265, preset ultrafast: the encoding is set
# up once, and decoding does not depend on it) at quality 80. Python: one process,
# single-threaded, Image.open + convert("RGB") + pdqhash.compute for each.
# triage: `scan --hash blake3 --perceptual pdq` with its default threads
# (BLAKE3 of the bytes is about 1% of the work). Best of REPS (3), the
# files in the page cache. Target (issue 13): triage >= 3x.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
n="${N:-200}"
reps="${REPS:-3}"
work="${BENCH_WORK:-$here/work}/heic-$n"
for t in /usr/bin/time heif-enc heif-convert; do
    command -v "$t" >/dev/null || { echo "missing: $t (apt-get install time libheif-examples)" >&2; exit 2; }
done
python3 -c "import PIL, numpy, pdqhash, pillow_heif" 2>/dev/null \
    || { echo "needs: pip install pillow numpy pdqhash pillow-heif" >&2; exit 2; }
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p triage-cli
triage="$repo/target/release/triage"

if [ ! -f "$work/.done" ]; then
    rm -rf "$work"; mkdir -p "$work/png" "$work/heic"
    python3 - "$work/png" "$n" <<'PY'
import random, sys
import numpy as np
from PIL import Image
root, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(7)
sizes = [(4032, 3024), (3024, 4032), (2048, 1536), (1280, 960)]
for i in range(n):
    w, h = sizes[i % len(sizes)]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    f = rng.uniform(2, 9, 3)
    img = np.stack([np.sin(x / w * f[0] + i) * 100 + 128,
                    np.cos(y / h * f[1]) * 100 + 128,
                    np.sin((x + y) / (w + h) * f[2]) * 100 + 128], axis=2)
    img += rng.normal(0, 6, img.shape)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(f"{root}/IMG_{i:04d}.png")
PY
    for p in "$work"/png/*.png; do
        b="$(basename "$p" .png)"
        heif-enc -q 80 -p preset=ultrafast -o "$work/heic/$b.HEIC" "$p" >/dev/null
    done
    rm -rf "$work/png"
    touch "$work/.done"
fi

results="$work/heic.tsv"
: > "$results"
cat "$work"/heic/* > /dev/null
. "$here/best-of.sh"
best_of triage "$triage" scan -q --no-case --hash blake3 --perceptual pdq -o "$work/scan.jsonl" --force "$work/heic"
best_of python python3 -c '
import pathlib, sys
import numpy as np, pdqhash, pillow_heif
from PIL import Image
pillow_heif.register_heif_opener()
for p in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    pdqhash.compute(np.asarray(Image.open(p).convert("RGB")))
' "$work/heic"
python3 - "$results" "$n" "$work/scan.jsonl" <<'PY'
import json, sys
rows = {l.split("\t")[0]: [float(x) for x in l.split("\t")[1:]] for l in open(sys.argv[1]) if l.strip()}
hashed = sum(1 for l in open(sys.argv[3]) if '"tag":"pdq/1"' in l)
(t, tr), (p, pr) = rows["triage"], rows["python"]
print(f"\n{sys.argv[2]} HEIC photos; PDQ hashes recorded by triage: {hashed}")
print("| comparison | ratio | target |")
print("|---|---|---|")
print(f"| triage vs Pillow + pillow-heif + pdqhash | {p / t:.2f}x | >= 3x |")
print(f"\npeak RSS: triage {tr / 1024:.1f} MiB, Python {pr / 1024:.1f} MiB")
PY
