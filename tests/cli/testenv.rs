//! A throw-away evidence tree per test, and a way to run the real binary.

pub use crate::skip::skip;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// An evidence tree under the target's temp dir, removed on drop.
pub struct Evidence {
    base: PathBuf,
    root: PathBuf,
}

impl Evidence {
    /// An empty tree. `base/` holds the tree (`base/evidence`) and outputs.
    pub fn new() -> Evidence {
        Evidence::new_in(Path::new(env!("CARGO_TARGET_TMPDIR")))
    }

    /// An empty tree under `dir` (e.g. /tmp, when another user must reach it).
    pub fn new_in(dir: &Path) -> Evidence {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let base = dir.join(format!("triage-ev-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let root = base.join("evidence");
        fs::create_dir_all(&root).unwrap();
        Evidence { base, root }
    }

    /// The evidence root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path outside the evidence, for outputs.
    pub fn out(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    /// The absolute path of `rel` (raw bytes allowed).
    pub fn path(&self, rel: &[u8]) -> PathBuf {
        self.root.join(OsStr::from_bytes(rel))
    }

    /// A file with `content`; parents are created.
    pub fn file(&self, rel: impl AsRef<[u8]>, content: impl AsRef<[u8]>) -> &Self {
        let p = self.path(rel.as_ref());
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        self
    }

    /// A directory.
    pub fn dir(&self, rel: &str) -> &Self {
        fs::create_dir_all(self.path(rel.as_bytes())).unwrap();
        self
    }

    /// A symlink at `rel` pointing to `target` (not created if absent).
    pub fn symlink(&self, rel: &str, target: &str) -> &Self {
        std::os::unix::fs::symlink(target, self.path(rel.as_bytes())).unwrap();
        self
    }

    /// A named pipe.
    pub fn fifo(&self, rel: &str) -> &Self {
        let p = std::ffi::CString::new(self.path(rel.as_bytes()).as_os_str().as_bytes()).unwrap();
        // SAFETY: valid C string; mkfifo has no other preconditions.
        assert_eq!(unsafe { libc::mkfifo(p.as_ptr(), 0o644) }, 0, "mkfifo");
        self
    }

    /// A sparse file of `size` bytes with `data` written at the given offsets.
    pub fn sparse(&self, rel: &str, size: u64, data: &[(u64, &[u8])]) -> &Self {
        let f = fs::File::create(self.path(rel.as_bytes())).unwrap();
        f.set_len(size).unwrap();
        for (off, bytes) in data {
            f.write_all_at(bytes, *off).unwrap();
        }
        self
    }
}

impl Drop for Evidence {
    fn drop(&mut self) {
        // Make unreadable test dirs removable again.
        let _ = Command::new("chmod")
            .arg("-R")
            .arg("u+rwx")
            .arg(&self.base)
            .status();
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// The `triage` binary under test.
pub fn triage() -> Command {
    Command::new(env!("CARGO_BIN_EXE_triage"))
}

/// Runs `cmd` with a deadline; a hang (e.g. blocking on a FIFO) fails the
/// test instead of stalling the suite.
pub fn run(cmd: Command, limit: Duration) -> Output {
    run_sampled(cmd, limit, false).0
}

/// Like [`run`], and also the peak RSS of that one child: the last
/// `VmHWM` (a high-water mark, so the last reading is the peak up to then)
/// read from /proc every 5 ms while it runs. Not `wait4`/`getrusage`:
/// Linux carries the parent's high-water mark into a child across
/// fork/vfork and exec, and this test binary can be large.
pub fn run_measured(cmd: Command, limit: Duration) -> (Output, u64) {
    let (o, peak) = run_sampled(cmd, limit, true);
    assert!(
        peak > 0,
        "no VmHWM reading of the child: it ended too soon to measure"
    );
    (o, peak)
}

fn run_sampled(mut cmd: Command, limit: Duration, sample: bool) -> (Output, u64) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64};
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = cmd.spawn().expect("spawn triage");
    let pid = child.id();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).map(|_| v)
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).map(|_| v)
    });
    let (done, hwm) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let sampler = sample.then(|| {
        let (done, hwm) = (done.clone(), hwm.clone());
        std::thread::spawn(move || {
            let path = format!("/proc/{pid}/status");
            while !done.load(Ordering::SeqCst) {
                // Only readings after exec count: before it, the child
                // shares or copies this test binary's memory.
                let kb = std::fs::read_to_string(&path).ok().and_then(|s| {
                    let exe = s.lines().next().is_some_and(|l| l.ends_with("triage"));
                    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
                    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                    exe.then_some(kb)
                });
                if let Some(kb) = kb {
                    hwm.store(kb * 1024, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("command did not finish within {limit:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    done.store(true, Ordering::SeqCst);
    if let Some(s) = sampler {
        s.join().unwrap();
    }
    let output = Output {
        status,
        stdout: t_out.join().unwrap().unwrap(),
        stderr: t_err.join().unwrap().unwrap(),
    };
    (output, hwm.load(Ordering::SeqCst))
}

/// SHA-256 of `data`, lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A copy of `fixtures/evidence` (the synthetic sample tree) into `ev`.
pub fn copy_fixture_evidence(ev: &Evidence) {
    let o = Command::new("cp")
        .arg("-a")
        .arg(repo().join("fixtures/evidence/."))
        .arg(ev.root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
}

/// `triage scan ROOT ARGS...` with a two-minute deadline, and `--no-case`
/// unless the arguments give a case.
pub fn scan(root: &Path, args: &[&str]) -> Output {
    let mut cmd = triage();
    cmd.arg("scan").arg(root).args(args);
    if !args.contains(&"--case") {
        cmd.arg("--no-case");
    }
    run(cmd, Duration::from_secs(120))
}

/// A scan whose log goes to a file beside the evidence and whose `--csv`
/// or `--hashdeep` view (`format`) comes back on stdout.
pub fn scan_as(ev: &Evidence, format: &str, args: &[&str]) -> Output {
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let log = ev.out(&format!("view-{n}.log"));
    let flag = format!("--{format}");
    let mut all = vec!["-o", log.to_str().unwrap(), &flag, "-"];
    all.extend_from_slice(args);
    scan(ev.root(), &all)
}

/// A log line without its chain keys (`seq`, `prev`): what two scans of
/// the same tree must agree on, since each chain starts from its own header.
pub fn unchained(line: &str) -> String {
    let rest = line.strip_prefix(r#"{"seq":"#).expect("a chained line");
    let at = rest.find(r#","prev":""#).expect("prev") + r#","prev":""#.len() + 66;
    format!("{{{}", &rest[at..])
}

/// The JSON objects of JSON Lines output.
pub fn records(stdout: &[u8]) -> Vec<serde_json::Value> {
    stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("valid JSON line"))
        .collect()
}

/// The entry records (file, skipped, failed), in log order.
pub fn entries(stdout: &[u8]) -> Vec<serde_json::Value> {
    records(stdout)
        .into_iter()
        .filter(|r| matches!(r["record"].as_str(), Some("file" | "skipped" | "failed")))
        .collect()
}

/// The entry whose `path` is `path`.
pub fn entry<'a>(entries: &'a [serde_json::Value], path: &str) -> &'a serde_json::Value {
    entries
        .iter()
        .find(|e| e["path"] == path)
        .unwrap_or_else(|| panic!("no record for '{path}' in {entries:#?}"))
}

/// A run's standard error, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A run's standard output, as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The exit code, asserting the process was not killed by a signal.
pub fn code(o: &Output) -> i32 {
    o.status
        .code()
        .unwrap_or_else(|| panic!("killed by signal: {o:?}"))
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The repository's root (for fixtures/).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub struct Unmount(std::path::PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// `mount ARGS... TARGET`, unmounted when the guard drops; `None`, with a
/// printed reason, where mounting is not permitted (not root).
pub fn mount(args: &[&std::ffi::OsStr], target: std::path::PathBuf, what: &str) -> Option<Unmount> {
    let ok = Command::new("mount")
        .args(args)
        .arg(&target)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip(&format!("{what} is not permitted here (needs root)"));
    }
    ok.then_some(Unmount(target))
}
