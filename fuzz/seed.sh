#!/usr/bin/env bash
# Seed corpora for the fuzz targets from fixtures/ (and a fresh audit log
# of fixtures/evidence). Run from anywhere; writes fuzz/corpus/<target>/.
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$fuzz/.." && pwd)"
c="$fuzz/corpus"
mkdir -p "$c"/{hashset_import,tset_open,audit_log,image_perceptual,sniff,disk_image,image_container,md5_lanes,expand,video_probe}
cp "$fuzz"/regressions/md5_lanes/* "$c/md5_lanes/"
# expand: the hostile and nested archives of the CLI tests (first byte:
# 0 zip, 1 tar, 2 gzip), from the committed regression inputs.
cp "$fuzz"/regressions/expand/* "$c/expand/"
i=0
# hashset_import: the first byte forces a format (0-7 the first eight of
# Format::ALL, 12 vpdq, 13 vpdq-json, the rest detect); seed each list with
# "detect".
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
# disk_image and image_container: tiny file systems, partition tables and
# containers built with the Debian tools tests/images uses (when present),
# and the hand-made hostile inputs.
cp "$fuzz"/regressions/disk_image/* "$c/disk_image/"
cp "$fuzz"/regressions/image_container/* "$c/image_container/"
export PATH="$PATH:/sbin:/usr/sbin" E2FSPROGS_FAKE_TIME=1 MTOOLS_SKIP_CHECK=1
t="$(mktemp -d)"
if command -v mkfs.fat >/dev/null && command -v mke2fs >/dev/null && command -v mcopy >/dev/null; then
    mkdir -p "$t/tree/d"; echo hi > "$t/tree/a.txt"; echo there > "$t/tree/d/b.txt"
    uuid=11111111-1111-1111-1111-111111111111
    mkfs.fat -C -i 1 --invariant "$t/fat12" 64 >/dev/null
    mcopy -i "$t/fat12" -s "$t/tree/a.txt" "$t/tree/d" ::/
    mcopy -i "$t/fat12" "$t/tree/a.txt" "::/d/a long file name.txt"
    mdel -i "$t/fat12" ::/a.txt
    mke2fs -q -F -b 1024 -N 32 -U $uuid -E hash_seed=$uuid -d "$t/tree" "$t/ext2" 100
    mke2fs -q -F -t ext4 -O inline_data,^has_journal -b 1024 -N 32 -U $uuid -E hash_seed=$uuid -d "$t/tree" "$t/ext4" 200
    cp "$t/fat12" "$t/ext2" "$t/ext4" "$c/disk_image/"
    if command -v genisoimage >/dev/null; then
        genisoimage -quiet -J -R -o "$c/disk_image/iso" "$t/tree" 2>/dev/null || true
    fi
    if command -v sfdisk >/dev/null; then
        for label in dos gpt; do
            truncate -s 300K "$t/$label"
            printf 'label: %s
start=34, size=128, type=%s
' "$label" \
                "$([ $label = dos ] && echo 1 || echo C12A7328-F81F-11D2-BA4B-00A0C93EC93B)" \
                | sfdisk -q "$t/$label" >/dev/null 2>&1 || continue
            dd if="$t/fat12" of="$t/$label" bs=512 seek=34 conv=notrunc status=none
            cp "$t/$label" "$c/disk_image/mbr-$label"
        done
    fi
    if command -v qemu-img >/dev/null; then
        for f in qcow2 vpc vhdx vmdk; do
            qemu-img convert -q -f raw -O "$f" "$t/fat12" "$c/image_container/fat12.$f"
        done
        qemu-img convert -q -f raw -O qcow2 -c "$t/fat12" "$c/image_container/fat12-compressed.qcow2"
        qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized "$t/fat12" "$c/image_container/fat12-stream.vmdk"
    fi
    if command -v ewfacquire >/dev/null; then
        ewfacquire -u -q -t "$t/fat12-ewf" -f encase6 -c deflate:fast "$t/fat12" >/dev/null 2>&1 \
            && cp "$t/fat12-ewf.E01" "$c/image_container/"
    fi
fi
# HFS+ with hard links and compressed files (python3 only).
python3 "$repo/fixtures/disks/make_hfsplus.py" "$c/disk_image/hfsplus" \
    "$repo/fixtures/images/tiny-5x5.png" "$repo/fixtures/disks/hfs_rsrc.py" || true
# video_probe: tiny videos for the FFmpeg worker (first byte 1: as MP4,
# 3: as Matroska) and ffprobe's JSON answers about them (first byte 0).
if command -v ffmpeg >/dev/null; then
    for f in mp4 mkv avi; do
        ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=32x24:rate=5:duration=1 "$t/v.$f" || continue
        if [ "$f" = mp4 ]; then b='\x01'; else b='\x03'; fi
        { printf "$b"; cat "$t/v.$f"; } > "$c/video_probe/$f"
        { printf '\x00'; ffprobe -v error -show_entries stream=codec_type,codec_name,width,height,avg_frame_rate,r_frame_rate:format=format_name,duration -of json "$t/v.$f"; } \
            > "$c/video_probe/$f.json"
    done
fi
# and the vPDQ hash-list formats for hashset_import (12 vpdq, 13 vpdq-json).
if [ -f "$repo/../shared/vpdq-reference/doorknob-hd-no-bar.txt" ]; then
    { printf '\x0c'; head -20 "$repo/../shared/vpdq-reference/doorknob-hd-no-bar.txt"; } > "$c/hashset_import/vpdq"
fi
printf '\x0d["%s,100,0.000","%s,40,1.000"]' "$(printf 'ab%.0s' $(seq 32))" "$(printf 'cd%.0s' $(seq 32))" > "$c/hashset_import/vpdq-json"
rm -rf "$t"
echo "seeded: $(for t in "$c"/*/; do printf '%s=%s ' "$(basename "$t")" "$(ls "$t" | wc -l)"; done)"
