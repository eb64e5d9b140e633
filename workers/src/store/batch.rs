//! Group commit for inserts on the hot path.
//!
//! NOTE: on FerretDB (SQLite) every write call is its own transaction: about 400 single
//! inserts a second, against more than 20,000 documents a second in `insert_many` batches
//! of 100 (`cargo run --release -p bench --example ferret_probe`). So concurrent handlers
//! hand their documents to one task, which inserts whatever has queued while the previous
//! batch was being written (no added wait when the load is light) and tells each caller
//! how its own document fared.

use bson::Document;
use mongodb::error::ErrorKind;
use mongodb::Collection;
use tokio::sync::{mpsc, oneshot};

/// What became of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New,
    /// Its `_id` (or another unique key) was there already.
    Duplicate,
}

type Job = (Document, oneshot::Sender<Result<Inserted, String>>);

#[derive(Clone)]
pub struct Inserter {
    tx: mpsc::Sender<Job>,
}

impl Inserter {
    /// Starts the batching task for `col`; it ends when every `Inserter` clone is gone.
    pub fn start(col: Collection<Document>, max_batch: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(max_batch * 4);
        tokio::spawn(run(col, rx, max_batch));
        Inserter { tx }
    }

    pub async fn insert(&self, doc: Document) -> Result<Inserted, String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((doc, done))
            .await
            .map_err(|_| "inserter stopped".to_string())?;
        wait.await.map_err(|_| "inserter stopped".to_string())?
    }
}

async fn run(col: Collection<Document>, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let docs: Vec<Document> = jobs.iter().map(|(d, _)| d.clone()).collect();
        let mut outcome: Vec<Result<Inserted, String>> = vec![Ok(Inserted::New); jobs.len()];
        if let Err(e) = col.insert_many(docs).ordered(false).await {
            match e.kind.as_ref() {
                ErrorKind::InsertMany(f) if f.write_concern_error.is_none() => {
                    for w in f.write_errors.iter().flatten() {
                        if let Some(slot) = outcome.get_mut(w.index) {
                            *slot = if w.code == 11000 {
                                Ok(Inserted::Duplicate)
                            } else {
                                Err(w.message.clone())
                            };
                        }
                    }
                }
                _ => {
                    let msg = e.to_string();
                    outcome.iter_mut().for_each(|o| *o = Err(msg.clone()));
                }
            }
        }
        for ((_, done), o) in jobs.into_iter().zip(outcome) {
            let _ = done.send(o);
        }
    }
}
