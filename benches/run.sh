#!/usr/bin/env bash
# Side-by-side throughput of `triage scan` and its peers on the same data, in
# one run. Prints ratios and peak RSS; raw timings go to benches/work/results.tsv.
#
#   bash benches/run.sh            # full corpus (8 x 256 MiB, 20,000 small, 4 GiB)
#   QUICK=1 bash benches/run.sh    # smaller corpus for a smoke run
#   COLD=1 bash benches/run.sh     # also from a cold page cache (root: drops
#                                  # caches before every run), against cat
#   BASE=<commit> bash benches/run.sh  # the build to compare with (default:
#                                  # e316fc6, the last before multi-buffer MD5;
#                                  # BASE_TRIAGE=path: a binary of it already built)
#
# Needs: hashdeep, b3sum, GNU coreutils, /usr/bin/time (apt-get install
# hashdeep b3sum time). Data is read from the page cache after a warm-up, so
# this measures hashing and I/O overhead, not the disk.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
work="${BENCH_WORK:-$here/work}"
quick="${QUICK:-0}"
reps="${REPS:-3}"
mkdir -p "$work"

for tool in hashdeep b3sum md5sum sha256sum /usr/bin/time python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install hashdeep b3sum time)" >&2; exit 2; }
done

cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p triage-cli
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p triage-core --example hash_throughput
triage="$repo/target/release/triage"
hash_throughput="$repo/target/release/examples/hash_throughput"

# The earlier build, from its own checkout, measured in the same run.
base="${BASE:-e316fc6}"
# BASE_TRIAGE=path uses a binary of it built already.
if [ -n "${BASE_TRIAGE:-}" ]; then
    triage_base="$BASE_TRIAGE"
else
    base_src="$work/base-src"
    if [ "$(git -C "$base_src" rev-parse HEAD 2>/dev/null)" != "$(git -C "$repo" rev-parse "$base^{commit}")" ]; then
        rm -rf "$base_src"; git -C "$repo" worktree prune
        git -C "$repo" worktree add -f --detach "$base_src" "$base" >/dev/null
    fi
    cargo build --release --quiet --manifest-path "$base_src/Cargo.toml" -p triage-cli --target-dir "$work/base-target"
    triage_base="$work/base-target/release/triage"
fi

if [ "$quick" = 1 ]; then
    large_n=4; large_mib=64; small_n=4000; huge_mib=512
else
    large_n=8; large_mib=256; small_n=20000; huge_mib=4096
fi

# --- corpus -----------------------------------------------------------------
gen_random() { # path MiB: deterministic pseudo-random bytes
    python3 - "$1" "$2" <<'EOF'
import hashlib, sys
path, mib = sys.argv[1], int(sys.argv[2])
block = b"".join(hashlib.sha256(f"{path}-{i}".encode()).digest() for i in range(32768))  # 1 MiB
with open(path, "wb") as f:
    for i in range(mib):
        f.write(block[i % 4096:] + block[:i % 4096])
EOF
}

large="$work/large-${large_n}x${large_mib}"
if [ ! -f "$large/.done" ]; then
    rm -rf "$large"; mkdir -p "$large"
    for i in $(seq 1 "$large_n"); do gen_random "$large/f$i.bin" "$large_mib"; done
    touch "$large/.done"
fi
small="$work/small-$small_n"
if [ ! -f "$small/.done" ]; then
    rm -rf "$small"
    python3 - "$small" "$small_n" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
for i in range(n):
    d = os.path.join(root, f"d{i % 40:02d}", f"s{(i // 40) % 25:02d}")
    os.makedirs(d, exist_ok=True)
    size = rng.randint(1024, 64 * 1024)
    with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
        f.write(rng.randbytes(size))
EOF
    touch "$small/.done"
fi
huge="$work/huge-${huge_mib}"
if [ ! -f "$huge/.done" ]; then
    rm -rf "$huge"; mkdir -p "$huge"
    gen_random "$huge/one.bin" "$huge_mib"
    touch "$huge/.done"
fi
rm -f "$large/.done.tmp"
# Warm the page cache.
cat "$large"/*.bin "$huge"/one.bin >/dev/null
find "$small" -type f -print0 | xargs -0 cat >/dev/null

# --- timing -----------------------------------------------------------------
results="$work/results.tsv"
: > "$results"
# run NAME CORPUS COMMAND...: best wall time of $reps runs, and its peak RSS.
run() {
    local name="$1" corpus="$2"; shift 2
    local best="" rss=""
    for _ in $(seq 1 "$reps"); do
        /usr/bin/time -f "%e %M" -o "$work/time.out" "$@" >/dev/null 2>"$work/stderr.out" || {
            echo "FAILED: $name: $*" >&2; cat "$work/stderr.out" >&2; exit 1; }
        read -r t m < <(tail -1 "$work/time.out")
        if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best="$t"; rss="$m"; fi
    done
    printf '%s\t%s\t%s\t%s\n' "$corpus" "$name" "$best" "$rss" | tee -a "$results"
}

# This VM's virtio disk reports rotational=1, which would give triage one
# reader; the data is in the page cache, so say what an examiner would.
T="$triage scan -q --no-case --readers 8 -o /dev/null --force"
TB="$triage_base scan -q --no-case --readers 8 -o /dev/null --force"
bytes_of() { du -sb --apparent-size "$1" | cut -f1; }

for corpus in "$large" "$small"; do
    c="$(basename "$corpus")"
    run "hashdeep -j2 md5,sha1,sha256" "$c" hashdeep -c md5,sha1,sha256 -r -j2 "$corpus"
    run "triage md5,sha1,sha256" "$c" $T --hash md5,sha1,sha256 "$corpus"
    run "triage all4" "$c" $T "$corpus"
    run "base all4" "$c" $TB "$corpus"
    # Batches small enough that both processes get work on the large set.
    n=$([ "$c" = "$(basename "$small")" ] && echo 64 || echo 1)
    run "md5sum xargs -P2" "$c" sh -c "find '$corpus' -type f -name '*.bin' -print0 | xargs -0 -n $n -P2 md5sum"
    run "sha256sum xargs -P2" "$c" sh -c "find '$corpus' -type f -name '*.bin' -print0 | xargs -0 -n $n -P2 sha256sum"
    run "triage md5" "$c" $T --hash md5 "$corpus"
    run "b3sum" "$c" sh -c "find '$corpus' -type f -name '*.bin' -print0 | xargs -0 b3sum"
    run "triage blake3" "$c" $T --hash blake3 "$corpus"
done
c="$(basename "$huge")"
run "triage all4 1 thread" "$c" $T --threads 1 "$huge"
run "triage all4 2 threads" "$c" $T --threads 2 "$huge"
run "base all4 2 threads" "$c" $TB --threads 2 "$huge"

"$hash_throughput" 512 > "$work/compute.txt"

# Memory against file count: 1,000,000 empty files (MILLION=1; takes minutes
# to create). Peak RSS must not grow with the count.
if [ "${MILLION:-0}" = 1 ]; then
    million="$work/million"
    if [ ! -f "$million/.done" ]; then
        rm -rf "$million"
        python3 - "$million" <<'EOF2'
import os, sys
root = sys.argv[1]
for d in range(1000):
    p = os.path.join(root, f"d{d:03d}")
    os.makedirs(p)
    for f in range(1000):
        open(os.path.join(p, f"f{f:03d}"), "wb").close()
EOF2
        touch "$million/.done"
    fi
    REPS=1 run "triage all4 1M empty files" "million" $T "$million"
    REPS=1 run "triage all4 20k files" "small" $T "$small"
fi

# --- cold cache (COLD=1; root) ----------------------------------------------
# Every run starts with an empty page cache, so the disk is the limit: `cat`
# of the same files is the device's own rate. triage runs with its default
# readers (what an examiner gets) and with --readers 8.
cold() { # NAME CORPUS COMMAND...
    local name="$1" corpus="$2"; shift 2
    local best="" rss=""
    for _ in $(seq 1 "$reps"); do
        sync; echo 3 > /proc/sys/vm/drop_caches
        /usr/bin/time -f "%e %M" -o "$work/time.out" "$@" >/dev/null 2>"$work/stderr.out" || {
            echo "FAILED: $name: $*" >&2; cat "$work/stderr.out" >&2; exit 1; }
        read -r t m < <(tail -1 "$work/time.out")
        if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best="$t"; rss="$m"; fi
    done
    printf '%s\t%s\t%s\t%s\n' "cold-$corpus" "$name" "$best" "$rss" | tee -a "$results"
}
if [ "${COLD:-0}" = 1 ]; then
    [ -w /proc/sys/vm/drop_caches ] || { echo "COLD=1 needs root (drop_caches)" >&2; exit 2; }
    Tdef="$triage scan -q --no-case -o /dev/null --force"
    for corpus in "$large" "$small"; do
        c="$(basename "$corpus")"
        cold "cat" "$c" sh -c "find '$corpus' -type f -name '*.bin' -print0 | xargs -0 cat"
        cold "hashdeep -j2 md5,sha1,sha256" "$c" hashdeep -c md5,sha1,sha256 -r -j2 "$corpus"
        cold "triage all4 default readers" "$c" $Tdef "$corpus"
        cold "triage all4 --readers 8" "$c" $T "$corpus"
    done
fi

# --- ratios -----------------------------------------------------------------
python3 - "$results" "$work/compute.txt" "$(bytes_of "$large")" "$small_n" "$(bytes_of "$huge")" "$base" <<'EOF'
import sys
base = sys.argv[6]
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
def kind(c):  # "large-8x256" -> "large", "cold-small-20000" -> "cold-small"
    p = c.split("-")
    return "-".join(p[:2]) if p[0] == "cold" else p[0]
t = {(kind(c), n): (float(s), int(m)) for c, n, s, m in rows}
compute = dict(l.split() for l in open(sys.argv[2]))
large_bytes, small_n, huge_bytes = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def ratio(c, a, b):
    return t[(c, b)][0] / t[(c, a)][0]
print()
print("| measure | value | target |")
print("|---|---|---|")
lg = "large"
print(f"| large: triage md5+sha1+sha256 vs hashdeep -j2 | {ratio(lg, 'triage md5,sha1,sha256', 'hashdeep -j2 md5,sha1,sha256'):.2f}x | >= 3.2x |")
all4 = large_bytes / t[(lg, 'triage all4')][0] / 1e9
lim = float(compute["limit_all4_2core"])
print(f"| large: triage all four, GB/s vs one-stream compute limit {lim:.3f} GB/s | {all4:.3f} GB/s = {100*all4/lim:.0f}% | |")
print(f"| large: triage all four vs base {base} | {ratio(lg, 'triage all4', 'base all4'):.2f}x | |")
sm = "small"
print(f"| small: triage all four vs base {base} | {ratio(sm, 'triage all4', 'base all4'):.2f}x | >= 1.6x |")
print(f"| small: triage all four vs hashdeep -j2 (3 hashes), files/s | {ratio(sm, 'triage all4', 'hashdeep -j2 md5,sha1,sha256'):.2f}x | >= 4x |")
print(f"| large: triage blake3 vs b3sum | {ratio(lg, 'triage blake3', 'b3sum'):.2f}x | >= 1x |")
print(f"| small: triage blake3 vs b3sum | {ratio(sm, 'triage blake3', 'b3sum'):.2f}x | > 1x |")
print(f"| large: triage md5 vs md5sum xargs -n1 -P2 | {ratio(lg, 'triage md5', 'md5sum xargs -P2'):.2f}x | >= 3x |")
print(f"| small: triage md5 vs md5sum xargs -P2 | {ratio(sm, 'triage md5', 'md5sum xargs -P2'):.2f}x | |")
hg = "huge"
print(f"| one {huge_bytes / 2**30:g} GiB file, all four: 2 threads vs 1 | {ratio(hg, 'triage all4 2 threads', 'triage all4 1 thread'):.2f}x | >= 1.7x |")
print(f"| one {huge_bytes / 2**30:g} GiB file, all four, 2 threads: vs base | {ratio(hg, 'triage all4 2 threads', 'base all4 2 threads'):.2f}x | |")
print(f"| peak RSS, triage (max over runs above) | {max(m for (c, n), (s, m) in t.items() if n.startswith('triage') and 'empty' not in n) / 1024:.1f} MiB | < 100 MB |")
if ("million", "triage all4 1M empty files") in t:
    print(f"| peak RSS, triage: 1,000,000 empty files vs 20,000 files | {t[('million', 'triage all4 1M empty files')][1]/1024:.1f} / {t[('small', 'triage all4 20k files')][1]/1024:.1f} MiB | bounded |")
for c in ("large", "small"):
    k = "cold-" + c
    if (k, "cat") in t:
        for name in ("triage all4 default readers", "triage all4 --readers 8"):
            print(f"| cold {c}: {name}, rate vs cat | {100 * ratio(k, name, 'cat'):.0f}% | >= 90% |")
            print(f"| cold {c}: {name} vs hashdeep -j2 | {ratio(k, name, 'hashdeep -j2 md5,sha1,sha256'):.2f}x | >= 1.5x |")
print(f"| peak RSS, hashdeep large / small | {t[(lg, 'hashdeep -j2 md5,sha1,sha256')][1]/1024:.1f} / {t[(sm, 'hashdeep -j2 md5,sha1,sha256')][1]/1024:.1f} MiB | |")
EOF
