//! The video decoder as a worker process: Debian's `ffmpeg` and `ffprobe`,
//! one process per video, fed the video's bytes on its standard input,
//! under a wall-clock timeout and an address-space limit.
//!
//! Video decoders are large C programs that meet hostile input: a crash, a
//! hang or an allocation bomb must cost one video, never the scan. So the
//! decoder never runs in the scanner's process. The scanner reads the
//! evidence itself (read-only, `O_NOATIME`, beneath the root, from inside
//! disk images and archives alike) and serves the bytes to the worker over
//! HTTP on the loopback interface, with byte ranges, at a random port and
//! an unguessable path: FFmpeg seeks as in a file (an MP4 whose index
//! follows its media is read from the index first, as the reference reads
//! a file), nothing is copied to disk, and the worker never opens evidence
//! by name. (A pipe cannot seek; FFmpeg's `cache:` protocol over one copied
//! every video to `/tmp` and made probing read all of it.)
//!
//! The limit on memory is set on the worker with `prlimit` right after it
//! starts and before it is given a byte of input, so nothing the input asks
//! for escapes it; the timeout kills the worker's process group (`SIGKILL`).

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::source::Source;

/// FFmpeg's programs, found once per scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoder {
    ffmpeg: PathBuf,
    ffprobe: PathBuf,
    version: String,
}

impl Decoder {
    /// Finds `ffmpeg` and `ffprobe`: in the directory named by
    /// `TRIAGE_FFMPEG_DIR` when it is set, else on `PATH`. The error says
    /// what is missing and how to install it.
    pub fn find() -> Result<Decoder, String> {
        let dirs: Vec<PathBuf> = match std::env::var_os("TRIAGE_FFMPEG_DIR") {
            Some(d) => vec![PathBuf::from(d)],
            None => std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect())
                .unwrap_or_default(),
        };
        let find = |name: &str| {
            dirs.iter()
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    format!(
                        "no '{name}' found on PATH: install FFmpeg (Debian: apt-get install ffmpeg) to hash videos"
                    )
                })
        };
        let ffmpeg = find("ffmpeg")?;
        let ffprobe = find("ffprobe")?;
        let out = Command::new(&ffmpeg)
            .arg("-hide_banner")
            .arg("-version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| format!("'{}' did not run: {e}", ffmpeg.display()))?;
        let first = String::from_utf8_lossy(&out.stdout);
        let first = first.lines().next().unwrap_or("");
        // "ffmpeg version 5.1.9-0+deb12u1 Copyright (c) ..."
        let version = first
            .strip_prefix("ffmpeg version ")
            .and_then(|v| v.split_whitespace().next())
            .ok_or_else(|| {
                format!(
                    "'{}' is not FFmpeg (its -version said {first:?})",
                    ffmpeg.display()
                )
            })?
            .to_string();
        Ok(Decoder {
            ffmpeg,
            ffprobe,
            version,
        })
    }

    /// The version FFmpeg reports, e.g. `5.1.9-0+deb12u1`: recorded in the
    /// log header, since decoder versions can move frame hashes by a bit.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub(crate) fn ffmpeg(&self) -> &Path {
        &self.ffmpeg
    }

    pub(crate) fn ffprobe(&self) -> &Path {
        &self.ffprobe
    }
}

/// Bounds on one worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerLimits {
    /// Wall-clock time before the worker is killed.
    pub timeout: Duration,
    /// Address-space limit (`RLIMIT_AS`) of the worker, in bytes.
    pub max_memory: u64,
}

/// Why a worker gave no result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WorkerError {
    /// Did not finish within the timeout; killed.
    Timeout(Duration),
    /// Ran out of its address space.
    OutOfMemory(String),
    /// Ended by a signal it did not ask for (a crash).
    Crashed(String),
    /// Exited with an error: FFmpeg's own message.
    Failed(String),
    /// Could not be started or limited.
    Spawn(String),
    /// The evidence could not be read to feed it.
    Input(String),
    /// The scan was cancelled; the worker was killed.
    Cancelled,
}

/// Bytes written to the worker per write.
const FEED: usize = 256 * 1024;
/// Longest request head read from the worker.
const MAX_REQUEST: usize = 16 * 1024;

/// Answers the worker's HTTP/1.1 requests on one connection: `GET` of
/// `path`, whole or by one byte range, from `src`. Returns when the
/// connection ends; `Err(Some(why))` when the evidence could not be read.
fn serve(
    mut conn: std::net::TcpStream,
    src: &dyn Source,
    size: u64,
    path: &str,
) -> Result<(), Option<String>> {
    conn.set_nonblocking(false).map_err(|_| None)?;
    let _ = conn.set_nodelay(true);
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; FEED];
    loop {
        // One request head.
        let end = loop {
            if let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if pending.len() > MAX_REQUEST {
                return Err(None);
            }
            let n = conn.read(&mut buf[..4096]).map_err(|_| None)?;
            if n == 0 {
                return Ok(());
            }
            pending.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&pending[..end]).into_owned();
        pending.drain(..end);
        let mut lines = head.split("\r\n");
        let request: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
        let ok_request = request.len() == 3
            && (request[0] == "GET" || request[0] == "HEAD")
            && request[1] == path;
        if !ok_request {
            let _ = conn.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return Ok(());
        }
        let range = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("range"))
            .and_then(|(_, v)| v.trim().strip_prefix("bytes="))
            .and_then(|r| r.split_once('-'))
            .map(|(a, b)| (a.trim().parse::<u64>().ok(), b.trim().parse::<u64>().ok()));
        let (from, to) = match range {
            Some((Some(a), b)) => (a, b.map_or(size, |b| b.saturating_add(1).min(size))),
            _ => (0, size),
        };
        if range.is_some() && from >= size {
            let msg = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{size}\r\nContent-Length: 0\r\n\r\n"
            );
            conn.write_all(msg.as_bytes()).map_err(|_| None)?;
            continue;
        }
        let len = to.saturating_sub(from);
        let status = if range.is_some() {
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{}/{size}\r\n",
                (from + len).saturating_sub(1)
            )
        } else {
            "HTTP/1.1 200 OK\r\n".to_string()
        };
        let reply = format!(
            "{status}Accept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n"
        );
        conn.write_all(reply.as_bytes()).map_err(|_| None)?;
        if request[0] == "HEAD" {
            continue;
        }
        let mut at = from;
        while at < to {
            let want = (to - at).min(FEED as u64) as usize;
            let n = match src.read_at(&mut buf[..want], at) {
                Ok(0) => return Err(Some(format!("the item ended at byte {at} of {size}"))),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Some(format!("reading the item at byte {at}: {e}"))),
            };
            // The worker may stop reading (it seeks elsewhere, or has
            // seen enough): a closed connection ends this answer.
            conn.write_all(&buf[..n]).map_err(|_| None)?;
            at += n as u64;
        }
    }
}
/// The end of the worker's standard error kept for messages.
const STDERR_KEEP: usize = 8 * 1024;

/// The argument [`run`] replaces with the URL the input is served at.
pub(crate) const INPUT: &str = "\u{0}input";

/// Runs `program args` as a worker: serves it `size` bytes of `input` at
/// the URL that replaces [`INPUT`] in `args`, gives its standard output to
/// `consume`, and waits for it under `limits`. `consume`'s own error (its
/// reading failed, or it chose to stop) ends the worker and is returned as
/// `Ok(Err(..))`, beside whatever the worker's ending says.
pub(crate) fn run<T, E>(
    program: &Path,
    args: &[OsString],
    input: &dyn Source,
    size: u64,
    limits: WorkerLimits,
    stop: &(dyn Fn() -> bool + Sync),
    consume: impl FnOnce(&mut ChildStdout) -> Result<T, E>,
) -> Result<Result<T, E>, WorkerError> {
    use std::os::unix::process::CommandExt;
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| {
            WorkerError::Spawn(format!(
                "cannot serve the video to the decoder on 127.0.0.1: {e}"
            ))
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| WorkerError::Spawn(format!("cannot serve the video to the decoder: {e}")))?
        .port();
    let mut token = [0u8; 16];
    getrandom::fill(&mut token)
        .map_err(|e| WorkerError::Spawn(format!("no randomness for the decoder's URL: {e}")))?;
    let path = format!("/{}", crate::hash::to_hex(&token));
    let url = format!("http://127.0.0.1:{port}{path}");
    let args: Vec<OsString> = args
        .iter()
        .map(|a| {
            if a == INPUT {
                OsString::from(&url)
            } else {
                a.clone()
            }
        })
        .collect();
    // Its own process group, so that a kill reaches anything it started
    // (which would otherwise hold its pipes open after it died).
    let mut child = Command::new(program)
        .args(&args)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| WorkerError::Spawn(format!("'{}' did not start: {e}", program.display())))?;
    let limit = rustix::process::Rlimit {
        current: Some(limits.max_memory),
        maximum: Some(limits.max_memory),
    };
    let pid = rustix::process::Pid::from_child(&child);
    if let Err(e) = rustix::process::prlimit(Some(pid), rustix::process::Resource::As, limit) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(WorkerError::Spawn(format!(
            "could not limit the decoder's memory (prlimit): {e}"
        )));
    }
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(WorkerError::Spawn(
            "the decoder's pipes were not opened".into(),
        ));
    };
    // A pipe of 1 MiB (Linux's limit without privilege) instead of 64 KiB:
    // a 720p RGB frame is 2.7 MB, and each time the pipe fills both sides
    // wait for each other. Only a hint: where it is refused, the pipe
    // keeps its size.
    let _ = rustix::pipe::fcntl_setpipe_size(&stdout, 1 << 20);
    let child = Mutex::new(child);
    let timed_out = AtomicBool::new(false);
    let stopped = AtomicBool::new(false);
    let served = AtomicBool::new(false);
    let input_error: Mutex<Option<String>> = Mutex::new(None);
    let kill = |child: &Mutex<Child>| {
        if let Ok(mut c) = child.lock() {
            // The group first (the worker's id is its group's), then the
            // worker itself should the group be gone already.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            let _ = c.kill();
        }
    };
    std::thread::scope(|s| {
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let (timed_out, stopped, child) = (&timed_out, &stopped, &child);
        let watchdog = s.spawn(move || {
            let deadline = Instant::now() + limits.timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    timed_out.store(true, Ordering::SeqCst);
                    kill(child);
                    return;
                }
                if stop() {
                    stopped.store(true, Ordering::SeqCst);
                    kill(child);
                    return;
                }
                match done_rx.recv_timeout(left.min(Duration::from_millis(50))) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        });
        // Served only now that the limit is set: the worker's first
        // request waited in the listen queue.
        let (served_ref, input_error_ref, path_ref) = (&served, &input_error, &path);
        let server = s.spawn(move || {
            std::thread::scope(|conns| {
                while !served_ref.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            conns.spawn(move || {
                                if let Err(Some(e)) = serve(conn, input, size, path_ref)
                                    && let Ok(mut slot) = input_error_ref.lock()
                                {
                                    slot.get_or_insert(e);
                                }
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2))
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
        });
        let errors = s.spawn(move || {
            let mut tail = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match stderr.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        tail.extend_from_slice(&buf[..n]);
                        if tail.len() > 2 * STDERR_KEEP {
                            tail.drain(..tail.len() - STDERR_KEEP);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            String::from_utf8_lossy(&tail).into_owned()
        });
        let consumed = consume(&mut stdout);
        if consumed.is_err() {
            kill(child);
        }
        drop(stdout);
        // Polled, not `wait`ed, so that the watchdog can still kill a
        // worker that hangs after closing its output.
        let status = loop {
            let polled = child.lock().map(|mut c| c.try_wait());
            match polled {
                Ok(Ok(Some(status))) => break Ok(status),
                Ok(Ok(None)) => std::thread::sleep(Duration::from_millis(2)),
                Ok(Err(e)) => break Err(e),
                Err(_) => break Err(io::Error::other("worker lock poisoned")),
            }
        };
        let _ = done_tx.send(());
        let _ = watchdog.join();
        served.store(true, Ordering::SeqCst);
        let _ = server.join();
        let input_error = input_error.lock().ok().and_then(|mut e| e.take());
        // The URL names a random port and path: records of the same
        // evidence must not differ by it.
        let stderr = errors.join().unwrap_or_default().replace(&url, "input");
        let status =
            status.map_err(|e| WorkerError::Spawn(format!("waiting for the decoder: {e}")))?;
        if stopped.load(Ordering::SeqCst) {
            return Err(WorkerError::Cancelled);
        }
        if timed_out.load(Ordering::SeqCst) {
            return Err(WorkerError::Timeout(limits.timeout));
        }
        if let Some(e) = input_error {
            return Err(WorkerError::Input(e));
        }
        if consumed.is_err() {
            return Ok(consumed);
        }
        ending(status, &stderr, limits)?;
        Ok(consumed)
    })
}

/// What the worker's exit status and last words say.
fn ending(
    status: std::process::ExitStatus,
    stderr: &str,
    limits: WorkerLimits,
) -> Result<(), WorkerError> {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        return Ok(());
    }
    let said = last_words(stderr);
    // "failed to map segment": the limit was too small for the dynamic
    // loader to map FFmpeg's own libraries.
    let oom = stderr.contains("failed to map segment")
        || stderr.contains("Cannot allocate memory")
        || stderr.contains("out of memory")
        || stderr.contains("std::bad_alloc");
    if oom {
        return Err(WorkerError::OutOfMemory(format!(
            "the decoder ran out of its {} MiB: {said}",
            limits.max_memory >> 20
        )));
    }
    if let Some(sig) = status.signal() {
        return Err(WorkerError::Crashed(format!(
            "the decoder was ended by signal {sig}{}",
            if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            }
        )));
    }
    Err(WorkerError::Failed(if said.is_empty() {
        format!("the decoder exited with {status} and said nothing")
    } else {
        said
    }))
}

/// FFmpeg's last few meaningful lines, without the noise of the `cache:`
/// protocol (which cannot ask a pipe for its size, and says so) and
/// without the addresses FFmpeg prints (`[h264 @ 0x55d…]`), which differ
/// between runs: records of the same evidence must not.
fn last_words(stderr: &str) -> String {
    let lines: Vec<String> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| {
            !l.contains("Inner protocol failed to seekback")
                && !l.starts_with("Last message repeated")
        })
        .map(without_addresses)
        .collect();
    let keep = &lines[lines.len().saturating_sub(3)..];
    let mut s = keep.join("; ");
    if s.len() > 600 {
        let mut cut = 600;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// `line` without ` @ 0x…` pointers.
fn without_addresses(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find(" @ 0x") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 5..];
        let hex = tail
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(tail.len());
        rest = &tail[hex..];
    }
    out.push_str(rest);
    out
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` at a clean end before the
/// first byte, an error for an end part-way.
pub(crate) fn read_frame(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) if done == 0 => return Ok(false),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the decoder's output ended {done} bytes into a frame"),
                ));
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_words_drop_the_cache_protocols_noise() {
        let s = "[cache @ 0x1] Inner protocol failed to seekback end : -38\n    Last message repeated 4 times\n\
                 [h264 @ 0x2] error while decoding MB 3 4\npipe:0: Invalid data found when processing input\n";
        assert_eq!(
            last_words(s),
            "[h264] error while decoding MB 3 4; pipe:0: Invalid data found when processing input"
        );
        assert_eq!(
            without_addresses("[mov,mp4 @ 0x559bb4234d80] moov atom not found"),
            "[mov,mp4] moov atom not found"
        );
    }

    #[test]
    fn a_frame_cut_short_is_an_error_and_a_clean_end_is_not() {
        let mut buf = [0u8; 4];
        assert!(!read_frame(&mut &b""[..], &mut buf).unwrap());
        assert!(read_frame(&mut &b"abcd"[..], &mut buf).unwrap());
        assert!(read_frame(&mut &b"ab"[..], &mut buf).is_err());
    }
}
