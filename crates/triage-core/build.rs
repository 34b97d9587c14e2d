//! Build facts for the audit log's header: the git commit the binary was
//! built from, the target, the profile, and the versions of the crates that
//! produce evidence-relevant results (decoders, hashers, SQLite, signing).
//! All are recorded so another examiner can rebuild the same tool.

use std::path::Path;
use std::process::Command;

/// Crates whose versions an examiner may need to name in court.
const RECORDED: &[&str] = &[
    "blake3",
    "ed25519-dalek",
    "gif",
    "image",
    "image-webp",
    "image_hasher",
    "jpeg-decoder",
    "libsqlite3-sys",
    "md-5",
    "png",
    "quick-xml",
    "rusqlite",
    "sha1",
    "sha2",
    "tiff",
    "zune-jpeg",
];

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let workspace = Path::new(&manifest).join("../..");
    let git = workspace.join(".git");
    for f in ["HEAD", "index"] {
        println!("cargo:rerun-if-changed={}", git.join(f).display());
    }
    let lock = workspace.join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());

    let commit = git_output(&workspace, &["rev-parse", "HEAD"]).map(|c| {
        let dirty = git_output(
            &workspace,
            &["status", "--porcelain", "--untracked-files=no"],
        )
        .is_some_and(|s| !s.is_empty());
        if dirty { format!("{c}-dirty") } else { c }
    });
    println!(
        "cargo:rustc-env=TRIAGE_GIT_COMMIT={}",
        commit.unwrap_or_default()
    );
    println!(
        "cargo:rustc-env=TRIAGE_TARGET={}",
        std::env::var("TARGET").unwrap_or_default()
    );
    println!(
        "cargo:rustc-env=TRIAGE_PROFILE={}",
        std::env::var("PROFILE").unwrap_or_default()
    );
    let versions = std::fs::read_to_string(&lock)
        .map(|text| crate_versions(&text))
        .unwrap_or_default();
    println!("cargo:rustc-env=TRIAGE_CRATE_VERSIONS={versions}");
}

fn git_output(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `name=version;…` for the recorded crates, from Cargo.lock's
/// `name = "…"` / `version = "…"` pairs.
fn crate_versions(lock: &str) -> String {
    let mut found = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        let value = |l: &str| l.split('"').nth(1).map(str::to_string);
        if line.starts_with("name = ") {
            name = value(line);
        } else if line.starts_with("version = ")
            && let Some(n) = name.take()
            && RECORDED.contains(&n.as_str())
            && let Some(v) = value(line)
        {
            found.push(format!("{n}={v}"));
        }
    }
    found.sort();
    found.join(";")
}
