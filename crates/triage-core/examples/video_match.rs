//! Video matching at scale: `QUERIES` scanned videos against `KNOWN` known
//! videos of `FRAMES` frames each (generated frame hashes), through the
//! set's multi-index tables and by comparing every frame pair; the two
//! must give identical results, and the ratio of their times is printed.
//!
//! `cargo run --release -p triage-core --example video_match [KNOWN] [QUERIES] [FRAMES]`
//! (defaults 100000, 1000, 16). Half the queries are known videos with a
//! few to thirty bits flipped in every frame (or in half of their frames),
//! half unrelated frames. Peak RSS is printed from `/proc/self/status`.

use std::sync::Arc;
use std::time::Instant;

use triage_core::hashset::Index;
use triage_core::hashset::import::{ImportOptions, import_files};
use triage_core::matching::{MatchConfig, Matcher};
use triage_core::perceptual::pdq::PdqHash;
use triage_core::perceptual::video::{VideoFrame, VideoHashes, VideoInfo};

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn random_pdq(state: &mut u64) -> PdqHash {
    let mut w = [0u16; 16];
    for x in &mut w {
        *x = next(state) as u16;
    }
    PdqHash(w)
}

fn flipped(h: PdqHash, bits: u32, state: &mut u64) -> PdqHash {
    let mut out = h;
    for _ in 0..bits {
        let r = next(state) as usize;
        out.0[r % 16] ^= 1 << (r / 16 % 16);
    }
    out
}

fn video(frames: Vec<PdqHash>) -> VideoHashes {
    VideoHashes {
        info: VideoInfo {
            container: String::new(),
            codec: String::new(),
            width: 64,
            height: 64,
            frame_rate: (1, 1),
            duration: None,
        },
        every: 1,
        frames: frames
            .into_iter()
            .enumerate()
            .map(|(i, hash)| VideoFrame {
                frame: i as u64,
                quality: 100,
                hash,
                timestamp: i as f64,
            })
            .collect(),
        pruned: 0,
        truncated: false,
    }
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let known_n = args.first().copied().unwrap_or(100_000);
    let queries_n = args.get(1).copied().unwrap_or(1_000);
    let frames_n = args.get(2).copied().unwrap_or(16);
    let dir = std::env::temp_dir().join(format!("triage-video-match-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    let mut state = 0x2545_f491_4f6c_dd1du64;
    let known: Vec<Vec<PdqHash>> = (0..known_n)
        .map(|_| (0..frames_n).map(|_| random_pdq(&mut state)).collect())
        .collect();
    // One HMA-style bank: name → "hash,quality,timestamp" strings.
    let bank = dir.join("bank.json");
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&bank)?);
        write!(w, "{{")?;
        for (i, frames) in known.iter().enumerate() {
            let list: Vec<String> = frames
                .iter()
                .enumerate()
                .map(|(j, h)| format!("\"{h},100,{j}.000\""))
                .collect();
            write!(
                w,
                "{}\"known-{i}\":[{}]",
                if i == 0 { "" } else { "," },
                list.join(",")
            )?;
        }
        write!(w, "}}")?;
    }
    let t = Instant::now();
    let out = dir.join("bank.tset");
    import_files(&[bank], &ImportOptions::new("bank"), &out, &mut |_| {})?;
    let import_s = t.elapsed().as_secs_f64();
    let index = Arc::new(Index::open_verified(&out)?);
    let matcher = Matcher::new(vec![index], MatchConfig::default())?;

    let queries: Vec<VideoHashes> = (0..queries_n)
        .map(|q| {
            let source = &known[(next(&mut state) as usize) % known.len()];
            let frames = match q % 4 {
                0 => source
                    .iter()
                    .map(|h| flipped(*h, 2 + q as u32 % 20, &mut state))
                    .collect(),
                1 => source
                    .iter()
                    .take(frames_n / 2 + 1)
                    .map(|h| flipped(*h, q as u32 % 30, &mut state))
                    .collect(),
                _ => (0..frames_n).map(|_| random_pdq(&mut state)).collect(),
            };
            video(frames)
        })
        .collect();

    let t = Instant::now();
    let fast: Vec<_> = queries.iter().map(|q| matcher.match_video(q)).collect();
    let fast_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let brute: Vec<_> = queries
        .iter()
        .map(|q| matcher.match_video_brute_force(q))
        .collect();
    let brute_s = t.elapsed().as_secs_f64();
    let identical = fast == brute;
    let hits: usize = fast.iter().map(Vec::len).sum();
    println!(
        "known videos {known_n} x {frames_n} frames ({} keys), queries {queries_n}: import {import_s:.2} s",
        known_n * frames_n
    );
    println!(
        "index {fast_s:.3} s ({:.0} queries/s), brute force {brute_s:.2} s: {:.0}x faster, identical: {identical}, matches {hits}",
        queries_n as f64 / fast_s,
        brute_s / fast_s
    );
    println!("peak RSS {} MiB", peak_rss_mib());
    std::fs::remove_dir_all(&dir)?;
    if !identical {
        return Err("the index and brute force disagree".into());
    }
    Ok(())
}
