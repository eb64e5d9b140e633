//! The store under FerretDB: the GIN indexes the workers add to its PostgreSQL tables.

use e2e::spawn_app;

#[tokio::test]
async fn the_hot_filters_are_served_by_gin_indexes_on_ferretdb_tables() {
    let url = std::env::var("TICKETING_PG_URL")
        .expect("TICKETING_PG_URL: the test servers run FerretDB on PostgreSQL (scripts/test.sh)");
    let app = spawn_app().await;
    let schema = app.db.name().to_string();
    let (pg, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL");
    tokio::spawn(conn);
    let table: String = pg
        .query_one(
            &format!(
                "SELECT _jsonb->>'table' FROM \"{schema}\"._ferretdb_database_metadata WHERE _jsonb->>'_id' = 'seats'"
            ),
            &[],
        )
        .await
        .expect("the seats table")
        .get(0);
    let indexes: Vec<String> = pg
        .query(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2",
            &[&schema, &table],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for field in ["_id", "eventId", "status"] {
        assert!(
            indexes
                .iter()
                .any(|d| d.contains("USING gin") && d.contains(&format!("'{field}'"))),
            "a GIN index on seats.{field}: {indexes:?}"
        );
    }
    // The filter FerretDB sends for an update by `_id` can use it.
    let plan: Vec<String> = pg
        .simple_query(&format!(
            "SET enable_seqscan = off; EXPLAIN SELECT _jsonb FROM \"{schema}\".\"{table}\" WHERE _jsonb->'_id' @> '\"6b0f566d6ce19031c2d5cb7e\"'"
        ))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    assert!(
        plan.iter().any(|l| l.contains("Bitmap Index Scan")),
        "{plan:?}"
    );
    app.shutdown().await;
}
