#!/usr/bin/env python3
"""Hand-made hostile inputs for the disk_image and image_container fuzz
targets (written into the folders beside this script). Each is a way a
damaged or malicious image could make a reader loop, allocate without end,
read outside the image, or index out of bounds. Pure Python, no tools.

    python3 fuzz/regressions/make_disk_inputs.py
"""
import os
import struct
import zlib

here = os.path.dirname(os.path.abspath(__file__))
disk = os.path.join(here, "disk_image")
cont = os.path.join(here, "image_container")


def put(folder, name, data):
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def mbr(entries, size=1 << 16):
    b = bytearray(size)
    for i, (kind, start, count) in enumerate(entries):
        e = 446 + 16 * i
        b[e + 4] = kind
        struct.pack_into("<II", b, e + 8, start, count)
    b[510:512] = b"\x55\xaa"
    return b


# An extended partition whose EBR points at itself.
b = mbr([(0x05, 1, 100)])
struct.pack_into("<II", b, 512 + 446 + 8, 1, 10)
b[512 + 446 + 4] = 0x83
b[512 + 462 + 4] = 0x05
struct.pack_into("<II", b, 512 + 462 + 8, 0, 10)  # next EBR: the same one
b[512 + 510:512 + 512] = b"\x55\xaa"
put(disk, "mbr-ebr-loop", b)

# Partitions past the medium's end and of absurd length.
put(disk, "mbr-past-end", mbr([(0x83, 0xFFFFFF00, 0xFFFFFFFF), (0x07, 3, 0xFFFFFFF0)]))

# A GPT claiming 4 million entries, and one whose entries lie past the end.
b = mbr([(0xEE, 1, 0xFFFFFFFF)])
b[512:520] = b"EFI PART"
struct.pack_into("<IIIQ", b, 512 + 8, 0x10000, 92, 0, 1)
struct.pack_into("<QII", b, 512 + 72, 2, 4_000_000, 128)
put(disk, "gpt-huge-count", b)
struct.pack_into("<QII", b, 512 + 72, 1 << 40, 128, 128)
put(disk, "gpt-entries-past-end", b)


def fat12(fat_entries, dirents, size=64 << 10):
    """A FAT12 volume: 512-byte sectors, 1 per cluster, 1 FAT of 1 sector,
    16 root entries."""
    b = bytearray(size)
    b[0:3] = b"\xeb\x3c\x90"
    b[3:11] = b"MSDOS5.0"
    struct.pack_into("<HBHBHHBH", b, 11, 512, 1, 1, 1, 16, size // 512, 0xF8, 1)
    b[54:62] = b"FAT12   "
    b[510:512] = b"\x55\xaa"
    fat = bytearray(512)
    vals = [0xFF8, 0xFFF] + fat_entries
    for n, v in enumerate(vals):
        off = n + n // 2
        if n % 2 == 0:
            fat[off] = v & 0xFF
            fat[off + 1] = (fat[off + 1] & 0xF0) | (v >> 8)
        else:
            fat[off] = (fat[off] & 0x0F) | ((v & 0xF) << 4)
            fat[off + 1] = v >> 4
    b[512:1024] = fat
    for i, (name, attr, first, size_) in enumerate(dirents):
        e = 1024 + 32 * i
        b[e:e + 11] = name
        b[e + 11] = attr
        struct.pack_into("<HI", b, e + 26, first, size_)
    return b


# A file whose chain loops (2 -> 3 -> 2), and a directory that contains itself.
put(disk, "fat12-chain-loop", fat12([3, 2], [(b"LOOP    BIN", 0x20, 2, 100000)]))
put(disk, "fat12-dir-self", fat12([0xFFF], [(b"SELF       ", 0x10, 2, 0)]) )
# A chain running out of the volume, a size of 4 GiB - 1, a first cluster of 0xFFF.
put(disk, "fat12-wild", fat12([0xFF0], [(b"WILD    BIN", 0x20, 2, 0xFFFFFFFF), (b"ZERO    BIN", 0x20, 0xFFF, 10)]))
# A long-name run without its 8.3 entry, then garbage.
lfn = bytearray(32)
lfn[0] = 0x41
lfn[11] = 0x0F
lfn[1:11] = "abcde".encode("utf-16-le")
v = fat12([], [])
v[1024:1056] = lfn
v[1056:1088] = b"\xe5" * 32
put(disk, "fat12-orphan-lfn", v)

# ext2 superblocks: absurd block size, groups that cannot fit, zero inodes.
def ext2(log_block, blocks, per_group, inodes, ipg, inode_size=128, size=64 << 10):
    b = bytearray(size)
    sb = 1024
    struct.pack_into("<IIIII", b, sb, inodes, blocks, 0, 0, 0)
    struct.pack_into("<II", b, sb + 20, 1, log_block)
    struct.pack_into("<I", b, sb + 32, per_group)
    struct.pack_into("<I", b, sb + 40, ipg)
    struct.pack_into("<H", b, sb + 56, 0xEF53)
    struct.pack_into("<I", b, sb + 76, 1)
    struct.pack_into("<H", b, sb + 88, inode_size)
    struct.pack_into("<I", b, sb + 96, 0x2)
    # One group descriptor: inode table at block 5 (root inode 2 lives there).
    struct.pack_into("<III", b, 2048, 3, 4, 5)
    return b


put(disk, "ext2-huge-blocksize", ext2(40, 64, 8192, 16, 16))
put(disk, "ext2-billion-groups", ext2(0, 0xFFFFFFFF, 1, 0xFFFFFFFF, 1))
b = ext2(0, 64, 8192, 16, 16)
# Root inode: a directory with an extent tree whose index points at itself.
ino = 5 * 1024 + 128
struct.pack_into("<H", b, ino, 0o40755)
struct.pack_into("<I", b, ino + 4, 1024)
struct.pack_into("<I", b, ino + 32, 0x80000)
struct.pack_into("<HHHHI", b, ino + 40, 0xF30A, 1, 4, 1, 0)
struct.pack_into("<IIHH", b, ino + 52, 0, 6, 0, 0)
struct.pack_into("<HHHHI", b, 6 * 1024, 0xF30A, 1, 4, 1, 0)  # block 6: depth 1 again, points at 6
struct.pack_into("<IIHH", b, 6 * 1024 + 12, 0, 6, 0, 0)
put(disk, "ext4-extent-loop", b)
# Root directory entries with a record length of 0 and past the block.
b = ext2(0, 64, 8192, 16, 16)
struct.pack_into("<H", b, ino, 0o40755)
struct.pack_into("<I", b, ino + 4, 1024)
struct.pack_into("<I", b, ino + 40, 7)
struct.pack_into("<IHBB", b, 7 * 1024, 2, 0, 1, 2)
put(disk, "ext2-dirent-zero-reclen", b)


def ntfs(mft_lcn, record, size=64 << 10):
    b = bytearray(size)
    b[0:3] = b"\xeb\x52\x90"
    b[3:11] = b"NTFS    "
    struct.pack_into("<HB", b, 11, 512, 1)
    struct.pack_into("<Q", b, 40, size // 512)
    struct.pack_into("<QQ", b, 48, mft_lcn, 2)
    b[64] = 0xF6  # 2^10-byte records
    b[510:512] = b"\x55\xaa"
    if record is not None:
        b[mft_lcn * 512:mft_lcn * 512 + len(record)] = record
    return b


def file_record(attrs):
    r = bytearray(1024)
    r[0:4] = b"FILE"
    struct.pack_into("<HH", r, 4, 48, 3)  # update sequence: 3 entries at 48
    struct.pack_into("<HHH", r, 16, 1, 1, 56)
    struct.pack_into("<H", r, 22, 1)
    at = 56
    for a in attrs:
        r[at:at + len(a)] = a
        at += len(a)
    struct.pack_into("<I", r, at, 0xFFFFFFFF)
    struct.pack_into("<II", r, 24, at + 8, 1024)
    # Update sequence number 1 at the end of each sector.
    struct.pack_into("<HHH", r, 48, 1, 0, 0)
    struct.pack_into("<H", r, 510, 1)
    struct.pack_into("<H", r, 1022, 1)
    return r


def data_attr(runlist, size):
    a = bytearray(64 + len(runlist) + 8)
    struct.pack_into("<IIBBHHH", a, 0, 0x80, len(a), 1, 0, 0, 0, 0)
    struct.pack_into("<QQHH", a, 16, 0, 1000, 64, 0)
    struct.pack_into("<QQQ", a, 40, size, size, size)
    a[64:64 + len(runlist)] = runlist
    return a


put(disk, "ntfs-mft-past-end", ntfs(1 << 40, None))
# $MFT's data run points far outside the volume.
put(disk, "ntfs-run-outside", ntfs(16, file_record([data_attr(b"\x41\x10\xff\xff\xff\x7f\x00", 1 << 20)])))
# A run list that goes negative, and one that never ends inside its attribute.
put(disk, "ntfs-run-negative", ntfs(16, file_record([data_attr(b"\x21\x10\x00\x80\x00", 1 << 20)])))
put(disk, "ntfs-run-unterminated", ntfs(16, file_record([data_attr(b"\x88" + b"\xff" * 16, 1 << 20)])))
# An attribute whose length runs past its record.
r = file_record([])
struct.pack_into("<II", r, 56, 0x80, 0xFFFF0)
put(disk, "ntfs-attr-overflow", ntfs(16, r))
# A torn record: the update sequence does not match.
r = file_record([data_attr(b"\x11\x01\x10\x00", 1024)])
struct.pack_into("<H", r, 510, 7)
put(disk, "ntfs-torn-record", ntfs(16, r))



def exfat(fat_entries, sets, size=64 << 10):
    """An exFAT volume: 512-byte sectors and clusters, the FAT at sector
    24, the heap at sector 32 (cluster 2: the root, 3: the bitmap), and
    entry sets (name, attributes, stream flags, first cluster, length)
    in the root after the bitmap entry."""
    b = bytearray(size)
    b[0:3] = b"\xeb\x76\x90"
    b[3:11] = b"EXFAT   "
    struct.pack_into("<QQIIIIIIHHBBB", b, 64, 0, size // 512, 24, 1, 32, size // 512 - 32, 2, 0x1234, 0x100, 0, 9, 0, 1)
    b[510:512] = b"\x55\xaa"
    fat = 24 * 512
    struct.pack_into("<III", b, fat, 0xFFFFFFF8, 0xFFFFFFFF, 0xFFFFFFFF)
    struct.pack_into("<I", b, fat + 12, 0xFFFFFFFF)
    for c, v in fat_entries:
        struct.pack_into("<I", b, fat + 4 * c, v)
    heap = 32 * 512
    root = heap
    b[root] = 0x81
    struct.pack_into("<IQ", b, root + 20, 3, (size // 512 - 32 + 7) // 8)
    b[heap + 512] = 0x03  # clusters 2 and 3 in use
    at = root + 32
    for name, attrs, flags, first, length in sets:
        units = name.encode("utf-16-le")
        e = bytearray(96)
        struct.pack_into("<BBHH", e, 0, 0x85, 2, 0, attrs)
        struct.pack_into("<BBBBHHQIIQ", e, 32, 0xC0, flags, 0, len(units) // 2, 0, 0, length, 0, first, length)
        e[64] = 0xC1
        e[66:66 + len(units)] = units
        c = 0
        for i, x in enumerate(e):
            if i not in (2, 3):
                c = (((c << 15) | (c >> 1)) + x) & 0xFFFF
        struct.pack_into("<H", e, 2, c)
        b[at:at + 96] = e
        at += 96
    return b


# exFAT: a root chain that loops; a chained file that loops; a contiguous
# file running out of the heap; a directory whose data is the root; a
# set claiming 255 secondaries; a bitmap entry past the volume.
put(disk, "exfat-root-loop", exfat([(2, 2)], []))
put(disk, "exfat-file-loop", exfat([(4, 5), (5, 4)], [("loop.bin", 0x20, 0x01, 4, 100000)]))
put(disk, "exfat-run-outside", exfat([], [("wild.bin", 0x20, 0x03, 100, 1 << 40)]))
put(disk, "exfat-dir-is-root", exfat([], [("self", 0x10, 0x01, 2, 512)]))
v = exfat([], [("many.bin", 0x20, 0x03, 4, 10)])
v[32 * 512 + 32 + 1] = 255
put(disk, "exfat-too-many-secondaries", v)
v = exfat([], [])
struct.pack_into("<IQ", v, 32 * 512 + 20, 0xFFFFFFF0, 1 << 40)
put(disk, "exfat-bitmap-outside", v)

def hfsplus(nodes, size=64 << 10):
    """An HFS+ volume: 512-byte blocks, the catalog B-tree at block 8 with
    512-byte nodes; node 0 the header (depth 1, root 1), then `nodes`:
    (kind, next, records)."""
    b = bytearray(size)
    h = 1024
    b[h:h + 2] = b"H+"
    struct.pack_into(">H", b, h + 2, 4)
    struct.pack_into(">II", b, h + 40, 512, size // 512)
    count = 1 + len(nodes)
    struct.pack_into(">QIII", b, h + 272, count * 512, 0, count, 8)  # catalog fork: blocks 8..
    struct.pack_into(">II", b, h + 272 + 16, 8, count)

    def node(kind, nxt, recs):
        n = bytearray(512)
        struct.pack_into(">IIbBH", n, 0, nxt, 0, kind, 1, len(recs))
        at = 14
        offs = []
        for r in recs:
            offs.append(at)
            n[at:at + len(r)] = r
            at += len(r)
        offs.append(at)
        for i, o in enumerate(offs):
            struct.pack_into(">H", n, 512 - 2 * (i + 1), o)
        return n
    head = bytearray(106)
    struct.pack_into(">HIIIIHHII", head, 0, 1, 1, 1, 1, 1, 512, 516, count, 0)
    struct.pack_into(">I", head, 38, 6)
    out = [node(1, 0, [bytes(head)])] + [node(*n) for n in nodes]
    for i, n in enumerate(out):
        b[(8 + i) * 512:(9 + i) * 512] = n
    return b


def cat_key(parent, name=""):
    u = name.encode("utf-16-be")
    return struct.pack(">HIH", 6 + len(u), parent, len(u) // 2) + u


# HFS+: an index node pointing at itself; a leaf chain that loops; a file
# record whose extent runs past the volume; a record cut short.
put(disk, "hfsplus-index-self", hfsplus([(0, 0, [cat_key(1) + struct.pack(">I", 1)])]))
folder = struct.pack(">HHII", 1, 0, 0, 20) + bytes(80)
put(disk, "hfsplus-leaf-loop", hfsplus([(-1, 1, [cat_key(2, "d") + folder])]))
file_rec = bytearray(248)
struct.pack_into(">HHII", file_rec, 0, 2, 0, 0, 21)
struct.pack_into(">QIIII", file_rec, 88, 1 << 40, 0, 1 << 28, 100, 0xFFFFFFF0)
put(disk, "hfsplus-extent-outside", hfsplus([(-1, 0, [cat_key(2, "f") + bytes(file_rec)])]))
put(disk, "hfsplus-short-record", hfsplus([(-1, 0, [cat_key(2, "s") + bytes(file_rec[:40])])]))

# Apple Partition Map: a map claiming 2^32-1 entries, a partition past the end.
b = bytearray(64 << 10)
b[0:2] = b"ER"
struct.pack_into(">H", b, 2, 512)
b[512:514] = b"PM"
struct.pack_into(">III", b, 516, 0xFFFFFFFF, 0xFFFFFF00, 0xFFFFFFFF)
b[512 + 48:512 + 57] = b"Apple_HFS"
put(disk, "apm-huge", b)

# Containers.
evf = b"EVF\x09\x0d\x0a\xff\x00"


def section(kind, nxt, size, body=b""):
    d = bytearray(76)
    d[:len(kind)] = kind
    struct.pack_into("<QQ", d, 16, nxt, size)
    struct.pack_into("<I", d, 72, zlib.adler32(bytes(d[:72])))
    return bytes(d) + body


head = evf + b"\x01\x01\x00\x00\x00"
# A section pointing back at itself (not 'done').
put(cont, "ewf-chain-back", head + section(b"header", 13, 76))
# A volume with absurd geometry; a table larger than its section.
vol = bytearray(94)
struct.pack_into("<IIIQ", vol, 4, 0xFFFFFFFF, 0x10000, 4096, 1 << 60)
put(cont, "ewf-absurd-volume", head + section(b"volume", 13 + 76 + 94, 76 + 94, bytes(vol)) + section(b"done", 13 + 76 + 94, 0))
vol = bytearray(94)
struct.pack_into("<IIIQ", vol, 4, 1, 64, 512, 64)
tab = struct.pack("<IIQI", 0xFFFFFF, 0, 0, 0) + b"\0" * 4
p2 = 13 + 76 + 94
p3 = p2 + 76 + len(tab)
put(cont, "ewf-table-too-big", head + section(b"volume", p2, 76 + 94, bytes(vol)) + section(b"table", p3, 76 + len(tab), tab) + section(b"done", p3, 0))
# A valid-looking image whose one chunk points outside the file.
tab = struct.pack("<IIQI", 1, 0, 0, 0) + struct.pack("<I", 0x8FFFFFFF) + b"\0" * 4
p3 = p2 + 76 + len(tab)
put(cont, "ewf-chunk-outside", head + section(b"volume", p2, 76 + 94, bytes(vol)) + section(b"table", p3, 76 + len(tab), tab) + section(b"done", p3, 0))

# QCOW2: a huge L1 table; an L2 entry pointing past the file.
q = bytearray(512)
q[0:4] = b"QFI\xfb"
struct.pack_into(">IQIIQIIQ", q, 4, 3, 0, 0, 16, 1 << 50, 0, 1 << 30, 512)
put(cont, "qcow2-huge-l1", q)
q = bytearray(4 * 65536)
q[0:4] = b"QFI\xfb"
struct.pack_into(">IQIIQIIQ", q, 4, 2, 0, 0, 16, 65536, 0, 1, 65536)
struct.pack_into(">Q", q, 65536, 2 * 65536)
struct.pack_into(">Q", q, 2 * 65536, (1 << 63) | (1 << 40))
put(cont, "qcow2-cluster-outside", q)
# A compressed-cluster entry of absurd length.
struct.pack_into(">Q", q, 2 * 65536, (1 << 62) | ((1 << 62) - 1))
put(cont, "qcow2-compressed-absurd", q)

# VHD: a dynamic disk whose allocation table lies past the end.
foot = bytearray(512)
foot[0:8] = b"conectix"
struct.pack_into(">QQ", foot, 40, 1 << 20, 1 << 20)
struct.pack_into(">I", foot, 60, 3)
struct.pack_into(">Q", foot, 16, 512)
dyn = bytearray(1024)
dyn[0:8] = b"cxsparse"
struct.pack_into(">QQ", dyn, 8, 0xFFFFFFFFFFFFFFFF, 1 << 40)
struct.pack_into(">II", dyn, 28, 1, 1 << 21)
put(cont, "vhd-bat-past-end", bytes(foot) + bytes(dyn) + bytes(foot))
# A dynamic disk whose one block lies past the end.
struct.pack_into(">QQ", dyn, 8, 0xFFFFFFFFFFFFFFFF, 1536)
put(cont, "vhd-block-past-end", bytes(foot) + bytes(dyn) + struct.pack(">I", 0x7FFFFFFF) + b"\0" * 508 + bytes(foot))

# VMDK: grain size 0; a descriptor naming a file outside its folder.
k = bytearray(512)
k[0:4] = b"KDMV"
struct.pack_into("<IIQQ", k, 4, 1, 0, 1 << 40, 0)
put(cont, "vmdk-grain-zero", k)
put(cont, "vmdk-descriptor-escape", b'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 2048 FLAT "../../../../etc/passwd" 0\n')
put(cont, "vmdk-descriptor-overflow", b'# Disk DescriptorFile\nversion=1\ncreateType="vmfs"\nRW 36028797018963968 ZERO\nRW 36028797018963968 ZERO\n')

# EWF v2 (Ex01): sections are data followed by a 64-byte descriptor that
# points back to the previous descriptor; a segment is read from its end.
def obj(tags, values):
    text = "1\nmain\n" + "\t".join(tags) + "\n" + "\t".join(values) + "\n\n"
    return zlib.compress(b"\xff\xfe" + text.encode("utf-16-le"))


def ex01(sections, sectors=64, spc=64, prev_override=None):
    """sections: (type, data) after device information and case data."""
    out = bytearray(b"EVF2\r\n\x81\x00" + bytes([2, 1]) + struct.pack("<HI", 1, 1) + b"G" * 16)
    allsec = [(1, obj(["ts", "bp"], [str(sectors), "512"])), (2, obj(["sb", "tb"], [str(spc), "1"]))] + sections
    prev = 0
    for i, (kind, data) in enumerate(allsec):
        out += data
        d = bytearray(64)
        p = prev if prev_override is None or i != len(allsec) - 1 else prev_override
        struct.pack_into("<IIQQI", d, 0, kind, 0, p, len(data), 64)
        struct.pack_into("<I", d, 60, zlib.adler32(bytes(d[:60])))
        prev = len(out)
        out += d
    return bytes(out)


def sector_table(first, entries, count=None):
    h = bytearray(32)
    struct.pack_into("<QI", h, 0, first, len(entries) if count is None else count)
    struct.pack_into("<I", h, 16, zlib.adler32(bytes(h[:16])))
    body = b"".join(struct.pack("<QII", *e) for e in entries)
    return bytes(h) + body + struct.pack("<I", zlib.adler32(body)) + b"\0" * 12


done = (0xF, b"")
# A last descriptor pointing forward (at itself).
b = ex01([done], prev_override=0)
b = bytearray(b)
struct.pack_into("<Q", b, len(b) - 56, len(b) - 64)
struct.pack_into("<I", b, len(b) - 4, zlib.adler32(bytes(b[len(b) - 64:len(b) - 4])))
put(cont, "ex01-chain-self", bytes(b))
# A table listing far more entries than its section holds.
put(cont, "ex01-table-too-big", ex01([(4, sector_table(0, [(0, 8, 5)], count=0xFFFFFFFF)), done]))
# A chunk stored outside the file, and one of absurd size.
put(cont, "ex01-chunk-outside", ex01([(4, sector_table(0, [(1 << 40, 32768, 2)])), done]))
put(cont, "ex01-chunk-absurd", ex01([(4, sector_table(0, [(40, 0xFFFFFFFF, 1)])), done]))
# 2^62 sectors of pattern-filled chunks: refused (more than the tables list
# is read as an error, not as zeros).
put(cont, "ex01-sectors-huge", ex01([(4, sector_table(0, [(0, 8, 5)])), done], sectors=1 << 62))
# Chunks of 2^31 sectors: refused.
put(cont, "ex01-chunk-huge", ex01([(4, sector_table(0, [(0, 8, 5)])), done], spc=1 << 31))
# Case data that do not inflate.
b = ex01([(4, sector_table(0, [(0, 8, 5)])), done])
put(cont, "ex01-case-garbage", b[:32] + b"\x78\x9c\xff\xff" + b[36:])
