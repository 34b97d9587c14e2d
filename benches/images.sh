#!/usr/bin/env bash
# Disk images: triage against itself on a directory and against the peer
# path an examiner has today (The Sleuth Kit), side by side in one run.
# Prints ratios and peak RSS; raw timings go to benches/work/images.tsv.
#
#   bash benches/images.sh              # ~4 GiB ext4 with 50,000 files
#   QUICK=1 bash benches/images.sh      # ~512 MiB, 5,000 files
#
# What runs, each the best of REPS (3) with the data in the page cache:
#   triage scan TREE        the tree as a directory
#   triage scan ext4.raw    the same tree as a raw ext4 image
#   triage scan ext4.E01    as a compressed E01 (ewfacquire -c deflate:fast)
#   triage scan ntfs.raw    an NTFS image (mkntfs + ntfscp: flat, at most
#                           2,000 files, as ntfscp cannot make directories)
#   ... --no-image-file-hashes   the same image scans without the SHA-256 of
#                           the image files (a whole extra pass over them):
#                           the same work as the TSK paths, which read files only
#   triage scan ext4.Ex01   EWF v2 (libewf's ewfacquire, when
#                           TRIAGE_EWFACQUIRE_V2 names it; scripts/test builds it)
#   pytsk3 lister           ../shared/evidence-images/pytsk3_listing.py:
#                           every file through pytsk3, MD5+SHA-1+SHA-256 by hashlib
#   tsk_recover + hashdeep  extract every file, then hashdeep -j2 md5,sha1,sha256
#   triage verify-image / ewfverify (MD5, and -d sha1)   the E01's medium
# triage computes all four digests (and PDQ for the photos) with its defaults;
# --readers 8 as in benches/run.sh (this VM's disk claims to be rotational).
#
# Needs: e2fsprogs, ntfs-3g, ewf-tools, sleuthkit (tsk_recover), hashdeep,
# python3 with pytsk3 + libewf-python, /usr/bin/time.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
work="${BENCH_WORK:-$here/work}/images"
quick="${QUICK:-0}"
reps="${REPS:-3}"
export PATH="$PATH:/sbin:/usr/sbin"
mkdir -p "$work"
lister="$repo/../shared/evidence-images/pytsk3_listing.py"
for tool in mke2fs mkntfs ntfscp ewfacquire ewfverify tsk_recover hashdeep python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done
[ -f "$lister" ] || { echo "missing: $lister (../shared)" >&2; exit 2; }
python3 -c "import pytsk3, pyewf" || { echo "missing: pip install pytsk3 libewf-python" >&2; exit 2; }

cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p triage-cli
triage="$repo/target/release/triage"

if [ "$quick" = 1 ]; then files=5000; mib=512; else files=50000; mib=4096; fi
tree="$work/tree-$files"
if [ ! -f "$tree.done" ]; then
    rm -rf "$tree"
    python3 - "$tree" "$files" "$mib" "$repo/fixtures/images" <<'PY'
import hashlib, os, random, shutil, sys
root, n, mib, pictures = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = random.Random(12)
photos = [os.path.join(pictures, p) for p in sorted(os.listdir(pictures)) if p.endswith((".png", ".jpg"))]
# Sizes: log-normal, scaled so the tree holds about `mib` MiB.
raw = [rng.lognormvariate(9.5, 1.8) for _ in range(n)]
scale = mib * 1048576 / sum(raw)
block = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(32768))
for i, r in enumerate(raw):
    d = os.path.join(root, f"d{i % 97:02d}", f"s{i % 13}")
    os.makedirs(d, exist_ok=True)
    if i % 50 == 0:
        # A photo (synthetic), made distinct by a trailing byte.
        src = photos[i // 50 % len(photos)]
        dst = os.path.join(d, f"IMG_{i:05d}" + os.path.splitext(src)[1])
        shutil.copyfile(src, dst)
        with open(dst, "ab") as f:
            f.write(i.to_bytes(4, "little"))
        continue
    size = int(r * scale)
    with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
        off = i * 7919 % len(block)
        while size > 0:
            chunk = (block[off:] + block[:off])[:size]
            f.write(chunk)
            size -= len(chunk)
PY
    touch "$tree.done"
fi
tree_bytes=$(du -sb --apparent-size "$tree" | cut -f1)
raw="$work/ext4-$files.raw"
if [ ! -f "$raw.done" ]; then
    kib=$(( tree_bytes / 1024 * 12 / 10 + 65536 ))
    rm -f "$raw"
    E2FSPROGS_FAKE_TIME=1700000000 mke2fs -q -F -t ext4 -b 4096 -d "$tree" "$raw" "${kib}k"
    rm -f "$work/ext4-$files".E0*
    ewfacquire -u -q -t "$work/ext4-$files" -f encase6 -c deflate:fast -S 4GiB "$raw" >/dev/null
    touch "$raw.done"
fi
ntfs="$work/ntfs-$files.raw"
if [ ! -f "$ntfs.done" ]; then
    rm -f "$ntfs"
    truncate -s $(( tree_bytes / 4 + 256 * 1048576 )) "$ntfs"
    mkntfs -q -F -Q -T "$ntfs" >/dev/null 2>&1
    find "$tree" -type f | sort > "$work/list"
    sed -n '1,2000p' "$work/list" > "$work/list.2000"
    while read -r f; do
        rel="${f#"$tree"/}"
        ntfscp -q -f "$ntfs" "$f" "${rel//\//_}"
    done < "$work/list.2000"
    rm -f "$work/list" "$work/list.2000"
    touch "$ntfs.done"
fi
e01="$work/ext4-$files.E01"
ex01=""
if [ -n "${TRIAGE_EWFACQUIRE_V2:-}" ]; then
    ex01="$work/ext4-$files.Ex01"
    if [ ! -f "$ex01.done" ]; then
        rm -f "$work/ext4-$files".Ex*
        "$TRIAGE_EWFACQUIRE_V2" -u -q -t "$work/ext4-$files" -f encase7-v2 -c deflate:fast -S 4GiB "$raw" >/dev/null
        touch "$ex01.done"
    fi
fi

results="$work/images.tsv"
: > "$results"
run() { # NAME COMMAND...: best wall time of $reps runs, with its peak RSS
    local name="$1"; shift
    local best="" rss=""
    for _ in $(seq 1 "$reps"); do
        /usr/bin/time -f "%e %M" -o "$work/time.out" "$@" >/dev/null 2>"$work/stderr.out" || {
            echo "FAILED: $name: $*" >&2; tail -5 "$work/stderr.out" >&2; exit 1; }
        read -r t m < <(tail -1 "$work/time.out")
        if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best="$t"; rss="$m"; fi
    done
    printf '%s\t%s\t%s\n' "$name" "$best" "$rss" | tee -a "$results"
}
T="$triage scan -q --no-case --readers 8 -o /dev/null --force"
cat "$raw" "$work"/ext4-"$files".E* "$ntfs" > /dev/null  # warm the page cache
find "$tree" -type f -exec cat {} + > /dev/null

run "triage dir" $T "$tree"
run "triage ext4.raw" $T "$raw"
run "triage ext4.E01" $T "$e01"
run "triage ntfs.raw" $T "$ntfs"
run "triage ext4.raw, no image file hashes" $T --no-image-file-hashes "$raw"
run "triage ext4.E01, no image file hashes" $T --no-image-file-hashes "$e01"
run "triage ntfs.raw, no image file hashes" $T --no-image-file-hashes "$ntfs"
[ -z "$ex01" ] || run "triage ext4.Ex01" $T "$ex01"
run "pytsk3 lister ext4.raw" python3 "$lister" "$raw"
run "pytsk3 lister ntfs.raw" python3 "$lister" "$ntfs"
recover() { # image: tsk_recover every file, then hashdeep them
    rm -rf "$work/recovered"; mkdir -p "$work/recovered"
    tsk_recover -a "$1" "$work/recovered" >/dev/null
    hashdeep -j2 -c md5,sha1,sha256 -r "$work/recovered" >/dev/null
}
export -f recover; export work
run "tsk_recover+hashdeep ext4.raw" bash -c "recover '$raw'"
run "triage verify-image E01" "$triage" verify-image "$e01"
run "ewfverify E01" ewfverify -q "$e01"
run "ewfverify -d sha1 E01" ewfverify -q -d sha1 "$e01"
rm -rf "$work/recovered"

python3 - "$results" "$files" "$tree_bytes" <<'PY'
import sys
t = {l.split("\t")[0]: (float(l.split("\t")[1]), int(l.split("\t")[2])) for l in open(sys.argv[1])}
files, size = int(sys.argv[2]), int(sys.argv[3])
s = lambda k: t[k][0]
print(f"\n{files} files, {size / 2**30:.2f} GiB (ext4); ratios of speed (higher is faster for triage)\n")
print("| comparison | ratio | target |")
print("|---|---|---|")
n = ", no image file hashes"
print(f"| triage ext4.raw vs triage on the same tree as a directory | {s('triage dir') / s('triage ext4.raw'):.2f}× | ≥ 0.90× |")
print(f"| the same, without the image file's SHA-256 (`--no-image-file-hashes`) | {s('triage dir') / s('triage ext4.raw' + n):.2f}× | ≥ 0.90× |")
print(f"| triage ext4.E01 (compressed) vs triage ext4.raw | {s('triage ext4.raw') / s('triage ext4.E01'):.2f}× | ≥ 0.70× |")
print(f"| the same, `--no-image-file-hashes` on both | {s('triage ext4.raw' + n) / s('triage ext4.E01' + n):.2f}× | ≥ 0.70× |")
if "triage ext4.Ex01" in t:
    print(f"| triage ext4.Ex01 (EWF v2, compressed) vs triage ext4.raw | {s('triage ext4.raw') / s('triage ext4.Ex01'):.2f}× | ≥ 0.70× |")
peer = min(s("pytsk3 lister ext4.raw"), s("tsk_recover+hashdeep ext4.raw"))
print(f"| triage ext4.raw (4 digests) vs the faster TSK path ({'pytsk3' if peer == s('pytsk3 lister ext4.raw') else 'tsk_recover+hashdeep'}, 3 digests) | {peer / s('triage ext4.raw'):.2f}× | ≥ 3× |")
print(f"| the same, `--no-image-file-hashes` (files only, as TSK) | {peer / s('triage ext4.raw' + n):.2f}× | ≥ 3× |")
print(f"| triage ntfs.raw vs pytsk3 lister ntfs.raw | {s('pytsk3 lister ntfs.raw') / s('triage ntfs.raw'):.2f}× | ≥ 3× |")
print(f"| the same, `--no-image-file-hashes` | {s('pytsk3 lister ntfs.raw') / s('triage ntfs.raw' + n):.2f}× | ≥ 3× |")
print(f"| triage verify-image (MD5+SHA-1) vs ewfverify (MD5) | {s('ewfverify E01') / s('triage verify-image E01'):.2f}× | ≥ 1.5× |")
print(f"| triage verify-image vs ewfverify -d sha1 (both MD5+SHA-1) | {s('ewfverify -d sha1 E01') / s('triage verify-image E01'):.2f}× | ≥ 1.5× |")
print(f"| peak RSS, triage (max of the image scans) | {max(t[k][1] for k in t if k.startswith('triage ')) / 1024:.1f} MiB | bounded |")
PY
