//! GIN expression indexes on FerretDB's PostgreSQL tables, for the equality filters the
//! hot paths use.
//!
//! FerretDB v1.24 on PostgreSQL keeps each collection in a table with one `jsonb` column
//! (`_jsonb`) and pushes a top-level equality down as `_jsonb->'field' @> 'value'`. The
//! indexes `createIndexes` makes are btree indexes on `(_jsonb->'field')`, which serve `=`
//! but not `@>`: every filtered read, and every `update_one` by `_id` (FerretDB first
//! selects the document with `_jsonb->'_id' @> ...`), is a sequential scan of the table.
//! Measured on the dev database during an on-sale storm: 39 ms per seat update with
//! 15,000 seats, and PostgreSQL used more CPU than every other process together. A GIN
//! index with `jsonb_path_ops` on the same expression serves `@>`.
//!
//! Which fields: `_id` of every collection, and every field of the index plan
//! ([`super::indexes`]) that is filtered by equality (dates and times are ranges and
//! sorts, which GIN does not serve). Tables are found through FerretDB's own metadata
//! table (`<database>._ferretdb_database_metadata`: collection name -> table name), after
//! `ensure_indexes` has made every collection exist. Idempotent (`IF NOT EXISTS`); a
//! concurrent creation by another process is not an error.
//!
//! NOTE: this reaches under FerretDB, so it is written against v1.24.2's layout (pinned
//! in scripts/servers.sh) and does nothing on MongoDB, where `TICKETING_PG_URL` is unset.

use std::collections::BTreeSet;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::indexes::CollectionIndexes;

/// The fields of one collection that get a GIN index.
pub(crate) fn gin_fields(c: &CollectionIndexes) -> BTreeSet<String> {
    let mut fields = BTreeSet::from(["_id".to_string()]);
    for ix in &c.indexes {
        for key in ix.keys.keys() {
            let ranged = key.ends_with("At")
                || key.ends_with("Date")
                || key == "timestamp"
                || key.ends_with("Until")
                || key.ends_with("Expiry");
            if !ranged && !key.contains('.') {
                fields.insert(key.clone());
            }
        }
    }
    fields
}

/// A PostgreSQL identifier for the index of `field` on `table` (at most 63 bytes).
fn index_name(table: &str, field: &str) -> String {
    let h = hex::encode(&Sha256::digest(format!("{table}.{field}").as_bytes())[..4]);
    let mut base: String = format!("{table}_{field}")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect::<String>()
        .to_ascii_lowercase();
    base.truncate(50);
    format!("{base}_{h}_gin")
}

fn quoted(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Adds the GIN indexes to the tables of `database` (FerretDB's schema of that name).
/// Answers how many indexes it created.
pub(crate) async fn ensure(
    pg_url: &SecretString,
    database: &str,
    plan: &[CollectionIndexes],
) -> anyhow::Result<usize> {
    let (client, connection) =
        tokio_postgres::connect(pg_url.expose_secret(), tokio_postgres::NoTls)
            .await
            .map_err(|e| anyhow::anyhow!("connecting to PostgreSQL (TICKETING_PG_URL): {e}"))?;
    let conn = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection for GIN indexes closed");
        }
    });
    let schema = quoted(database);
    let rows = client
        .query(
            &format!(
                "SELECT _jsonb->>'_id', _jsonb->>'table' FROM {schema}._ferretdb_database_metadata"
            ),
            &[],
        )
        .await
        .map_err(|e| anyhow::anyhow!("reading FerretDB's table names in {database}: {e}"))?;
    let tables: std::collections::HashMap<String, String> = rows
        .iter()
        .filter_map(|r| {
            Some((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
            ))
        })
        .collect();
    let mut created = 0;
    for c in plan {
        let Some(table) = tables.get(c.collection) else {
            tracing::debug!(
                collection = c.collection,
                "no FerretDB table yet; no GIN index"
            );
            continue;
        };
        for field in gin_fields(c) {
            let name = index_name(table, &field);
            let exists = client
                .query_opt(
                    "SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = $2",
                    &[&database, &name],
                )
                .await?
                .is_some();
            if exists {
                continue;
            }
            let sql = format!(
                "CREATE INDEX IF NOT EXISTS {} ON {schema}.{} USING gin ((_jsonb -> {}) jsonb_path_ops)",
                quoted(&name),
                quoted(table),
                literal(&field)
            );
            match client.batch_execute(&sql).await {
                Ok(()) => created += 1,
                // Another process created it at the same moment.
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {}
                Err(e) => return Err(anyhow::anyhow!("{sql}: {e}")),
            }
        }
    }
    drop(client);
    let _ = conn.await;
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_fields_get_an_index_and_ranges_do_not() {
        let plan = super::super::indexes::all(false);
        let seats = plan
            .iter()
            .find(|c| c.collection == super::super::names::SEATS)
            .unwrap();
        let f = gin_fields(seats);
        assert!(f.contains("_id") && f.contains("eventId") && f.contains("status"));
        assert!(!f.iter().any(|k| k.ends_with("At") || k.ends_with("Until")));
        let audit = plan
            .iter()
            .find(|c| c.collection == super::super::names::AUDIT_LOGS)
            .unwrap();
        let f = gin_fields(audit);
        assert!(f.contains("entityId") && f.contains("userId") && f.contains("action"));
        assert!(!f.contains("timestamp"));
        // Every collection gets one on `_id`: FerretDB selects by `_id` before an update.
        assert!(plan.iter().all(|c| gin_fields(c).contains("_id")));
    }

    #[test]
    fn index_names_fit_postgres_and_differ_per_field() {
        let a = index_name("audit_logs_b58122b6", "entityId");
        let b = index_name("audit_logs_b58122b6", "userId");
        assert!(a.len() <= 63 && b.len() <= 63);
        assert_ne!(a, b);
        assert!(index_name(&"t".repeat(80), "x").len() <= 63);
        assert_eq!(quoted("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
    }
}
