//! Password hashing with argon2id, at the gateway: plain passwords never travel over NATS
//! or reach a log. Hashing is CPU-bound, so it runs on the blocking pool.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

use crate::error::ApiError;

/// Hashes and verifies passwords. `fast` selects the minimal parameters (m=8 KiB, t=1)
/// meant for test suites only; otherwise argon2's defaults (Argon2id, m=19 MiB, t=2).
#[derive(Clone)]
pub struct Passwords {
    fast: bool,
    /// A hash of a random password, verified against when an e-mail is unknown so that
    /// a login takes as long whether or not the account exists.
    dummy: Arc<OnceLock<String>>,
    /// Hashes running at once. Each argon2 hash holds its memory cost (19 MiB by default)
    /// for its duration: unbounded, 200 simultaneous logins took the gateway to 3.2 GiB.
    slots: Arc<tokio::sync::Semaphore>,
}

/// Hashes at once: the cores, plus one so a core never waits for a job.
fn hashing_slots() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        + 1
}

impl Passwords {
    pub fn new(fast: bool) -> Self {
        Passwords {
            fast,
            dummy: Arc::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(hashing_slots())),
        }
    }

    fn argon(fast: bool) -> Argon2<'static> {
        if fast {
            match Params::new(8, 1, 1, None) {
                Ok(p) => Argon2::new(Algorithm::Argon2id, Version::V0x13, p),
                Err(_) => Argon2::default(),
            }
        } else {
            Argon2::default()
        }
    }

    fn hash_now(fast: bool, password: &str) -> Result<String, ApiError> {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Self::argon(fast)
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::internal(format!("hashing a password: {e}")))
    }

    /// The PHC string of a new hash of `password`.
    pub async fn hash(&self, password: SecretString) -> Result<String, ApiError> {
        let fast = self.fast;
        let _slot = self.slots.acquire().await.map_err(ApiError::internal)?;
        tokio::task::spawn_blocking(move || Self::hash_now(fast, password.expose_secret()))
            .await
            .map_err(ApiError::internal)?
    }

    /// Whether `password` matches the stored PHC string `hash` (its own parameters are
    /// used). `None` checks against a dummy hash and answers false, taking as long.
    pub async fn verify(
        &self,
        hash: Option<String>,
        password: SecretString,
    ) -> Result<bool, ApiError> {
        let fast = self.fast;
        let dummy = self.dummy.clone();
        let _slot = self.slots.acquire().await.map_err(ApiError::internal)?;
        tokio::task::spawn_blocking(move || {
            let (stored, real) = match &hash {
                Some(h) => (h.as_str(), true),
                None => {
                    let d = dummy.get_or_init(|| {
                        Self::hash_now(fast, &uuid::Uuid::now_v7().to_string()).unwrap_or_default()
                    });
                    (d.as_str(), false)
                }
            };
            let Ok(parsed) = PasswordHash::new(stored) else {
                if real {
                    tracing::warn!("a stored password hash is not a PHC string");
                }
                return false;
            };
            let ok = Argon2::default()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok();
            ok && real
        })
        .await
        .map_err(ApiError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let p = Passwords::new(true);
        let h = p.hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("correct horse"));
        assert!(p
            .verify(Some(h.clone()), "correct horse".into())
            .await
            .unwrap());
        assert!(!p.verify(Some(h), "wrong horse".into()).await.unwrap());
        assert!(!p.verify(None, "correct horse".into()).await.unwrap());
        assert!(!p.verify(Some("garbage".into()), "x".into()).await.unwrap());
    }
}
