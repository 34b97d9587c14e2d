#!/usr/bin/env bash
# What the audit log costs, in one run on the same data:
#  1. a scan with the signed audit log (checkpoints every 1,000 entries,
#     each synced to disk) against the same scan with no log at all, on the
#     20,000 small files of benches/run.sh (where per-record cost shows most)
#     and on 8 x 64 MiB files;
#  2. `triage verify` of a signed 1,000,000-entry log on one core: records
#     per second and peak RSS, beside `sha256sum` of the same file (the
#     chain hashes every byte once, so that is the floor).
#
#   bash benches/audit.sh        # REPS=5 by default
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
work="${BENCH_WORK:-$here/work}"
reps="${REPS:-5}"
entries="${ENTRIES:-1000000}"
mkdir -p "$work"

cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p triage-cli
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p triage-core --example audit_bench
triage="$repo/target/release/triage"
bench="$repo/target/release/examples/audit_bench"

small="$work/small-20000"
if [ ! -f "$small/.done" ]; then
    rm -rf "$small"
    python3 - "$small" 20000 <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
for i in range(n):
    d = os.path.join(root, f"d{i % 40:02d}", f"s{(i // 40) % 25:02d}")
    os.makedirs(d, exist_ok=True)
    size = rng.randint(1024, 64 * 1024)
    with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
        f.write(rng.randbytes(size))
PY
    touch "$small/.done"
fi
large="$work/audit-large"
if [ ! -f "$large/.done" ]; then
    mkdir -p "$large"
    for i in $(seq 1 8); do head -c $((64 << 20)) /dev/urandom > "$large/f$i.bin"; done
    touch "$large/.done"
fi
find "$small" "$large" -type f -print0 | xargs -0 cat >/dev/null

key="$work/audit-bench.key"
[ -f "$key" ] || "$triage" keygen -o "$key" >/dev/null

echo "== scan with the signed audit log vs no log (median of $reps, same process)"
for corpus in "$small" "$large"; do
    printf '%-28s ' "$(basename "$corpus")"
    "$bench" overhead "$corpus" "$reps" "$key"
done

echo "== triage verify of a signed $entries-entry log, one core"
log="$work/audit-$entries.jsonl"
[ -f "$log" ] || "$bench" gen "$log" "$entries" "$key"
cat "$log" >/dev/null
/usr/bin/time -f "%e %M" -o "$work/verify.time" "$triage" verify "$log" --pubkey "$key.pub" -q
read -r secs rss < "$work/verify.time"
/usr/bin/time -f "%e" -o "$work/sha.time" sha256sum "$log" >/dev/null
read -r sha < "$work/sha.time"
lines=$(wc -l < "$log")
python3 - "$secs" "$rss" "$sha" "$lines" "$(stat -c %s "$log")" <<'PY'
import sys
secs, rss, sha, lines, size = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print(f"{lines} lines, {size / 1e6:.0f} MB: verify {secs:.2f} s = {lines / secs:,.0f} records/s, "
      f"peak RSS {rss / 1024:.1f} MiB; sha256sum of the file {sha:.2f} s (verify / sha256sum = {secs / sha:.2f}x)")
PY
