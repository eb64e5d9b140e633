//! A per-process cache of each event's seat catalog (id -> row, number, section, price).
//!
//! A seat map never changes after the event is created, so the hold path reads it from
//! memory instead of scanning MongoDB (on FerretDB a filter other than a lone `_id` is a
//! full scan). Seat *status* is never cached: the KV locks decide who holds what.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bson::doc;
use domain::{Money, ObjectId};
use futures::TryStreamExt;

use crate::store::{names, Store, StoreError};

#[derive(Debug, Clone)]
pub struct SeatInfo {
    pub row: String,
    pub number: i32,
    pub section: String,
    pub price: Money,
}

pub(crate) type SeatMap = Arc<HashMap<ObjectId, SeatInfo>>;

/// What the hold path needs of an event document: its date (which never changes) and the
/// status it had when first read (used only to write a missing sale-status key).
#[derive(Debug, Clone)]
pub struct EventFacts {
    pub status: String,
    pub event_date: Option<bson::DateTime>,
}

#[derive(Clone, Default)]
pub struct SeatMaps {
    inner: Arc<RwLock<HashMap<ObjectId, SeatMap>>>,
    /// One load at a time: in an on-sale storm hundreds of handlers ask for the same map
    /// at once, and one scan serves them all.
    loading: Arc<tokio::sync::Mutex<()>>,
    facts: Arc<RwLock<HashMap<ObjectId, EventFacts>>>,
    /// Seat maps as last rendered, by event and filters, with the lock-view version they
    /// show: readers at that version share one rendering.
    rendered: Arc<std::sync::Mutex<HashMap<RenderKey, (u64, bytes::Bytes)>>>,
}

/// A rendered seat map: the event, and the section and status filters.
pub(crate) type RenderKey = (ObjectId, Option<String>, Option<String>);

/// Renderings kept (a few per event on sale); past it the cache starts again empty.
const MAX_RENDERED: usize = 256;

impl SeatMaps {
    /// The event's facts, read from MongoDB once per process; `None`: no such event.
    pub async fn facts(
        &self,
        store: &Store,
        event_id: ObjectId,
    ) -> Result<Option<EventFacts>, StoreError> {
        if let Some(f) = self
            .facts
            .read()
            .ok()
            .and_then(|m| m.get(&event_id).cloned())
        {
            return Ok(Some(f));
        }
        let Some(d) = store
            .col(names::EVENTS)
            .find_one(doc! {"_id": event_id})
            .projection(doc! {"status": 1, "eventDate": 1})
            .await?
        else {
            return Ok(None);
        };
        let f = EventFacts {
            status: d.get_str("status").unwrap_or("draft").to_string(),
            event_date: d.get_datetime("eventDate").ok().copied(),
        };
        if let Ok(mut w) = self.facts.write() {
            w.insert(event_id, f.clone());
        }
        Ok(Some(f))
    }

    /// The rendering of `key` at lock-view `version`, if there is one.
    pub fn rendered(&self, key: &RenderKey, version: u64) -> Option<bytes::Bytes> {
        let m = self.rendered.lock().ok()?;
        m.get(key)
            .filter(|(v, _)| *v == version)
            .map(|(_, b)| b.clone())
    }

    pub fn keep_rendered(&self, key: RenderKey, version: u64, body: bytes::Bytes) {
        if let Ok(mut m) = self.rendered.lock() {
            if m.len() >= MAX_RENDERED && !m.contains_key(&key) {
                m.clear();
            }
            m.insert(key, (version, body));
        }
    }

    fn cached(&self, event_id: ObjectId) -> Option<SeatMap> {
        self.inner
            .read()
            .ok()
            .and_then(|m| m.get(&event_id).cloned())
    }

    /// The seat map of `event_id`, loaded once per process. An event without seats is not
    /// cached (it may be mid-creation).
    pub async fn get(&self, store: &Store, event_id: ObjectId) -> Result<SeatMap, StoreError> {
        if let Some(m) = self.cached(event_id) {
            return Ok(m);
        }
        let _loading = self.loading.lock().await;
        if let Some(m) = self.cached(event_id) {
            return Ok(m);
        }
        let mut cursor = store
            .col(names::SEATS)
            .find(doc! {"eventId": event_id})
            .projection(doc! {"row": 1, "number": 1, "section": 1, "price": 1})
            .await?;
        let mut map = HashMap::new();
        while let Some(d) = cursor.try_next().await? {
            let id = d
                .get_object_id("_id")
                .map_err(|e| StoreError::Bson(e.to_string()))?;
            let price: Money = bson::from_bson(d.get("price").cloned().unwrap_or_default())?;
            map.insert(
                id,
                SeatInfo {
                    row: d.get_str("row").unwrap_or_default().to_string(),
                    number: d.get_i32("number").unwrap_or_default(),
                    section: d.get_str("section").unwrap_or_default().to_string(),
                    price,
                },
            );
        }
        let map = Arc::new(map);
        if !map.is_empty() {
            if let Ok(mut w) = self.inner.write() {
                w.insert(event_id, map.clone());
            }
        }
        Ok(map)
    }
}
