//! The MongoDB store: collections, start-up index creation, and the conversion of stored
//! documents to API JSON.
//!
//! NOTE: on FerretDB v1 (SQLite backend) only a lone `_id` equality is pushed down to SQL;
//! every other filter is a full scan filtered in memory. Hot paths therefore read and write
//! by `_id` alone.

pub(crate) mod batch;
pub(crate) mod indexes;
pub(crate) mod leases;
pub(crate) mod pg_indexes;
pub(crate) mod repo;

use bson::{doc, Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection, Database};
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("mongodb: {0}")]
    Mongo(#[from] mongodb::error::Error),
    #[error("bson: {0}")]
    Bson(String),
    /// A live view (see `streams::live`) could not answer in time.
    #[error("{0}")]
    Unavailable(String),
}

impl From<bson::ser::Error> for StoreError {
    fn from(e: bson::ser::Error) -> Self {
        StoreError::Bson(e.to_string())
    }
}
impl From<bson::de::Error> for StoreError {
    fn from(e: bson::de::Error) -> Self {
        StoreError::Bson(e.to_string())
    }
}

pub(crate) mod names {
    pub(crate) const USERS: &str = "users";
    pub(crate) const EVENTS: &str = "events";
    pub(crate) const SEATS: &str = "seats";
    pub(crate) const SEAT_HOLDS: &str = "seat_holds";
    pub(crate) const BOOKINGS: &str = "bookings";
    pub(crate) const BOOKING_SEATS: &str = "booking_seats";
    pub(crate) const PAYMENTS: &str = "payments";
    pub(crate) const REFUNDS: &str = "refunds";
    pub(crate) const TICKETS: &str = "tickets";
    pub(crate) const QR_CODES: &str = "qr_codes";
    pub(crate) const TICKET_SCANS: &str = "ticket_scans";
    pub(crate) const NOTIFICATIONS: &str = "notifications";
    pub(crate) const AUDIT_LOGS: &str = "audit_logs";
    pub(crate) const ANALYTICS: &str = "analytics";
    /// Not in the data model: revoked tickets for gates' offline lists, a projection of
    /// `booking.cancelled` events (see `crate::tickets::revocations`).
    pub(crate) const TICKET_REVOCATIONS: &str = "ticket_revocations";

    /// Every collection of the data model (the repository's test checks each has its
    /// entity).
    #[cfg(test)]
    pub(crate) const ALL: &[&str] = &[
        USERS,
        EVENTS,
        SEATS,
        SEAT_HOLDS,
        BOOKINGS,
        BOOKING_SEATS,
        PAYMENTS,
        REFUNDS,
        TICKETS,
        QR_CODES,
        TICKET_SCANS,
        NOTIFICATIONS,
        AUDIT_LOGS,
        ANALYTICS,
    ];
}

#[derive(Clone)]
pub struct Store {
    db: Database,
}

impl Store {
    /// Connects with at most `max_pool` connections (a `maxPoolSize` in the URI wins).
    ///
    /// NOTE: few connections on purpose: FerretDB's SQLite backend has one writer, and
    /// its busy handler is not fair: with dozens of writers waiting, some waited past the
    /// 10 s busy timeout (SQLITE_BUSY) while others kept winning. Queueing in the
    /// driver's pool instead is first come, first served.
    pub async fn connect(uri: &str, db: &str, max_pool: u32) -> Result<Self, StoreError> {
        let mut opts = ClientOptions::parse(uri).await?;
        opts.app_name = Some("ticketing-workers".into());
        opts.max_pool_size = Some(opts.max_pool_size.unwrap_or(max_pool.max(1)));
        opts.connect_timeout = Some(std::time::Duration::from_secs(5));
        opts.server_selection_timeout = Some(std::time::Duration::from_secs(5));
        let client = Client::with_options(opts)?;
        Ok(Store {
            db: client.database(db),
        })
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn col(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.run_command(doc! {"ping": 1}).await?;
        Ok(())
    }

    /// True on MongoDB; false on FerretDB (no TTL indexes there).
    pub async fn supports_ttl(&self) -> bool {
        match self.db.run_command(doc! {"buildInfo": 1}).await {
            Ok(info) => {
                !info.contains_key("ferretdbVersion") && info.get_document("ferretdb").is_err()
            }
            Err(_) => false,
        }
    }

    /// Creates every collection's indexes and unique constraints (idempotent).
    pub async fn ensure_indexes(&self) -> Result<(), StoreError> {
        let ttl = self.supports_ttl().await;
        for c in indexes::all(ttl) {
            if c.indexes.is_empty() {
                continue;
            }
            // NOTE: one index per `createIndexes`: FerretDB v1.24 panics ("slice bounds out
            // of range") on a multi-index call when some of the indexes exist already.
            for ix in c.indexes {
                let keys = ix.keys.clone();
                if let Err(e) = self.col(c.collection).create_index(ix).await {
                    tracing::error!(collection = c.collection, ?keys, error = %e, "index not created");
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }
}

/// True when the error is a duplicate key (E11000) on insert.
pub(crate) fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::InsertMany(f) => f
            .write_errors
            .as_ref()
            .is_some_and(|ws| ws.iter().all(|w| w.code == 11000)),
        ErrorKind::Command(c) => c.code == 11000,
        _ => false,
    }
}

/// Fields never sent to clients.
const PRIVATE_FIELDS: &[&str] = &[
    "passwordHash",
    "verificationToken",
    "resetPasswordToken",
    "resetPasswordExpiry",
    "commandId",
];

/// A stored document as API JSON: `_id` becomes `id`, ObjectIds hex strings, dates RFC 3339
/// UTC, private fields dropped.
pub(crate) fn api_json(d: &Document) -> Value {
    let mut m = Map::new();
    for (k, v) in d {
        if PRIVATE_FIELDS.contains(&k.as_str()) {
            continue;
        }
        let key = if k == "_id" {
            "id".to_string()
        } else {
            k.clone()
        };
        m.insert(key, bson_to_json(v));
    }
    Value::Object(m)
}

pub(crate) fn bson_to_json(v: &Bson) -> Value {
    match v {
        Bson::ObjectId(o) => Value::String(o.to_hex()),
        Bson::DateTime(d) => Value::String(d.try_to_rfc3339_string().unwrap_or_default()),
        Bson::Document(d) => {
            let mut m = Map::new();
            for (k, v) in d {
                m.insert(k.clone(), bson_to_json(v));
            }
            Value::Object(m)
        }
        Bson::Array(a) => Value::Array(a.iter().map(bson_to_json).collect()),
        Bson::Int32(i) => Value::from(*i),
        Bson::Int64(i) => Value::from(*i),
        Bson::Double(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Bson::String(s) => Value::String(s.clone()),
        Bson::Boolean(b) => Value::Bool(*b),
        Bson::Null | Bson::Undefined => Value::Null,
        other => Value::String(other.to_string()),
    }
}

/// Decodes a stored document into its type (an error, never a default, when it does not).
pub(crate) fn from_doc<T: serde::de::DeserializeOwned>(d: &Document) -> Result<T, StoreError> {
    Ok(bson::from_document(d.clone())?)
}

/// Converts a serde value into a document.
pub(crate) fn to_doc<T: serde::Serialize>(v: &T) -> Result<Document, StoreError> {
    Ok(bson::to_document(v)?)
}

/// One page of `filter` in `sort` order as `{items, page, limit, total}`: `page` counts
/// from 1, `limit` is held to 1..=100, and each document goes through `to_json`.
/// Longest a paged read may run in the database: under the gateway's query timeout (5 s),
/// after which nobody reads the answer.
pub(crate) const READ_MAX_TIME: std::time::Duration = std::time::Duration::from_secs(4);

pub(crate) async fn paged(
    col: &Collection<Document>,
    filter: Document,
    sort: Document,
    page: u32,
    limit: u32,
    to_json: fn(&Document) -> Value,
) -> Result<Value, StoreError> {
    use futures::TryStreamExt;
    let limit = limit.clamp(1, 100);
    let page = page.max(1);
    // Bounded: a read the gateway stopped waiting for must not keep the database busy
    // (FerretDB sorts every match in memory before it skips and limits).
    let total = col
        .count_documents(filter.clone())
        .max_time(READ_MAX_TIME)
        .await?;
    let opts = mongodb::options::FindOptions::builder()
        .max_time(READ_MAX_TIME)
        .sort(sort)
        .skip(u64::from(page - 1) * u64::from(limit))
        .limit(i64::from(limit))
        .build();
    let items: Vec<Value> = col
        .find(filter)
        .with_options(opts)
        .await?
        .map_ok(|d| to_json(&d))
        .try_collect()
        .await?;
    Ok(serde_json::json!({"items": items, "page": page, "limit": limit, "total": total}))
}
