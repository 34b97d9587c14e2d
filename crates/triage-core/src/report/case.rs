//! CASE/UCO JSON-LD: the scan as an investigative action, the files as observables.
//!
//! Modelled on `case_validate`'s expectations (CASE 1.x): an
//! `Investigation` (the case) holding one `InvestigativeAction` (the scan)
//! with its tool, performer (the examiner), start and end times, the
//! evidence root as object and a provenance record of every recorded file
//! as result. Files carry a `FileFacet` (name, path, size, times) and a
//! `ContentDataFacet` with MD5/SHA-1/SHA-256; BLAKE3, perceptual hashes,
//! hits and skip/failure reasons are outside UCO's vocabulary and go in
//! properties of our own namespace, which `case_validate` accepts.
//! Identifiers are UUIDv5 of the run id and the path, so the same log
//! gives the same graph.

use std::io::Write;

use serde_json::{Value, json};
use sha1::Digest as _;

use super::{ReportError, VerifiedLog};
use crate::hash::Algorithm;
use crate::record::provenance::format_uuid;
use crate::record::{Entry, Outcome};

/// Our namespace for what UCO has no property for.
pub const NS: &str = "urn:triage:case:1#";

/// A deterministic identifier: UUIDv5 (SHA-1) of the run id, a kind and a name.
fn iri(run_id: &str, kind: &str, name: &[u8]) -> String {
    let mut h = sha1::Sha1::new();
    h.update(run_id.as_bytes());
    h.update([0]);
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(name);
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    format!("kb:{kind}-{}", format_uuid(b, 5))
}

fn typed(ty: &str, value: impl ToString) -> Value {
    json!({"@type": ty, "@value": value.to_string()})
}

/// Writes the verified log as CASE/UCO JSON-LD.
pub fn write<W: Write>(log: &VerifiedLog, out: &mut W) -> Result<(), ReportError> {
    let h = log.header();
    let run = h.run_id.as_str();
    let totals = log.totals();
    let id = |kind: &str, name: &[u8]| iri(run, kind, name);
    let (action, tool, examiner, root, input, result) = (
        id("action", b""),
        id("tool", b""),
        id("examiner", b""),
        id("evidence-root", b""),
        id("provenance-record", b"input"),
        id("provenance-record", b"result"),
    );
    let context = json!({
        "kb": format!("urn:triage:run:{run}:"),
        "case-investigation": "https://ontology.caseontology.org/case/investigation/",
        "uco-action": "https://ontology.unifiedcyberontology.org/uco/action/",
        "uco-core": "https://ontology.unifiedcyberontology.org/uco/core/",
        "uco-identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
        "uco-observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
        "uco-tool": "https://ontology.unifiedcyberontology.org/uco/tool/",
        "uco-types": "https://ontology.unifiedcyberontology.org/uco/types/",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
        "triage": NS,
    });
    write!(out, "{{\"@context\":")?;
    serde_json::to_writer(&mut *out, &context).map_err(std::io::Error::other)?;
    write!(out, ",\"@graph\":[")?;
    let mut first = true;
    let mut node = |out: &mut W, v: Value| -> std::io::Result<()> {
        if !first {
            out.write_all(b",\n")?;
        }
        first = false;
        serde_json::to_writer(&mut *out, &v).map_err(std::io::Error::other)
    };

    let (case_name, exhibit) = match &h.case {
        Some(c) => (
            c.case_id.clone(),
            c.evidence_id.clone().unwrap_or_else(|| c.case_id.clone()),
        ),
        None => (format!("triage run {run} (no case)"), format!("run {run}")),
    };
    let mut investigation = json!({
        "@id": id("investigation", b""),
        "@type": "case-investigation:Investigation",
        "uco-core:name": case_name,
        "case-investigation:focus": format!("triage scan of {}", h.root.display()),
        "uco-core:object": [{"@id": action}, {"@id": input}, {"@id": result}],
    });
    if let Some(c) = &h.case {
        let mut about = Vec::new();
        if let Some(a) = &c.agency {
            about.push(format!("Agency: {a}"));
        }
        if let Some(n) = &c.notes {
            about.push(format!("Notes: {n}"));
        }
        if !about.is_empty() {
            investigation["uco-core:description"] = json!(about.join(". "));
        }
    }
    node(out, investigation)?;
    node(
        out,
        json!({
            "@id": tool,
            "@type": "uco-tool:Tool",
            "uco-core:name": "triage",
            "uco-tool:version": h.tool_version,
            "uco-tool:toolType": "Hash triage",
        }),
    )?;
    let performer = h
        .case
        .as_ref()
        .map(|c| c.examiner.clone())
        .unwrap_or_else(|| format!("uid {}", h.host.uid));
    node(
        out,
        json!({
            "@id": examiner,
            "@type": "uco-identity:Person",
            "uco-core:name": performer,
        }),
    )?;
    node(
        out,
        json!({
            "@id": root,
            "@type": "uco-observable:File",
            "uco-core:hasFacet": [{
                "@id": id("file-facet", b""),
                "@type": "uco-observable:FileFacet",
                "uco-observable:filePath": h.root.display().to_string(),
                "uco-observable:isDirectory": h.root.is_dir(),
            }],
        }),
    )?;
    node(
        out,
        json!({
            "@id": input,
            "@type": "case-investigation:ProvenanceRecord",
            "case-investigation:exhibitNumber": exhibit,
            "uco-core:object": [{"@id": root}],
        }),
    )?;
    let mut action_node = json!({
        "@id": action,
        "@type": "case-investigation:InvestigativeAction",
        "uco-core:name": format!("hash and match every file of {exhibit}"),
        "uco-action:startTime": typed("xsd:dateTime", h.started),
        "uco-action:instrument": {"@id": tool},
        "uco-action:performer": {"@id": examiner},
        "uco-action:object": [{"@id": input}],
        "uco-action:result": [{"@id": result}],
        "triage:logStatus": format!("{:?}", log.status()),
        "triage:chainHead": crate::hash::to_hex(&log.check.head()),
        "triage:filesMatched": totals.files_matched,
    });
    if let Some(end) = totals.finished {
        action_node["uco-action:endTime"] = typed("xsd:dateTime", end);
    }
    node(out, action_node)?;

    // The result record lists every file, streamed member by member; the
    // files follow in a second pass, each with its relationship to the root.
    let head = json!({
        "@id": result,
        "@type": "case-investigation:ProvenanceRecord",
        "case-investigation:exhibitNumber": format!("{exhibit} triage results"),
    });
    let head = serde_json::to_string(&head).map_err(std::io::Error::other)?;
    write!(out, ",\n{},\"uco-core:object\":[", &head[..head.len() - 1])?;
    for (i, e) in log.entries()?.enumerate() {
        let member = json!({"@id": id("file", e?.path.as_bytes())});
        write!(out, "{}{member}", if i == 0 { "" } else { "," })?;
    }
    write!(out, "]}}")?;
    for e in log.entries()? {
        let e = e?;
        let file = id("file", e.path.as_bytes());
        node(out, file_node(&e, &file, &|k| id(k, e.path.as_bytes())))?;
        // A member (of a zip, a tar…) is contained within its container's
        // file, which is contained within the evidence.
        let within = match &e.within {
            Some(w) => id("file", w.parent.as_bytes()),
            None => root.clone(),
        };
        node(
            out,
            json!({
                "@id": id("relationship", e.path.as_bytes()),
                "@type": "uco-core:Relationship",
                "uco-core:source": {"@id": file},
                "uco-core:target": {"@id": within},
                "uco-core:kindOfRelationship": "Contained_Within",
                "uco-core:isDirectional": true,
            }),
        )?;
    }
    writeln!(out, "]}}")?;
    Ok(())
}

fn file_node(e: &Entry, file: &str, id: &dyn Fn(&str) -> String) -> Value {
    let mut facet = json!({
        "@id": id("file-facet"),
        "@type": "uco-observable:FileFacet",
        "uco-observable:filePath": e.path.escaped(),
    });
    let name = e
        .path
        .as_bytes()
        .rsplit(|&b| b == b'/')
        .next()
        .unwrap_or(b"");
    facet["uco-observable:fileName"] = json!(crate::path::escape_bytes(name));
    if let Some(m) = &e.meta {
        facet["uco-observable:sizeInBytes"] = typed("xsd:integer", m.size);
        facet["uco-observable:modifiedTime"] = typed("xsd:dateTime", m.mtime);
        facet["uco-observable:accessedTime"] = typed("xsd:dateTime", m.atime);
        facet["uco-observable:metadataChangeTime"] = typed("xsd:dateTime", m.ctime);
        if let Some(b) = m.btime {
            facet["uco-observable:observableCreatedTime"] = typed("xsd:dateTime", b);
        }
    }
    let mut facets = vec![facet];
    let mut node = json!({"@id": file, "@type": "uco-observable:File"});
    match &e.outcome {
        Outcome::Hashed(h) => {
            let hashes: Vec<Value> = [
                (Algorithm::Md5, "MD5"),
                (Algorithm::Sha1, "SHA1"),
                (Algorithm::Sha256, "SHA256"),
            ]
            .into_iter()
            .filter_map(|(alg, method)| {
                h.digests.hex(alg).map(|hex| {
                    json!({
                        "@id": id(&format!("hash-{}", alg.name())),
                        "@type": "uco-types:Hash",
                        "uco-types:hashMethod": method,
                        "uco-types:hashValue": typed("xsd:hexBinary", hex),
                    })
                })
            })
            .collect();
            let mut content = json!({
                "@id": id("content-data-facet"),
                "@type": "uco-observable:ContentDataFacet",
                "uco-observable:sizeInBytes": typed("xsd:integer", h.bytes_read),
                "uco-observable:mimeType": h.file_type.mime(),
            });
            if !hashes.is_empty() {
                content["uco-observable:hash"] = json!(hashes);
            }
            facets.push(content);
            if let Some(b3) = h.digests.hex(Algorithm::Blake3) {
                node["triage:blake3"] = json!(b3);
            }
            let perceptual: Vec<String> = h
                .perceptual
                .iter()
                .map(|p| match p {
                    crate::perceptual::Perceptual::Pdq { hash, quality, .. } => {
                        format!("{} {hash} quality {quality}", p.tag())
                    }
                    crate::perceptual::Perceptual::Img { hash, .. } => {
                        format!("{} {}", p.tag(), crate::hash::to_hex(hash))
                    }
                })
                .collect();
            if !perceptual.is_empty() {
                node["triage:perceptualHash"] = json!(perceptual);
            }
            let hits: Vec<String> = h
                .matches
                .iter()
                .map(|m| {
                    let mut s = format!("{} {} {}", m.set, m.kind.name(), m.alg.name());
                    if let Some(d) = m.distance {
                        s.push_str(&format!(" distance {d}"));
                    }
                    if let Some(c) = m.category {
                        s.push_str(&format!(" category {c}"));
                    }
                    if m.empty_file_digest {
                        s.push_str(" (empty-file digest)");
                    }
                    if let Some(f) = m.frame {
                        s.push_str(&format!(" frame {f}"));
                    }
                    if let Some(v) = &m.video {
                        s.push_str(&format!(
                            " known {:.2}% query {:.2}%",
                            v.known_percent(),
                            v.query_percent()
                        ));
                    }
                    s
                })
                .collect();
            match h.video.as_deref() {
                None => {}
                Some(Err(e)) => {
                    node["triage:videoError"] = json!(format!("{}: {}", e.code(), e.detail()))
                }
                Some(Ok(v)) => {
                    let i = &v.info;
                    node["triage:video"] = json!(format!(
                        "{} {} {}x{} {}/{} every {}{}",
                        crate::perceptual::video::VPDQ_TAG,
                        i.codec,
                        i.width,
                        i.height,
                        i.frame_rate.0,
                        i.frame_rate.1,
                        v.every,
                        i.duration.map(|d| format!(" {d:.3}s")).unwrap_or_default()
                    ));
                    node["triage:videoFrame"] = json!(
                        v.frames
                            .iter()
                            .map(|f| format!(
                                "{} {:.3} {} quality {}",
                                f.frame, f.timestamp, f.hash, f.quality
                            ))
                            .collect::<Vec<_>>()
                    );
                }
            }
            if !hits.is_empty() {
                node["triage:match"] = json!(hits);
            }
        }
        Outcome::Skipped(r) => node["triage:skipped"] = json!(r.to_string()),
        Outcome::Failed(f) => {
            node["triage:failed"] = json!(format!("{}: {}", f.stage.code(), f.kind))
        }
    }
    node["uco-core:hasFacet"] = json!(facets);
    node
}
