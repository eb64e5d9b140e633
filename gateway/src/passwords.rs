//! Password hashing with argon2id, at the gateway: plain passwords never travel over NATS
//! or reach a log.
//!
//! Hashing is CPU-bound and holds its memory cost (19 MiB by default) for its duration,
//! so it runs on a few dedicated threads (the cores, plus one), each owning one reused
//! block buffer: the gateway's memory for hashing is fixed at start-up whatever the
//! number of logins at once. Jobs wait in a bounded queue; when it is full the request
//! is answered 503 `overloaded` with `Retry-After` instead of growing the queue.
//!
//! NOTE: the buffers are reused on purpose. With `spawn_blocking` and a fresh 19 MiB
//! allocation per hash, glibc's malloc kept the freed blocks in per-thread arenas (its
//! mmap threshold grows after the first large free), and 200 logins took the gateway's
//! peak to 804 MiB although at most three hashes ran at once.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use streams::codes::ErrorCode;
use tokio::sync::oneshot;

use crate::error::ApiError;

/// Hashes waiting for a thread before new ones are refused.
const QUEUE: usize = 512;

/// Hashes and verifies passwords. `fast` selects the minimal parameters (m=8 KiB, t=1)
/// meant for test suites only; otherwise argon2's defaults (Argon2id, m=19 MiB, t=2).
#[derive(Clone)]
pub struct Passwords {
    jobs: SyncSender<Job>,
}

struct Job {
    work: Work,
    done: oneshot::Sender<Result<Answer, String>>,
}

enum Work {
    Hash(SecretString),
    /// The stored PHC string (`None`: an unknown account, checked against a dummy).
    Verify(Option<String>, SecretString),
}

enum Answer {
    Hashed(String),
    Verified(bool),
}

/// Threads hashing at once: the cores, plus one so a core never waits for a job.
fn hashing_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        + 1
}

fn params(fast: bool) -> Params {
    if fast {
        Params::new(8, 1, 1, None).unwrap_or_default()
    } else {
        Params::default()
    }
}

/// One hashing thread's state: its reused blocks.
struct Hasher {
    fast: bool,
    blocks: Vec<Block>,
    dummy: Arc<OnceLock<String>>,
}

impl Hasher {
    fn blocks(&mut self, p: &Params) -> Result<&mut [Block], String> {
        let n = p.block_count();
        // Our own hashes all share one cost; a larger stored cost is refused rather than
        // letting a stored string decide how much memory a login takes.
        if n > params(false)
            .block_count()
            .max(params(self.fast).block_count())
        {
            return Err(format!("a stored hash asks for {n} KiB"));
        }
        if self.blocks.len() < n {
            self.blocks.resize(n, Block::default());
        }
        Ok(&mut self.blocks[..n])
    }

    fn compute(
        &mut self,
        algorithm: Algorithm,
        version: Version,
        p: &Params,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), String> {
        let argon = Argon2::new(algorithm, version, p.clone());
        let blocks = self.blocks(p)?;
        argon
            .hash_password_into_with_memory(password, salt, out, blocks)
            .map_err(|e| e.to_string())
    }

    fn hash(&mut self, password: &str) -> Result<String, String> {
        let p = params(self.fast);
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let mut raw = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut raw).map_err(|e| e.to_string())?;
        let mut out = vec![0u8; p.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
        self.compute(
            Algorithm::Argon2id,
            Version::V0x13,
            &p,
            password.as_bytes(),
            salt_bytes,
            &mut out,
        )?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&p).map_err(|e| e.to_string())?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
        };
        Ok(phc.to_string())
    }

    fn check(&mut self, stored: &str, password: &str) -> Result<bool, String> {
        let parsed = PasswordHash::new(stored).map_err(|e| e.to_string())?;
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| e.to_string())?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let p = Params::try_from(&parsed).map_err(|e| e.to_string())?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err("a stored hash has no salt or no output".into());
        };
        let mut raw = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut raw).map_err(|e| e.to_string())?;
        let mut out = vec![0u8; expected.len()];
        self.compute(
            algorithm,
            version,
            &p,
            password.as_bytes(),
            salt_bytes,
            &mut out,
        )?;
        // Output's equality is constant-time.
        Ok(Output::new(&out).map_err(|e| e.to_string())? == expected)
    }

    fn verify(&mut self, stored: Option<&str>, password: &str) -> Result<bool, String> {
        match stored {
            Some(h) => match self.check(h, password) {
                Ok(ok) => Ok(ok),
                Err(e) => {
                    tracing::warn!(error = %e, "a stored password hash is not usable");
                    Ok(false)
                }
            },
            None => {
                let dummy = match self.dummy.get() {
                    Some(d) => d.clone(),
                    None => {
                        let d = self.hash(&uuid::Uuid::now_v7().to_string())?;
                        self.dummy.get_or_init(|| d).clone()
                    }
                };
                // As long as a real check; the answer is false whatever it finds.
                let _ = self.check(&dummy, password);
                Ok(false)
            }
        }
    }

    fn serve(mut self, jobs: Arc<Mutex<Receiver<Job>>>) {
        loop {
            let job = {
                let Ok(rx) = jobs.lock() else { return };
                match rx.recv() {
                    Ok(j) => j,
                    Err(_) => return,
                }
            };
            let answer = match job.work {
                Work::Hash(pw) => self.hash(pw.expose_secret()).map(Answer::Hashed),
                Work::Verify(stored, pw) => self
                    .verify(stored.as_deref(), pw.expose_secret())
                    .map(Answer::Verified),
            };
            let _ = job.done.send(answer);
        }
    }
}

impl Passwords {
    pub fn new(fast: bool) -> Self {
        let (tx, rx) = sync_channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let dummy = Arc::new(OnceLock::new());
        for i in 0..hashing_threads() {
            let hasher = Hasher {
                fast,
                blocks: Vec::new(),
                dummy: dummy.clone(),
            };
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || hasher.serve(rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "starting a password hashing thread");
            }
        }
        Passwords { jobs: tx }
    }

    async fn run(&self, work: Work) -> Result<Answer, ApiError> {
        let (done, answer) = oneshot::channel();
        match self.jobs.try_send(Job { work, done }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(ApiError::new(
                    ErrorCode::Overloaded,
                    "too many sign-ins at once, try again shortly",
                ))
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(ApiError::internal("the password hashing threads stopped"))
            }
        }
        answer
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| ApiError::internal(format!("hashing a password: {e}")))
    }

    /// The PHC string of a new hash of `password`.
    pub async fn hash(&self, password: SecretString) -> Result<String, ApiError> {
        match self.run(Work::Hash(password)).await? {
            Answer::Hashed(h) => Ok(h),
            Answer::Verified(_) => Err(ApiError::internal("a hash job answered a check")),
        }
    }

    /// Whether `password` matches the stored PHC string `hash` (its own parameters are
    /// used). `None` checks against a dummy hash and answers false, taking as long.
    pub async fn verify(
        &self,
        hash: Option<String>,
        password: SecretString,
    ) -> Result<bool, ApiError> {
        match self.run(Work::Verify(hash, password)).await? {
            Answer::Verified(ok) => Ok(ok),
            Answer::Hashed(_) => Err(ApiError::internal("a check job answered a hash")),
        }
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

    #[test]
    fn hashes_made_with_reused_blocks_are_standard_phc_strings() {
        // A hash of ours verifies with the argon2 crate's own verifier, and one made by
        // that crate verifies with ours: the reused buffers change nothing in the format.
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let mut h = Hasher {
            fast: false,
            blocks: Vec::new(),
            dummy: Arc::default(),
        };
        let ours = h.hash("correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = Argon2::default()
            .hash_password(b"battery staple", &salt)
            .unwrap()
            .to_string();
        assert!(h.check(&theirs, "battery staple").unwrap());
        assert!(!h.check(&theirs, "battery stapler").unwrap());
        // The blocks were sized once, for argon2's default cost.
        assert_eq!(h.blocks.len(), Params::default().block_count());
    }
}
