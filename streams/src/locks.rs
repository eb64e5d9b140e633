//! Seat locks in the `seat-locks` KV bucket: the one guard against double selling.
//!
//! A lock is taken with an expected last sequence of 0 (create) and a per-key TTL; it is
//! released by compare-and-delete on the revision its owner read. Values are the owner's
//! id (a hold id while held).
//!
//! NOTE: we publish to the bucket's subject ourselves instead of calling
//! `Store::create_with_ttl`: on a key whose last entry is a delete marker, async-nats 0.51
//! re-creates it through `update`, which drops the TTL, and a released-then-re-held seat
//! would lose its safety net.

use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::kv::{self, Operation};
use async_nats::jetstream::{self};
use async_nats::HeaderMap;
use bytes::Bytes;

use crate::WireError;

#[derive(Clone)]
pub struct SeatLocks {
    js: jetstream::Context,
    kv: kv::Store,
    bucket: String,
}

/// The outcome of handing a lock from one owner to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transferred {
    /// Now held by the new owner, at this revision.
    Done(u64),
    /// It was already the new owner's (a redelivered command).
    Already(u64),
    /// Neither owner holds it (it expired, or someone else took it).
    Lost,
}

/// The outcome of taking one lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// Taken now, at this revision.
    Taken(u64),
    /// Already held by the same owner (a redelivered command): at this revision.
    AlreadyOurs(u64),
    /// Held by someone else.
    HeldByOther,
}

impl SeatLocks {
    pub fn new(js: jetstream::Context, kv: kv::Store, bucket: String) -> Self {
        SeatLocks { js, kv, bucket }
    }

    pub fn store(&self) -> &kv::Store {
        &self.kv
    }

    async fn put_expecting(
        &self,
        key: &str,
        owner: &str,
        expected: u64,
        ttl: Option<Duration>,
    ) -> Result<Option<u64>, WireError> {
        let mut h = HeaderMap::new();
        h.insert(
            async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            expected.to_string().as_str(),
        );
        if let Some(ttl) = ttl {
            // Whole seconds, at least one (the server's granularity).
            h.insert(
                async_nats::header::NATS_MESSAGE_TTL,
                ttl.as_secs().max(1).to_string().as_str(),
            );
        }
        let subject = format!("$KV.{}.{key}", self.bucket);
        let ack = self
            .js
            .publish_with_headers(subject, h, Bytes::copy_from_slice(owner.as_bytes()))
            .await
            .map_err(WireError::nats)?
            .await;
        match ack {
            Ok(a) => Ok(Some(a.sequence)),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(None),
            Err(e) => Err(WireError::nats(e)),
        }
    }

    /// Writes `value` under `key` whatever was there (the catalog's sale-status keys);
    /// returns the revision.
    pub async fn put(&self, key: &str, value: &str) -> Result<u64, WireError> {
        self.kv
            .put(key, Bytes::copy_from_slice(value.as_bytes()))
            .await
            .map_err(WireError::nats)
    }

    /// Writes `value` under `key` unless the key exists; returns the revision written.
    pub async fn put_if_absent(&self, key: &str, value: &str) -> Result<Option<u64>, WireError> {
        self.put_expecting(key, value, 0, None).await
    }

    /// Takes the lock `key` for `owner` with a TTL, unless someone else holds it.
    pub async fn acquire(
        &self,
        key: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Acquired, WireError> {
        let mut expected = 0;
        // A few rounds: the key may be deleted or expire between our write and our read.
        for _ in 0..4 {
            if let Some(rev) = self.put_expecting(key, owner, expected, Some(ttl)).await? {
                return Ok(Acquired::Taken(rev));
            }
            match self.kv.entry(key).await.map_err(WireError::nats)? {
                Some(e) if e.operation == Operation::Put => {
                    return Ok(if e.value.as_ref() == owner.as_bytes() {
                        Acquired::AlreadyOurs(e.revision)
                    } else {
                        Acquired::HeldByOther
                    });
                }
                // Deleted, purged or expired (a marker): create on top of the marker.
                Some(e) => expected = e.revision,
                None => expected = 0,
            }
        }
        Ok(Acquired::HeldByOther)
    }

    /// Hands the lock `key` from `from` to `to` by an update on the revision `from` holds
    /// (compare-and-swap). `ttl` None makes it permanent (a sold seat).
    pub async fn transfer(
        &self,
        key: &str,
        from: &str,
        to: &str,
        ttl: Option<Duration>,
    ) -> Result<Transferred, WireError> {
        for _ in 0..3 {
            let Some((current, rev)) = self.owner(key).await? else {
                return Ok(Transferred::Lost);
            };
            if current == to {
                return Ok(Transferred::Already(rev));
            }
            if current != from {
                return Ok(Transferred::Lost);
            }
            if let Some(new_rev) = self.put_expecting(key, to, rev, ttl).await? {
                return Ok(Transferred::Done(new_rev));
            }
        }
        Ok(Transferred::Lost)
    }

    /// The current owner and revision of a lock, if it is held.
    pub async fn owner(&self, key: &str) -> Result<Option<(String, u64)>, WireError> {
        match self.kv.entry(key).await.map_err(WireError::nats)? {
            Some(e) if e.operation == Operation::Put => Ok(Some((
                String::from_utf8_lossy(&e.value).into_owned(),
                e.revision,
            ))),
            _ => Ok(None),
        }
    }

    /// Releases the lock if `owner` still holds it (compare-and-delete on the revision).
    /// Returns whether this call released it; releasing a lock that is gone is not an error.
    pub async fn release(&self, key: &str, owner: &str) -> Result<bool, WireError> {
        for _ in 0..3 {
            let Some((current, rev)) = self.owner(key).await? else {
                return Ok(false);
            };
            if current != owner {
                return Ok(false);
            }
            match self.kv.delete_expect_revision(key, Some(rev)).await {
                Ok(()) => return Ok(true),
                // Changed between our read and our delete: look again.
                Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => continue,
                Err(e) => return Err(WireError::nats(e)),
            }
        }
        Ok(false)
    }
}
