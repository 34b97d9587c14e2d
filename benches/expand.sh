#!/usr/bin/env bash
# Looking inside archives: the same photos scanned unpacked and inside
# zips, side by side in one run. Prints the ratio and peak RSS; raw
# timings go to benches/work/expand/expand.tsv.
#
#   bash benches/expand.sh              # 500 zips holding 20,000 photos
#   QUICK=1 bash benches/expand.sh      # 50 zips, 2,000 photos
#
# The photos are the fixture JPEGs and PNGs, each made distinct by bytes
# after its end marker (decoders stop at the marker: PDQ is the
# original's), 40 to a zip, deflated as phones and backup tools write
# them (Python's zipfile). Both scans compute all four digests and PDQ
# (triage's defaults), the best of REPS (3) with the data in the page
# cache, --readers 8 as in benches/run.sh. Target (issue 13): the zips at
# >= 80% of the unpacked rate.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
work="${BENCH_WORK:-$here/work}/expand"
reps="${REPS:-3}"
if [ "${QUICK:-0}" = 1 ]; then photos=2000; else photos=20000; fi
command -v /usr/bin/time >/dev/null || { echo "missing: /usr/bin/time" >&2; exit 2; }
mkdir -p "$work"
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p triage-cli
triage="$repo/target/release/triage"

tree="$work/photos-$photos"
if [ ! -f "$tree.done" ]; then
    rm -rf "$tree" "$tree-zips"
    python3 - "$repo/fixtures/images" "$tree" "$tree-zips" "$photos" <<'PY'
import os, sys, zipfile
src, flat, zips, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
pictures = [open(os.path.join(src, p), "rb").read()
            for p in sorted(os.listdir(src)) if p.endswith((".jpg", ".png"))]
os.makedirs(zips)
z = None
for i in range(n):
    data = pictures[i % len(pictures)] + b"#%08d" % i
    name = "DCIM/%03d/IMG_%05d%s" % (i // 1000, i, ".png" if data[:4] == b"\x89PNG" else ".jpg")
    path = os.path.join(flat, "%03d" % (i // 40), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "wb").write(data)
    if i % 40 == 0:
        if z:
            z.close()
        z = zipfile.ZipFile(os.path.join(zips, "backup-%03d.zip" % (i // 40)), "w", zipfile.ZIP_DEFLATED)
    z.writestr(name, data)
z.close()
PY
    touch "$tree.done"
fi

results="$work/expand.tsv"
: > "$results"
find "$tree" "$tree-zips" -type f -exec cat {} + > /dev/null  # warm the page cache
for what in "unpacked:$tree" "zips:$tree-zips"; do
    name="${what%%:*}" dir="${what#*:}" best="" rss=""
    for _ in $(seq 1 "$reps"); do
        /usr/bin/time -f "%e %M" -o "$work/time.out" \
            "$triage" scan -q --no-case --readers 8 -o "$work/$name.jsonl" --force "$dir" \
            >/dev/null 2>"$work/stderr.out" || { tail -5 "$work/stderr.out" >&2; exit 1; }
        read -r t m < <(tail -1 "$work/time.out")
        if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best="$t" rss="$m"; fi
    done
    printf '%s\t%s\t%s\n' "$name" "$best" "$rss" | tee -a "$results"
done
# Both scans hashed and PDQ-hashed the same photos.
for f in unpacked zips; do
    grep -c '"tag":"pdq/1"' "$work/$f.jsonl" > "$work/$f.pdq"
done
python3 - "$results" "$photos" "$work/unpacked.pdq" "$work/zips.pdq" <<'PY'
import sys
rows = {l.split("\t")[0]: l.split("\t")[1:] for l in open(sys.argv[1]) if l.strip()}
n = sys.argv[2]
pdq = [open(p).read().strip() for p in sys.argv[3:5]]
(u, ur), (z, zr) = ([float(x) for x in rows[k]] for k in ("unpacked", "zips"))
print(f"\n{n} photos; PDQ hashes: unpacked {pdq[0]}, in zips {pdq[1]}")
print("| comparison | ratio | target |")
print("|---|---|---|")
print(f"| photos in zips vs unpacked (rate) | {u / z:.2f}x | >= 0.80x |")
print(f"\npeak RSS: unpacked {ur / 1024:.1f} MiB, zips {zr / 1024:.1f} MiB")
PY
