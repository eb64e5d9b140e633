//! The typed repository: each entity of the data model names its collection, and is read
//! and written as itself by `_id` (the one filter FerretDB pushes down to SQL).
//!
//! `get` decodes the stored document into the domain type: a document that does not
//! decode is an error, never a default. `insert_once` is the idempotent create of a
//! redelivered command (a duplicate `_id` is "already there"). `patch` sets fields.

use std::marker::PhantomData;

use bson::{doc, Document};
use domain::audit::AuditLog;
use domain::entities::{
    Analytics, Booking, BookingSeat, Notification, Payment, QrCode, Refund, Ticket, TicketScan,
};
use domain::event::Event;
use domain::hold::SeatHold;
use domain::seat::Seat;
use domain::user::User;
use domain::ObjectId;
use mongodb::Collection;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{is_duplicate_key, names, Store, StoreError};

/// A document type of the data model, stored in its own collection under `_id`.
pub(crate) trait Entity: Serialize + DeserializeOwned + Send + Sync + Unpin {
    const COLLECTION: &'static str;
    fn id(&self) -> ObjectId;
}

macro_rules! entities {
    ($($ty:ty => $col:expr),+ $(,)?) => {
        $(impl Entity for $ty {
            const COLLECTION: &'static str = $col;
            fn id(&self) -> ObjectId {
                self.id
            }
        })+
    };
}

entities! {
    User => names::USERS,
    Event => names::EVENTS,
    Seat => names::SEATS,
    SeatHold => names::SEAT_HOLDS,
    Booking => names::BOOKINGS,
    BookingSeat => names::BOOKING_SEATS,
    Payment => names::PAYMENTS,
    Refund => names::REFUNDS,
    Ticket => names::TICKETS,
    QrCode => names::QR_CODES,
    TicketScan => names::TICKET_SCANS,
    Notification => names::NOTIFICATIONS,
    AuditLog => names::AUDIT_LOGS,
    Analytics => names::ANALYTICS,
}

/// The collection of `T`, typed.
pub(crate) struct Repo<T: Send + Sync> {
    col: Collection<T>,
    raw: Collection<Document>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Entity> Repo<T> {
    pub(crate) fn new(store: &Store) -> Self {
        Repo {
            col: store.db().collection::<T>(T::COLLECTION),
            raw: store.col(T::COLLECTION),
            _t: PhantomData,
        }
    }

    /// The entity stored under `id`, decoded. A document that does not decode is a
    /// `StoreError::Bson` (a permanent failure: no retry makes it decode), not a driver
    /// error that would be retried.
    pub(crate) async fn get(&self, id: ObjectId) -> Result<Option<T>, StoreError> {
        match self.raw.find_one(doc! {"_id": id}).await? {
            Some(d) => super::from_doc(&d)
                .map(Some)
                .map_err(|e| StoreError::Bson(format!("{} {id}: {e}", T::COLLECTION))),
            None => Ok(None),
        }
    }

    /// Stores `entity` unless its `_id` is there already: `true` when this call stored it.
    pub(crate) async fn insert_once(&self, entity: &T) -> Result<bool, StoreError> {
        match self.col.insert_one(entity).await {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets `fields` on the entity under `id`: `true` when it exists.
    pub(crate) async fn patch(&self, id: ObjectId, fields: Document) -> Result<bool, StoreError> {
        let r = self
            .raw
            .update_one(doc! {"_id": id}, doc! {"$set": fields})
            .await?;
        Ok(r.matched_count == 1)
    }

    /// [`Repo::patch`] that also raises the counter `counter` by one (a `version`).
    pub(crate) async fn patch_counted(
        &self,
        id: ObjectId,
        fields: Document,
        counter: &str,
    ) -> Result<bool, StoreError> {
        let r = self
            .raw
            .update_one(
                doc! {"_id": id},
                doc! {"$set": fields, "$inc": {counter: 1}},
            )
            .await?;
        Ok(r.matched_count == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_collection_of_the_data_model_has_its_entity() {
        let named = [
            User::COLLECTION,
            Event::COLLECTION,
            Seat::COLLECTION,
            SeatHold::COLLECTION,
            Booking::COLLECTION,
            BookingSeat::COLLECTION,
            Payment::COLLECTION,
            Refund::COLLECTION,
            Ticket::COLLECTION,
            QrCode::COLLECTION,
            TicketScan::COLLECTION,
            Notification::COLLECTION,
            AuditLog::COLLECTION,
            Analytics::COLLECTION,
        ];
        let mut named = named.to_vec();
        named.sort_unstable();
        let mut all = names::ALL.to_vec();
        all.sort_unstable();
        assert_eq!(named, all);
    }
}
