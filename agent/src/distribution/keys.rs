//! Ed25519 keys: the signer's secret key file, the public keys agents trust, key ids.
use std::{
    fs::OpenOptions,
    io::Write as _,
    os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer};
use sha2::{Digest as _, Sha256};

use super::DistributionError;

/// A public key whose bundles are accepted: one base64 line (32 bytes), as
/// `ward policy keygen` writes it to `PREFIX.pub` and `trusted_keys` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKey(VerifyingKey);

impl TrustedKey {
    /// Parses the base64 form (surrounding white space ignored).
    pub fn parse(text: &str) -> Result<TrustedKey, DistributionError> {
        let bad = |why: &str| {
            DistributionError::BadKey(format!(
                "`{}` is not an Ed25519 public key: {why}",
                text.trim()
            ))
        };
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|e| bad(&format!("bad base64 ({e})")))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| bad(&format!("{} bytes, not 32", b.len())))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not a curve point"))?;
        if key.is_weak() {
            return Err(bad("a weak (small-order) key"));
        }
        Ok(TrustedKey(key))
    }

    /// A key given on the command line: the base64 line, or a file holding it.
    pub fn from_arg(arg: &str) -> Result<TrustedKey, DistributionError> {
        let path = Path::new(arg);
        if !path.is_file() {
            return TrustedKey::parse(arg);
        }
        let text = std::fs::read_to_string(path).map_err(|source| DistributionError::Io {
            path: path.to_owned(),
            source,
        })?;
        TrustedKey::parse(&text).map_err(|e| DistributionError::Key {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// The key id: the first 16 hex digits of the SHA-256 of the key's 32 bytes.
    pub fn id(&self) -> String {
        key_id(&self.0)
    }

    /// The key in its base64 form.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0.as_bytes())
    }

    pub(super) fn verifying_key(&self) -> &VerifyingKey {
        &self.0
    }
}

impl<'de> Deserialize<'de> for TrustedKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        TrustedKey::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The signer's secret key, as `ward policy keygen` writes it to `PREFIX.key`: one
/// base64 line of its 32-byte seed, mode 0600.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> SecretKey {
        SecretKey(SigningKey::generate(&mut rand_core::OsRng))
    }

    /// Reads a secret key file; refuses one that others than its owner may read.
    pub fn read(path: &Path) -> Result<SecretKey, DistributionError> {
        let key_error = |message: String| DistributionError::Key {
            path: path.to_owned(),
            message,
        };
        let io = |source| DistributionError::Io {
            path: path.to_owned(),
            source,
        };
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(key_error(format!(
                "mode {:o}: a secret key must be readable by its owner only (chmod 600)",
                mode & 0o777
            )));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let seed: [u8; 32] = BASE64
            .decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                key_error("not a Ward secret key (one base64 line of 32 bytes)".into())
            })?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// Writes `PREFIX.key` (mode 0600) and `PREFIX.pub`; refuses to overwrite either.
    /// Returns both paths.
    pub fn write(&self, prefix: &Path) -> Result<(PathBuf, PathBuf), DistributionError> {
        let with = |ext: &str| {
            let mut p = prefix.as_os_str().to_owned();
            p.push(ext);
            PathBuf::from(p)
        };
        let (secret, public) = (with(".key"), with(".pub"));
        for path in [&secret, &public] {
            if path.exists() {
                return Err(DistributionError::Key {
                    path: path.clone(),
                    message: "already exists; not overwritten".into(),
                });
            }
        }
        let seed = BASE64.encode(self.0.to_bytes());
        write_new(&secret, 0o600, &seed)?;
        write_new(&public, 0o644, &self.public().to_base64())?;
        Ok((secret, public))
    }

    /// Its public key.
    pub fn public(&self) -> TrustedKey {
        TrustedKey(self.0.verifying_key())
    }

    /// Its key id ([`TrustedKey::id`]).
    pub fn id(&self) -> String {
        key_id(&self.0.verifying_key())
    }

    pub(super) fn signing_key(&self) -> &SigningKey {
        &self.0
    }
}

/// Shows the key id only, never the secret.
impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id())
    }
}

/// Creates `path` with `mode` (it must not exist) holding `line` and a newline.
fn write_new(path: &Path, mode: u32, line: &str) -> Result<(), DistributionError> {
    let io = |source| DistributionError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    writeln!(file, "{line}").map_err(io)?;
    file.sync_all().map_err(io)
}

fn key_id(key: &VerifyingKey) -> String {
    hex(&Sha256::digest(key.as_bytes())[..8])
}

/// Lower-case hex of `bytes`.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
