#!/usr/bin/env bash
# Peak RSS (/usr/bin/time -v) of triage on the inputs most likely to blow
# memory up, one run each:
#   1. a tree of 1,000,000 empty files            (triage scan)
#   2. a PNG whose header claims 100,000 x 100,000 (triage scan, hash-image)
#   3. a GIF "LZW bomb": 7,999 x 7,999 of one colour in ~60 KB (triage scan)
#   4. a 2 GiB VICS 2.0 JSON hash set              (triage hashset import)
#   5. a 1,000,000-record signed audit log         (triage verify)
# Results go to stdout as a table; the corpus stays in benches/work/memory.
#
#   bash benches/memory.sh
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
work="${BENCH_WORK:-$here/work}/memory"
mkdir -p "$work"
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p triage-cli
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p triage-core --example audit_bench
triage="$repo/target/release/triage"

measure() { # name, command...: prints "name | peak RSS MiB | seconds | exit"
    local name="$1"; shift
    local rc=0
    /usr/bin/time -v -o "$work/time.txt" "$@" >/dev/null 2>"$work/stderr.txt" || rc=$?
    local rss secs
    rss=$(awk -F: '/Maximum resident set size/ {print $2}' "$work/time.txt")
    secs=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$work/time.txt")
    printf '| %s | %.1f MiB | %s | %s |\n' "$name" "$(echo "$rss / 1024" | bc -l)" "$secs" "$rc"
}

# 1. a million empty files, 1,000 directories of 1,000
million="$work/million"
if [ ! -f "$work/million.done" ]; then
    rm -rf "$million"
    python3 - "$million" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(1000):
    p = os.path.join(root, f"d{d:03d}")
    os.makedirs(p)
    for f in range(1000):
        os.close(os.open(os.path.join(p, f"f{f:03d}"), os.O_CREAT | os.O_WRONLY, 0o644))
PY
    touch "$work/million.done"
fi

# 2 and 3: hostile images (made with Python: zlib for the PNG, Pillow for the GIF)
images="$work/images"
mkdir -p "$images"
python3 - "$images" <<'PY'
import struct, zlib, sys, os
out = sys.argv[1]
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
with open(os.path.join(out, "huge-header.png"), "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b""))
from PIL import Image
Image.new("P", (7999, 7999), 3).save(os.path.join(out, "lzw-bomb.gif"))
PY

# 4. a 2 GiB VICS 2.0 hash set (synthetic hashes)
vics="$work/vics-2g.json"
if [ ! -f "$vics" ]; then
    python3 - "$vics" <<'PY'
import hashlib, sys
target = 2 << 30
with open(sys.argv[1], "w") as f:
    f.write('{"@odata.context":"http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media","value":[\n')
    i, size = 0, 0
    while size < target:
        h = hashlib.sha1(i.to_bytes(8, "little")).hexdigest().upper()
        m = hashlib.md5(i.to_bytes(8, "little")).hexdigest().upper()
        line = ('%s{"MediaID":%d,"Category":%d,"MD5":"%s","SHA1":"%s","MediaSize":%d,'
                '"DateUpdated":"2026-11-01T00:00:00Z","Series":"SYNTHETIC","VictimIdentified":false,'
                '"Comments":"synthetic entry for a memory test, not a real hash"}\n') % ("," if i else "", i, i % 5, m, h, 1000 + i)
        f.write(line); size += len(line); i += 1
    f.write("]}\n")
PY
fi

# 5. a signed audit log of a million records
key="$work/k"
[ -f "$key" ] || "$triage" keygen -o "$key" >/dev/null
log="$work/audit-1m.jsonl"
[ -f "$log" ] || "$repo/target/release/examples/audit_bench" gen "$log" 1000000 "$key" 2>/dev/null

echo "| input | peak RSS | wall time | exit |"
echo "|---|---|---|---|"
measure "scan: 1,000,000 empty files" "$triage" scan "$million" --no-case -q -o /dev/null --force
measure "scan: PNG header 100,000 x 100,000" "$triage" scan "$images/huge-header.png" --no-case -q
measure "hash-image: PNG header 100,000 x 100,000" "$triage" hash-image "$images/huge-header.png"
measure "scan: GIF LZW bomb 7,999 x 7,999 ($(stat -c %s "$images/lzw-bomb.gif") bytes)" "$triage" scan "$images/lzw-bomb.gif" --no-case -q
measure "hashset import: VICS JSON $(($(stat -c %s "$vics") >> 20)) MiB" "$triage" hashset import "$vics" --name big -o "$work/big.tset" --force -q
measure "verify: 1,000,000-record signed log" "$triage" verify "$log" --pubkey "$key.pub" -q
