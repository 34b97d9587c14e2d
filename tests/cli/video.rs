//! Videos: vPDQ frame hashes in the log, matching against known videos
//! (the reference's own hash files, HMA's JSON, a scan of known material),
//! and decoders that are missing, hang, crash or meet damaged input.
//!
//! The matching oracle is the reference's: Meta's sample videos and the
//! frame hashes its C++ hasher made of them (`../shared/vpdq-reference`),
//! where its README reports chair-19 against the large-logo variant at
//! about 10% each way. Further videos are made here with Debian's FFmpeg
//! from its synthetic test source (re-encoded, resized, cropped, at another
//! frame rate, trimmed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::skip::skip;
use crate::testenv::*;

fn have_ffmpeg() -> bool {
    if have("ffmpeg") && have("ffprobe") {
        return true;
    }
    skip("FFmpeg is not installed (Debian: apt-get install ffmpeg)");
    false
}

fn shared_videos() -> Option<PathBuf> {
    let p = repo().join("../shared/vpdq-reference");
    if p.join("chair-19-sd-bar.mp4").exists() {
        Some(p)
    } else {
        skip("../shared/vpdq-reference is absent (it ships beside the repository, not in it)");
        None
    }
}

/// `triage hashset import --name NAME -o OUT FILES...`, which must succeed.
fn import(name: &str, out: &Path, files: &[PathBuf], extra: &[&str]) {
    let mut cmd = triage();
    cmd.args(["hashset", "import", "-q", "--name", name, "-o"])
        .arg(out)
        .args(extra)
        .args(files);
    let o = run(cmd, Duration::from_secs(60));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// Makes `out` with `ffmpeg ARGS`, failing the test if FFmpeg fails.
fn ffmpeg(args: &[&str], out: &Path) {
    let o = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The known videos an entry matched: name → (known %, query %).
fn video_matches(e: &serde_json::Value) -> Vec<(String, f64, f64)> {
    e["matches"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["alg"] == "vpdq/1")
        .map(|m| {
            let name = m["entry"]["name"]
                .as_str()
                .or(m["entry"]["path"].as_str())
                .unwrap_or("")
                .to_string();
            let v = &m["video"];
            (
                name,
                v["known_percent"].as_f64().unwrap(),
                v["query_percent"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_sample_videos_match_their_reference_lists_and_not_unrelated_ones() {
    let (Some(dir), true) = (shared_videos(), have_ffmpeg()) else {
        return;
    };
    let ev = Evidence::new();
    let names = [
        "chair-19-sd-bar",
        "chair-22-sd-grey-bar",
        "chair-22-with-large-logo-bar",
        "doorknob-hd-no-bar",
        "pattern-hd-no-bar",
        "pattern-sd-grey-bar",
    ];
    for n in names {
        std::fs::copy(
            dir.join(format!("{n}.mp4")),
            ev.path(format!("{n}.mp4").as_bytes()),
        )
        .unwrap();
    }
    let lists: Vec<PathBuf> = names.iter().map(|n| dir.join(format!("{n}.txt"))).collect();
    let set = ev.out("ref.tset");
    import("vpdq-ref", &set, &lists, &[]);
    // The reference lists hold every frame: hash every frame too.
    let o = scan(
        ev.root(),
        &[
            "--hashset",
            set.to_str().unwrap(),
            "--video-seconds-per-hash",
            "0",
        ],
    );
    assert_eq!(code(&o), 1, "finds exit 1: {}", stderr(&o));
    let es = entries(&o.stdout);
    for n in names {
        let e = entry(&es, &format!("{n}.mp4"));
        assert_eq!(e["video"]["tag"], "vpdq/1");
        assert_eq!(e["video"]["every"], 1);
        let m = video_matches(e);
        let own = m
            .iter()
            .find(|(k, ..)| *k == format!("{n}.txt"))
            .unwrap_or_else(|| panic!("{n} does not match its own list: {m:?}"));
        assert_eq!((own.1, own.2), (100.0, 100.0), "{n}");
        // Different scenes never match.
        for (k, ..) in &m {
            let scene = |s: &str| s.split('-').next().unwrap().to_string();
            assert_eq!(scene(k), scene(n), "{n} matched {k}: {m:?}");
        }
    }
    // The grey copy of the chair scene matches chair-19 both ways under
    // the default thresholds; the large logo hides too much of it (the
    // reference's README: about 10% each way).
    let grey = video_matches(entry(&es, "chair-22-sd-grey-bar.mp4"));
    assert!(
        grey.iter()
            .any(|(k, p, _)| k == "chair-19-sd-bar.txt" && *p >= 80.0),
        "{grey:?}"
    );
    let logo = video_matches(entry(&es, "chair-22-with-large-logo-bar.mp4"));
    assert!(
        !logo.iter().any(|(k, ..)| k == "chair-19-sd-bar.txt"),
        "{logo:?}"
    );
    let header = &records(&o.stdout)[0];
    assert!(
        header["video"]["decoder"]
            .as_str()
            .unwrap()
            .starts_with("ffmpeg "),
        "{header}"
    );
    assert_eq!(header["matching"]["video"]["frame_distance"], 31);
}

#[test]
fn re_encoded_resized_and_retimed_copies_match_a_scan_of_the_original() {
    if !have_ffmpeg() {
        return;
    }
    let known = Evidence::new();
    // FFmpeg's slowly zooming Mandelbrot set: frames a second apart differ,
    // neighbouring frames barely (as in real footage), so a copy at
    // another frame rate samples nearly the same pictures.
    let original = known.path(b"original.mkv");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-t",
            "12",
            "-i",
            "mandelbrot=size=320x240:rate=30",
            "-c:v",
            "libx264",
            "-crf",
            "18",
        ],
        &original,
    );
    let log = known.out("known.jsonl");
    let o = scan(known.root(), &["-q", "-o", log.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let set = known.out("known.tset");
    import("known-videos", &set, &[log], &[]);

    let ev = Evidence::new();
    let p = |n: &str| ev.path(n.as_bytes());
    ffmpeg(
        &[
            "-i",
            original.to_str().unwrap(),
            "-c:v",
            "libx264",
            "-crf",
            "35",
        ],
        &p("recompressed.mp4"),
    );
    ffmpeg(
        &["-i", original.to_str().unwrap(), "-vf", "scale=640:480"],
        &p("bigger.mp4"),
    );
    ffmpeg(
        &[
            "-i",
            original.to_str().unwrap(),
            "-r",
            "24",
            "-c:v",
            "libx264",
        ],
        &p("24fps.avi"),
    );
    ffmpeg(
        &[
            "-i",
            original.to_str().unwrap(),
            "-c:v",
            "mpeg4",
            "-q:v",
            "5",
        ],
        &p("mpeg4.mov"),
    );
    ffmpeg(
        &["-i", original.to_str().unwrap(), "-ss", "4", "-t", "5"],
        &p("clip.webm"),
    );
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30:duration=6",
        ],
        &p("unrelated.mp4"),
    );
    let o = scan(ev.root(), &["--hashset", set.to_str().unwrap()]);
    let es = entries(&o.stdout);
    for whole in ["recompressed.mp4", "bigger.mp4", "24fps.avi", "mpeg4.mov"] {
        let m = video_matches(entry(&es, whole));
        assert!(
            m.iter().any(|(k, p, _)| k == "original.mkv" && *p >= 80.0),
            "{whole}: {m:?}"
        );
    }
    // A five-second clip holds under half the known video's frames: not a
    // match by the default rule, but all its own frames are the original's.
    let clip = entry(&es, "clip.webm");
    assert!(video_matches(clip).is_empty(), "{clip}");
    assert!(video_matches(entry(&es, "unrelated.mp4")).is_empty());
    let o = scan(
        ev.root(),
        &[
            "--hashset",
            set.to_str().unwrap(),
            "--video-known-percent",
            "0",
            "--video-query-percent",
            "80",
        ],
    );
    let es = entries(&o.stdout);
    let m = video_matches(entry(&es, "clip.webm"));
    assert!(
        m.iter().any(|(k, _, q)| k == "original.mkv" && *q >= 80.0),
        "{m:?}"
    );
    assert!(video_matches(entry(&es, "unrelated.mp4")).is_empty());
    let v = &entry(&es, "clip.webm")["video"];
    assert_eq!(v["codec"], "vp9");
    assert_eq!(v["frame_rate"], "30/1");
    assert_eq!(v["every"], 30);
}

#[test]
fn hma_json_lists_import_and_match() {
    let (Some(dir), true) = (shared_videos(), have_ffmpeg()) else {
        return;
    };
    let ev = Evidence::new();
    std::fs::copy(dir.join("doorknob-hd-no-bar.mp4"), ev.path(b"door.mp4")).unwrap();
    // HMA's compact form: "hash,quality,timestamp" strings, one video per
    // name, the value itself JSON text (as HMA keeps signal values).
    let frames: Vec<String> = std::fs::read_to_string(dir.join("doorknob-hd-no-bar.txt"))
        .unwrap()
        .lines()
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            format!("{},{},{}", c[2], c[1], c[3])
        })
        .collect();
    let inner = serde_json::to_string(&frames).unwrap();
    let bank = serde_json::json!({ "bank-item-17": inner });
    let file = ev.out("bank.json");
    std::fs::write(&file, bank.to_string()).unwrap();
    let set = ev.out("bank.tset");
    import("hma", &set, &[file], &[]);
    let o = scan(
        ev.root(),
        &[
            "--hashset",
            set.to_str().unwrap(),
            "--video-seconds-per-hash",
            "0",
        ],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let m = video_matches(entry(&entries(&o.stdout), "door.mp4"));
    assert_eq!(m, vec![("bank-item-17".to_string(), 100.0, 100.0)]);
}

#[test]
fn a_still_of_a_known_picture_inside_a_video_is_reported_by_its_frame() {
    if !have_ffmpeg() {
        return;
    }
    let ev = Evidence::new();
    let picture = ev.out("known.png");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240",
            "-frames:v",
            "1",
        ],
        &picture,
    );
    let list = ev.out("known.pdq");
    let o = {
        let mut cmd = triage();
        cmd.arg("hash-image").arg(&picture);
        run(cmd, Duration::from_secs(30))
    };
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let pdq = stdout(&o)
        .split_whitespace()
        .find(|w| w.len() == 64)
        .unwrap()
        .to_string();
    std::fs::write(&list, format!("{pdq}\n")).unwrap();
    let set = ev.out("pictures.tset");
    import("pictures", &set, &[list], &["--algorithm", "pdq"]);
    // Three seconds of something else, then the picture held for two.
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-t",
            "3",
            "-i",
            "mandelbrot=size=320x240:rate=25",
            "-loop",
            "1",
            "-t",
            "2",
            "-r",
            "25",
            "-i",
            picture.to_str().unwrap(),
            "-filter_complex",
            "[0:v][1:v]concat=n=2:v=1[v]",
            "-map",
            "[v]",
        ],
        &ev.path(b"montage.mp4"),
    );
    let o = scan(ev.root(), &["--hashset", set.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let es = entries(&o.stdout);
    let e = entry(&es, "montage.mp4");
    let hit = e["matches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["alg"] == "pdq/1")
        .unwrap_or_else(|| panic!("{e}"));
    let frame = hit["frame"].as_u64().unwrap();
    assert!(
        (75..125).contains(&frame),
        "matched at frame {frame}: {hit}"
    );
    assert!(hit["distance"].as_u64().unwrap() <= 31);
}

/// A directory of stand-in FFmpeg programs: `ffmpeg -version` answers,
/// everything else runs `body`.
fn fake_ffmpeg(ev: &Evidence, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = ev.out(name);
    std::fs::create_dir_all(&dir).unwrap();
    for prog in ["ffmpeg", "ffprobe"] {
        let script = format!(
            "#!/bin/sh\nif [ \"$2\" = -version ]; then echo 'ffmpeg version 0.0-fake'; exit 0; fi\n{body}\n"
        );
        let p = dir.join(prog);
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

#[test]
fn a_decoder_that_hangs_or_crashes_fails_that_video_and_the_scan_goes_on() {
    let ev = Evidence::new();
    ev.file("a.mkv", b"\x1a\x45\xdf\xa3 not really matroska".repeat(100));
    ev.file("b.txt", "hello");
    for (name, body, kind, exit) in [
        ("hang", "sleep 30", "timeout", 0),
        ("crash", "kill -SEGV $$", "decoder_crashed", 0),
        (
            "oom",
            "echo 'Cannot allocate memory' >&2; exit 1",
            "out_of_memory",
            0,
        ),
    ] {
        let dir = fake_ffmpeg(&ev, name, body);
        let mut cmd = triage();
        cmd.arg("scan")
            .arg(ev.root())
            .args(["--no-case", "--video-timeout", "1"])
            .env("TRIAGE_FFMPEG_DIR", &dir);
        let t0 = std::time::Instant::now();
        let o = run(cmd, Duration::from_secs(60));
        assert_eq!(code(&o), exit, "{name}: {}", stderr(&o));
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{name} took {:?}",
            t0.elapsed()
        );
        let es = entries(&o.stdout);
        let a = entry(&es, "a.mkv");
        assert_eq!(
            a["record"], "file",
            "{name}: the digests are still recorded"
        );
        assert_eq!(a["video_error"]["kind"], kind, "{name}: {a}");
        assert_eq!(entry(&es, "b.txt")["record"], "file");
        let summary = records(&o.stdout).pop().unwrap();
        assert_eq!(summary["video_errors"][kind], 1, "{summary}");
    }
}

#[test]
fn without_ffmpeg_videos_are_recorded_as_not_decoded() {
    let ev = Evidence::new();
    ev.file("clip.avi", b"RIFF\0\0\0\0AVI LIST".repeat(10));
    let empty = ev.out("no-ffmpeg");
    std::fs::create_dir_all(&empty).unwrap();
    let mut cmd = triage();
    cmd.arg("scan")
        .arg(ev.root())
        .arg("--no-case")
        .env("TRIAGE_FFMPEG_DIR", &empty);
    let o = run(cmd, Duration::from_secs(60));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let header = &records(&o.stdout)[0];
    assert!(
        header["video"]["no_decoder"]
            .as_str()
            .unwrap()
            .contains("apt-get install ffmpeg"),
        "{header}"
    );
    let es = entries(&o.stdout);
    let e = entry(&es, "clip.avi");
    assert_eq!(e["video_error"]["kind"], "no_decoder", "{e}");
    assert!(
        stderr(&o).contains("0 videos with frame hashes, 1 videos without (1 no_decoder)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn damaged_videos_and_videos_inside_archives() {
    if !have_ffmpeg() {
        return;
    }
    let ev = Evidence::new();
    let good = ev.out("good.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=10:duration=3",
        ],
        &good,
    );
    let bytes = std::fs::read(&good).unwrap();
    ev.file("cut.mp4", &bytes[..bytes.len() / 3]);
    ev.file("audio.m4a", b"");
    ffmpeg(
        &["-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac"],
        &ev.path(b"audio.m4a"),
    );
    let zip = Command::new("7z")
        .args(["a", "-tzip", "-bso0"])
        .arg(ev.path(b"videos.zip"))
        .arg(&good)
        .status();
    let zipped = zip.is_ok_and(|s| s.success());
    if !zipped {
        skip("7z is not installed (Debian: apt-get install p7zip-full)");
    }
    let o = scan(ev.root(), &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let es = entries(&o.stdout);
    let cut = entry(&es, "cut.mp4");
    assert_eq!(cut["video_error"]["kind"], "corrupt", "{cut}");
    assert!(
        !cut["video_error"]["message"]
            .as_str()
            .unwrap()
            .contains("0x"),
        "no addresses: {cut}"
    );
    assert_eq!(
        entry(&es, "audio.m4a")["video_error"]["kind"],
        "no_video_stream"
    );
    if zipped {
        let member = es
            .iter()
            .find(|e| e["within"].is_object() && e["path"].as_str().unwrap().ends_with("good.mp4"))
            .unwrap_or_else(|| panic!("no member in {es:#?}"));
        assert_eq!(member["video"]["frames_hashed"], 3, "{member}");
        assert_eq!(member["video"]["codec"], "h264");
    }
}

#[test]
fn the_frame_limit_stops_a_video_where_it_says_and_is_recorded() {
    if !have_ffmpeg() {
        return;
    }
    let ev = Evidence::new();
    // 20 s at 10 frames a second, a keyframe every 2 s: long enough to be
    // decoded in pieces, so the limit must cut the joined frames where one
    // decode would.
    let clip = ev.root().join("clip.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=10:duration=20",
            "-c:v",
            "libx264",
            "-g",
            "20",
        ],
        &clip,
    );
    let scan = |extra: &[&str]| {
        let mut cmd = triage();
        cmd.arg("scan")
            .arg(ev.root())
            .args(["--no-case", "--video-seconds-per-hash", "0"])
            .args(extra);
        run(cmd, Duration::from_secs(120))
    };
    let whole = scan(&[]);
    assert_eq!(code(&whole), 0, "{}", stderr(&whole));
    let all = entry(&entries(&whole.stdout), "clip.mp4")["video"].clone();
    assert_eq!(all["frames"].as_array().unwrap().len(), 200, "{all}");
    assert_eq!(all["truncated"], false);
    let cut = scan(&["--video-max-frames", "150"]);
    assert_eq!(code(&cut), 0, "{}", stderr(&cut));
    assert_eq!(records(&cut.stdout)[0]["video"]["max_frames"], 150);
    let some = entry(&entries(&cut.stdout), "clip.mp4")["video"].clone();
    assert_eq!(some["truncated"], true, "{some}");
    assert_eq!(
        some["frames"],
        serde_json::json!(all["frames"].as_array().unwrap()[..150])
    );
    let zero = scan(&["--video-max-frames", "0"]);
    assert_eq!(code(&zero), 2, "{}", stderr(&zero));
    assert!(
        stderr(&zero).contains("--video-max-frames must be at least 1"),
        "{}",
        stderr(&zero)
    );
}
