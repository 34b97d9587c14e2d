//! Child items: after a file is hashed and its type known, the members of
//! what it contains ([`crate::expand`]), each read like a file (digests,
//! type, perceptual hashes, matches) and handed over right after it, depth
//! first, so a container's members follow it in the log in the order it
//! stores them, each followed by its own members.
//!
//! The parent is opened again through the tree to be looked inside (its
//! digests came from the scan's one read of it). A member that is itself
//! a container is looked inside through its own bytes: a zip member
//! stored as it is, through the parent's bytes; a compressed one read into
//! memory when small enough ([`crate::expand::Limits::in_memory`]), else
//! through its decompressor. Nothing is written anywhere.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::expand::{self, Body, Budget, Kind};
use crate::hash::Algorithm;
use crate::item::{Crc32, Expansion, Failure, FailureKind, OsError, Stage, Within};
use crate::path::RawPath;
use crate::read::TO_END;
use crate::record::{Entry, Outcome};
use crate::source::{ItemRef, Source};

use super::job::{JobContext, Reading, hash_source};

/// Looks inside `parent` when it is a container. Returns it untouched
/// when it is not (the caller hands it over as the item's only entry);
/// otherwise hands it over and its members through `send` and returns
/// `None`.
pub(super) fn expand(
    mut parent: Entry,
    ctx: &JobContext<'_>,
    send: &mut dyn FnMut(Entry),
) -> Option<Entry> {
    let Some((kind, size)) = container(&parent) else {
        return Some(parent);
    };
    // Why it is not looked inside, if it is not: it is handed back so.
    // A kind that reads only some files of its type (a compound file
    // that is a `Thumbs.db`) says nothing of those it does not look
    // inside: most of them are not its containers at all.
    if kind.probes() && not_now(ctx, kind, 1).is_some() {
        return Some(parent);
    }
    let why_not = (|| {
        if let Some(why) = not_now(ctx, kind, 1) {
            return Err(why);
        }
        let item = ItemRef {
            path: &parent.path,
            expect: parent.meta.as_ref().map(|m| (m.dev, m.ino)),
            location: parent.location.as_ref(),
        };
        match catch_unwind(AssertUnwindSafe(|| ctx.tree.open(item, None))) {
            // The bytes hashed are the bytes looked inside: a file whose
            // size changed since is not.
            Ok(Ok((src, _))) if src.size_now().ok() != Some(size) => {
                Err("its size changed after it was hashed: not looked inside".to_string())
            }
            Ok(Ok((src, _))) => Ok(src),
            Ok(Err(f)) => Err(format!(
                "could not be opened again to look inside: {}",
                f.kind
            )),
            Err(p) => Err(format!(
                "could not be opened again to look inside: internal error in triage (please report): {}",
                crate::item::panic_message(&*p)
            )),
        }
    })();
    let src = match why_not {
        // Of a type the expander reads, but not one it looks inside (a
        // compound file that is no `Thumbs.db`): not a container.
        Ok(src) if !kind.expander().applies(&*src, size) => return Some(parent),
        Ok(src) => src,
        Err(why) => {
            set_expansion(
                &mut parent,
                Expansion::NotExpanded {
                    container: kind.name(),
                    why,
                },
            );
            return Some(parent);
        }
    };
    set_expansion(
        &mut parent,
        Expansion::Expanded {
            container: kind.name(),
        },
    );
    let path = parent.path.clone();
    let mut ancestors = vec![identity(&parent)];
    let picture = pdq_of(&parent);
    send(parent);
    let mut limits = ctx.expand.limits.clone();
    if ctx.root_is_file {
        limits.item_bytes = limits.scan_bytes;
    }
    let budget = Budget::new(&limits, ctx.expand_total.clone());
    // A member's panic fails that member (caught at it); one in a listing
    // ends that listing with an entry saying so.
    let r = catch_unwind(AssertUnwindSafe(|| {
        let top = Container {
            kind,
            src: &*src,
            cheap: true,
            size,
            path: &path,
            picture,
        };
        look_inside(&top, 1, &mut ancestors, &budget, ctx, send)
    }));
    if let Err(p) = r {
        let failure = Failure {
            stage: Stage::Read,
            kind: FailureKind::Internal {
                message: crate::item::panic_message(&*p),
            },
            bytes_read: 0,
        };
        send(entry(
            path.join_member(&RawPath::default()),
            None,
            Within {
                parent: path.clone(),
                member: RawPath::default(),
                container: kind.name(),
                offset: None,
                depth: 1,
                crc32: None,
                pdq_distance: None,
                pdq_differs: None,
                checksums: Vec::new(),
            },
            Outcome::Failed(failure),
        ));
    }
    None
}

/// Whether `e` will be looked inside (a hashed container whose expander
/// runs): the scan gives such an item a task of its own.
pub(super) fn is_container(e: &Entry, ctx: &JobContext<'_>) -> bool {
    container(e).is_some_and(|(k, _)| ctx.expand.runs(k) && ctx.expand.max_depth > 0)
}

/// The expander for a hashed entry, and its size, if one applies.
fn container(e: &Entry) -> Option<(Kind, u64)> {
    match &e.outcome {
        // Free space is carved, whatever its first bytes look like.
        Outcome::Hashed(h) if e.location.as_ref().is_some_and(|l| l.is_free_space()) => {
            Some((Kind::Carve, h.bytes_read))
        }
        Outcome::Hashed(h) => Kind::of(h.file_type).map(|k| (k, h.bytes_read)),
        _ => None,
    }
}

/// Why a container at `depth` (1: a walked item's members) is not looked
/// inside, if it is not.
fn not_now(ctx: &JobContext<'_>, kind: Kind, depth: u32) -> Option<String> {
    if !ctx.expand.runs(kind) {
        return Some(format!("{} not chosen (--expand)", kind.name()));
    }
    if depth > ctx.expand.max_depth {
        return Some(format!(
            "at the nesting limit ({} levels, --max-depth)",
            ctx.expand.max_depth
        ));
    }
    None
}

fn set_expansion(e: &mut Entry, x: Expansion) {
    if let Outcome::Hashed(h) = &mut e.outcome {
        h.expansion = Some(Box::new(x));
    }
}

/// An entry's PDQ (of its picture, not of a later animation frame).
fn pdq_of(e: &Entry) -> Option<crate::perceptual::pdq::PdqHash> {
    let Outcome::Hashed(h) = &e.outcome else {
        return None;
    };
    h.perceptual.iter().find_map(|p| match p {
        crate::perceptual::Perceptual::Pdq {
            hash, frame: None, ..
        } => Some(*hash),
        _ => None,
    })
}

/// What tells two items' bytes apart for quine detection: the strongest
/// digest computed.
fn identity(e: &Entry) -> Option<String> {
    let Outcome::Hashed(h) = &e.outcome else {
        return None;
    };
    [
        Algorithm::Sha256,
        Algorithm::Blake3,
        Algorithm::Sha1,
        Algorithm::Md5,
    ]
    .into_iter()
    .find_map(|a| h.digests.hex(a))
}

/// A container being looked inside.
struct Container<'s> {
    kind: Kind,
    src: &'s dyn Source,
    /// Whether `src` is read at random cheaply (a file, bytes in memory,
    /// a stored member of those), not through a decompressor.
    cheap: bool,
    size: u64,
    path: &'s RawPath,
    /// Its PDQ, when it is a picture (its thumbnail's is compared with it).
    picture: Option<crate::perceptual::pdq::PdqHash>,
}

/// The members of `c` at `depth`, each hashed and handed over, then its
/// own members (depth first). `ancestors`: the identities of the
/// containers `c` is inside, and its own (quine detection).
fn look_inside(
    c: &Container<'_>,
    depth: u32,
    ancestors: &mut Vec<Option<String>>,
    budget: &Budget,
    ctx: &JobContext<'_>,
    send: &mut dyn FnMut(Entry),
) {
    let Container {
        kind,
        src,
        cheap,
        size,
        path,
        picture,
    } = *c;
    let within = |member: RawPath, offset: Option<u64>| Within {
        parent: path.clone(),
        member,
        container: kind.name(),
        offset,
        depth,
        crc32: None,
        pdq_distance: None,
        pdq_differs: None,
        checksums: Vec::new(),
    };
    let failed = |why: String| {
        Outcome::Failed(Failure {
            stage: Stage::Read,
            kind: FailureKind::Io(OsError {
                errno: None,
                message: why,
            }),
            bytes_read: 0,
        })
    };
    // A listing that fails is its own entry, at the container's path and
    // `!` (as a directory that cannot be listed is one at its path).
    let listing_failed = |why: String| Entry {
        path: path.join_member(&RawPath::default()),
        meta: None,
        location: None,
        within: Some(within(RawPath::default(), None)),
        outcome: failed(format!("its {} listing: {why}", kind.name())),
    };
    let members = match expand::members(kind, src, size, path, budget) {
        Ok(m) => m,
        Err(why) => {
            send(listing_failed(why));
            return;
        }
    };
    for m in members {
        if ctx.cancel.is_cancelled() {
            return;
        }
        let m = match m {
            Ok(m) => m,
            Err(why) => {
                send(listing_failed(why));
                return;
            }
        };
        let child = path.join_member(&m.name);
        let mut w = within(m.name.clone(), m.offset);
        w.crc32 = m.crc32.map(|stored| Crc32 {
            stored,
            computed: None,
        });
        w.checksums = m.checksums;
        let found = m.found;
        let mut meta = m.meta;
        let (src, to_end, stored) = match m.body {
            Body::Skipped(crate::item::SkipReason::HardLink { first }) => {
                // A tar hard link names a member: the entry it repeats is
                // at the container's path and that name.
                let first = path.join_member(&first);
                let r = crate::item::SkipReason::HardLink { first };
                send(entry(child, Some(meta), w, Outcome::Skipped(r)));
                continue;
            }
            Body::Skipped(r) => {
                send(entry(child, Some(meta), w, Outcome::Skipped(r)));
                continue;
            }
            Body::Failed(why) => {
                send(entry(child, Some(meta), w, failed(why)));
                continue;
            }
            Body::Read {
                src,
                to_end,
                stored,
            } => (src, to_end, stored),
        };
        let read_size = if to_end { TO_END } else { meta.size };
        let hashed = catch_unwind(AssertUnwindSafe(|| {
            hash_source(&child, &*src, &meta, read_size, false, Reading::Member, ctx)
        }));
        let (outcome, crc) = match hashed {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(p) => (
                Outcome::Failed(Failure {
                    stage: Stage::Read,
                    kind: FailureKind::Internal {
                        message: crate::item::panic_message(&*p),
                    },
                    bytes_read: 0,
                }),
                None,
            ),
        };
        if let Some(c) = &mut w.crc32 {
            c.computed = crc;
        }
        if let Some(f) = found {
            w.checksums
                .extend(f.lock().unwrap_or_else(|e| e.into_inner()).drain(..));
        }
        if let Outcome::Hashed(h) = &outcome {
            // What was read is its size (a stream's is known only now).
            meta.size = h.bytes_read;
            meta.blocks = h.bytes_read.div_ceil(512);
        }
        let mut e = entry(child, Some(meta), w, outcome);
        let own = pdq_of(&e);
        if let (Some(a), Some(b), Some(w)) = (picture, own, e.within.as_mut()) {
            let d = a.distance(&b);
            w.pdq_distance = Some(d);
            w.pdq_differs = Some(d > ctx.matcher.config().pdq_distance);
        }
        let Some((inner, inner_size)) = container(&e) else {
            send(e);
            continue;
        };
        let id = identity(&e);
        if inner.probes() && not_now(ctx, inner, depth + 1).is_some() {
            send(e);
            continue;
        }
        if let Some(why) = not_now(ctx, inner, depth + 1) {
            set_expansion(
                &mut e,
                Expansion::NotExpanded {
                    container: inner.name(),
                    why,
                },
            );
            send(e);
            continue;
        }
        if id.is_some() && ancestors.contains(&id) {
            set_expansion(
                &mut e,
                Expansion::NotExpanded {
                    container: inner.name(),
                    why: "the same bytes as a container it is inside (a quine): not looked inside again".into(),
                },
            );
            send(e);
            continue;
        }
        // A zip needs its bytes at random: a compressed one is read into
        // memory when small enough; otherwise (and tar, gzip, which read
        // forward) through the member's own source.
        let inner_cheap = cheap && stored;
        let in_memory = (inner.expander().random_access()
            && !inner_cheap
            && inner_size <= budget.limits.in_memory)
            .then(|| crate::read::read_whole(&*src, inner_size));
        let held;
        let (inner_src, inner_cheap): (&dyn Source, bool) = match in_memory {
            Some(Ok(bytes)) => {
                held = crate::source::tree::MemSource(bytes);
                (&held, true)
            }
            Some(Err(err)) => {
                set_expansion(
                    &mut e,
                    Expansion::NotExpanded {
                        container: inner.name(),
                        why: format!("could not be read again to look inside: {err}"),
                    },
                );
                send(e);
                continue;
            }
            None => (&*src, inner_cheap),
        };
        if !inner.expander().applies(inner_src, inner_size) {
            send(e);
            continue;
        }
        set_expansion(
            &mut e,
            Expansion::Expanded {
                container: inner.name(),
            },
        );
        let inner_path = e.path.clone();
        send(e);
        ancestors.push(id);
        let inner = Container {
            kind: inner,
            src: inner_src,
            cheap: inner_cheap,
            size: inner_size,
            path: &inner_path,
            picture: own,
        };
        look_inside(&inner, depth + 1, ancestors, budget, ctx, send);
        ancestors.pop();
    }
}

fn entry(
    path: RawPath,
    meta: Option<crate::item::FileMeta>,
    within: Within,
    outcome: Outcome,
) -> Entry {
    Entry {
        path,
        meta,
        location: None,
        within: Some(within),
        outcome,
    }
}
