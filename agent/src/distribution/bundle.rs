//! The signed policy bundle: its JSON file, the canonical bytes its signature covers,
//! signing and verification. `docs/bundles.md` specifies the format.
use std::path::Path;

use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use ed25519_dalek::{Signature, Signer as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{
    keys::{hex, SecretKey},
    BundleInfo, DistributionError, TrustedKey,
};

/// The bundle a policy directory may hold (and where `policy_url` stores its bundle
/// in a directory).
pub const BUNDLE_FILE: &str = "policy.bundle";
/// The `format` of every bundle this build writes and reads.
pub const FORMAT: &str = "ward-policy-bundle/1";
/// What the canonical encoding starts with (domain separation for the signature).
const MAGIC: &[u8] = b"ward-policy-bundle/1\n";
/// The largest bundle file read, from disk or from `policy_url`.
pub const MAX_BUNDLE_BYTES: u64 = 16 << 20;

/// One policy file of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleFile {
    /// Its file name (`[A-Za-z0-9._-]`, ending in `.toml`).
    pub name: String,
    /// Its text.
    pub content: String,
}

/// A bundle as stored in its JSON file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Always [`FORMAT`].
    pub format: String,
    /// Monotonically increasing version chosen by the signer.
    pub version: u64,
    /// Id of the key that signed it ([`TrustedKey::id`]).
    pub key_id: String,
    /// The policy files, in strictly increasing name order.
    pub files: Vec<BundleFile>,
    /// Ed25519 signature of [`Bundle::signed_bytes`], base64.
    pub signature: String,
}

impl Bundle {
    /// Signs `files` (sorted here by name) as `version` with `key`.
    pub fn sign(
        version: u64,
        mut files: Vec<BundleFile>,
        key: &SecretKey,
    ) -> Result<Bundle, DistributionError> {
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let mut bundle = Bundle {
            format: FORMAT.into(),
            version,
            key_id: key.id(),
            files,
            signature: String::new(),
        };
        bundle.check_shape()?;
        let signature = key.signing_key().sign(&bundle.signed_bytes());
        bundle.signature = BASE64.encode(signature.to_bytes());
        Ok(bundle)
    }

    /// Reads a bundle file (at most [`MAX_BUNDLE_BYTES`]); checks its shape, not its
    /// signature.
    pub fn read(path: &Path) -> Result<Bundle, DistributionError> {
        let io = |source| DistributionError::Io {
            path: path.to_owned(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_BUNDLE_BYTES {
            return Err(DistributionError::Format {
                path: path.to_owned(),
                message: format!("{len} bytes, more than the {MAX_BUNDLE_BYTES} a bundle may have"),
            });
        }
        Bundle::parse(path, &std::fs::read(path).map_err(io)?)
    }

    /// Parses bundle bytes; `path` names them in errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Bundle, DistributionError> {
        let bundle: Bundle =
            serde_json::from_slice(bytes).map_err(|e| DistributionError::Json {
                path: path.to_owned(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })?;
        bundle.check_shape().map_err(|e| match e {
            DistributionError::Shape(message) => DistributionError::Format {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        Ok(bundle)
    }

    /// The bundle as written to its file: pretty JSON and a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a bundle serializes");
        text.push('\n');
        text
    }

    /// The canonical encoding the signature covers: [`MAGIC`], the version (8 bytes
    /// big-endian), the key id, the number of files (8 bytes big-endian), then each
    /// file's name and content; every string is its length in bytes (8 bytes
    /// big-endian) followed by its UTF-8 bytes.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let size = self
            .files
            .iter()
            .map(|f| 16 + f.name.len() + f.content.len())
            .sum::<usize>();
        let mut out = Vec::with_capacity(MAGIC.len() + 24 + self.key_id.len() + size);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.version.to_be_bytes());
        put(&mut out, &self.key_id);
        out.extend_from_slice(&(self.files.len() as u64).to_be_bytes());
        for f in &self.files {
            put(&mut out, &f.name);
            put(&mut out, &f.content);
        }
        out
    }

    /// SHA-256 of [`Bundle::signed_bytes`], hex: names the bundle's contents.
    pub fn digest(&self) -> String {
        hex(&Sha256::digest(self.signed_bytes()))
    }

    /// Checks the signature with the trusted key of the bundle's key id; what the
    /// bundle is, when it holds.
    pub fn verify(&self, trusted: &[TrustedKey]) -> Result<BundleInfo, DistributionError> {
        if trusted.is_empty() {
            return Err(DistributionError::NoTrustedKeys);
        }
        let key = trusted
            .iter()
            .find(|k| k.id() == self.key_id)
            .ok_or_else(|| DistributionError::UnknownKey(self.key_id.clone()))?;
        let bad = || DistributionError::BadSignature(self.key_id.clone());
        let bytes: [u8; 64] = BASE64
            .decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        key.verifying_key()
            .verify_strict(&self.signed_bytes(), &Signature::from_bytes(&bytes))
            .map_err(|_| bad())?;
        Ok(BundleInfo {
            version: self.version,
            digest: self.digest(),
            key_id: self.key_id.clone(),
            files: self.files.iter().map(|f| f.name.clone()).collect(),
        })
    }

    /// The format, file names and their order: what the encoding relies on.
    fn check_shape(&self) -> Result<(), DistributionError> {
        let shape = |m: String| Err(DistributionError::Shape(m));
        if self.format != FORMAT {
            return shape(format!("format `{}` is not `{FORMAT}`", self.format));
        }
        if self.files.is_empty() {
            return shape("the bundle has no policy file".into());
        }
        for f in &self.files {
            if !valid_name(&f.name) {
                return shape(format!(
                    "file name `{}` is not a plain `*.toml` name of [A-Za-z0-9._-]",
                    f.name
                ));
            }
        }
        for pair in self.files.windows(2) {
            if pair[0].name >= pair[1].name {
                return shape(format!(
                    "file `{}` comes after `{}`: names must be unique and in increasing order",
                    pair[1].name, pair[0].name
                ));
            }
        }
        Ok(())
    }
}

/// A length-prefixed string of the canonical encoding.
fn put(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// `name.toml` of at most 255 bytes of `[A-Za-z0-9._-]`, not starting with a dot.
fn valid_name(name: &str) -> bool {
    name.len() <= 255
        && name.len() > ".toml".len()
        && name.ends_with(".toml")
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}
