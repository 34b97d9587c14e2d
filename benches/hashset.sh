#!/usr/bin/env bash
# Hash-set benchmarks, in one run on the same data (ratios, not absolute times):
#   - import rate (lines/s) and peak RSS of `triage hashset import` on 10M MD5s,
#     in memory and with a 64 MiB sort budget (external sort);
#   - open time of a 100k vs a 10M index;
#   - exact lookups per second on one core, 10M index;
#   - 10,000 PDQ queries at distance <= 31 against 1M hashes with planted
#     near-duplicates: multi-index hashing vs brute force (identical hits
#     checked), and vs faiss IndexBinaryMultiHash (pip install faiss-cpu) on
#     the same hashes, hits compared.
#
#   bash benches/hashset.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
work="${BENCH_WORK:-$here/work}/hashset"
mkdir -p "$work"
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p triage-cli
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p triage-core --example hashset_bench
triage="$repo/target/release/triage"
bench="$repo/target/release/examples/hashset_bench"

[ -f "$work/.done" ] || { "$bench" gen "$work"; touch "$work/.done"; }
cat "$work"/*.txt > /dev/null

import() { # out name file extra... ; prints "seconds maxrss_kib"
    local out=$1 name=$2 file=$3; shift 3
    /usr/bin/time -f "%e %M" -o "$work/time.txt" "$triage" hashset import -q --force \
        --name "$name" -o "$work/$out.tset" "$work/$file" "$@"
    cat "$work/time.txt"
}
read -r t_imp rss_imp < <(import md5-10m md5-10m md5-10m.txt)
read -r t_ext rss_ext < <(import md5-10m-ext md5-10m md5-10m.txt --memory 64)
cmp -s "$work/md5-10m.tset" "$work/md5-10m-ext.tset" && same=identical || same=DIFFERENT
import md5-100k md5-100k md5-100k.txt > /dev/null
read -r t_pdq rss_pdq < <(import pdq-1m pdq-1m pdq-1m.txt)
echo "import 10M md5: $t_imp s, $rss_imp KiB; with --memory 64: $t_ext s, $rss_ext KiB ($same index)"
echo "import 1M pdq: $t_pdq s, $rss_pdq KiB"

"$bench" measure "$work" | tee "$work/measure.txt"
get() { awk -v k="$1" '$1 == k { print $2 }' "$work/measure.txt"; }

python3 - "$work" > "$work/faiss.txt" <<'PY' || echo "faiss_s n/a" > "$work/faiss.txt"
import sys, time
import numpy as np
import faiss
d = sys.argv[1]
def load(path):
    rows = [bytes.fromhex(l[:64]) for l in open(path)]
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), 32)
base = load(f"{d}/pdq-1m.txt")
queries = load(f"{d}/pdq-queries.txt")
t = time.perf_counter()
index = faiss.IndexBinaryMultiHash(256, 16, 16)  # 16 tables of 16 bits
index.nflip = 1  # pigeonhole: some 16-bit chunk is within 1 bit at distance <= 31
index.add(base)
build = time.perf_counter() - t
faiss.omp_set_num_threads(1)
t = time.perf_counter()
lims, D, I = index.range_search(queries, 32)  # faiss: distance < radius
search = time.perf_counter() - t
ours = set()
for line in open(f"{d}/triage-pdq-hits.txt"):
    q, r, dist = map(int, line.split())
    ours.add((q, r, dist))
theirs = set()
for q in range(len(queries)):
    for j in range(lims[q], lims[q + 1]):
        theirs.add((q, int(I[j]), int(D[j])))
print(f"faiss_build_s {build:.3f}")
print(f"faiss_s {search:.4f}")
print(f"faiss_hits {len(theirs)}")
print(f"faiss_same_hits {'yes' if theirs == ours else 'NO (%d only theirs, %d only ours)' % (len(theirs - ours), len(ours - theirs))}")
PY
cat "$work/faiss.txt"
fget() { awk -v k="$1" '$1 == k { print $2 }' "$work/faiss.txt"; }

lines_per_s() { python3 -c "print(f'{10_000_000 / $1:,.0f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.1f}')" 2>/dev/null || echo n/a; }
echo
echo "| measure | value | target |"
echo "|---|---|---|"
echo "| import 10M MD5 lines, in-memory sort | $(lines_per_s "$t_imp") lines/s, peak RSS $((rss_imp / 1024)) MiB | |"
echo "| import 10M MD5 lines, --memory 64 (external sort) | $(lines_per_s "$t_ext") lines/s, peak RSS $((rss_ext / 1024)) MiB, $same index | bounded memory |"
echo "| import 1M PDQ lines (with multi-index tables) | $t_pdq s, peak RSS $((rss_pdq / 1024)) MiB | |"
echo "| open 10M vs 100k index | $(get open_10m_us) vs $(get open_100k_us) µs = $(get open_ratio)× | ≤ 2× |"
echo "| exact lookups, 10M index, 1 core, half listed | $(get lookups_per_sec_1core) /s | ≥ 5,000,000 /s |"
echo "| same, none listed (a scan's usual case) / all listed | $(get lookups_miss_per_sec_1core) / $(get lookups_hit_per_sec_1core) /s | |"
echo "| 10k PDQ queries ≤ 31 vs 1M: MIH vs brute force | $(get pdq_mih_vs_brute)× ($(get pdq_hits) hits, identical) | ≥ 20× |"
echo "| same: triage MIH vs faiss IndexBinaryMultiHash (1 thread) | $(ratio "$(fget faiss_s)" "$(get pdq_mih_s)")× (faiss $(fget faiss_s) s, triage $(get pdq_mih_s) s; same hits: $(fget faiss_same_hits)) | > 1× |"
