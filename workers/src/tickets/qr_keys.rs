//! The QR signing keys of this process: from `TICKETING_QR_SIGNING_KEYS` (production:
//! every process gets the same list), or, when that is unset, one development key made
//! on first start and kept in `TICKETING_QR_KEY_FILE` (`.data/qr-signing-key`), which
//! every process started from the same directory shares.
//!
//! NOTE: the key file is written to a temporary name and then hard-linked into place, so
//! two processes starting together agree on one key: the link fails for the second, which
//! reads the first one's file, never a half-written one.

use std::io::Write;
use std::path::{Path, PathBuf};

use domain::qr::{KeyId, QrKeyRing, QrSigner};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::app::config::Config;
use crate::app::worker::Worker;

#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    #[error("TICKETING_QR_SIGNING_KEYS: {0}")]
    Config(domain::DomainError),
    #[error("QR key file {path}: {message}")]
    File { path: PathBuf, message: String },
}

/// The workers that sign or verify QR codes, or publish the verification keys.
const USERS: [Worker; 3] = [Worker::Tickets, Worker::Scans, Worker::Queries];

/// The keys, if this process runs a worker that needs them.
pub(crate) fn load_if_needed(cfg: &Config) -> Result<Option<QrKeyRing>, KeyError> {
    if USERS.into_iter().any(|w| cfg.runs(w)) {
        load(cfg).map(Some)
    } else {
        Ok(None)
    }
}

/// The configured keys, or the development key file (made if missing).
pub(crate) fn load(cfg: &Config) -> Result<QrKeyRing, KeyError> {
    match cfg
        .qr_signing_keys
        .as_ref()
        .map(|s| s.expose_secret().trim().to_string())
    {
        Some(spec) if !spec.is_empty() => QrKeyRing::parse(&spec).map_err(KeyError::Config),
        _ => {
            let ring = load_or_create_file(&cfg.qr_key_file)?;
            tracing::warn!(
                file = %cfg.qr_key_file.display(),
                kid = %ring.signer().kid(),
                "TICKETING_QR_SIGNING_KEYS is unset: using the development QR key file"
            );
            Ok(ring)
        }
    }
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> KeyError {
    KeyError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn read_file(path: &Path) -> Result<QrKeyRing, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    QrKeyRing::parse(text.trim()).map_err(|e| file_error(path, e))
}

/// Reads the key file, or makes a new key and writes it (mode 0600) if there is none.
pub(crate) fn load_or_create_file(path: &Path) -> Result<QrKeyRing, KeyError> {
    if path.exists() {
        return read_file(path);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| file_error(path, e))?;
    }
    let signer = generate();
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    write_private(&tmp, &format!("{}\n", signer.secret_spec())).map_err(|e| file_error(&tmp, e))?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(file = %path.display(), kid = %signer.kid(), "made a development QR signing key");
            read_file(path)
        }
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_file(path),
        Err(e) => Err(file_error(path, e)),
    }
}

/// A new random key, its id `dev-` and eight hex digits of its public key's hash.
pub(crate) fn generate() -> QrSigner {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let probe = QrSigner::from_seed(KeyId::parse("probe").expect("a valid id"), seed);
    let digest = Sha256::digest(probe.public_key().public_key.as_bytes());
    let kid = KeyId::parse(&format!("dev-{}", hex::encode(&digest[..4]))).expect("a valid id");
    QrSigner::from_seed(kid, seed)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_made_once_and_read_back() {
        let dir = std::env::temp_dir().join(format!("qrkeys-{}", rand::random::<u64>()));
        let path = dir.join("nested").join("qr-signing-key");
        let first = load_or_create_file(&path).unwrap();
        let again = load_or_create_file(&path).unwrap();
        assert_eq!(first.signer().public_key(), again.signer().public_key());
        assert!(first.signer().kid().as_str().starts_with("dev-"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn configured_keys_win_over_the_file() {
        let mut cfg = Config::for_servers("nats://x", "mongodb://x", "d", "t");
        let k = generate();
        cfg.qr_signing_keys = Some(k.secret_spec().into());
        cfg.qr_key_file = PathBuf::from("/nonexistent/never-written");
        assert_eq!(load(&cfg).unwrap().signer().public_key(), k.public_key());
        cfg.qr_signing_keys = Some("k1:not-a-key".to_string().into());
        assert!(matches!(load(&cfg), Err(KeyError::Config(_))));
    }
}
