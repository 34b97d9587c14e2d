//! I/O policy: how many files to read at once, from what the evidence sits on.
//!
//! Parallel reads thrash a spinning disk (users report 100–120 MB/s falling
//! to 10–20 MB/s), while SSDs want many reads in flight. The kernel says
//! which is which in `/sys/block/<disk>/queue/rotational`, but that flag is
//! unreliable behind USB bridges and for loop devices and FUSE, so the
//! detected value is only a default: [`IoPolicy::new`] takes overrides, and
//! the policy describes itself so the CLI can print the assumption it made.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What is known about the block device under a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Kernel name of the whole disk (`sda`, `nvme0n1`), when found.
    pub name: Option<String>,
    /// `Some(true)` for a spinning disk, `Some(false)` for an SSD, `None`
    /// when there is no block device (tmpfs, NFS, FUSE) or no flag.
    pub rotational: Option<bool>,
    /// The disk is a hypervisor's virtual disk (virtio, Xen, Hyper-V,
    /// VMware paravirtual): its rotational flag says nothing about the
    /// storage behind it (virtio reports `1` by default).
    pub virtual_disk: bool,
}

/// Kernel drivers of virtual disks (the basename of `device/driver`).
const VIRTUAL_DRIVERS: [&str; 4] = ["virtio_blk", "xen_blkfront", "vbd", "hv_storvsc"];

impl DeviceInfo {
    /// Looks up the device holding `path` in sysfs. Never fails: what cannot
    /// be found is `None`.
    pub fn detect(path: &Path) -> DeviceInfo {
        let unknown = DeviceInfo {
            name: None,
            rotational: None,
            virtual_disk: false,
        };
        let Ok(meta) = fs::metadata(path) else {
            return unknown;
        };
        let dev = meta.dev();
        let (major, minor) = (libc::major(dev), libc::minor(dev));
        if major == 0 {
            // Anonymous device: tmpfs, overlay, NFS, FUSE, btrfs subvolume.
            return unknown;
        }
        Self::from_sysfs(Path::new("/sys"), major, minor).unwrap_or(unknown)
    }

    /// The lookup against a sysfs tree at `sys` (a parameter so tests can
    /// build a fake one).
    fn from_sysfs(sys: &Path, major: u32, minor: u32) -> Option<DeviceInfo> {
        let mut dir: PathBuf =
            fs::canonicalize(sys.join(format!("dev/block/{major}:{minor}"))).ok()?;
        // A partition has no queue of its own; its parent directory is the disk.
        if dir.join("partition").exists() {
            dir = dir.parent()?.to_path_buf();
        }
        let flag = fs::read_to_string(dir.join("queue/rotational")).ok();
        let driver = fs::canonicalize(dir.join("device/driver")).ok();
        let virtual_disk = driver
            .as_ref()
            .and_then(|d| d.file_name())
            .is_some_and(|n| VIRTUAL_DRIVERS.iter().any(|v| n == *v));
        Some(DeviceInfo {
            virtual_disk,
            name: dir.file_name().map(|n| n.to_string_lossy().into_owned()),
            rotational: flag.and_then(|f| match f.trim() {
                "1" => Some(true),
                "0" => Some(false),
                _ => None,
            }),
        })
    }
}

/// How many hashing threads and concurrent file reads a scan uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoPolicy {
    /// Hashing threads (a rayon pool).
    pub threads: usize,
    /// Files being read at once at the start. 1 on a spinning disk; on an
    /// SSD a few per thread so the queue never runs dry. Unless set by the
    /// caller, the scan then moves it by measured throughput (the class is
    /// often wrong: virtio disks say rotational).
    pub readers: usize,
    /// The device this was derived from.
    pub device: DeviceInfo,
    /// Whether `readers` came from the caller rather than detection.
    pub readers_overridden: bool,
}

impl IoPolicy {
    /// The policy for `device`, with optional overrides. `threads` defaults
    /// to the available CPUs.
    pub fn new(device: DeviceInfo, threads: Option<usize>, readers: Option<usize>) -> IoPolicy {
        let threads = threads
            .filter(|&t| t > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let readers_overridden = readers.is_some_and(|r| r > 0);
        let readers = match readers.filter(|&r| r > 0) {
            Some(r) => r,
            // A virtual disk may sit on anything: start between the
            // classes and let the measured throughput decide.
            None if device.virtual_disk => 2,
            None if device.rotational == Some(true) => 1,
            None => threads * 4,
        };
        IoPolicy {
            threads,
            readers,
            device,
            readers_overridden,
        }
    }

    /// One line for the examiner: what was assumed, and how to change it.
    pub fn describe(&self) -> String {
        let dev = self.device.name.as_deref().unwrap_or("no block device");
        let kind = match self.device.rotational {
            _ if self.device.virtual_disk => "virtual disk (its rotational flag is not trusted)",
            Some(true) => "rotational (spinning disk)",
            Some(false) => "non-rotational (SSD)",
            None => "unknown type (treated as SSD)",
        };
        let how = if self.readers_overridden {
            "set by --readers"
        } else {
            "to start; then by measured throughput; fix it with --readers"
        };
        format!(
            "{dev}: {kind}; {} concurrent file read(s) ({how}), {} hashing thread(s)",
            self.readers, self.threads
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_resolves_to_its_disk() {
        let sys = std::env::temp_dir().join(format!("triage-sysfs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&sys);
        let disk = sys.join("devices/pci0/block/sdz");
        fs::create_dir_all(disk.join("queue")).unwrap();
        fs::create_dir_all(disk.join("sdz1")).unwrap();
        fs::write(disk.join("sdz1/partition"), "1\n").unwrap();
        fs::write(disk.join("queue/rotational"), "1\n").unwrap();
        fs::create_dir_all(sys.join("dev/block")).unwrap();
        std::os::unix::fs::symlink(disk.join("sdz1"), sys.join("dev/block/8:1")).unwrap();
        std::os::unix::fs::symlink(&disk, sys.join("dev/block/8:0")).unwrap();
        for minor in [0, 1] {
            let info = DeviceInfo::from_sysfs(&sys, 8, minor).unwrap();
            assert_eq!(info.name.as_deref(), Some("sdz"));
            assert_eq!(info.rotational, Some(true));
            assert!(!info.virtual_disk);
        }
        // The same disk behind virtio's driver.
        fs::create_dir_all(sys.join("bus/virtio/drivers/virtio_blk")).unwrap();
        fs::create_dir_all(disk.join("device")).unwrap();
        std::os::unix::fs::symlink(
            sys.join("bus/virtio/drivers/virtio_blk"),
            disk.join("device/driver"),
        )
        .unwrap();
        assert!(DeviceInfo::from_sysfs(&sys, 8, 1).unwrap().virtual_disk);
        assert!(DeviceInfo::from_sysfs(&sys, 8, 2).is_none());
        fs::remove_dir_all(&sys).unwrap();
    }

    #[test]
    fn spinning_disk_gets_one_reader_unless_overridden() {
        let hdd = DeviceInfo {
            name: Some("sda".into()),
            rotational: Some(true),
            virtual_disk: false,
        };
        let p = IoPolicy::new(hdd.clone(), Some(2), None);
        assert_eq!((p.threads, p.readers), (2, 1));
        assert!(
            p.describe()
                .contains("sda: rotational (spinning disk); 1 concurrent")
        );
        let p = IoPolicy::new(hdd, Some(2), Some(3));
        assert_eq!(p.readers, 3);
        assert!(p.describe().contains("set by --readers"));
        let ssd = DeviceInfo {
            name: None,
            rotational: None,
            virtual_disk: false,
        };
        assert_eq!(IoPolicy::new(ssd, Some(2), None).readers, 8);
        let vda = DeviceInfo {
            name: Some("vda".into()),
            rotational: Some(true),
            virtual_disk: true,
        };
        let p = IoPolicy::new(vda, Some(2), None);
        assert_eq!(p.readers, 2);
        assert!(
            p.describe().contains("vda: virtual disk"),
            "{}",
            p.describe()
        );
    }
}
