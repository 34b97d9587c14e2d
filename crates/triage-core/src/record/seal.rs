//! Tamper evidence for the audit log: the hash chain, seals and Ed25519 keys.
//!
//! Every line of the log starts `{"seq":N,"prev":"<hex>",`: its number and
//! the SHA-256 of the previous line's bytes (without the newline), so that
//! changing, removing, inserting or reordering any line breaks every line
//! after it. The first line's `prev` is [`GENESIS`].
//!
//! The lines nothing comes after — checkpoints and the footer — also carry a
//! *seal* as their last member, `"seal":"sha256:<hex>"` or, with a signing
//! key, `"seal":"ed25519:<base64>"`, computed over [`SEAL_DOMAIN`] followed
//! by the line with the seal member removed. A SHA-256 seal catches damage
//! and careless edits; only a signature stops someone who recomputes the
//! whole chain. Keys are PKCS#8 / SPKI PEM files, readable by OpenSSL.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer, Verifier};
use sha2::{Digest, Sha256};

use crate::hash::to_hex;

/// The `prev` of the first line: 32 zero bytes.
pub const GENESIS: [u8; 32] = [0; 32];

/// Prefixed to a line before it is sealed, so a seal cannot be replayed as
/// a signature over anything but a `triage` audit-log line.
pub const SEAL_DOMAIN: &[u8] = b"triage-audit-log/1\n";

/// The member that carries the seal, as it appears in the line.
const SEAL_KEY: &[u8] = b",\"seal\":\"";

/// SHA-256 of `bytes`: the chain link of a line.
pub fn line_hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A private Ed25519 key that signs checkpoints and footers.
pub struct SigningKey(ed25519_dalek::SigningKey);

/// A public Ed25519 key that checks them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

/// A key file that could not be read as an Ed25519 key.
#[derive(Debug)]
pub struct KeyError(String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

impl SigningKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| KeyError(format!("no random numbers from the OS: {e}")))?;
        Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`), as
    /// written by [`SigningKey::to_pem`] or `openssl genpkey -algorithm ed25519`.
    pub fn from_pem(text: &str) -> Result<SigningKey, KeyError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(text)
            .map(SigningKey)
            .map_err(|e| KeyError(format!("not an Ed25519 private key in PKCS#8 PEM: {e}")))
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.0
            .to_pkcs8_pem(LineEnding::LF)
            .map(|s| s.to_string())
            .map_err(|e| KeyError(e.to_string()))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl PublicKey {
    /// Reads an SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_pem(text: &str) -> Result<PublicKey, KeyError> {
        ed25519_dalek::VerifyingKey::from_public_key_pem(text)
            .map(PublicKey)
            .map_err(|e| KeyError(format!("not an Ed25519 public key in SPKI PEM: {e}")))
    }

    /// The key as SPKI PEM.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError(e.to_string()))
    }

    /// The 32 key bytes in base64, as the log's header stores them.
    pub fn to_base64(&self) -> String {
        B64.encode(self.0.as_bytes())
    }

    /// Parses [`PublicKey::to_base64`].
    pub fn from_base64(text: &str) -> Result<PublicKey, KeyError> {
        let bytes: [u8; 32] = B64
            .decode(text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| KeyError("public key is not 32 bytes of base64".to_string()))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|e| KeyError(format!("not an Ed25519 public key: {e}")))
    }

    /// `SHA256:<hex>` of the 32 key bytes: how logs and reports name a key.
    pub fn fingerprint(&self) -> String {
        format!("SHA256:{}", to_hex(&line_hash(self.0.as_bytes())))
    }
}

/// Appends the seal member to `line` (a complete JSON object without the
/// seal, no newline): a signature with `key`, else a SHA-256.
pub fn seal_line(line: &mut Vec<u8>, key: Option<&SigningKey>) {
    let text = match key {
        Some(k) => format!("ed25519:{}", B64.encode(k.sign(&message(line)))),
        None => format!("sha256:{}", to_hex(&line_hash(&message(line)))),
    };
    debug_assert_eq!(line.last(), Some(&b'}'));
    line.pop();
    line.extend_from_slice(SEAL_KEY);
    line.extend_from_slice(text.as_bytes());
    line.extend_from_slice(b"\"}");
}

fn message(unsealed: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SEAL_DOMAIN.len() + unsealed.len());
    m.extend_from_slice(SEAL_DOMAIN);
    m.extend_from_slice(unsealed);
    m
}

/// How a sealed line's seal was checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealKind {
    /// A SHA-256 of the line: intact, but not signed.
    Sha256,
    /// An Ed25519 signature by the expected key.
    Signed,
}

/// Checks the seal of `line`. With `key`, only a valid signature by that key
/// passes; without, only a correct SHA-256 seal.
pub fn check_seal(line: &[u8], key: Option<&PublicKey>) -> Result<SealKind, String> {
    let at = find_last(line, SEAL_KEY).ok_or("the line has no seal")?;
    let rest = &line[at + SEAL_KEY.len()..];
    let text = rest
        .strip_suffix(b"\"}")
        .filter(|t| !t.contains(&b'"'))
        .ok_or("the seal is not the line's last member")?;
    let text = std::str::from_utf8(text).map_err(|_| "the seal is not text")?;
    let mut unsealed = line[..at].to_vec();
    unsealed.push(b'}');
    let msg = message(&unsealed);
    match (text.split_once(':'), key) {
        (Some(("sha256", hex)), None) => {
            if hex == to_hex(&line_hash(&msg)) {
                Ok(SealKind::Sha256)
            } else {
                Err("the line's SHA-256 seal does not match its content".to_string())
            }
        }
        (Some(("ed25519", sig)), Some(key)) => {
            let sig: [u8; 64] = B64
                .decode(sig)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or("the signature is not 64 bytes of base64")?;
            key.0
                .verify(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
                .map(|()| SealKind::Signed)
                .map_err(|_| {
                    format!(
                        "the signature does not verify with key {}",
                        key.fingerprint()
                    )
                })
        }
        (Some(("sha256", _)), Some(key)) => Err(format!(
            "the line is not signed, but the log names signing key {}",
            key.fingerprint()
        )),
        (Some(("ed25519", _)), None) => {
            Err("the line is signed, but the log's header names no signing key".to_string())
        }
        _ => Err(format!("unknown seal '{text}'")),
    }
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_check_and_detect_changes() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        for signer in [None, Some(&key)] {
            let mut line = br#"{"seq":3,"prev":"ab","record":"checkpoint","entries":2}"#.to_vec();
            seal_line(&mut line, signer);
            let public = signer.map(SigningKey::public);
            let expect = if signer.is_some() {
                SealKind::Signed
            } else {
                SealKind::Sha256
            };
            assert_eq!(check_seal(&line, public.as_ref()), Ok(expect));
            // Any changed byte before the seal breaks it.
            let mut bad = line.clone();
            bad[30] ^= 1;
            assert!(check_seal(&bad, public.as_ref()).is_err());
            // The wrong key, or no key where one is expected, fails.
            assert!(check_seal(&line, Some(&other.public())).is_err());
        }
        let mut unsigned = br#"{"seq":0}"#.to_vec();
        seal_line(&mut unsigned, None);
        assert!(check_seal(&unsigned, Some(&key.public())).is_err());
        assert!(check_seal(br#"{"seq":0}"#, None).is_err());
    }

    #[test]
    fn keys_round_trip_through_pem_and_base64() {
        let key = SigningKey::generate().unwrap();
        let pem = key.to_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(back.public(), key.public());
        let public = key.public();
        assert_eq!(
            PublicKey::from_pem(&public.to_pem().unwrap()).unwrap(),
            public
        );
        assert_eq!(PublicKey::from_base64(&public.to_base64()).unwrap(), public);
        assert_eq!(public.fingerprint().len(), "SHA256:".len() + 64);
        assert!(SigningKey::from_pem(&public.to_pem().unwrap()).is_err());
        assert!(PublicKey::from_base64("AAAA").is_err());
    }

    /// RFC 8032 §7.1 test 1: our signing is plain Ed25519, so any verifier
    /// (OpenSSL, PyNaCl) can check a log's seals.
    #[test]
    fn rfc8032_test_vector() {
        let seed: [u8; 32] = crate::hash::from_hex(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        )
        .unwrap()
        .try_into()
        .unwrap();
        let key = SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed));
        assert_eq!(
            to_hex(key.public().0.as_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            to_hex(&key.sign(b"")),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }
}
