#!/usr/bin/env bash
# Carving pictures from unallocated space: triage and PhotoRec on the same
# ext4 image, side by side in one run. Prints MB/s of unallocated space
# for each, the pictures each recovered (by digest, against the deleted
# originals), and peak RSS; raw timings go to benches/work/carve/carve.tsv.
#
#   bash benches/carve.sh             # a 1 GiB volume, 3,000 pictures deleted
#   QUICK=1 bash benches/carve.sh     # 256 MiB, 750 pictures
#
# The volume (mke2fs -d, 4 KiB blocks) holds the fixture JPEGs and PNGs,
# each made distinct by a comment or text chunk inside it, and filler files of
# random bytes between them; debugfs then deletes every picture, so their
# blocks are free. triage runs its default scan of the image (every file
# and `$Unallocated` hashed with all four digests and PDQ, the pictures
# carved from it; `--expand carve` only, so no other expander adds work)
# and, to show what carving adds, the same scan with `--expand none`;
# then both again with BLAKE3 only and no PDQ (what PhotoRec does: find
# and write out, no digests, no decoding);
# PhotoRec (testdisk) carves the same file types (jpg, png, gif, bmp,
# riff) from the free space only (`freespace`), keeping no corrupt files.
# Best of REPS (3), the image in the page cache.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
work="${BENCH_WORK:-$here/work}/carve"
reps="${REPS:-3}"
if [ "${QUICK:-0}" = 1 ]; then size_mb=256 pictures=750; else size_mb=1024 pictures=3000; fi
for t in /usr/bin/time mke2fs debugfs photorec; do
    command -v "$t" >/dev/null || { echo "missing: $t (apt-get install time e2fsprogs testdisk)" >&2; exit 2; }
done
mkdir -p "$work"
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p triage-cli
triage="$repo/target/release/triage"

img="$work/volume-$size_mb.img"
if [ ! -f "$img.done" ]; then
    rm -rf "$work/tree" "$img" "$work/originals.sha256"
    python3 - "$repo/fixtures/images" "$work/tree" "$pictures" "$size_mb" "$work/rm.cmds" "$work/originals.sha256" <<'PY'
import hashlib, os, random, sys
src, tree, n, size_mb, cmds, sums = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
import struct, zlib
pics = [open(os.path.join(src, p), "rb").read()
        for p in sorted(os.listdir(src)) if p.endswith((".jpg", ".png"))]


def distinct(data, i):
    """The picture made distinct inside its structure (a carver keeps
    structure, not what trails it): a JPEG comment after SOI, a PNG tEXt
    chunk after IHDR."""
    tag = b"bench %08d" % i
    if data[:2] == b"\xff\xd8":
        return data[:2] + b"\xff\xfe" + struct.pack(">H", len(tag) + 2) + tag + data[2:]
    chunk = b"tEXt" + b"n\0" + tag
    text = struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return data[:33] + text + data[33:]
rng = random.Random(13)
os.makedirs(tree)
# Pictures take about a third of the volume, filler a third.
filler = (size_mb << 20) // 3 // n
with open(cmds, "w") as c, open(sums, "w") as s:
    for i in range(n):
        data = distinct(pics[i % len(pics)], i)
        name = "IMG_%05d%s" % (i, ".png" if data[:4] == b"\x89PNG" else ".jpg")
        open(os.path.join(tree, name), "wb").write(data)
        open(os.path.join(tree, "fill_%05d.bin" % i), "wb").write(rng.randbytes(filler))
        c.write("rm %s\n" % name)
        s.write(hashlib.sha256(data).hexdigest() + "\n")
PY
    mke2fs -q -F -t ext4 -b 4096 -E root_owner=0:0 -d "$work/tree" "$img" "${size_mb}M"
    debugfs -w -f "$work/rm.cmds" "$img" >/dev/null 2>&1
    rm -rf "$work/tree"
    touch "$img.done"
fi
cat "$img" > /dev/null  # into the page cache

results="$work/carve.tsv"
: > "$results"
. "$here/best-of.sh"
best_of triage "$triage" scan -q --no-case --expand carve -o "$work/carve.jsonl" --force "$img"
best_of triage-none "$triage" scan -q --no-case --expand none -o "$work/none.jsonl" --force "$img"
# Carving as PhotoRec does it, without the digests and PDQ of every item.
best_of triage-bare "$triage" scan -q --no-case --expand carve --perceptual none --hash blake3 \
    -o "$work/bare.jsonl" --force "$img"
best_of triage-bare-none "$triage" scan -q --no-case --expand none --perceptual none --hash blake3 \
    -o "$work/bare-none.jsonl" --force "$img"
photorec_run() {
    rm -rf "$work/photorec"
    mkdir -p "$work/photorec"
    (cd "$work/photorec" && photorec /d "$work/photorec/r" /cmd "$img" \
        partition_none,options,keep_corrupted_file_no,fileopt,everything,disable,jpg,enable,png,enable,gif,enable,bmp,enable,riff,enable,freespace,search)
}
export -f photorec_run
export work img
best_of photorec bash -c photorec_run

python3 - "$results" "$work/carve.jsonl" "$work/photorec" "$work/originals.sha256" <<'PY'
import hashlib, json, os, sys
rows = {l.split("\t")[0]: [float(x) for x in l.split("\t")[1:]] for l in open(sys.argv[1]) if l.strip()}
want = set(open(sys.argv[4]).read().split())
free, ours = 0, set()
for line in open(sys.argv[2]):
    r = json.loads(line)
    if r.get("path") == "$Unallocated" and r.get("record") == "file":
        free = r["size"]
    if r.get("within", {}).get("parent") == "$Unallocated" and "sha256" in r:
        ours.add(r["sha256"])
theirs = set()
for d, _, files in os.walk(sys.argv[3]):
    for f in files:
        if f != "report.xml":
            theirs.add(hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest())
mb = free / 1e6
(t, tr), (n, nr), (p, pr) = rows["triage"], rows["triage-none"], rows["photorec"]
(b, br), (bn, _) = rows["triage-bare"], rows["triage-bare-none"]
print(f"\n{len(want)} pictures deleted; {free / 2**20:.0f} MiB unallocated")
print("| | MB/s of unallocated | pictures recovered (of the deleted) | peak RSS |")
print("|---|---|---|---|")
print(f"| triage scan, carving | {mb / t:.0f} | {len(ours & want)} | {tr / 1024:.1f} MiB |")
print(f"| triage scan, carving, BLAKE3 only, no PDQ | {mb / b:.0f} | (same carver) | {br / 1024:.1f} MiB |")
print(f"| PhotoRec, free space | {mb / p:.0f} | {len(theirs & want)} | {pr / 1024:.1f} MiB |")
print(f"\ntriage vs PhotoRec (rate): default scan {p / t:.2f}x, BLAKE3 only and no PDQ {p / b:.2f}x")
print(f"carving's own rate (the scan with it less the scan without, BLAKE3 only): {mb / max(b - bn, 1e-3):.0f} MB/s")
print(f"the default scan without carving takes {n / t:.2f} of its time (the rest: hashing and PDQ of the carved pictures)")
print(f"recovered by PhotoRec and not triage: {len((theirs & want) - ours)}; by triage and not PhotoRec: {len((ours & want) - theirs)}")
PY
