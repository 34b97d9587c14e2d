#!/usr/bin/env bash
# Videos: triage (FFmpeg worker + PDQ) beside Meta's reference vPDQ (PyPI
# vpdq 0.2.5: its C++ hasher, built against the same Debian FFmpeg; the
# wheel does not exist, so pip builds the sdist with CMake), decode
# included, one frame a second and every frame, in one run. Prints the
# ratios, whether every frame is bit-identical, and peak RSS; raw timings
# go to benches/work/video/video.tsv.
#
#   bash benches/video.sh                   # six 30 s 720p clips + Meta's samples
#   VPDQ_PYTHON=/path/to/venv/bin/python bash benches/video.sh
#
# The clips: FFmpeg's synthetic sources (mandelbrot, testsrc2, cellauto,
# life, smptehdbars with noise, a zooming gradient) encoded as H.264 at
# 1280x720 30 fps, CRF 23, plus ../shared/vpdq-reference's six samples
# when present. The reference: `scripts/vpdq_hash.py VIDEO S 2` (two
# hashing threads; its decoder takes FFmpeg's own thread choice). triage:
# `scan FILE --hash blake3 --video-seconds-per-hash S` with its default
# threads (2 here); BLAKE3 of the bytes is well under 1% of the work.
# Best of REPS (3), files in the page cache. Peak RSS is the largest
# process's (GNU time's maximum resident set: for triage, the larger of the
# scanner and its FFmpeg worker). Target (issue 14): triage >= 2x.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
reps="${REPS:-3}"
work="${BENCH_WORK:-$here/work}/video"
py="${VPDQ_PYTHON:-${TRIAGE_VPDQ_PYTHON:-$repo/target/tools/vpdq-venv/bin/python}}"
for t in /usr/bin/time ffmpeg ffprobe; do
    command -v "$t" >/dev/null || { echo "missing: $t (apt-get install time ffmpeg)" >&2; exit 2; }
done
"$py" -c "import vpdq" 2>/dev/null \
    || { echo "needs PyPI vpdq: run scripts/test (it builds target/tools/vpdq-venv) or set VPDQ_PYTHON" >&2; exit 2; }
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p triage-cli
triage="$repo/target/release/triage"

if [ ! -f "$work/.done" ]; then
    rm -rf "$work"; mkdir -p "$work/clips"
    i=0
    for src in "mandelbrot=size=1280x720:rate=30" "testsrc2=size=1280x720:rate=30" \
        "cellauto=size=1280x720:rate=30:rule=110" "life=size=1280x720:rate=30:mold=10" \
        "smptehdbars=size=1280x720:rate=30,noise=alls=20:allf=t" \
        "gradients=size=1280x720:rate=30:speed=0.05"; do
        ffmpeg -hide_banner -loglevel error -y -f lavfi -t 30 -i "$src" -pix_fmt yuv420p \
            -c:v libx264 -crf 23 -preset veryfast "$work/clips/clip-$i.mp4"
        i=$((i + 1))
    done
    if [ -d "$repo/../shared/vpdq-reference" ]; then
        cp "$repo"/../shared/vpdq-reference/*.mp4 "$work/clips/"
    fi
    touch "$work/.done"
fi

results="$work/video.tsv"
: > "$results"
# best TOOL SECONDS: best wall time over REPS for all clips, and peak RSS.
best() {
    local tool="$1" s="$2" bestt="" bestcpu=0 rss=0
    for _ in $(seq "$reps"); do
        local t0 t1 peak=0 cpu=0
        t0=$(date +%s.%N)
        for v in "$work"/clips/*.mp4; do
            local out="$work/out-$tool-$s-$(basename "$v").txt"
            if [ "$tool" = vpdq ]; then
                /usr/bin/time -f "%M %U %S" -o "$work/rss" "$py" "$repo/scripts/vpdq_hash.py" "$v" "$s" 2 >"$out" 2>/dev/null
            else
                local log="$work/log-$s-$(basename "$v").jsonl"
                rm -f "$log"
                /usr/bin/time -f "%M %U %S" -o "$work/rss" "$triage" scan "$v" --no-case -q --hash blake3 \
                    --video-seconds-per-hash "$s" -o "$log"
            fi
            local m u y; read -r m u y < "$work/rss"; [ "$m" -gt "$peak" ] && peak=$m
            cpu=$(echo "$cpu + $u + $y" | bc)
        done
        t1=$(date +%s.%N)
        local el; el=$(echo "$t1 - $t0" | bc)
        if [ -z "$bestt" ] || [ "$(echo "$el < $bestt" | bc)" = 1 ]; then bestt=$el; bestcpu=$cpu; fi
        [ "$peak" -gt "$rss" ] && rss=$peak
    done
    printf '%s\t%s\t%s\t%s\t%s\n' "$tool" "$s" "$bestt" "$rss" "$bestcpu" >> "$results"
}
for s in 1 0; do
    best vpdq "$s"
    best triage "$s"
done
# triage's frames, from its logs (outside the timing: the reference's
# script prints its own).
for log in "$work"/log-*.jsonl; do
    b="$(basename "$log" .jsonl)"; b="${b#log-}"
    python3 -c '
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d.get("record") == "file" and "video" in d:
        for f in d["video"]["frames"]:
            print("%d,%d,%s,%.3f" % (f["frame"], f["quality"], f["hash"], f["timestamp"]))
' "$log" > "$work/out-triage-$b.txt"
done
frames_total=0; frames_same=0
for f in "$work"/out-vpdq-*.txt; do
    g="${f/out-vpdq-/out-triage-}"
    frames_total=$((frames_total + $(wc -l < "$f")))
    frames_same=$((frames_same + $(grep -cxFf "$f" "$g" || true)))
done
echo "clips: $(ls "$work"/clips/*.mp4 | wc -l) ($(du -sh "$work/clips" | cut -f1)), best of $reps, FFmpeg $(ffmpeg -version | head -1 | cut -d' ' -f3)"
python3 - "$results" <<'PY'
import sys
rows = {}
for l in open(sys.argv[1]):
    tool, s, t, rss, cpu = l.split()
    rows[(tool, s)] = (float(t), int(rss), float(cpu))
for s, label in (("1", "one frame a second"), ("0", "every frame")):
    (vt, vr, vc), (tt, tr, tc) = rows[("vpdq", s)], rows[("triage", s)]
    print(f"{label}: vpdq {vt:.2f} s ({vr // 1024} MiB, {vc:.1f} s CPU), "
          f"triage {tt:.2f} s ({tr // 1024} MiB, {tc:.1f} s CPU): {vt / tt:.2f}x "
          f"(the reference's own CPU time spread on 2 cores would be {vt / (vc / 2):.2f}x)")
PY
echo "frames bit-identical with the reference: $frames_same / $frames_total"
