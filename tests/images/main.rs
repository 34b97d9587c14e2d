//! Disk images read through their containers, partitions and file systems,
//! checked against The Sleuth Kit (`pytsk3`), the digests stored in the
//! images at acquisition, and the trees the images were made from.
//!
//! Oracles:
//! - `../shared/evidence-images/listing.tsv`: TSK's listing of public test
//!   images (dfvfs, keramics, the `ntfs` crate), with MD5, SHA-1, SHA-256.
//! - `fixtures/disks/build.sh`: images built here with Debian's mke2fs,
//!   mkfs.fat + mtools, mkfs.exfat + make_exfat.py, sfdisk, qemu-img and
//!   ewfacquire, files deleted in them with debugfs, mdel and make_exfat.py; TSK lists each raw image through
//!   `pytsk3_listing.py`, and each container of the MBR disk must give the
//!   MBR disk's exact bytes (MD5 of the raw file, and the MD5 ewfacquire
//!   stored in the E01) and so its listing.
//! - The trees the file systems were made from: the same digests whether
//!   scanned as a directory or as an image.
//!
//! Documented differences from TSK (docs/images.md): FAT volume labels
//! are not files; a deleted file whose first cluster or inode belongs to
//! another file now is recorded as not recoverable instead of digesting
//! the other file's bytes.
//!
//! Checks that need `../shared`, the image tools or pytsk3 skip with a
//! printed reason outside CI and fail under `CI=true`.

#[path = "../support/paths.rs"]
mod paths;
#[path = "../support/skip.rs"]
mod skip;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use paths::{repo, shared};
use skip::skip;
use triage_core::item::{Allocation, FileKind};
use triage_core::{Algorithm, Entry, Outcome, ScanConfig, Scanner, SkipReason};

/// One regular file as TSK lists it: (file-system offset, path from the
/// file system's root, size, `alloc`/`deleted`, MD5, SHA-1, SHA-256).
type Row = (u64, String, u64, String, String, String, String);

fn scan(path: &Path) -> Vec<Entry> {
    let scanner =
        Scanner::new(ScanConfig::new(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut entries = Vec::new();
    scanner
        .run(|e| {
            entries.push(e);
            Ok(())
        })
        .unwrap();
    entries
}

/// What triage lists that TSK's lister does not, or lists differently.
#[derive(Default, Debug)]
struct Extra {
    /// Deleted files found not recoverable (path), which TSK lists with
    /// another file's bytes.
    unrecoverable: Vec<String>,
    /// NTFS alternate data streams (`file:stream`), which the lister does
    /// not read: (path, MD5).
    streams: Vec<(String, String)>,
    /// Names of a file read at another name (path, first name): TSK lists
    /// each with the file's digests; triage reads it once.
    hard_links: Vec<(String, String)>,
    /// Names of a directory walked at another name (path, first name):
    /// TSK lists its files under each; triage walks it once.
    dir_links: Vec<(String, String)>,
    /// Files under `$OrphanFiles/` (TSK's virtual directory, which the
    /// lister does not walk): (path, MD5).
    orphans: Vec<(String, String)>,
}

/// An entry's path relative to its file system, as TSK lists it (`/…`).
fn fs_path(path: &[u8], partitioned: bool) -> String {
    let full = String::from_utf8_lossy(path).into_owned();
    let rel = if partitioned {
        full.split_once('/')
            .map_or(String::new(), |(_, r)| r.to_string())
    } else {
        full
    };
    format!("/{rel}")
}

/// triage's listing in TSK's terms, and what it lists beyond it. A name
/// recorded as a hard link to another gets the other's digests, as TSK
/// lists every name; the files under a directory's other name are those
/// under its first.
fn triage_rows(path: &Path) -> (BTreeSet<Row>, Extra) {
    let mut rows = BTreeSet::new();
    let mut extra = Extra::default();
    // Every hashed item (streams too) by (fs offset, path): its size and
    // digests, for the names that are hard links to it.
    let mut read: BTreeMap<(u64, String), (u64, [String; 3])> = BTreeMap::new();
    let mut links = Vec::new();
    for e in scan(path) {
        // Pictures carved from the unallocated space: not files TSK lists
        // (`unallocated_space_agrees_with_blkls` checks that space).
        if e.within.is_some() {
            continue;
        }
        let Some(loc) = &e.location else {
            panic!("{}: entry '{}' has no location", path.display(), e.path);
        };
        if loc.fs == "unrecognised" || loc.is_free_space() {
            // A volume hashed whole (no file system read), a volume's
            // unallocated space or the space outside the partitions as
            // one item: not files.
            continue;
        }
        let partitioned = loc.partition.is_some();
        let rel = fs_path(e.path.as_bytes(), partitioned);
        let state = match loc.state {
            Allocation::Allocated => "alloc",
            Allocation::Deleted => "deleted",
        };
        match &e.outcome {
            Outcome::Hashed(h) => {
                let d = |a| h.digests.hex(a).unwrap();
                let digests = [d(Algorithm::Md5), d(Algorithm::Sha1), d(Algorithm::Sha256)];
                read.insert((loc.fs_offset, rel.clone()), (h.bytes_read, digests));
                links.push((loc.fs, loc.fs_offset, rel.clone(), rel, state));
            }
            Outcome::Skipped(SkipReason::HardLink { first })
                if e.meta
                    .as_ref()
                    .is_some_and(|m| m.kind() == FileKind::Directory) =>
            {
                let first = fs_path(first.as_bytes(), partitioned);
                extra.dir_links.push((rel, first));
            }
            Outcome::Skipped(SkipReason::HardLink { first }) => {
                let first = fs_path(first.as_bytes(), partitioned);
                extra.hard_links.push((rel.clone(), first.clone()));
                links.push((loc.fs, loc.fs_offset, rel, first, state));
            }
            Outcome::Skipped(SkipReason::NotRecoverable) => extra.unrecoverable.push(rel),
            Outcome::Skipped(SkipReason::BadClusterMap) => assert_eq!(rel, "/$BadClus:$Bad"),
            Outcome::Skipped(_) => {}
            Outcome::Failed(f) => panic!("{}: '{}' failed: {}", path.display(), e.path, f.kind),
        }
    }
    for (dir, first) in &extra.dir_links {
        let under: Vec<_> = links
            .iter()
            .filter_map(|l| {
                let rest = l.2.strip_prefix(first.as_str())?.strip_prefix('/')?;
                Some((l.0, l.1, format!("{dir}/{rest}"), l.3.clone(), l.4))
            })
            .collect();
        links.extend(under);
    }
    for (fs, fs_offset, name, first, state) in links {
        let Some((bytes, [md5, sha1, sha256])) = read.get(&(fs_offset, first.clone())) else {
            panic!(
                "{}: {name} is a hard link to {first}, which was not read",
                path.display()
            );
        };
        // NTFS alternate data streams, HFS+ resource forks.
        let is_stream = (fs == "ntfs" && name.rsplit('/').next().is_some_and(|n| n.contains(':')))
            || (fs.starts_with("hfs") && name.ends_with(":rsrc"));
        if is_stream {
            extra.streams.push((name, md5.clone()));
        } else if name.starts_with("/$OrphanFiles/") {
            extra.orphans.push((name, md5.clone()));
        } else {
            rows.insert((
                fs_offset,
                name,
                *bytes,
                state.to_string(),
                md5.clone(),
                sha1.clone(),
                sha256.clone(),
            ));
        }
    }
    (rows, extra)
}

fn parse_listing(text: &str) -> BTreeMap<String, BTreeSet<Row>> {
    let mut by_image: BTreeMap<String, BTreeSet<Row>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with("image\t")) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 9, "listing line: {line}");
        if f[3].ends_with("(Volume Label Entry)") {
            continue;
        }
        by_image.entry(f[0].to_string()).or_default().insert((
            f[1].parse().unwrap(),
            f[3].to_string(),
            f[4].parse().unwrap(),
            f[5].to_string(),
            f[6].to_string(),
            f[7].to_string(),
            f[8].to_string(),
        ));
    }
    by_image
}

/// TSK's listing of `image` through the lister script, or `None` (skipped)
/// without pytsk3.
fn tsk_rows(image: &Path) -> Option<BTreeSet<Row>> {
    let script = shared("evidence-images/pytsk3_listing.py")?;
    let out = Command::new("python3")
        .arg(&script)
        .arg(image)
        .output()
        .expect("python3 runs");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No module named") {
            skip(&format!(
                "pytsk3 is not installed (pip install pytsk3 libewf-python libqcow-python libvhdi-python libvmdk-python): {}",
                err.lines().last().unwrap_or_default()
            ));
            return None;
        }
        panic!("lister failed on {}: {err}", image.display());
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let mut by = parse_listing(&text);
    Some(by.pop_first().map(|(_, r)| r).unwrap_or_default())
}

fn assert_same(what: &str, tsk: &BTreeSet<Row>, ours: &BTreeSet<Row>) {
    let missing: Vec<_> = tsk.difference(ours).take(10).collect();
    let extra: Vec<_> = ours.difference(tsk).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} rows of TSK's not in triage's, {} of triage's not in TSK's\n TSK only: {missing:#?}\n triage only: {extra:#?}",
        tsk.difference(ours).count(),
        ours.difference(tsk).count()
    );
}

/// Every public image agrees with TSK's committed listing, file for file
/// and digest for digest.
#[test]
fn shared_images_agree_with_the_sleuth_kit() {
    let Some(listing) = shared("evidence-images/listing.tsv") else {
        return;
    };
    let dir = listing.parent().unwrap().to_path_buf();
    let expected = parse_listing(&std::fs::read_to_string(&listing).unwrap());
    let mut checked = 0;
    for (image, rows) in &expected {
        let (ours, extra) = triage_rows(&dir.join(image));
        assert!(extra.unrecoverable.is_empty(), "{image}: {extra:?}");
        assert_same(image, rows, &ours);
        if image == "ntfs_testfs1" {
            let streams: Vec<&str> = extra.streams.iter().map(|s| s.0.as_str()).collect();
            assert_eq!(
                streams,
                ["/$Secure:$SDS", "/$UpCase:$Info"],
                "{image}: streams"
            );
        } else {
            assert!(extra.streams.is_empty());
        }
        checked += 1;
    }
    assert_eq!(checked, 8, "images compared");
}

/// The EWF reader gives the medium the acquiring tool hashed: the MD5
/// stored in the image equals the MD5 of what triage reads from it, for
/// one segment and for two.
#[test]
fn ewf_media_equal_their_stored_digests() {
    for name in ["ext2.E01", "ext2.split.E01"] {
        let Some(p) = shared(&format!("evidence-images/{name}")) else {
            return;
        };
        let img = triage_core::source::image::open(&p).unwrap().unwrap();
        assert_eq!(img.format, "ewf");
        let stored: BTreeMap<_, _> = img.stored_digests.iter().cloned().collect();
        assert_eq!(stored["md5"], "196066add11fb71c4c49cf1bb50d6d24", "{name}");
        assert_eq!(media_md5(&img), stored["md5"], "{name}");
        let meta: BTreeMap<_, _> = img.metadata.iter().cloned().collect();
        assert_eq!(meta["case_number"], "case");
        assert_eq!(meta["examiner"], "examiner");
        assert_eq!(meta["evidence_number"], "evidence");
    }
}

fn media_md5(img: &triage_core::source::image::Image) -> String {
    let mut h =
        triage_core::MultiHasher::new(triage_core::AlgorithmSet::empty().with(Algorithm::Md5));
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    while pos < img.size {
        let n = img.media.read_at(&mut buf, pos).unwrap();
        assert!(n > 0, "short medium at {pos} of {}", img.size);
        h.update(&buf[..n]);
        pos += n as u64;
    }
    h.finalize().hex(Algorithm::Md5).unwrap()
}

/// The images `fixtures/disks/build.sh` makes, built once per test run
/// (in the target directory), or `None` (skipped) without the tools.
fn built() -> Option<PathBuf> {
    static BUILT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let tools = ["mke2fs", "debugfs", "mkfs.fat", "mcopy", "mkfs.exfat", "xorriso", "mkntfs", "ntfscp", "genisoimage", "sfdisk", "qemu-img", "ewfacquire"];
            let missing: Vec<_> = tools
                .iter()
                .filter(|t| {
                    Command::new("sh")
                        .args(["-c", &format!("command -v {t}")])
                        .env("PATH", with_sbin())
                        .output()
                        .map_or(true, |o| !o.status.success())
                })
                .collect();
            if !missing.is_empty() {
                skip(&format!(
                    "cannot build the test images: {missing:?} missing (apt-get install e2fsprogs dosfstools mtools exfatprogs xorriso ntfs-3g genisoimage fdisk qemu-utils ewf-tools)"
                ));
                return None;
            }
            // build.sh compiles its NTFS editor against libntfs-3g.
            let libntfs = Command::new("pkg-config")
                .args(["--exists", "libntfs-3g"])
                .status()
                .is_ok_and(|s| s.success());
            if !libntfs || !Path::new("/usr/include/ntfs-3g/dir.h").exists() {
                skip("cannot build the test images: libntfs-3g's headers are missing (apt-get install ntfs-3g-dev pkg-config gcc)");
                return None;
            }
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("disks");
            let status = Command::new("bash")
                .arg(repo().join("fixtures/disks/build.sh"))
                .arg(&out)
                .env("PATH", with_sbin())
                .stdout(std::process::Stdio::null())
                .status()
                .expect("bash runs");
            assert!(status.success(), "fixtures/disks/build.sh failed");
            Some(out)
        })
        .clone()
}

/// Bare ext2/ext4 (block maps, extents, inline data) and FAT12/16/32 file
/// systems, an MBR disk with logical partitions and a GPT disk, with
/// deleted files: TSK's listing, exactly.
#[test]
fn built_images_agree_with_the_sleuth_kit() {
    let Some(dir) = built() else { return };
    let deleted = std::fs::read_to_string(dir.join("deleted.txt")).unwrap();
    for image in [
        "ext2.img",
        "ext4.img",
        "ext4-inline.img",
        "fat12.img",
        "fat16.img",
        "fat32.img",
        "exfat.img",
        "sdcard.img",
        "ntfs.img",
        "iso-plain.iso",
        "iso-joliet.iso",
        "iso-both.iso",
        "mbr.img",
        "gpt.img",
    ] {
        let Some(mut tsk) = tsk_rows(&dir.join(image)) else {
            return;
        };
        let (ours, extra) = triage_rows(&dir.join(image));
        let deleted_here: BTreeSet<&str> = deleted
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{image} ")))
            .collect();
        if image.starts_with("exfat") || image.starts_with("sdcard") {
            // Written after the deletions, the first free clusters went to
            // new files: these deleted files' clusters belong to them now.
            // TSK lists the deleted names with the new files' bytes; triage
            // records them not recoverable (docs/images.md).
            // (Which ones depends on the cluster size: with 1 KiB clusters
            // two pictures' first clusters, with 4 KiB one picture's and
            // the deleted directory's.)
            assert!(extra.unrecoverable.len() >= 2, "{image}: {extra:?}");
            for u in &extra.unrecoverable {
                assert!(
                    deleted_here
                        .iter()
                        .any(|d| d == u || d.starts_with(&format!("{u}/"))),
                    "{image}: {u} is not a deleted file or directory"
                );
            }
            tsk.retain(|r| !(r.3 == "deleted" && extra.unrecoverable.contains(&r.1)));
            // The deleted directory's files, recovered where its cluster is
            // free (TSK reads them too).
            let q1 = "/Documents/2024/Q1";
            if !extra.unrecoverable.iter().any(|u| u == q1) {
                assert!(
                    ours.iter()
                        .filter(|r| r.1.starts_with(&format!("{q1}/")) && r.3 == "deleted")
                        .count()
                        > 5,
                    "{image}: the deleted directory's files"
                );
            }
        } else {
            assert!(extra.unrecoverable.is_empty(), "{image}: {extra:?}");
        }
        assert_same(image, &tsk, &ours);
        let has_ntfs = image == "ntfs.img" || image == "gpt.img";
        let has_ext = image.starts_with("ext") || image == "mbr.img" || image == "gpt.img";
        // (name, first name) of every hard link, by the file system's tree.
        let (ext_links, ntfs_links): (Vec<_>, Vec<_>) = extra
            .hard_links
            .iter()
            .cloned()
            .partition(|l| l.0 == "/Downloads/photo hard link.png");
        if has_ntfs {
            // LZNT1-compressed files ntfs_edit wrote (in the TSK rows
            // above, compared byte for byte): text, zeros, a picture.
            for (name, size) in [
                ("/Packed/text.txt", 988_890),
                ("/Packed/zeros.bin", 300_003),
            ] {
                assert!(
                    ours.iter().any(|r| r.1 == name && r.2 == size),
                    "{image}: {name}"
                );
            }
            // The stream ntfscp wrote: "a hidden stream\n".
            assert!(
                extra.streams.contains(&(
                    "/large.bin:Zone.Identifier".to_string(),
                    "b89013fe26393d18c1dfec0bca4c5dca".to_string()
                )),
                "{image}: {:?}",
                extra.streams
            );
            // ntfs_edit's hard links, each read once at its first name in
            // the walk (`Pictures/` sorts before the root's lower-case
            // names): a non-resident file, an empty one with its stream,
            // and a resident one. `Pictures/kept name.png` lost its other
            // name: one name.
            let firsts: BTreeSet<&str> = ntfs_links.iter().map(|l| l.1.as_str()).collect();
            assert_eq!(
                firsts,
                BTreeSet::from([
                    "/Pictures/2024/photo.png",
                    "/Pictures/2024/second name.txt",
                    "/Pictures/large (hard link).bin",
                    "/Pictures/large (hard link).bin:Zone.Identifier",
                ]),
                "{image}: {ntfs_links:?}"
            );
            for (name, first) in [
                ("/large.bin", "/Pictures/large (hard link).bin"),
                ("/photo (hard link).png", "/Pictures/2024/photo.png"),
            ] {
                assert!(
                    ntfs_links.contains(&(name.to_string(), first.to_string())),
                    "{image}: {name} as a hard link to {first}: {ntfs_links:?}"
                );
            }
        } else {
            assert!(ntfs_links.is_empty(), "{image}: {ntfs_links:?}");
        }
        if has_ext {
            // build.sh's hard link in the ext tree: read at the picture's
            // own name (`DCIM/` sorts before `Downloads/`).
            assert_eq!(ext_links.len(), 1, "{image}: {ext_links:?}");
            assert!(ext_links[0].1.starts_with("/DCIM/100CANON/"), "{image}");
        } else {
            assert!(ext_links.is_empty(), "{image}: {ext_links:?}");
        }
        // build.sh's ext orphan (name overwritten, inode freed): under
        // `$OrphanFiles/OrphanFile-INODE` with the bytes the file had in
        // the tree, and, for a bare file system, as TSK's fls and icat
        // list and read it.
        let ext_image = if image.starts_with("ext") {
            image
        } else {
            "ext4.img"
        };
        let expected: Vec<(String, String)> = if has_ext {
            std::fs::read_to_string(dir.join("orphans.txt"))
                .unwrap()
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("{ext_image} ")))
                .map(|l| {
                    use md5::Digest;
                    let (ino, path) = l.split_once(' ').unwrap();
                    let bytes = std::fs::read(dir.join("trees/ext").join(&path[1..])).unwrap();
                    (
                        format!("/$OrphanFiles/OrphanFile-{ino}"),
                        hex(&md5::Md5::digest(&bytes)),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        assert_eq!(extra.orphans, expected, "{image}: orphans");
        if image.starts_with("ext") {
            assert_eq!(
                extra.orphans,
                tsk_orphans(&dir.join(image)),
                "{image}: TSK's orphans"
            );
        }
        // The deletions made by the build are among the deleted rows (or
        // found, and recorded not recoverable).
        for path in &deleted_here {
            assert!(
                ours.iter().any(|r| r.1 == *path && r.3 == "deleted")
                    || extra
                        .unrecoverable
                        .iter()
                        .any(|u| u == path || path.starts_with(&format!("{u}/"))),
                "{image}: deleted {path} not found"
            );
        }
    }
}

/// Rock Ridge: TSK lists the ISO 9660 names (`A_LONG_F.TXT`), triage the
/// Rock Ridge ones (the files' real names); the same files, sizes and
/// digests, under the names the tree has.
#[test]
fn rock_ridge_names_are_the_real_names() {
    let Some(dir) = built() else { return };
    let Some(tsk) = tsk_rows(&dir.join("iso-rr.iso")) else {
        return;
    };
    let (ours, _) = triage_rows(&dir.join("iso-rr.iso"));
    let content = |rows: &BTreeSet<Row>| -> Vec<(u64, String)> {
        let mut v: Vec<_> = rows.iter().map(|r| (r.2, r.6.clone())).collect();
        v.sort();
        v
    };
    assert_eq!(content(&tsk), content(&ours));
    let tree: BTreeSet<String> = scan(&dir.join("trees/fat"))
        .into_iter()
        .map(|e| format!("/{}", e.path))
        .collect();
    let names: BTreeSet<String> = ours.iter().map(|r| r.1.clone()).collect();
    assert_eq!(names, tree);
}

/// Every container of the MBR disk (QCOW2 plain and compressed, VHD and
/// VHDX dynamic and fixed, VMDK sparse, stream-optimized and flat, split raw,
/// EWF in two compressed segments) reads as the disk's exact bytes, and so
/// lists the same files.
#[test]
fn every_container_reads_as_the_disk_it_holds() {
    let Some(dir) = built() else { return };
    let raw = triage_core::source::image::open(&dir.join("mbr.img"))
        .unwrap()
        .unwrap();
    let want = media_md5(&raw);
    let (rows, _) = triage_rows(&dir.join("mbr.img"));
    assert!(rows.len() > 300, "{} files on the MBR disk", rows.len());
    for (name, format) in [
        ("mbr.qcow2", "qcow2"),
        ("mbr.compressed.qcow2", "qcow2"),
        ("mbr.vhd", "vhd"),
        ("mbr.fixed.vhd", "vhd"),
        ("mbr.vhdx", "vhdx"),
        ("mbr.fixed.vhdx", "vhdx"),
        ("mbr.vmdk", "vmdk"),
        ("mbr.stream.vmdk", "vmdk"),
        ("mbr-flat.vmdk", "vmdk"),
        ("mbr.split.000", "split-raw"),
        ("mbr.E01", "ewf"),
    ] {
        let img = triage_core::source::image::open(&dir.join(name))
            .unwrap()
            .unwrap();
        assert_eq!(img.format, format, "{name}");
        assert!(img.size >= raw.size, "{name}: {} < {}", img.size, raw.size);
        // VHD rounds the disk up to its geometry; the rest reads as zeros.
        let md5 = if img.size == raw.size {
            media_md5(&img)
        } else {
            let mut trimmed = triage_core::source::image::open(&dir.join(name))
                .unwrap()
                .unwrap();
            trimmed.size = raw.size;
            media_md5(&trimmed)
        };
        assert_eq!(md5, want, "{name}: media MD5");
        if format == "ewf" {
            assert_eq!(img.segments.len(), 2, "{name}: segments");
            let stored: BTreeMap<_, _> = img.stored_digests.iter().cloned().collect();
            assert_eq!(stored.get("md5"), Some(&want), "{name}: ewfacquire's MD5");
            let meta: BTreeMap<_, _> = img.metadata.iter().cloned().collect();
            assert_eq!(meta["case_number"], "case-12");
            assert_eq!(meta["examiner"], "examiner one");
        }
        let (listed, _) = triage_rows(&dir.join(name));
        assert_same(name, &rows, &listed);
    }
}

/// The tree an image was made from, scanned as a directory, has the
/// digests of the image's allocated files.
#[test]
fn a_tree_and_its_image_give_the_same_digests() {
    let Some(dir) = built() else { return };
    for (tree, image) in [
        ("trees/ext", "ext4.img"),
        ("trees/ext", "ext2.img"),
        ("trees/fat", "fat32.img"),
        ("trees/exfat", "exfat.img"),
        ("trees/exfat", "sdcard.img"),
    ] {
        let added = std::fs::read_to_string(dir.join("added.txt")).unwrap();
        let deleted: BTreeSet<String> = std::fs::read_to_string(dir.join("deleted.txt"))
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{image} /")))
            .map(str::to_string)
            // Orphans: their names are gone (they are under $OrphanFiles).
            .chain(
                std::fs::read_to_string(dir.join("orphans.txt"))
                    .unwrap()
                    .lines()
                    .filter_map(|l| l.strip_prefix(&format!("{image} ")))
                    .filter_map(|l| Some(l.split_once(" /")?.1.to_string())),
            )
            .collect();
        let from_dir: BTreeSet<(String, String)> = scan(&dir.join(tree))
            .into_iter()
            .filter_map(|e| match e.outcome {
                Outcome::Hashed(h) => Some((
                    String::from_utf8_lossy(e.path.as_bytes()).into_owned(),
                    h.digests.hex(Algorithm::Sha256).unwrap(),
                )),
                _ => None,
            })
            .filter(|(p, _)| !deleted.contains(p))
            .collect();
        // A hard link is read once, at its first name; the tree reads both.
        let mut links = Vec::new();
        let mut from_image: BTreeSet<(String, String)> = scan(&dir.join(image))
            .into_iter()
            .filter_map(|e| {
                let loc = e.location.as_ref()?;
                let full = String::from_utf8_lossy(e.path.as_bytes()).into_owned();
                // Inside a partition, paths start with the partition's name.
                let rel = match loc.partition {
                    Some(_) => full.split_once('/')?.1.to_string(),
                    None => full,
                };
                let keep = loc.state == Allocation::Allocated
                    && !added.lines().any(|l| l == format!("{image} /{rel}"))
                    // exFAT's bitmap and up-case table, as TSK lists them.
                    && !rel.starts_with('$');
                match e.outcome {
                    Outcome::Hashed(h) if keep => {
                        Some((rel, h.digests.hex(Algorithm::Sha256).unwrap()))
                    }
                    Outcome::Skipped(SkipReason::HardLink { first }) => {
                        let first = String::from_utf8_lossy(first.as_bytes()).into_owned();
                        let first = match loc.partition {
                            Some(_) => first.split_once('/')?.1.to_string(),
                            None => first,
                        };
                        links.push((rel, first));
                        None
                    }
                    _ => None,
                }
            })
            .collect();
        for (name, first) in links {
            let digest = from_image
                .iter()
                .find(|(p, _)| *p == first)
                .map(|(_, d)| d.clone())
                .unwrap_or_else(|| panic!("{image}: {name}'s first name {first} was not read"));
            from_image.insert((name, digest));
        }
        assert!(from_dir.len() > 50, "{tree}: {} files", from_dir.len());
        assert_eq!(from_dir, from_image, "{tree} vs {image}");
    }
}

/// `PATH` with the system directories, where Debian keeps mke2fs, debugfs
/// and mkfs.fat.
fn with_sbin() -> String {
    format!(
        "{}:/sbin:/usr/sbin",
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `debugfs ARGS IMAGE`.
fn debugfs(args: &[&str], image: &Path) -> std::process::Output {
    Command::new("debugfs")
        .args(args)
        .arg(image)
        .env("PATH", with_sbin())
        .output()
        .unwrap()
}

/// Every failed entry, as `path: why`.
fn failures(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| match &e.outcome {
            Outcome::Failed(f) => Some(format!("{}: {}", e.path, f.kind)),
            _ => None,
        })
        .collect()
}

/// The one failed entry of a scan of `img` (asserted to be the only one),
/// and how many entries the scan recorded.
fn the_one_failure(img: &Path) -> (String, usize) {
    let entries = scan(img);
    let failed = failures(&entries);
    assert_eq!(failed.len(), 1, "{failed:?}");
    (failed[0].clone(), entries.len())
}

/// `debugfs -w -R request` on `image`, which must succeed.
fn debugfs_ok(request: &str, image: &Path) {
    let out = debugfs(&["-w", "-R", request], image);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A copy of a built image, for damaging.
fn copy_of(dir: &Path, name: &str, to: &str) -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("damaged");
    std::fs::create_dir_all(&out).unwrap();
    let p = out.join(to);
    std::fs::copy(dir.join(name), &p).unwrap();
    p
}

fn patch(p: &Path, at: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
    f.write_all_at(bytes, at).unwrap();
}

/// A damaged EWF chunk (v1 and v2): `verify-image` names its range and the
/// medium is not intact; the scan goes on, the files that touch the chunk
/// fail with the chunk's offsets, every other file is hashed as before.
#[test]
fn a_damaged_ewf_chunk_fails_the_files_on_it_and_nothing_else() {
    let Some(dir) = built() else { return };
    damaged_chunk(&dir, "E01", "E02");
    if ex01_built(&dir) {
        damaged_chunk(&dir, "Ex01", "Ex02");
    }
}

fn damaged_chunk(dir: &Path, first: &str, second: &str) {
    let e01 = copy_of(dir, &format!("mbr.{first}"), &format!("bad.{first}"));
    std::fs::copy(
        dir.join(format!("mbr.{second}")),
        e01.with_extension(second),
    )
    .unwrap();
    // Inside the first segment's chunk data, well past the headers.
    let len = std::fs::metadata(&e01).unwrap().len();
    patch(&e01, len / 2, b"\xde\xad\xbe\xef\xde\xad\xbe\xef");
    let v = triage_core::verify::image::verify_image(&e01, &|_| {}).unwrap();
    assert!(!v.intact(), "{first}");
    assert!(!v.bad_ranges.is_empty(), "{first}");
    assert!(
        v.bad_ranges[0].1.contains("EWF chunk"),
        "{first}: {:?}",
        v.bad_ranges
    );

    let good: BTreeMap<String, Outcome> = scan(&dir.join(format!("mbr.{first}")))
        .into_iter()
        .map(|e| (e.path.to_string(), e.outcome))
        .collect();
    let mut failed = 0;
    let mut same = 0;
    for e in scan(&e01) {
        match &e.outcome {
            Outcome::Failed(f) => {
                assert!(
                    f.kind.to_string().contains("EWF chunk"),
                    "{first}: {}: {}",
                    e.path,
                    f.kind
                );
                failed += 1;
            }
            o => {
                assert_eq!(
                    Some(o),
                    good.get(&e.path.to_string()),
                    "{first}: {}",
                    e.path
                );
                same += 1;
            }
        }
    }
    assert!(failed >= 1, "{first}: no file touched the damaged chunk");
    assert!(same > 300, "{first}: {same} files unchanged");
}

/// Whether build.sh wrote the Ex01 images (it needs libewf's own
/// ewfacquire, which scripts/test builds); says so when not.
fn ex01_built(dir: &Path) -> bool {
    if dir.join("mbr.Ex01").exists() {
        return true;
    }
    skip(
        "no Ex01 test images: build.sh writes them only with TRIAGE_EWFACQUIRE_V2 set to libewf's ewfacquire (scripts/test builds it with fixtures/disks/libewf.sh)",
    );
    false
}

/// EWF v2 as libewf writes it, compressed in two segments and uncompressed
/// in one (Adler-32 chunks, pattern-filled zero chunks): the MBR disk's
/// exact bytes, the digests and case data ewfacquire stored, the same
/// bytes as pyewf (libewf's reader) gives, and TSK's listing through it.
#[test]
fn ex01_images_read_as_libewf_wrote_them() {
    let Some(dir) = built() else { return };
    if !ex01_built(&dir) {
        return;
    }
    let raw = triage_core::source::image::open(&dir.join("mbr.img"))
        .unwrap()
        .unwrap();
    let want = media_md5(&raw);
    let sha1 = {
        let mut h =
            triage_core::MultiHasher::new(triage_core::AlgorithmSet::empty().with(Algorithm::Sha1));
        h.update(&std::fs::read(dir.join("mbr.img")).unwrap());
        h.finalize().hex(Algorithm::Sha1).unwrap()
    };
    for (name, segments, sha1_stored) in [("mbr.Ex01", 2, true), ("mbr-plain.Ex01", 1, false)] {
        let img = triage_core::source::image::open(&dir.join(name))
            .unwrap()
            .unwrap();
        assert_eq!(img.format, "ewf2", "{name}");
        assert_eq!(img.size, raw.size, "{name}");
        assert_eq!(img.segments.len(), segments, "{name}: segments");
        assert!(img.notes.is_empty(), "{name}: {:?}", img.notes);
        assert_eq!(media_md5(&img), want, "{name}: media MD5");
        let stored: BTreeMap<_, _> = img.stored_digests.iter().cloned().collect();
        assert_eq!(stored.get("md5"), Some(&want), "{name}: ewfacquire's MD5");
        assert_eq!(
            stored.get("sha1"),
            sha1_stored.then_some(&sha1),
            "{name}: ewfacquire's SHA-1"
        );
        let meta: BTreeMap<_, _> = img.metadata.iter().cloned().collect();
        assert_eq!(meta["case_number"], "case-12", "{name}");
        assert_eq!(meta["evidence_number"], "ev-7", "{name}");
        assert_eq!(meta["examiner"], "examiner one", "{name}");
        assert_eq!(meta["description"], "synthetic disk", "{name}");
        assert_eq!(meta["notes"], "built by fixtures/disks/build.sh", "{name}");
        // Seconds since 1970 in the file, RFC 3339 in the log.
        let date = &meta["acquisition_date"];
        assert!(
            date.ends_with('Z') && date.starts_with("20"),
            "{name}: {date}"
        );
        // libewf's own reader gives the same bytes.
        let out = Command::new("python3")
            .args([
                "-c",
                "import hashlib, pyewf, sys\nh = pyewf.handle()\nh.open(pyewf.glob(sys.argv[1]))\nm = hashlib.md5()\nleft = h.get_media_size()\nwhile left:\n    b = h.read(min(left, 1 << 20))\n    m.update(b)\n    left -= len(b)\nprint(m.hexdigest())",
            ])
            .arg(dir.join(name))
            .output()
            .unwrap();
        if out.status.success() {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                want,
                "{name}: pyewf"
            );
        } else {
            skip(&format!(
                "pyewf cannot read {name} here (pip install libewf-python): {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or_default()
            ));
        }
        // TSK through pyewf lists what triage lists.
        if let Some(tsk) = tsk_rows(&dir.join(name)) {
            let (ours, _) = triage_rows(&dir.join(name));
            assert!(ours.len() > 300, "{name}: {} files", ours.len());
            assert_same(name, &tsk, &ours);
        }
    }
}

/// Ex01 damage found when the image opens, each refused with what is
/// wrong: a missing segment is named, a segment of another image (its set
/// identifier differs) and a truncated last segment are refused.
#[test]
fn damaged_ex01_sets_are_refused_with_the_reason() {
    let Some(dir) = built() else { return };
    if !ex01_built(&dir) {
        return;
    }
    let open_err = |p: &Path| triage_core::source::image::open(p).unwrap_err().to_string();
    let alone = copy_of(&dir, "mbr.Ex01", "alone.Ex01");
    let _ = std::fs::remove_file(alone.with_extension("Ex02"));
    let err = open_err(&alone);
    assert!(
        err.contains("alone.Ex02") && err.contains("segment 2"),
        "{err}"
    );

    let other = copy_of(&dir, "mbr.Ex01", "other.Ex01");
    std::fs::copy(dir.join("mbr.Ex02"), other.with_extension("Ex02")).unwrap();
    patch(&other.with_extension("Ex02"), 16, b"\xff");
    let err = open_err(&other);
    assert!(err.contains("another image"), "{err}");

    let cut = copy_of(&dir, "mbr.Ex01", "cut.Ex01");
    std::fs::copy(dir.join("mbr.Ex02"), cut.with_extension("Ex02")).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(cut.with_extension("Ex02"))
        .unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len - 100).unwrap();
    let err = open_err(&cut);
    assert!(err.contains("truncated"), "{err}");
}

/// A missing EWF segment is a clear refusal naming it, not a short medium.
#[test]
fn a_missing_ewf_segment_is_named() {
    let Some(dir) = built() else { return };
    let e01 = copy_of(&dir, "mbr.E01", "alone.E01");
    let _ = std::fs::remove_file(e01.with_extension("E02"));
    let err = triage_core::source::image::open(&e01)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("alone.E02") && err.contains("segment 2"),
        "{err}"
    );
}

/// A cluster chain that loops, and a block pointer outside the file
/// system: the file fails, the scan goes on.
#[test]
fn hostile_chains_and_pointers_fail_one_file() {
    let Some(dir) = built() else { return };
    // FAT16: make the first data cluster of a known file point at itself.
    let fat = copy_of(&dir, "fat16.img", "loop-fat16.img");
    let b = std::fs::read(&fat).unwrap();
    let reserved = u16::from_le_bytes([b[14], b[15]]) as u64 * 512;
    // The first file mcopy wrote that spans several clusters: its FAT entry
    // follows the root; every entry with a next-cluster value gets looped.
    let entries = 64u64;
    for c in 2..2 + entries {
        let at = reserved + c * 2;
        let v = u16::from_le_bytes([b[at as usize], b[at as usize + 1]]);
        if (3..0xFFF0).contains(&v) {
            patch(&fat, at, &(c as u16).to_le_bytes());
            break;
        }
    }
    let (failed, n) = the_one_failure(&fat);
    assert!(failed.contains("chain"), "{failed}");
    assert!(n > 100);

    // exFAT: the last FAT-chained file's chain turned back on itself
    // before its size is covered.
    let ex = copy_of(&dir, "exfat.img", "loop-exfat.img");
    let b = std::fs::read(&ex).unwrap();
    let le32 = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as u64;
    let (fat_at, clusters) = (le32(80) * 512, le32(92));
    let entry = |c: u64| le32((fat_at + 4 * c) as usize);
    let c = (2..clusters + 2)
        .rev()
        .find(|&c| (2..clusters + 2).contains(&entry(c)))
        .expect("a FAT-chained file");
    patch(&ex, fat_at + 4 * c, &(c as u32).to_le_bytes());
    let (failed, n) = the_one_failure(&ex);
    assert!(failed.contains("loops"), "{failed}");
    assert!(n > 100);

    // ext2: a block pointer far outside the file system.
    let ext = copy_of(&dir, "ext2.img", "wild-ext2.img");
    debugfs_ok("sif /Downloads/large.bin block[2] 4000000000", &ext);
    let (failed, _) = the_one_failure(&ext);
    assert!(
        failed.starts_with("Downloads/large.bin") && failed.contains("outside"),
        "{failed}"
    );

    // ext4: a size of 2^50 bytes on a sparse file (all holes past its
    // data): not hashed for days, failed with why.
    let ext = copy_of(&dir, "ext4.img", "huge-ext4.img");
    debugfs_ok("sif /Downloads/sparse.img size 0x4000000000000", &ext);
    let (failed, _) = the_one_failure(&ext);
    assert!(
        failed.starts_with("Downloads/sparse.img") && failed.contains("16 times its volume"),
        "{failed}"
    );
}

/// Random damage anywhere in the metadata of every file system: the scan
/// finishes, whatever it finds (seeded, so a failure reproduces).
#[test]
fn random_damage_never_stops_a_scan() {
    let Some(dir) = built() else { return };
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for name in [
        "ext2.img",
        "ext4.img",
        "ext4-inline.img",
        "fat12.img",
        "fat16.img",
        "exfat.img",
        "hfsplus.iso",
        "hfsplus-links.img",
        "ntfs.img",
        "gpt.img",
    ] {
        let len = std::fs::metadata(dir.join(name)).unwrap().len();
        // The small HFS+ volume (hard links, decmpfs) gets more rounds.
        let rounds = if name == "hfsplus-links.img" { 40 } else { 6 };
        for round in 0..rounds {
            let p = copy_of(&dir, name, &format!("rnd-{round}-{name}"));
            // The first 2 MiB hold the boot sectors, tables, inodes, MFT and
            // ISO volume descriptors and directories.
            for _ in 0..64 {
                let at = next() % len.min(2 << 20);
                patch(&p, at, &[next() as u8]);
            }
            let scanner = match Scanner::new(ScanConfig::new(&p)) {
                Ok(s) => s,
                Err(_) => continue, // refused with a message: also fine
            };
            let mut n = 0;
            scanner
                .run(|_| {
                    n += 1;
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("{name} round {round}: {e}"));
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// `verify --evidence` on an image: every file of the log found again,
/// unchanged; after one byte of one file's content changes, that file is
/// `changed` and nothing else.
#[test]
fn an_image_log_re_checks_against_its_image() {
    let Some(dir) = built() else { return };
    let img = copy_of(&dir, "gpt.img", "audit-gpt.img");
    let mut log = Vec::new();
    let scanner = Scanner::new(ScanConfig::new(&img)).unwrap();
    let mut w = triage_core::record::OutputFormat::Jsonl.writer(&mut log, scanner.root());
    w.header(&scanner.header()).unwrap();
    let summary = scanner.run(|e| w.entry(&e)).unwrap();
    w.summary(&summary).unwrap();
    drop(w);
    let audit = triage_core::verify::evidence::audit_evidence(&log[..], &img, None).unwrap();
    assert!(audit.unchanged(), "{audit:?}");
    assert!(audit.matched > 400, "{}", audit.matched);

    // Change one byte of the large file on the ext4 partition (found
    // through the log: its partition offset and the file's first block).
    let entries = scan(&img);
    let large = entries
        .iter()
        .find(|e| e.path.to_string() == "p1/Downloads/large.bin")
        .expect("p1/Downloads/large.bin");
    let ino = large.location.as_ref().unwrap().addr;
    let out = debugfs(&["-R", &format!("bmap <{ino}> 0")], &dir.join("ext4.img"));
    let block: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let p1 = large.location.as_ref().unwrap().fs_offset;
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, p1 + block * 4096 + 100).unwrap();
    f.write_all_at(&[b[0] ^ 0xFF], p1 + block * 4096 + 100)
        .unwrap();
    let audit = triage_core::verify::evidence::audit_evidence(&log[..], &img, None).unwrap();
    assert_eq!(audit.changed.len(), 1, "{audit:?}");
    assert_eq!(audit.changed[0].to_string(), "p1/Downloads/large.bin");
    assert!(
        audit.missing.is_empty() && audit.new.is_empty(),
        "{audit:?}"
    );
}

/// A killed image scan resumes where it stopped: the entries a resumed
/// scan adds to the recorded prefix are exactly the rest of the image's,
/// none twice (items are keyed by path and location).
#[test]
fn an_image_scan_resumes_without_loss_or_repeat() {
    let Some(dir) = built() else { return };
    let img = dir.join("mbr.img");
    let mut full = Vec::new();
    let scanner = Scanner::new(ScanConfig::new(&img)).unwrap();
    let mut w = triage_core::record::OutputFormat::Jsonl.writer(&mut full, scanner.root());
    w.header(&scanner.header()).unwrap();
    let summary = scanner.run(|e| w.entry(&e)).unwrap();
    w.summary(&summary).unwrap();
    drop(w);
    let text = String::from_utf8(full).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let entries: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains(r#""record":"file""#) || l.contains(r#""record":"skipped""#))
        .collect();
    assert!(entries.len() > 500);
    // The log as a kill after 200 entries leaves it: header and a prefix.
    let cut = Path::new(env!("CARGO_TARGET_TMPDIR")).join("damaged/killed.jsonl");
    std::fs::create_dir_all(cut.parent().unwrap()).unwrap();
    std::fs::write(&cut, lines[..201].join("\n") + "\n").unwrap();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&cut)
        .unwrap();
    let plan = triage_core::resume::resume(&mut f, None).unwrap();
    let mut rest = Vec::new();
    Scanner::new(plan.config)
        .unwrap()
        .run(|e| {
            rest.push(e);
            Ok(())
        })
        .unwrap();
    let key = |path: String, loc: serde_json::Value| format!("{path} {loc}");
    let want: Vec<String> = entries
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            key(
                v["path"].as_str().unwrap().to_string(),
                v["location"].clone(),
            )
        })
        .collect();
    let mut got: Vec<String> = want[..200].to_vec();
    for e in &rest {
        let loc = e.location.as_ref().unwrap();
        let v = serde_json::json!({
            "partition": loc.partition.as_ref().map(|p| serde_json::json!({
                "index": p.index, "scheme": p.scheme, "type": p.type_id, "offset": p.offset, "length": p.length
            })),
            "fs": loc.fs, "fs_offset": loc.fs_offset, "addr": loc.addr, "state": loc.state.name(),
        });
        let mut v = v;
        if loc.partition.is_none() {
            v.as_object_mut().unwrap().remove("partition");
        }
        got.push(key(e.path.to_string(), v));
    }
    assert_eq!(got.len(), want.len(), "entries after resume");
    assert_eq!(got, want);
}

/// The summary of an image scan carries the SHA-256 of each image file,
/// read whole beside the scan: those `../shared/evidence-images/SHA256SUMS`
/// lists for the files as fetched.
#[test]
fn an_image_scan_digests_every_segment_file() {
    let Some(sums) = shared("evidence-images/SHA256SUMS") else {
        return;
    };
    let sums: BTreeMap<String, String> = std::fs::read_to_string(&sums)
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.split_once("  ")
                .map(|(h, n)| (n.trim_start_matches('*').to_string(), h.to_string()))
        })
        .collect();
    let dir = sums_dir();
    let scanner = Scanner::new(ScanConfig::new(dir.join("ext2.split.E01"))).unwrap();
    let summary = scanner.run(|_| Ok(())).unwrap();
    let got: Vec<(String, Option<String>)> = summary
        .image_segments
        .iter()
        .map(|d| {
            (
                Path::new(&d.path)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                d.sha256.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "ext2.split.E01".to_string(),
                Some(sums["ext2.split.E01"].clone())
            ),
            (
                "ext2.split.E02".to_string(),
                Some(sums["ext2.split.E02"].clone())
            ),
        ]
    );
}

fn sums_dir() -> PathBuf {
    repo().join("../shared/evidence-images")
}

/// Symbolic links in an image are recorded with their targets, never
/// followed: the same targets as the tree's links, read by the directory
/// walk (`readlink`), for a fast (in-inode) and a slow (in-block) link.
#[test]
fn image_symlinks_are_recorded_with_their_targets() {
    let Some(dir) = built() else { return };
    let links = |p: &Path| -> BTreeSet<(String, String)> {
        scan(p)
            .into_iter()
            .filter_map(|e| match e.outcome {
                Outcome::Skipped(SkipReason::Symlink { target }) => Some((
                    e.path.to_string(),
                    target.map(|t| t.to_string()).unwrap_or_default(),
                )),
                _ => None,
            })
            .collect()
    };
    let want = links(&dir.join("trees/ext"));
    assert_eq!(want.len(), 2, "{want:?}");
    assert!(want.iter().any(|(_, t)| t.len() > 60), "{want:?}");
    for image in ["ext2.img", "ext4.img", "ext4-inline.img"] {
        assert_eq!(links(&dir.join(image)), want, "{image}");
    }
}

/// exFAT stores local time with its offset from UTC: make_exfat.py writes
/// 2023-11-15 05:13:20 at UTC+07:00, which is 1,700,000,000 in UTC; the
/// bitmap and up-case table are recorded as TSK names them.
#[test]
fn exfat_times_are_moved_to_utc_and_its_tables_are_files() {
    let Some(dir) = built() else { return };
    let entries = scan(&dir.join("exfat.img"));
    let large = entries
        .iter()
        .find(|e| e.path.as_bytes() == b"Downloads/large.bin")
        .expect("Downloads/large.bin");
    let meta = large.meta.as_ref().unwrap();
    assert_eq!(meta.mtime.secs, 1_700_000_000);
    assert_eq!(meta.btime.unwrap().secs, 1_700_000_000);
    assert_eq!(meta.size, 1 << 20);
    for name in ["$ALLOC_BITMAP", "$UPCASE_TABLE"] {
        let e = entries
            .iter()
            .find(|e| e.path.as_bytes() == name.as_bytes())
            .unwrap_or_else(|| panic!("{name}"));
        assert!(matches!(e.outcome, Outcome::Hashed(_)), "{name}");
    }
}

/// TSK's listing of the file system at `sector` through its command-line
/// tools (`fls -r -p -l -F`, `icat`), or `None` (skipped) without them.
/// For HFS+: the pytsk3 wheel's TSK fails on these catalogs ("hfs_dir_open_meta:
/// nodesize value out of bounds") where Debian's TSK 4.11 reads them.
fn tsk_cli_rows(image: &Path, sector: u64) -> Option<BTreeSet<Row>> {
    use md5::Digest;
    let fls = Command::new("fls")
        .args(["-r", "-p", "-l", "-F", "-o", &sector.to_string()])
        .arg(image)
        .output();
    let Ok(fls) = fls else {
        skip("The Sleuth Kit's fls is not installed (apt-get install sleuthkit)");
        return None;
    };
    assert!(
        fls.status.success(),
        "fls: {}",
        String::from_utf8_lossy(&fls.stderr)
    );
    let mut rows = BTreeSet::new();
    for line in fls.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let f: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
        let head = String::from_utf8_lossy(f[0]);
        let deleted = head.contains('*');
        let inode = head
            .trim_end_matches(':')
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string();
        let size: u64 = String::from_utf8_lossy(f[6]).parse().unwrap();
        let bytes = Command::new("icat")
            .args(["-o", &sector.to_string()])
            .arg(image)
            .arg(&inode)
            .output()
            .unwrap()
            .stdout;
        assert_eq!(bytes.len() as u64, size, "icat {inode}");
        rows.insert((
            sector * 512,
            format!("/{}", String::from_utf8_lossy(f[1])),
            size,
            if deleted { "deleted" } else { "alloc" }.to_string(),
            hex(&md5::Md5::digest(&bytes)),
            hex(&sha1::Sha1::digest(&bytes)),
            hex(&sha2::Sha256::digest(&bytes)),
        ));
    }
    Some(rows)
}

/// The files TSK lists under `$OrphanFiles/` of a bare file system
/// (`fls -r -p`), with the MD5 of what `icat` reads: (path, MD5).
fn tsk_orphans(image: &Path) -> Vec<(String, String)> {
    use md5::Digest;
    let fls = Command::new("fls")
        .args(["-r", "-p"])
        .arg(image)
        .output()
        .unwrap();
    assert!(fls.status.success(), "fls {}", image.display());
    String::from_utf8_lossy(&fls.stdout)
        .lines()
        .filter_map(|l| {
            let (head, path) = l.split_once('\t')?;
            path.starts_with("$OrphanFiles/").then(|| {
                let inode = head.rsplit(' ').next().unwrap().trim_end_matches(':');
                let bytes = Command::new("icat")
                    .arg(image)
                    .arg(inode)
                    .output()
                    .unwrap()
                    .stdout;
                (format!("/{path}"), hex(&md5::Md5::digest(&bytes)))
            })
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// HFS+ (in an Apple Partition Map, as xorriso writes hybrid images):
/// TSK's listing, exactly, with the special files; the tree's digests.
#[test]
fn hfsplus_agrees_with_the_sleuth_kit() {
    let Some(dir) = built() else { return };
    let image = dir.join("hfsplus.iso");
    let mmls = Command::new("mmls").arg(&image).output();
    let Ok(mmls) = mmls else {
        skip("The Sleuth Kit's mmls is not installed (apt-get install sleuthkit)");
        return;
    };
    let table = String::from_utf8_lossy(&mmls.stdout).into_owned();
    let sector: u64 = table
        .lines()
        .find(|l| l.contains("Apple_HFS"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or_else(|| panic!("no Apple_HFS partition:\n{table}"))
        .parse()
        .unwrap();
    let Some(tsk) = tsk_cli_rows(&image, sector) else {
        return;
    };
    let (ours, extra) = triage_rows(&image);
    assert!(extra.unrecoverable.is_empty(), "{extra:?}");
    // The resource fork build.sh gave a report (a picture's blocks), as
    // `icat INODE-4353-1` reads it (TSK's resource-fork attribute).
    let report = "Report number 35 for the quarterly review.txt";
    let inode = Command::new("fls")
        .args(["-p", "-o", &sector.to_string()])
        .arg(&image)
        .output()
        .unwrap()
        .stdout;
    let inode = String::from_utf8_lossy(&inode)
        .lines()
        .find(|l| l.ends_with(&format!("\t{report}")))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(|n| n.trim_end_matches(':').to_string())
        .unwrap_or_else(|| panic!("fls does not list {report}"));
    let rsrc = Command::new("icat")
        .args(["-o", &sector.to_string()])
        .arg(&image)
        .arg(format!("{inode}-4353-1"))
        .output()
        .unwrap()
        .stdout;
    assert!(
        rsrc.starts_with(b"\x89PNG"),
        "TSK's resource fork of {report}"
    );
    {
        use md5::Digest;
        assert_eq!(
            extra.streams,
            [(format!("/{report}:rsrc"), hex(&md5::Md5::digest(&rsrc)))],
            "resource forks"
        );
    }
    assert!(tsk.len() > 100, "{} files", tsk.len());
    assert_same("hfsplus.iso", &tsk, &ours);
    for special in ["/$CatalogFile", "/$ExtentsFile", "/$AllocationFile"] {
        assert!(ours.iter().any(|r| r.1 == special), "{special}");
    }
    // The tree's files, by digest; HFS+ stores names decomposed (NFD), so
    // the one non-ASCII name is compared by its stored form.
    let nfc = "Documents/ti\u{1ebf}ng Vi\u{1ec7}t v\u{e0} \u{e20}\u{e32}\u{e29}\u{e32}\u{e44}\u{e17}\u{e22}.txt";
    let nfd = "Documents/tie\u{302}\u{301}ng Vie\u{323}\u{302}t va\u{300} \u{e20}\u{e32}\u{e29}\u{e32}\u{e44}\u{e17}\u{e22}.txt";
    let tree: BTreeSet<(String, String)> = scan(&dir.join("trees/exfat"))
        .into_iter()
        .filter_map(|e| match e.outcome {
            Outcome::Hashed(h) => Some((
                String::from_utf8_lossy(e.path.as_bytes()).replace(nfc, nfd),
                h.digests.hex(Algorithm::Sha256).unwrap(),
            )),
            _ => None,
        })
        .collect();
    let image_files: BTreeSet<(String, String)> = ours
        .iter()
        .filter(|r| !r.1.starts_with("/$"))
        .map(|r| (r.1[1..].to_string(), r.6.clone()))
        .collect();
    assert!(tree.iter().any(|t| t.0 == nfd), "the tree has no {nfc}");
    assert_eq!(tree, image_files);
}

/// HFS+ file and directory hard links and decmpfs-compressed files
/// (make_hfsplus.py lays them out as macOS does): TSK 4.11 lists each
/// link's name with the indirect node's bytes, each directory link with
/// the linked folder's files under it, the links whose creation date is
/// not a private folder's as the empty files they are, and compressed
/// files (zlib and LZVN, inline, stored inline, units in the resource
/// fork) decompressed; triage reads the node once, at its first name in
/// the walk (the private folder's `iNode18`: NUL sorts first), records
/// both user names as hard links to it, walks the linked folder once (at
/// `dir_40` in its private folder: '.' sorts before the links' names) and
/// records the two links' names as hard links to it, and gives the same
/// bytes for the compressed files (and the resource forks as `:rsrc`, as
/// `icat` reads them).
#[test]
fn hfsplus_links_and_compression_agree_with_the_sleuth_kit() {
    let Some(dir) = built() else { return };
    let image = dir.join("hfsplus-links.img");
    let Some(tsk) = tsk_cli_rows(&image, 0) else {
        return;
    };
    let (ours, extra) = triage_rows(&image);
    // TSK shows the private folders' NULs and CR as '^'.
    let ours: BTreeSet<Row> = ours
        .into_iter()
        .map(|mut r| {
            r.1 = r.1.replace(['\0', '\r'], "^");
            r
        })
        .collect();
    assert_same("hfsplus-links.img", &tsk, &ours);
    let mut links = extra.hard_links.clone();
    links.sort();
    let node = "/\0\0\0\0HFS+ Private Data/iNode18".to_string();
    assert_eq!(
        links,
        [
            (
                "/docs/compressed link.txt".to_string(),
                "/\0\0\0\0HFS+ Private Data/iNode27".to_string()
            ),
            ("/docs/copy of photo.png".to_string(), node.clone()),
            ("/photo.png".to_string(), node.clone()),
        ]
    );
    let album = "/.HFS+ Private Directory Data\r/dir_40".to_string();
    assert_eq!(
        extra.dir_links,
        [
            ("/album".to_string(), album.clone()),
            ("/docs/album link".to_string(), album)
        ]
    );
    assert!(
        ours.iter()
            .any(|r| r.1 == "/album/inner/deep.txt" && r.2 == 31),
        "the LZVN file in a linked directory"
    );
    let broken = ours.iter().find(|r| r.1 == "/broken album").unwrap();
    assert_eq!(broken.2, 0, "a directory link that fails the rule");
    // A link to a compressed node: its decompressed bytes (TSK's too).
    assert!(
        ours.iter()
            .any(|r| r.1 == "/docs/compressed link.txt" && r.2 == 23)
    );
    let photo = ours.iter().find(|r| r.1 == "/photo.png").unwrap();
    let picture = std::fs::read_dir(dir.join("trees/ext/DCIM/100CANON"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .min()
        .unwrap();
    {
        use md5::Digest;
        assert_eq!(
            photo.4,
            hex(&md5::Md5::digest(std::fs::read(&picture).unwrap()))
        );
    }
    let broken = ours.iter().find(|r| r.1 == "/broken link.png").unwrap();
    assert_eq!(
        broken.2, 0,
        "a link that fails the rule is its own empty file"
    );
    // The compressed files, by the bytes they decompress to.
    let source = std::fs::read(repo().join("fixtures/disks/make_hfsplus.py")).unwrap();
    let text = ours.iter().find(|r| r.1 == "/compressed.txt").unwrap();
    assert_eq!(text.2, source.len() as u64);
    {
        use md5::Digest;
        assert_eq!(text.4, hex(&md5::Md5::digest(&source)));
    }
    assert!(ours.iter().any(|r| r.1 == "/stored.txt" && r.2 == 23));
    assert!(ours.iter().any(|r| r.1 == "/lzvn stored.txt" && r.2 == 23));
    assert!(ours.iter().any(|r| r.1 == "/lzvn.txt" && r.2 == 2220));
    for big in ["/compressed big.bin", "/lzvn big.bin"] {
        assert!(ours.iter().any(|r| r.1 == big && r.2 == 150_000), "{big}");
    }
    let rsrc = |inode: &str| {
        use md5::Digest;
        let bytes = Command::new("icat")
            .arg(&image)
            .arg(format!("{inode}-4353-1"))
            .output()
            .unwrap()
            .stdout;
        hex(&md5::Md5::digest(&bytes))
    };
    let mut streams = extra.streams.clone();
    streams.sort();
    assert_eq!(
        streams,
        [
            ("/compressed big.bin:rsrc".to_string(), rsrc("26")),
            ("/lzvn big.bin:rsrc".to_string(), rsrc("31")),
        ]
    );
}

/// `scan --verify-image`: the medium's MD5 (the raw disk's, as md5 of the
/// file computes it) against the one ewfacquire stored, recorded in the
/// log's summary with the image files' SHA-256; a damaged chunk makes it
/// unreadable there and not intact.
#[test]
fn a_scan_verifies_the_medium_into_its_log() {
    use md5::Digest;
    let Some(dir) = built() else { return };
    let want = hex(&md5::Md5::digest(
        std::fs::read(dir.join("mbr.img")).unwrap(),
    ));
    let summary_of = |img: &Path| {
        let mut config = ScanConfig::new(img);
        config.verify_image = true;
        let scanner = Scanner::new(config).unwrap();
        let mut log = Vec::new();
        let mut w = triage_core::record::OutputFormat::Jsonl.writer(&mut log, scanner.root());
        w.header(&scanner.header()).unwrap();
        let summary = scanner.run(|e| w.entry(&e)).unwrap();
        w.summary(&summary).unwrap();
        drop(w);
        let last = log.split(|&b| b == b'\n').rfind(|l| !l.is_empty()).unwrap();
        match triage_core::record::jsonl::parse_line(last).unwrap() {
            triage_core::record::jsonl::Line::Summary(s) => s,
            other => panic!("the last line is not the summary: {other:?}"),
        }
    };
    let s = summary_of(&dir.join("mbr.E01"));
    let v = s.image_verification.expect("image_verification in the log");
    assert_eq!(v.computed["md5"], want);
    assert_eq!(v.verdicts["md5"], "matched");
    assert_eq!(v.verdicts["sha1"], "absent");
    assert!(v.intact() && v.unreadable.is_empty());
    assert_eq!(s.image_segments.len(), 2, "{:?}", s.image_segments);

    let bad = copy_of(&dir, "mbr.E01", "verify-bad.E01");
    std::fs::copy(dir.join("mbr.E02"), bad.with_extension("E02")).unwrap();
    let len = std::fs::metadata(&bad).unwrap().len();
    patch(&bad, len / 2, b"\xde\xad\xbe\xef\xde\xad\xbe\xef");
    let v = summary_of(&bad).image_verification.unwrap();
    assert!(!v.intact());
    assert_eq!(v.verdicts["md5"], "mismatched");
    assert!(
        v.unreadable[0].error.contains("EWF chunk"),
        "{:?}",
        v.unreadable
    );

    // A directory has no medium: nothing recorded.
    let mut config = ScanConfig::new(dir.join("trees/fat"));
    config.verify_image = true;
    let summary = Scanner::new(config).unwrap().run(|_| Ok(())).unwrap();
    assert!(summary.image_verification.is_none());
}

/// NTFS `$FILE_NAME` times, recorded where they differ from
/// `$STANDARD_INFORMATION`'s, equal those TSK's `istat` prints for both
/// attributes (the ntfs crate's test volume, whose files were written by
/// Windows: their `$FN` times lag their `$SI` times).
#[test]
fn ntfs_name_times_agree_with_istat() {
    let Some(img) = shared("evidence-images/ntfs_testfs1") else {
        return;
    };
    if Command::new("istat").arg("-V").output().is_err() {
        skip("The Sleuth Kit's istat is not installed (apt-get install sleuthkit)");
        return;
    }
    // "2023-01-23T20:45:12.098891400Z" as istat writes it.
    let tsk = |t: &triage_core::time::Timestamp| {
        let s = t.to_string();
        format!("{} {} (UTC)", &s[..10], &s[11..s.len() - 1])
    };
    let mut checked = 0;
    for e in scan(&img) {
        let (Some(loc), Some(meta)) = (&e.location, &e.meta) else {
            continue;
        };
        let Some(fnt) = loc.name_times else { continue };
        if meta.mtime.secs <= 0 || fnt.created.secs <= 0 || loc.addr >> 48 != 0 {
            continue; // TSK prints times before 1970 as 0000-00-00
        }
        let out = Command::new("istat")
            .arg(&img)
            .arg(loc.addr.to_string())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let section = |head: &str| -> Vec<String> {
            let s = &text[text
                .find(head)
                .unwrap_or_else(|| panic!("{head} in {text}"))..];
            ["Created:", "File Modified:", "MFT Modified:", "Accessed:"]
                .iter()
                .map(|k| {
                    let l = s.lines().find(|l| l.starts_with(k)).unwrap();
                    l[k.len()..].trim().to_string()
                })
                .collect()
        };
        let si = section("$STANDARD_INFORMATION Attribute Values:");
        let fname = section("$FILE_NAME Attribute Values:");
        assert_eq!(
            si,
            [
                tsk(&meta.btime.unwrap()),
                tsk(&meta.mtime),
                tsk(&meta.ctime),
                tsk(&meta.atime)
            ],
            "{}: $SI",
            e.path
        );
        assert_eq!(
            fname,
            [
                tsk(&fnt.created),
                tsk(&fnt.modified),
                tsk(&fnt.changed),
                tsk(&fnt.accessed)
            ],
            "{}: $FN",
            e.path
        );
        assert_ne!(si, fname, "{}: recorded although equal", e.path);
        checked += 1;
    }
    assert!(checked >= 3, "{checked} files with differing $FN times");
}

/// Each file system's unallocated space, by its allocation map, is the
/// set of units TSK's `blkls -A -l` lists as free (blocks for ext, sectors
/// for FAT and exFAT, clusters for NTFS), exactly, and for ext the free
/// blocks `dumpe2fs` lists; the header records it, and the `$Unallocated`
/// item carving reads is the bytes `blkls -A` gives, digest for digest.
#[test]
fn unallocated_space_agrees_with_blkls() {
    let Some(dir) = built() else { return };
    if Command::new("blkls").arg("-V").output().is_err() {
        skip("The Sleuth Kit's blkls is not installed (apt-get install sleuthkit)");
        return;
    }
    for name in [
        "ext2.img",
        "ext4.img",
        "ext4-inline.img",
        "fat12.img",
        "fat16.img",
        "fat32.img",
        "exfat.img",
        "ntfs.img",
    ] {
        let img = dir.join(name);
        let out = Command::new("blkls")
            .args(["-A", "-l"])
            .arg(&img)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let free: BTreeSet<u64> = text
            .lines()
            .filter_map(|l| l.strip_suffix("|f"))
            .map(|a| a.parse().unwrap())
            .collect();
        let free_bytes = Command::new("blkls")
            .arg("-A")
            .arg(&img)
            .output()
            .unwrap()
            .stdout;
        let bytes = free_bytes.len() as u64;
        // The `$Unallocated` item the scan carves is those bytes, in order.
        use sha2::Digest;
        let item = scan(&img)
            .into_iter()
            .find(|e| e.path.as_bytes() == b"$Unallocated")
            .unwrap_or_else(|| panic!("{name}: no $Unallocated item"));
        let Outcome::Hashed(h) = &item.outcome else {
            panic!("{name}: $Unallocated not hashed: {:?}", item.outcome);
        };
        assert_eq!(h.bytes_read, bytes, "{name}: $Unallocated's size");
        assert_eq!(
            h.digests.hex(Algorithm::Sha256).unwrap(),
            hex(&sha2::Sha256::digest(&free_bytes)),
            "{name}: $Unallocated is blkls -A's bytes"
        );
        let header = Scanner::new(ScanConfig::new(&img)).unwrap().header();
        let info = header.image.expect("an image");
        let u = info.volumes[0]
            .unallocated
            .clone()
            .expect("unallocated space");
        assert_eq!(u.bytes, bytes, "{name}: bytes");
        assert!(!free.is_empty(), "{name}: TSK lists no free units");
        let unit = bytes / free.len() as u64;
        let ours: BTreeSet<u64> = u
            .ranges
            .iter()
            .flat_map(|r| (r.offset / unit)..(r.offset + r.length) / unit)
            .collect();
        assert_eq!(ours, free, "{name}: free units");
    }
    // ext, against e2fsprogs (the format's reference): the free blocks
    // dumpe2fs lists per group, on the built images and on an empty ext4
    // whose later groups' bitmaps were never written (BLOCK_UNINIT: every
    // block but the metadata placed in the group is free; TSK reads the
    // unwritten bitmap as zeros and counts the groups' superblock copies
    // and descriptor blocks as free too).
    let uninit = Path::new(env!("CARGO_TARGET_TMPDIR")).join("uninit-ext4.img");
    let _ = std::fs::remove_file(&uninit);
    std::fs::File::create(&uninit)
        .unwrap()
        .set_len(512 << 20)
        .unwrap();
    let made = Command::new("mke2fs")
        .args([
            "-q",
            "-F",
            "-t",
            "ext4",
            "-U",
            "6b1f4c52-4c3e-4a5e-9b0e-2f7f1d0c1a02",
        ])
        .arg(&uninit)
        .env("PATH", with_sbin())
        .env("E2FSPROGS_FAKE_TIME", "1700000000")
        .status()
        .unwrap();
    assert!(made.success());
    for img in [dir.join("ext2.img"), dir.join("ext4.img"), uninit.clone()] {
        let out = Command::new("dumpe2fs")
            .arg(&img)
            .env("PATH", with_sbin())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if img == uninit {
            assert!(text.contains("BLOCK_UNINIT"), "no uninitialised group");
        }
        let block: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("Block size:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let mut free = BTreeSet::new();
        // Per group: "  Free blocks: 2127-32767, 40000" (the header's
        // "Free blocks:" total is not indented).
        for l in text
            .lines()
            .filter_map(|l| l.strip_prefix("  Free blocks: "))
        {
            for part in l.split(", ").map(str::trim).filter(|p| !p.is_empty()) {
                let (a, b) = part.split_once('-').unwrap_or((part, part));
                let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
                free.extend(a..=b);
            }
        }
        let header = Scanner::new(ScanConfig::new(&img)).unwrap().header();
        let u = header.image.unwrap().volumes[0]
            .unallocated
            .clone()
            .unwrap();
        let ours: BTreeSet<u64> = u
            .ranges
            .iter()
            .flat_map(|r| (r.offset / block)..(r.offset + r.length) / block)
            .collect();
        assert!(u.error.is_none(), "{u:?}");
        assert_eq!(ours.len(), free.len(), "{}", img.display());
        assert_eq!(ours, free, "{}: free blocks", img.display());
    }
    let _ = std::fs::remove_file(&uninit);
}
