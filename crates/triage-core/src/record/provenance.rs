//! Who ran a scan, for which case, on which machine, with which build: the
//! part of the audit log's header that is not about the evidence.
//!
//! Case details are supplied by the examiner and never guessed; host and
//! build facts are read from the system and from `build.rs`.

use std::collections::BTreeMap;
use std::ffi::CStr;

use serde::{Deserialize, Serialize};

/// The case a scan belongs to, as the examiner gave it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseInfo {
    /// Case number or reference.
    pub case_id: String,
    /// Exhibit / evidence item identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_id: Option<String>,
    /// Name (and id) of the examiner who ran the scan.
    pub examiner: String,
    /// The examiner's agency or unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    /// Free-text notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// The machine and account the scan ran on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// `gethostname`.
    pub hostname: String,
    /// `uname` system name, e.g. `Linux`.
    pub os_sysname: String,
    /// Kernel release.
    pub os_release: String,
    /// Kernel version string.
    pub os_version: String,
    /// Machine architecture, e.g. `x86_64`.
    pub arch: String,
    /// Real user id.
    pub uid: u32,
    /// That user's login name, when the password database has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

impl HostInfo {
    /// Reads the facts from the running system.
    pub fn current() -> HostInfo {
        // SAFETY: uname fills the zeroed struct; each field is NUL-terminated.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::uname(&mut u) } == 0;
        let field = |f: &[libc::c_char]| {
            if !ok {
                return String::new();
            }
            // SAFETY: uname NUL-terminates every field within its array.
            unsafe { CStr::from_ptr(f.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        };
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        HostInfo {
            hostname: field(&u.nodename),
            os_sysname: field(&u.sysname),
            os_release: field(&u.release),
            os_version: field(&u.version),
            arch: field(&u.machine),
            uid,
            username: username(uid),
        }
    }
}

fn username(uid: u32) -> Option<String> {
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the given sizes; on success
    // pw_name points into `buf`, which outlives its use here.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    Some(
        unsafe { CStr::from_ptr(pwd.pw_name) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// The build of `triage` that wrote the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// Git commit the binary was built from (`-dirty` when the work tree
    /// had uncommitted changes); `None` when built outside a checkout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// Target triple.
    pub target: String,
    /// Cargo profile (`release`, `debug`).
    pub profile: String,
    /// Versions of the decoders, hashers and other crates that shape results.
    pub crates: BTreeMap<String, String>,
    /// Compile-time features that shape results: the image formats this
    /// build decodes (`decode:jpeg`, …; others are recorded as unsupported).
    #[serde(default)]
    pub features: Vec<String>,
    /// CPU features the fast paths use on this machine (results are the
    /// same either way; recorded so a difference in speed can be explained).
    pub cpu_features: Vec<String>,
    /// The kernels the scan dispatches to on this machine, by job
    /// (`md5-lanes:avx512x16`: the MD5 of files read side by side, 16 at
    /// once; `sha256-lanes:none (one stream)` where SHA-256 stays one
    /// stream per file); results are the same on every kernel.
    #[serde(default)]
    pub dispatch: Vec<String>,
}

impl BuildInfo {
    /// The facts of this binary on this machine.
    pub fn current() -> BuildInfo {
        let crates = env!("TRIAGE_CRATE_VERSIONS")
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let commit = env!("TRIAGE_GIT_COMMIT");
        BuildInfo {
            git_commit: (!commit.is_empty()).then(|| commit.to_string()),
            target: env!("TRIAGE_TARGET").to_string(),
            profile: env!("TRIAGE_PROFILE").to_string(),
            crates,
            features: image::ImageFormat::all()
                .filter(|f| f.reading_enabled())
                .filter_map(|f| f.extensions_str().first())
                .map(|ext| format!("decode:{ext}"))
                .chain(crate::perceptual::heif::decoder_name().map(|d| format!("decode:{d}")))
                .collect(),
            cpu_features: cpu_features(),
            dispatch: {
                use crate::hash::lanes::{Kernel as _, Level};
                let named = |name: &str, l: Level| match l {
                    Level::Scalar => format!("{name}-lanes:none (one stream)"),
                    l => format!("{name}-lanes:{}x{}", l.name(), l.lanes()),
                };
                vec![
                    named("md5", crate::hash::md5x::Md5::detect()),
                    named("sha256", crate::hash::sha256x::Sha256::detect()),
                    named("sha1", crate::hash::sha1x::Sha1::detect()),
                ]
            },
        }
    }
}

fn cpu_features() -> Vec<String> {
    #[allow(unused_mut)]
    let mut found: Vec<String> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            found.push("avx2".into());
        }
        if std::arch::is_x86_feature_detected!("sha") {
            found.push("sha".into());
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            found.push("avx512f".into());
        }
    }
    found
}

/// A random RFC 4122 version 4 UUID: the run's identifier.
pub fn new_run_id() -> String {
    let mut b = [0u8; 16];
    // A run id from the clock would do if the OS had no random source.
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = (t ^ ((std::process::id() as u128) << 64)).to_le_bytes();
    }
    format_uuid(b, 4)
}

/// Formats 16 bytes as a UUID of `version` (RFC 4122 variant bits set).
pub fn format_uuid(mut b: [u8; 16], version: u8) -> String {
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::hash::to_hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_build_facts_are_filled() {
        let h = HostInfo::current();
        assert_eq!(h.os_sysname, "Linux");
        assert!(!h.arch.is_empty() && !h.hostname.is_empty());
        let b = BuildInfo::current();
        assert!(!b.target.is_empty());
        assert!(b.crates.contains_key("blake3"), "{:?}", b.crates);
        assert!(
            b.features.contains(&"decode:jpg".to_string()),
            "{:?}",
            b.features
        );
        assert!(
            !b.features.iter().any(|f| f.contains("avif")),
            "{:?}",
            b.features
        );
        let id = new_run_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, new_run_id());
    }
}
