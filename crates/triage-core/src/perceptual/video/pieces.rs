//! Decoding one video in pieces at once, with the same frames as one
//! decode from the start: where a video may be cut, what each piece's
//! FFmpeg is asked for, and how the pieces are checked to meet.
//!
//! Why: the reference decodes on one thread (it asks for slice threads,
//! which H.264 as cameras and encoders write it, one slice a frame, cannot
//! use), and FFmpeg's frame threads give little on small or simple frames
//! (1.1× on the 480p samples here). Two decoders on two halves keep two
//! cores busy on every kind of video.
//!
//! A **cut** is a keyframe packet of an MP4/MOV or Matroska/WebM file
//! (those containers promise that decoding may start at a keyframe)
//! before which, in the file, every packet is shown earlier, and after
//! which every packet is shown later: a closed group of pictures, with no
//! frame after the cut needing one before it. If every packet gives one
//! frame, the cut's frame number in the whole decode is the number of
//! packets before it. That is checked while decoding, never assumed:
//! - the piece ending at a cut also gives out the frame with that number,
//!   and only if its timestamp is the cut's;
//! - the piece starting at a cut gives out its first frame only if its
//!   timestamp is the cut's, and then nothing at all if not;
//! - the two must be the same picture, byte for byte (their BLAKE3).
//!
//! If any pair does not meet, the caller decodes the video again in one
//! piece. Every piece after the first seeks to its cut with timestamps kept
//! as stored (`-copyts`) and decodes from the keyframe it lands on.

use std::ffi::OsString;

/// Packets listed at most; a longer video (9 hours at 30 frames a
/// second) is decoded in one piece.
const MAX_PACKETS: usize = 1_000_000;

/// How far past the cut `-ss` aims. FFmpeg's command-line tool aims
/// 3/23 s (130,434 µs) before the asked time in containers that seek by
/// decoding time (Matroska) when a stream has B-frames, and exactly at it
/// in those that seek by presentation time (MP4): aiming this far past the
/// cut lands on it either way, given that the next keyframe is at least
/// [`NEXT_KEY_GAP_US`] further on.
const SEEK_PAST_US: i128 = 130_435;

/// How far the next keyframe must be past where `-ss` aims (its decoding
/// time is earlier than its presentation time by the B-frame delay).
const NEXT_KEY_GAP_US: i128 = 500_000;

/// Frames a piece holds at least: below this, starting another FFmpeg
/// costs more than it saves.
pub(super) const MIN_PIECE_FRAMES: u64 = 60;

/// The first video stream's packets, in file order, as ffprobe lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Timeline {
    /// The stream's time base (`num`, `den`).
    pub(crate) time_base: (i64, i64),
    /// The file's start time in microseconds (FFmpeg's `-ss` is counted
    /// from it).
    pub(crate) start_us: i64,
    /// Each packet's presentation time (in the time base) and keyframe flag.
    pub(crate) packets: Vec<Packet>,
    /// More than [`MAX_PACKETS`] packets: the list is incomplete.
    pub(crate) overflow: bool,
}

/// One packet of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Packet {
    /// Presentation timestamp; `None` when the container gives none.
    pub(crate) pts: Option<i64>,
    /// A keyframe: decoding may start here.
    pub(crate) key: bool,
    /// Its size in bytes: decoding time follows the bytes far more
    /// closely than the frame count (a busy scene costs more).
    pub(crate) size: u64,
}

/// Where a video may be cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cut {
    /// The cut's frame number in the whole decode.
    pub(crate) frame: u64,
    /// Its presentation timestamp, in the stream's time base.
    pub(crate) pts: i64,
    /// Where FFmpeg's `-ss` aims to land on it: microseconds from the
    /// start time, [`SEEK_PAST_US`] past it (seeking lands on the keyframe
    /// at or before the aim).
    pub(crate) seek_us: i64,
}

/// Whether the container promises that a keyframe is a point where
/// decoding may start, and the codec gives one frame per packet. (VP8 in
/// WebM stores hidden frames as packets of their own; MPEG-TS, AVI and FLV
/// mark intra frames that may have leading frames.)
pub(crate) fn cuttable(container: &str, codec: &str) -> bool {
    let container_ok = container.split(',').any(|c| c == "mp4" || c == "matroska");
    let codec_ok = matches!(codec, "h264" | "hevc" | "vp9" | "av1" | "mpeg4");
    container_ok && codec_ok
}

/// Up to `pieces - 1` cuts splitting the timeline into pieces of nearly
/// equal bytes, of at least [`MIN_PIECE_FRAMES`] frames each, in order;
/// none when the timeline has no safe cut (see the module doc).
pub(crate) fn cuts(t: &Timeline, pieces: usize) -> Vec<Cut> {
    let n = t.packets.len();
    if pieces < 2 || t.overflow || (n as u64) < 2 * MIN_PIECE_FRAMES {
        return Vec::new();
    }
    let Some(pts) = t
        .packets
        .iter()
        .map(|p| p.pts)
        .collect::<Option<Vec<i64>>>()
    else {
        return Vec::new();
    };
    let (num, den) = t.time_base;
    if num <= 0 || den <= 0 {
        return Vec::new();
    }
    // suffix_min[j] = smallest timestamp from packet j on.
    let mut suffix_min = vec![i64::MAX; n + 1];
    for j in (0..n).rev() {
        suffix_min[j] = suffix_min[j + 1].min(pts[j]);
    }
    let mut candidates = Vec::new();
    // bytes_before[j]: the bytes of packets 0..j.
    let mut bytes_before = Vec::with_capacity(n + 1);
    let mut sum = 0u64;
    for p in &t.packets {
        bytes_before.push(sum);
        sum = sum.saturating_add(p.size);
    }
    let total_bytes = sum;
    // ceil(pts × num / den seconds), in µs.
    let us = |pts: i64| {
        let scaled = pts as i128 * num as i128 * 1_000_000;
        scaled.div_euclid(den as i128) + i128::from(scaled.rem_euclid(den as i128) != 0)
    };
    // next_key[j]: the timestamp of the first keyframe after packet j.
    let mut next_key = vec![None; n];
    let mut later = None;
    for j in (0..n).rev() {
        next_key[j] = later;
        if t.packets[j].key {
            later = Some(pts[j]);
        }
    }
    let mut prefix_max = i64::MIN;
    for j in 0..n {
        if j > 0 && t.packets[j].key && prefix_max < pts[j] && pts[j] < suffix_min[j + 1] {
            let aim = us(pts[j]) + SEEK_PAST_US;
            let seek = aim - t.start_us as i128;
            let lands = next_key[j].is_none_or(|k| us(k) > aim + NEXT_KEY_GAP_US);
            if lands && seek > 0 && seek < i64::MAX as i128 {
                candidates.push(Cut {
                    frame: j as u64,
                    pts: pts[j],
                    seek_us: seek as i64,
                });
            }
        }
        prefix_max = prefix_max.max(pts[j]);
    }
    let total = n as u64;
    let mut chosen: Vec<Cut> = Vec::new();
    for i in 1..pieces as u64 {
        let target = (total_bytes as u128 * i as u128 / pieces as u128) as u64;
        let after = chosen.last().map_or(0, |c| c.frame);
        // The candidate nearest the target that leaves both sides big
        // enough.
        let best = candidates
            .iter()
            .filter(|c| c.frame >= after + MIN_PIECE_FRAMES && total - c.frame >= MIN_PIECE_FRAMES)
            .min_by_key(|c| bytes_before[c.frame as usize].abs_diff(target));
        if let Some(&c) = best {
            chosen.push(c);
        }
    }
    chosen
}

/// One piece: from a cut (or the start) to the next cut (or the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    /// Where it starts; `None`: at the start of the video.
    pub(crate) start: Option<Cut>,
    /// Where the next piece starts; `None`: it runs to the end.
    pub(crate) end: Option<Cut>,
}

/// What one frame FFmpeg gives out for a piece is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The cut this piece starts at, frame `frame`, to be checked against
    /// the previous piece's last; hashed too when `sampled`.
    Head { frame: u64, sampled: bool },
    /// A sampled frame, number `frame`.
    Sampled { frame: u64 },
    /// The frame at the cut this piece ends at, to be checked against the
    /// next piece's first.
    Tail,
    /// More frames than asked for: FFmpeg did not keep to the selection.
    Extra,
}

/// `x` rounded up to a multiple of `k`.
fn round_up(x: u64, k: u64) -> u64 {
    x.div_ceil(k) * k
}

impl Piece {
    /// The pieces between `cuts` (in order).
    pub(crate) fn between(cuts: &[Cut]) -> Vec<Piece> {
        let mut bounds: Vec<Option<Cut>> = vec![None];
        bounds.extend(cuts.iter().copied().map(Some));
        bounds.push(None);
        bounds
            .windows(2)
            .map(|w| Piece {
                start: w[0],
                end: w[1],
            })
            .collect()
    }

    fn first(&self) -> u64 {
        self.start.map_or(0, |c| c.frame)
    }

    /// The first sampled frame after the head (or from the start).
    fn first_sampled(&self, every: u64) -> u64 {
        match self.start {
            Some(c) => round_up(c.frame + 1, every),
            None => 0,
        }
    }

    /// Sampled frames between the head and the tail (`None` for the last
    /// piece: until the end).
    fn sampled(&self, every: u64) -> Option<u64> {
        let end = self.end?.frame;
        let from = self.first_sampled(every);
        Some(if end > from {
            (end - from).div_ceil(every)
        } else {
            0
        })
    }

    /// The number of frames FFmpeg is to give out, for `-frames:v` (none
    /// for the last piece).
    pub(crate) fn outputs(&self, every: u64) -> Option<u64> {
        Some(u64::from(self.start.is_some()) + self.sampled(every)? + 1)
    }

    /// What the `i`-th frame given out is.
    pub(crate) fn role(&self, i: u64, every: u64) -> Role {
        let mut i = i;
        if let Some(c) = self.start {
            if i == 0 {
                return Role::Head {
                    frame: c.frame,
                    sampled: c.frame % every == 0,
                };
            }
            i -= 1;
        }
        match self.sampled(every) {
            Some(s) if i == s => Role::Tail,
            Some(s) if i > s => Role::Extra,
            _ => Role::Sampled {
                frame: self.first_sampled(every) + i * every,
            },
        }
    }

    /// FFmpeg's options before `-i`: timestamps as stored, one decoding
    /// thread (the pieces are the parallelism; two threads a piece took 40%
    /// more CPU for the same wall time on the 480p samples), and the seek
    /// to the cut.
    pub(crate) fn input_args(&self) -> Vec<OsString> {
        let mut a: Vec<String> = vec!["-threads".into(), "1".into(), "-copyts".into()];
        if let Some(c) = self.start {
            a.extend([
                "-noaccurate_seek".into(),
                "-ss".into(),
                format!("{}.{:06}", c.seek_us / 1_000_000, c.seek_us % 1_000_000),
            ]);
        }
        a.into_iter().map(OsString::from).collect()
    }

    /// The `select` filter's expression (commas escaped for `-vf`), in
    /// the piece's own frame count `n` (0 at its first frame).
    pub(crate) fn select(&self, every: u64) -> String {
        let first = self.first();
        let body = match self.end {
            Some(e) => format!(
                "if(lt(n\\,{len})\\,not(mod(n+{first}\\,{every}))\\,eq(n\\,{len})*eq(pts\\,{pts}))",
                len = e.frame - first,
                pts = e.pts
            ),
            None => format!("not(mod(n+{first}\\,{every}))"),
        };
        match self.start {
            // Until the head is given out, nothing but the head may be:
            // a seek that lands elsewhere gives out nothing.
            Some(c) => format!(
                "if(eq(selected_n\\,0)\\,eq(n\\,0)*eq(pts\\,{})\\,{body})",
                c.pts
            ),
            None => body,
        }
    }
}

/// Reads ffprobe's `packets` list: timestamps (an integer, or absent or
/// `"N/A"` when unknown) and flags (`K` first for a keyframe), at most
/// [`MAX_PACKETS`].
pub(crate) fn deserialize_packets<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<(Vec<Packet>, bool), D::Error> {
    struct Seq;
    impl<'de> serde::de::Visitor<'de> for Seq {
        type Value = (Vec<Packet>, bool);
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of packets")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut s: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            let mut overflow = false;
            while let Some(p) = s.next_element::<RawPacket>()? {
                if out.len() < MAX_PACKETS {
                    out.push(Packet {
                        pts: p.pts.0,
                        key: p.flags.0,
                        size: p.size.0,
                    });
                } else {
                    overflow = true;
                }
            }
            Ok((out, overflow))
        }
    }
    d.deserialize_seq(Seq)
}

#[derive(serde::Deserialize)]
struct RawPacket {
    #[serde(default)]
    pts: Pts,
    #[serde(default)]
    flags: KeyFlag,
    #[serde(default)]
    size: Size,
}

/// ffprobe writes a packet's size as a string of digits.
#[derive(Default)]
struct Size(u64);

impl<'de> serde::Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a packet size")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Size, E> {
                Ok(Size(v.parse().unwrap_or(0)))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Default)]
struct Pts(Option<i64>);

impl<'de> serde::Deserialize<'de> for Pts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Pts;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a timestamp")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Pts, E> {
                Ok(Pts(Some(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Pts, E> {
                Ok(Pts(i64::try_from(v).ok()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Pts, E> {
                Ok(Pts(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Pts, E> {
                Ok(Pts(None))
            }
            fn visit_unit<E>(self) -> Result<Pts, E> {
                Ok(Pts(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Default)]
struct KeyFlag(bool);

impl<'de> serde::Deserialize<'de> for KeyFlag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = KeyFlag;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("packet flags")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyFlag, E> {
                Ok(KeyFlag(v.starts_with('K')))
            }
        }
        d.deserialize_str(V)
    }
}

/// A time in seconds as ffprobe writes it (`-0.023220`), in microseconds.
pub(crate) fn parse_us(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 6 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_us: i64 = format!("{frac:0<6}").parse().ok()?;
    let us = whole
        .parse::<i64>()
        .ok()?
        .checked_mul(1_000_000)?
        .checked_add(frac_us)?;
    Some(if neg { -us } else { us })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline(pts: &[i64], keys: &[usize]) -> Timeline {
        Timeline {
            time_base: (1, 15360),
            start_us: 0,
            packets: pts
                .iter()
                .enumerate()
                .map(|(i, &p)| Packet {
                    pts: Some(p),
                    key: keys.contains(&i),
                    size: 1000,
                })
                .collect(),
            overflow: false,
        }
    }

    /// Packets of an H.264 stream with B-frames, as x264 writes them: in
    /// file order I P B B P B B …, shown I B B P B B P …; a keyframe every
    /// `gop` frames.
    fn with_b_frames(frames: usize, gop: usize) -> (Vec<i64>, Vec<usize>) {
        let mut pts = Vec::new();
        let mut keys = Vec::new();
        let mut shown = 0;
        while shown < frames {
            let len = gop.min(frames - shown);
            keys.push(pts.len());
            pts.push(shown as i64 * 512);
            let mut i = 1;
            while i < len {
                let p = (i + 2).min(len - 1);
                pts.push((shown + p) as i64 * 512);
                for b in i..p {
                    pts.push((shown + b) as i64 * 512);
                }
                i = p + 1;
            }
            shown += len;
        }
        (pts, keys)
    }

    #[test]
    fn cuts_fall_on_closed_keyframes_near_the_middle() {
        let (pts, keys) = with_b_frames(600, 60);
        let t = timeline(&pts, &keys);
        let c = cuts(&t, 2);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].frame, 300);
        assert_eq!(c[0].pts, 300 * 512);
        // 300 × 512 / 15360 s = 10 s, aimed past.
        assert_eq!(c[0].seek_us, 10_130_435);
        let c = cuts(&t, 3);
        assert_eq!(c.iter().map(|c| c.frame).collect::<Vec<_>>(), [180, 420]);
        assert!(cuts(&t, 1).is_empty());
    }

    #[test]
    fn no_cut_where_a_later_packet_is_shown_earlier() {
        // Open GOP: the frames after the keyframe in the file include two
        // shown before it (leading frames).
        let mut pts: Vec<i64> = (0..300).map(|i| i * 10).collect();
        pts.swap(150, 152);
        let t = timeline(&pts, &[0, 151]);
        assert!(cuts(&t, 2).is_empty(), "{:?}", cuts(&t, 2));
        // A keyframe with nothing odd around it is a cut.
        let t = timeline(&pts, &[0, 151, 160]);
        assert_eq!(cuts(&t, 2)[0].frame, 160);
    }

    #[test]
    fn no_cut_where_the_seek_could_land_on_the_next_keyframe() {
        // Keyframes 0.5 s apart (25 frames at 50 a second): aiming 0.13 s
        // past one could, by decoding time, land on the next.
        let pts: Vec<i64> = (0..600).map(|i| i * 307).collect();
        let keys: Vec<usize> = (0..600).step_by(25).collect();
        assert!(cuts(&timeline(&pts, &keys), 2).is_empty());
        let keys: Vec<usize> = (0..600).step_by(50).collect();
        assert_eq!(cuts(&timeline(&pts, &keys), 2)[0].frame, 300);
    }

    #[test]
    fn no_cut_without_timestamps_or_room() {
        let (pts, keys) = with_b_frames(600, 60);
        let mut t = timeline(&pts, &keys);
        t.packets[17].pts = None;
        assert!(cuts(&t, 2).is_empty());
        let (pts, keys) = with_b_frames(100, 10);
        assert!(cuts(&timeline(&pts, &keys), 2).is_empty(), "too short");
        let (pts, keys) = with_b_frames(600, 600);
        assert!(cuts(&timeline(&pts, &keys), 2).is_empty(), "one keyframe");
        let (pts, keys) = with_b_frames(600, 60);
        let mut t = timeline(&pts, &keys);
        t.overflow = true;
        assert!(cuts(&t, 2).is_empty());
    }

    #[test]
    fn seeking_rounds_up_from_the_start_time() {
        let mut t = timeline(&(0..400).collect::<Vec<_>>(), &[0, 200]);
        t.time_base = (1001, 30000);
        t.start_us = 1_000;
        let c = cuts(&t, 2);
        // 200 × 1001 / 30000 s = 6.673333… s → 6,673,334 µs.
        assert_eq!(c[0].seek_us, 6_673_334 + 130_435 - 1_000);
        let p = Piece::between(&c)[1];
        let args: Vec<String> = p
            .input_args()
            .iter()
            .map(|a| a.to_string_lossy().into())
            .collect();
        assert_eq!(
            args,
            [
                "-threads",
                "1",
                "-copyts",
                "-noaccurate_seek",
                "-ss",
                "6.802769"
            ]
        );
    }

    #[test]
    fn each_piece_gives_out_its_head_samples_and_tail() {
        let a = Cut {
            frame: 300,
            pts: 153600,
            seek_us: 10_000_000,
        };
        let b = Cut {
            frame: 610,
            pts: 312320,
            seek_us: 20_333_334,
        };
        let p = Piece::between(&[a, b]);
        assert_eq!(p.len(), 3);
        // First piece: frames 0, 30, …, 270 (10 samples), then the tail.
        assert_eq!(p[0].outputs(30), Some(11));
        assert_eq!(p[0].role(0, 30), Role::Sampled { frame: 0 });
        assert_eq!(p[0].role(9, 30), Role::Sampled { frame: 270 });
        assert_eq!(p[0].role(10, 30), Role::Tail);
        assert_eq!(p[0].role(11, 30), Role::Extra);
        assert_eq!(
            p[0].select(30),
            "if(lt(n\\,300)\\,not(mod(n+0\\,30))\\,eq(n\\,300)*eq(pts\\,153600))"
        );
        // Middle: head 300 (sampled), 330 … 600 (10), tail at 610.
        assert_eq!(p[1].outputs(30), Some(12));
        assert_eq!(
            p[1].role(0, 30),
            Role::Head {
                frame: 300,
                sampled: true
            }
        );
        assert_eq!(p[1].role(1, 30), Role::Sampled { frame: 330 });
        assert_eq!(p[1].role(10, 30), Role::Sampled { frame: 600 });
        assert_eq!(p[1].role(11, 30), Role::Tail);
        assert_eq!(
            p[1].select(30),
            "if(eq(selected_n\\,0)\\,eq(n\\,0)*eq(pts\\,153600)\\,\
             if(lt(n\\,310)\\,not(mod(n+300\\,30))\\,eq(n\\,310)*eq(pts\\,312320)))"
        );
        // Last: head 610 (not sampled), then 630, 660, … to the end.
        assert_eq!(p[2].outputs(30), None);
        assert_eq!(
            p[2].role(0, 30),
            Role::Head {
                frame: 610,
                sampled: false
            }
        );
        assert_eq!(p[2].role(1, 30), Role::Sampled { frame: 630 });
        assert_eq!(p[2].role(5, 30), Role::Sampled { frame: 750 });
        // Every frame: each piece's frames follow on from the last's.
        assert_eq!(p[0].outputs(1), Some(301));
        assert_eq!(p[1].role(1, 1), Role::Sampled { frame: 301 });
        assert_eq!(p[1].role(310, 1), Role::Tail);
    }

    #[test]
    fn ffprobe_times_read_to_the_microsecond() {
        assert_eq!(parse_us("0.000000"), Some(0));
        assert_eq!(parse_us("1.5"), Some(1_500_000));
        assert_eq!(parse_us("-0.023220"), Some(-23_220));
        assert_eq!(parse_us("12"), Some(12_000_000));
        assert_eq!(parse_us("N/A"), None);
        assert_eq!(parse_us("1.0000001"), None);
        assert_eq!(parse_us(""), None);
    }

    #[test]
    fn only_sync_sample_containers_and_one_frame_a_packet_codecs_are_cut() {
        assert!(cuttable("mov,mp4,m4a,3gp,3g2,mj2", "h264"));
        assert!(cuttable("matroska,webm", "vp9"));
        assert!(!cuttable("matroska,webm", "vp8"));
        assert!(!cuttable("mpegts", "h264"));
        assert!(!cuttable("avi", "mpeg4"));
    }
}
