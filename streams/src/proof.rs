//! Proof of who sent a command. A command is applied only when a key the workers trust
//! signed it, and only if that key's grant covers the command and the role it claims.
//!
//! - The sender signs the message body exactly as published (Ed25519 over those bytes,
//!   nothing canonicalised: any language can sign what it sends) and puts the key id and
//!   the signature in two headers, [`headers::SIGNER`] and [`headers::SIGNATURE`].
//! - The workers hold the registry of signers ([`Trust`], a JSON file): each key's id,
//!   public key, system, the commands (`<area>.<verb>`) and roles it may use, and, once
//!   rotated out, when it was retired. A retired key stays in the file, so commands and
//!   events stored before its retirement still verify on replay.
//! - "Expired" is measured against the time JetStream stored the message, not the time a
//!   worker reads it: a command signed more than [`MAX_SIGNED_TO_STORED`] before it was
//!   stored (a captured envelope sent again later) is refused, while the same stored
//!   command replayed a month later still verifies.
//!
//! The gateway signs for HTTP users (it authenticated them by their token), the workers
//! sign the commands they fan out, and each other system signs with its own key.

use std::collections::HashMap;
use std::path::Path;

use async_nats::HeaderMap;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::codes::ErrorCode;
use crate::commands::{CommandEnvelope, Issuer};
use crate::headers;

/// How long after signing a command may be stored.
pub const MAX_SIGNED_TO_STORED: Duration = Duration::minutes(2);
/// How far a signer's clock may run ahead of the server's.
pub const MAX_CLOCK_AHEAD: Duration = Duration::seconds(30);

/// What the workers' own key may send: the commands they fan out (an event's
/// cancellation), time out (holds, bookings) or record (a ticket download), in any role
/// (they carry the issuer of the command that caused them).
pub const WORKERS_COMMANDS: &[&str] = &[
    "bookings.cancel",
    "bookings.expire",
    "holds.release",
    "tickets.record-download",
];

/// The grant word for every command or every role.
pub const ANY: &str = "*";
/// The role word of a command with no issuer (registration, password reset...).
pub const ANONYMOUS: &str = "anonymous";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
}

/// A private signing key and its id: `kid:base64(32-byte seed)` in configuration.
#[derive(Clone)]
pub struct CommandSigner {
    kid: String,
    key: SigningKey,
}

impl std::fmt::Debug for CommandSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandSigner")
            .field("kid", &self.kid)
            .finish()
    }
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 64
        && kid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl CommandSigner {
    /// A new random key.
    pub fn generate(kid: &str) -> Result<Self, KeyError> {
        use rand::RngCore;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Self::from_seed(kid, seed)
    }

    pub fn from_seed(kid: &str, seed: [u8; 32]) -> Result<Self, KeyError> {
        if !valid_kid(kid) {
            return Err(KeyError::Invalid(format!(
                "key id {kid:?}: 1 to 64 letters, digits, '-', '_' or '.'"
            )));
        }
        Ok(CommandSigner {
            kid: kid.to_string(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Parses `kid:base64(32-byte seed)`.
    pub fn parse(spec: &str) -> Result<Self, KeyError> {
        let (kid, seed) = spec
            .trim()
            .split_once(':')
            .ok_or_else(|| KeyError::Invalid("a signing key is kid:base64(32-byte seed)".into()))?;
        let seed: [u8; 32] = STANDARD
            .decode(seed.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                KeyError::Invalid(format!(
                    "signing key {kid}: the seed is not base64 of 32 bytes"
                ))
            })?;
        Self::from_seed(kid.trim(), seed)
    }

    /// The configuration form, `kid:base64(seed)`: a secret.
    pub fn to_spec(&self) -> String {
        format!("{}:{}", self.kid, STANDARD.encode(self.key.to_bytes()))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key, base64 (what the registry holds).
    pub fn public_key(&self) -> String {
        STANDARD.encode(self.key.verifying_key().to_bytes())
    }

    /// The signature of `body`, base64.
    pub fn sign(&self, body: &[u8]) -> String {
        STANDARD.encode(self.key.sign(body).to_bytes())
    }

    /// Signs `body` and sets the two proof headers.
    pub fn sign_into(&self, h: &mut HeaderMap, body: &[u8]) {
        h.insert(headers::SIGNER, self.kid.as_str());
        h.insert(headers::SIGNATURE, self.sign(body).as_str());
    }
}

/// One trusted key in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignerEntry {
    /// The key id the sender puts in [`headers::SIGNER`].
    pub kid: String,
    /// The system the key belongs to (`gateway`, `workers`, `boxoffice`...).
    pub system: String,
    /// The Ed25519 public key, base64 of 32 bytes.
    pub public_key: String,
    /// The commands the key may send, as `<area>.<verb>` (`holds.create`), or `*`.
    pub commands: Vec<String>,
    /// The issuer roles it may claim (`user`, `staff`, `admin`, `anonymous`), or `*`.
    pub roles: Vec<String>,
    /// Set when the key was rotated out: commands stored after it are refused, those
    /// stored before still verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<DateTime<Utc>>,
    /// What the ids of this key's commands must start with (`boxoffice-`): the id is the
    /// idempotency key, so a system can neither take another's ids first nor read the
    /// results kept under them. Unset for the gateway and the workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_prefix: Option<String>,
}

impl SignerEntry {
    /// The entry for `signer` with the given grant.
    pub fn new(signer: &CommandSigner, system: &str, commands: &[&str], roles: &[&str]) -> Self {
        SignerEntry {
            kid: signer.kid().to_string(),
            system: system.to_string(),
            public_key: signer.public_key(),
            commands: commands.iter().map(|s| s.to_string()).collect(),
            roles: roles.iter().map(|s| s.to_string()).collect(),
            retired_at: None,
            id_prefix: None,
        }
    }

    /// An entry for another system: its command ids must start with `<system>-`.
    pub fn for_system(
        signer: &CommandSigner,
        system: &str,
        commands: &[&str],
        roles: &[&str],
    ) -> Self {
        SignerEntry {
            id_prefix: Some(format!("{system}-")),
            ..Self::new(signer, system, commands, roles)
        }
    }

    fn grants(list: &[String], word: &str) -> bool {
        list.iter().any(|g| g == ANY || g == word)
    }

    /// Whether this key, at `at`, may send `grant` (`holds.create`, `queries.me`) in the
    /// role `issuer` claims: not retired by then, and both inside its grant.
    fn allows(
        &self,
        at: DateTime<Utc>,
        grant: String,
        issuer: Option<&Issuer>,
    ) -> Result<(), Refusal> {
        if let Some(retired_at) = self.retired_at.filter(|r| at > *r) {
            return Err(Refusal::Retired {
                kid: self.kid.clone(),
                retired_at,
            });
        }
        let role = issuer.map_or(ANONYMOUS, |i| i.role.as_str());
        if !Self::grants(&self.commands, &grant) || !Self::grants(&self.roles, role) {
            return Err(Refusal::NotGranted {
                system: self.system.clone(),
                kid: self.kid.clone(),
                command: grant,
                role: role.to_string(),
            });
        }
        Ok(())
    }
}

/// The registry file: `{"signers": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub signers: Vec<SignerEntry>,
}

/// Why a command's proof was not accepted. Each maps to one error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the command carries no signature (headers {} and {})",
        headers::SIGNER,
        headers::SIGNATURE
    )]
    Unsigned,
    #[error("no trusted key has the id {0:?}")]
    UnknownSigner(String),
    #[error("the signature does not match the message body for key {0:?}")]
    BadSignature(String),
    #[error("key {kid:?} was retired at {retired_at}; the command was stored after that")]
    Retired {
        kid: String,
        retired_at: DateTime<Utc>,
    },
    #[error("the command was signed at {issued_at} and stored at {stored_at}: more than {} s apart", MAX_SIGNED_TO_STORED.num_seconds())]
    Expired {
        issued_at: DateTime<Utc>,
        stored_at: DateTime<Utc>,
    },
    #[error("system {system:?} (key {kid:?}) may not send {command} as {role}")]
    NotGranted {
        system: String,
        kid: String,
        command: String,
        role: String,
    },
    #[error("the command {claimed} arrived on the subject of {subject}")]
    WrongSubject { claimed: String, subject: String },
    #[error("system {system:?} must give its commands ids starting with {prefix:?}")]
    IdOutsidePrefix { system: String, prefix: String },
}

impl Refusal {
    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::Unsigned => ErrorCode::CommandUnsigned,
            Refusal::UnknownSigner(_) => ErrorCode::CommandSignerUnknown,
            Refusal::BadSignature(_) => ErrorCode::CommandSignatureInvalid,
            Refusal::Retired { .. } | Refusal::Expired { .. } => ErrorCode::CommandExpired,
            Refusal::NotGranted { .. }
            | Refusal::WrongSubject { .. }
            | Refusal::IdOutsidePrefix { .. } => ErrorCode::CommandNotGranted,
        }
    }
}

struct Trusted {
    entry: SignerEntry,
    key: VerifyingKey,
}

/// The keys the workers trust, by key id.
#[derive(Default)]
pub struct Trust {
    by_kid: HashMap<String, Trusted>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_kid.keys()).finish()
    }
}

impl Trust {
    pub fn new(registry: Registry) -> Result<Self, KeyError> {
        let mut by_kid = HashMap::new();
        for entry in registry.signers {
            let bytes: [u8; 32] = STANDARD
                .decode(entry.public_key.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    KeyError::Invalid(format!(
                        "signer {}: publicKey is not base64 of 32 bytes",
                        entry.kid
                    ))
                })?;
            let key = VerifyingKey::from_bytes(&bytes)
                .map_err(|e| KeyError::Invalid(format!("signer {}: {e}", entry.kid)))?;
            if !valid_kid(&entry.kid) {
                return Err(KeyError::Invalid(format!(
                    "signer id {:?} is not valid",
                    entry.kid
                )));
            }
            if by_kid.contains_key(&entry.kid) {
                return Err(KeyError::Invalid(format!(
                    "signer {} is listed twice",
                    entry.kid
                )));
            }
            by_kid.insert(entry.kid.clone(), Trusted { entry, key });
        }
        Ok(Trust { by_kid })
    }

    pub fn from_json(text: &str) -> Result<Self, KeyError> {
        let registry: Registry = serde_json::from_str(text)
            .map_err(|e| KeyError::Invalid(format!("signers registry: {e}")))?;
        Self::new(registry)
    }

    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyError::Invalid(format!("signers registry {}: {e}", path.display())))?;
        Self::from_json(&text)
    }

    /// The registry entry of a key id.
    pub fn entry(&self, kid: &str) -> Option<&SignerEntry> {
        self.by_kid.get(kid).map(|t| &t.entry)
    }

    pub fn len(&self) -> usize {
        self.by_kid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_kid.is_empty()
    }

    /// Checks the signature headers against the exact body: which key signed it.
    pub fn verify(&self, h: Option<&HeaderMap>, body: &[u8]) -> Result<&SignerEntry, Refusal> {
        let get = |name: &str| h.and_then(|h| h.get(name)).map(|v| v.as_str());
        let (Some(kid), Some(sig)) = (get(headers::SIGNER), get(headers::SIGNATURE)) else {
            return Err(Refusal::Unsigned);
        };
        let trusted = self
            .by_kid
            .get(kid)
            .ok_or_else(|| Refusal::UnknownSigner(kid.to_string()))?;
        let sig = STANDARD
            .decode(sig.trim())
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or_else(|| Refusal::BadSignature(kid.to_string()))?;
        trusted
            .key
            .verify(body, &sig)
            .map_err(|_| Refusal::BadSignature(kid.to_string()))?;
        Ok(&trusted.entry)
    }

    /// Verifies a query (core request-reply, never stored): the signature, then the key's
    /// grant for `queries.<name>` (or `*`) and the claimed role.
    pub fn check_query(
        &self,
        h: Option<&HeaderMap>,
        body: &[u8],
        name: &str,
        issuer: Option<&Issuer>,
    ) -> Result<&SignerEntry, Refusal> {
        let signer = self.verify(h, body)?;
        signer.allows(Utc::now(), format!("queries.{name}"), issuer)?;
        Ok(signer)
    }

    /// Verifies a command: the signature, then the key's grant for the command (which
    /// must be the one its subject names) and the claimed role, then the times against
    /// `stored_at`, when JetStream stored it.
    pub fn check_command(
        &self,
        h: Option<&HeaderMap>,
        body: &[u8],
        subject: &str,
        env: &CommandEnvelope,
        stored_at: DateTime<Utc>,
    ) -> Result<&SignerEntry, Refusal> {
        let signer = self.verify(h, body)?;
        let (area, verb) = env.command.route();
        let command = format!("{}.{verb}", area.as_str());
        signer.allows(stored_at, command.clone(), env.issuer.as_ref())?;
        // Exactly `<root>.cmd.<area>.<verb>` (the root is one token).
        if subject.split('.').count() != 4 || !subject.ends_with(&format!(".cmd.{command}")) {
            return Err(Refusal::WrongSubject {
                claimed: command,
                subject: subject.to_string(),
            });
        }
        if let Some(prefix) = &signer.id_prefix {
            if !env.id.starts_with(prefix.as_str()) {
                return Err(Refusal::IdOutsidePrefix {
                    system: signer.system.clone(),
                    prefix: prefix.clone(),
                });
            }
        }
        if stored_at - env.issued_at > MAX_SIGNED_TO_STORED
            || env.issued_at - stored_at > MAX_CLOCK_AHEAD
        {
            return Err(Refusal::Expired {
                issued_at: env.issued_at,
                stored_at,
            });
        }
        Ok(signer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{new_command_id, Command, CreateHold, EventRef, Issuer, RequestContext};
    use domain::user::Role;
    use domain::ObjectId;

    fn hold_env(role: Role, issued_at: DateTime<Utc>) -> CommandEnvelope {
        CommandEnvelope {
            id: format!("boxoffice-{}", new_command_id()),
            issuer: Some(Issuer {
                user_id: ObjectId::new(),
                role,
            }),
            issued_at,
            context: RequestContext::default(),
            command: Command::CreateHold(CreateHold {
                event_id: ObjectId::new(),
                seat_ids: vec![ObjectId::new()],
            }),
        }
    }

    fn signed(signer: &CommandSigner, env: &CommandEnvelope) -> (HeaderMap, Vec<u8>) {
        let body = serde_json::to_vec(env).unwrap();
        let mut h = HeaderMap::new();
        signer.sign_into(&mut h, &body);
        (h, body)
    }

    const HOLDS: &str = "ticketing.cmd.holds.create";

    fn setup() -> (CommandSigner, CommandSigner, Trust) {
        let gw = CommandSigner::generate("gateway-1").unwrap();
        let bo = CommandSigner::generate("boxoffice-1").unwrap();
        let trust = Trust::new(Registry {
            signers: vec![
                SignerEntry::new(&gw, "gateway", &[ANY], &[ANY]),
                SignerEntry::for_system(&bo, "boxoffice", &["holds.create"], &["user"]),
            ],
        })
        .unwrap();
        (gw, bo, trust)
    }

    #[test]
    fn a_signed_command_inside_its_grant_is_accepted() {
        let (gw, bo, trust) = setup();
        let now = Utc::now();
        let env = hold_env(Role::User, now);
        for s in [&gw, &bo] {
            let (h, body) = signed(s, &env);
            let who = trust
                .check_command(Some(&h), &body, HOLDS, &env, now)
                .unwrap();
            assert_eq!(who.kid, s.kid());
        }
    }

    #[test]
    fn missing_forged_unknown_and_changed_proofs_are_refused() {
        let (gw, _, trust) = setup();
        let now = Utc::now();
        let env = hold_env(Role::User, now);
        let body = serde_json::to_vec(&env).unwrap();
        assert_eq!(
            trust.check_command(None, &body, HOLDS, &env, now),
            Err(Refusal::Unsigned)
        );
        // A valid signature over other bytes (the payload changed after signing).
        let (h, _) = signed(&gw, &hold_env(Role::User, now));
        assert!(matches!(
            trust.check_command(Some(&h), &body, HOLDS, &env, now),
            Err(Refusal::BadSignature(_))
        ));
        // A key nobody registered, even with the gateway's key id.
        let stranger = CommandSigner::generate("gateway-1").unwrap();
        let (h, body) = signed(&stranger, &env);
        assert!(matches!(
            trust.check_command(Some(&h), &body, HOLDS, &env, now),
            Err(Refusal::BadSignature(_))
        ));
        let stranger = CommandSigner::generate("stranger-1").unwrap();
        let (h, body) = signed(&stranger, &env);
        assert_eq!(
            trust.check_command(Some(&h), &body, HOLDS, &env, now),
            Err(Refusal::UnknownSigner("stranger-1".into()))
        );
        let mut h = HeaderMap::new();
        h.insert(headers::SIGNER, "gateway-1");
        h.insert(headers::SIGNATURE, "not base64!");
        assert!(matches!(
            trust.check_command(Some(&h), &body, HOLDS, &env, now),
            Err(Refusal::BadSignature(_))
        ));
    }

    #[test]
    fn a_system_is_held_to_its_commands_roles_and_subject() {
        let (_, bo, trust) = setup();
        let now = Utc::now();
        let admin = hold_env(Role::Admin, now);
        let (h, body) = signed(&bo, &admin);
        let refused = trust.check_command(Some(&h), &body, HOLDS, &admin, now);
        assert!(matches!(refused, Err(Refusal::NotGranted { ref role, .. }) if role == "admin"));
        assert_eq!(refused.unwrap_err().code(), ErrorCode::CommandNotGranted);

        let cancel = CommandEnvelope {
            command: Command::CancelEvent(EventRef {
                event_id: ObjectId::new(),
            }),
            ..hold_env(Role::User, now)
        };
        let (h, body) = signed(&bo, &cancel);
        assert!(matches!(
            trust.check_command(Some(&h), &body, "ticketing.cmd.events.cancel", &cancel, now),
            Err(Refusal::NotGranted { ref command, .. }) if command == "events.cancel"
        ));
        // A granted command sent on another command's subject.
        let env = hold_env(Role::User, now);
        let (h, body) = signed(&bo, &env);
        assert!(matches!(
            trust.check_command(Some(&h), &body, "ticketing.cmd.events.cancel", &env, now),
            Err(Refusal::WrongSubject { .. })
        ));
        // Nor on a longer subject that merely ends like its own.
        assert!(matches!(
            trust.check_command(
                Some(&h),
                &body,
                "ticketing.cmd.events.cmd.holds.create",
                &env,
                now
            ),
            Err(Refusal::WrongSubject { .. })
        ));
        // An id outside the system's prefix (another's idempotency key).
        let other = CommandEnvelope {
            id: "idem-0123".into(),
            ..hold_env(Role::User, now)
        };
        let (h, body) = signed(&bo, &other);
        assert!(matches!(
            trust.check_command(Some(&h), &body, HOLDS, &other, now),
            Err(Refusal::IdOutsidePrefix { .. })
        ));
    }

    #[test]
    fn expiry_is_measured_against_the_stored_time_and_retired_keys_still_verify_old_commands() {
        let (gw, _, _) = setup();
        let signed_at = Utc::now() - Duration::days(30);
        let env = hold_env(Role::User, signed_at);
        let (h, body) = signed(&gw, &env);
        let mut entry = SignerEntry::new(&gw, "gateway", &[ANY], &[ANY]);
        entry.retired_at = Some(signed_at + Duration::days(1));
        let trust = Trust::new(Registry {
            signers: vec![entry],
        })
        .unwrap();
        // Replayed a month later: stored a second after signing, before retirement.
        let stored = signed_at + Duration::seconds(1);
        assert!(trust
            .check_command(Some(&h), &body, HOLDS, &env, stored)
            .is_ok());
        // Stored long after signing: a captured envelope sent again.
        let late = signed_at + Duration::minutes(10);
        assert!(matches!(
            trust.check_command(Some(&h), &body, HOLDS, &env, late),
            Err(Refusal::Expired { .. })
        ));
        // Stored after the key was retired.
        let after = signed_at + Duration::days(2);
        let env2 = hold_env(Role::User, after);
        let (h2, body2) = signed(&gw, &env2);
        assert!(matches!(
            trust.check_command(Some(&h2), &body2, HOLDS, &env2, after),
            Err(Refusal::Retired { .. })
        ));
    }

    #[test]
    fn keys_round_trip_through_their_configuration_form() {
        let k = CommandSigner::generate("workers-1").unwrap();
        let back = CommandSigner::parse(&k.to_spec()).unwrap();
        assert_eq!(back.public_key(), k.public_key());
        assert!(CommandSigner::parse("nokid").is_err());
        assert!(CommandSigner::parse("bad id:AAAA").is_err());
        assert!(!format!("{k:?}").contains(&k.to_spec()[10..]));
    }
}
