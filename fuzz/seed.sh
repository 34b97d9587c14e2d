#!/usr/bin/env bash
# Seed corpora for the fuzz targets from fixtures/ (and a fresh audit log
# of fixtures/evidence). Run from anywhere; writes fuzz/corpus/<target>/.
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$fuzz/.." && pwd)"
c="$fuzz/corpus"
mkdir -p "$c"/{hashset_import,tset_open,audit_log,image_perceptual,sniff}
i=0
# hashset_import: the first byte forces a format (index into Format::ALL,
# 8 and up = detect); seed each list with "detect".
for f in "$repo"/fixtures/hashsets/*.{txt,json,hashdeep} "$repo"/../shared/examples/hashsets/*; do
    [ -f "$f" ] || continue
    [ "$(stat -c %s "$f")" -lt 200000 ] || continue
    { printf '\x08'; cat "$f"; } > "$c/hashset_import/seed-$i"; i=$((i + 1))
done
cp "$repo"/fixtures/hashsets/*.tset "$c/tset_open/"
cp "$repo"/fixtures/images/* "$c/image_perceptual/" 2>/dev/null || true
find "$repo/fixtures/evidence" -type f -size -64k -exec cp -t "$c/sniff/" {} + 2>/dev/null || true
cp "$repo"/fixtures/images/* "$c/sniff/" 2>/dev/null || true
triage="$repo/target/debug/triage"
[ -x "$triage" ] || cargo build --quiet --manifest-path "$repo/Cargo.toml" -p triage-cli
key="$c/seed.key"
rm -f "$key" "$key.pub"
"$triage" keygen -o "$key" >/dev/null
"$triage" scan "$repo/fixtures/evidence" --no-case -q --checkpoint-every 3 --sign-key "$key" \
    --hashset "$repo/fixtures/hashsets/sample-alert.tset" > "$c/audit_log/signed.jsonl" || true
"$triage" scan "$repo/fixtures/evidence" --no-case -q > "$c/audit_log/plain.jsonl" || true
head -c 3000 "$c/audit_log/plain.jsonl" > "$c/audit_log/cut.jsonl"
rm -f "$key" "$key.pub"
echo "seeded: $(for t in "$c"/*/; do printf '%s=%s ' "$(basename "$t")" "$(ls "$t" | wc -l)"; done)"
