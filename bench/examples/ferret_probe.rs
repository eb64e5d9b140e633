//! Probes the MongoDB-wire server's write costs: one document per call against batches,
//! sequentially and concurrently. `cargo run --release -p bench --example ferret_probe -- <uri>`
use std::time::Instant;

use bson::doc;
use futures::future::join_all;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "mongodb://127.0.0.1:27017/".into());
    let client = mongodb::Client::with_uri_str(&uri).await?;
    let db = client.database("probe_scratch");
    db.drop().await?;
    let col = db.collection::<bson::Document>("docs");
    let n = 200;
    let t = Instant::now();
    for i in 0..n {
        col.insert_one(doc! {"_id": i, "v": 0}).await?;
    }
    println!(
        "insert_one sequential      {:>8.1}/s",
        n as f64 / t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    for i in 0..n {
        col.update_one(doc! {"_id": i}, doc! {"$inc": {"v": 1}})
            .await?;
    }
    println!(
        "update_one sequential      {:>8.1}/s",
        n as f64 / t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let futs = (0..n).map(|i| {
        let col = col.clone();
        async move {
            col.update_one(doc! {"_id": i}, doc! {"$inc": {"v": 1}})
                .await
        }
    });
    join_all(futs).await;
    println!(
        "update_one 200 concurrent  {:>8.1}/s",
        n as f64 / t.elapsed().as_secs_f64()
    );
    for batch in [10, 100, 500] {
        let rounds = 10;
        let t = Instant::now();
        for r in 0..rounds {
            let docs: Vec<_> = (0..batch)
                .map(|i| doc! {"_id": 100_000 + r * 1000 + i + batch * 10_000, "v": 0})
                .collect();
            col.insert_many(docs).await?;
        }
        println!(
            "insert_many batch {batch:>3}      {:>8.1} docs/s",
            (rounds * batch) as f64 / t.elapsed().as_secs_f64()
        );
    }
    let t = Instant::now();
    let ids: Vec<i32> = (0..100).collect();
    col.update_many(doc! {"_id": {"$in": ids}}, doc! {"$inc": {"v": 1}})
        .await?;
    println!(
        "update_many $in 100 ids    {:>8.1} docs/s",
        100.0 / t.elapsed().as_secs_f64()
    );
    db.drop().await?;
    Ok(())
}
