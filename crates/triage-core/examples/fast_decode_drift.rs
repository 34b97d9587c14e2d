//! How far `fast_decode` (DCT-domain scaled JPEG decoding) moves the hashes:
//! for every JPEG in DIR, PDQ and pHash from the full decode and from the
//! scaled one, and the Hamming distances between them.
//!
//! cargo run --release -p triage-core --example fast_decode_drift -- DIR...

use triage_core::perceptual::{ImgHashAlg, Perceptual, PerceptualConfig, perceptual_hashes};

fn main() {
    let full = PerceptualConfig {
        img_hashes: vec![ImgHashAlg::Phash],
        ..PerceptualConfig::default()
    };
    let fast = PerceptualConfig {
        fast_decode: true,
        ..full.clone()
    };
    let mut by_scale: std::collections::BTreeMap<u8, (Vec<u32>, Vec<u32>)> = Default::default();
    for dir in std::env::args().skip(1) {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("read dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jpg" || x == "jpeg"))
            .collect();
        files.sort();
        for f in files {
            let bytes = std::fs::read(&f).expect("read");
            let (Ok(a), Ok(b)) = (
                perceptual_hashes(&bytes, &full),
                perceptual_hashes(&bytes, &fast),
            ) else {
                continue;
            };
            let Some(scale) = b.info.and_then(|i| i.decoded_scale) else {
                continue;
            };
            if let (
                Perceptual::Pdq {
                    hash: ha, quality, ..
                },
                Perceptual::Pdq { hash: hb, .. },
            ) = (&a.hashes[0], &b.hashes[0])
            {
                if *quality < 50 {
                    continue;
                }
                let (Perceptual::Img { hash: pa, .. }, Perceptual::Img { hash: pb, .. }) =
                    (&a.hashes[1], &b.hashes[1])
                else {
                    continue;
                };
                let dp: u32 = pa.iter().zip(pb).map(|(x, y)| (x ^ y).count_ones()).sum();
                let e = by_scale.entry(scale).or_default();
                e.0.push(ha.distance(hb));
                e.1.push(dp);
            }
        }
    }
    println!("| decoded at | images | PDQ mean / p95 / max bits | pHash mean / max bits |");
    println!("|---|---|---|---|");
    for (scale, (mut pdq, phash)) in by_scale {
        pdq.sort_unstable();
        let mean = |v: &[u32]| v.iter().sum::<u32>() as f64 / v.len().max(1) as f64;
        let p95 = pdq[(pdq.len() * 95 / 100).min(pdq.len() - 1)];
        println!(
            "| 1/{scale} | {} | {:.1} / {p95} / {} | {:.2} / {} |",
            pdq.len(),
            mean(&pdq),
            pdq.last().unwrap(),
            mean(&phash),
            phash.iter().max().unwrap()
        );
    }
}
