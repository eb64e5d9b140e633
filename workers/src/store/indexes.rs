//! Every collection of `shared/er-diagram.md` with its indexes and unique constraints,
//! created idempotently at start-up (`createIndexes` with the same spec is a no-op).
//!
//! NOTE: TTL indexes are created only where the server supports them (MongoDB). FerretDB
//! v1 has none; expiry never depends on them (the expiry worker does the work).

use bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::IndexModel;

use super::names;

/// One collection and the indexes it should have.
pub struct CollectionIndexes {
    pub collection: &'static str,
    pub indexes: Vec<IndexModel>,
}

fn plain(keys: Document) -> IndexModel {
    IndexModel::builder().keys(keys).build()
}

fn unique(keys: Document, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(
            IndexOptions::builder()
                .unique(true)
                .name(name.to_string())
                .build(),
        )
        .build()
}

fn ttl(keys: Document, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(
            IndexOptions::builder()
                .expire_after(std::time::Duration::ZERO)
                .name(name.to_string())
                .build(),
        )
        .build()
}

/// The index plan; `with_ttl` adds the TTL indexes (MongoDB only).
pub fn all(with_ttl: bool) -> Vec<CollectionIndexes> {
    let mut plan = vec![
        CollectionIndexes {
            collection: names::USERS,
            indexes: vec![
                unique(doc! {"email": 1}, "email_unique"),
                plain(doc! {"verificationToken": 1}),
                plain(doc! {"resetPasswordToken": 1}),
                plain(doc! {"createdAt": 1}),
            ],
        },
        CollectionIndexes {
            collection: names::EVENTS,
            indexes: vec![
                plain(doc! {"eventDate": 1}),
                plain(doc! {"venue": 1}),
                plain(doc! {"city": 1}),
                plain(doc! {"category": 1}),
                plain(doc! {"name": 1}),
                plain(doc! {"status": 1}),
                plain(doc! {"city": 1, "eventDate": 1}),
                plain(doc! {"category": 1, "eventDate": 1}),
            ],
        },
        CollectionIndexes {
            collection: names::SEATS,
            indexes: vec![
                plain(doc! {"eventId": 1, "status": 1}),
                unique(
                    doc! {"eventId": 1, "row": 1, "number": 1},
                    "event_row_number_unique",
                ),
                plain(doc! {"_id": 1, "eventId": 1, "status": 1}),
                plain(doc! {"bookedBy": 1}),
            ],
        },
        CollectionIndexes {
            collection: names::SEAT_HOLDS,
            indexes: vec![
                plain(doc! {"userId": 1, "eventId": 1}),
                plain(doc! {"userId": 1, "eventId": 1, "status": 1}),
                plain(doc! {"status": 1}),
            ],
        },
        CollectionIndexes {
            collection: names::BOOKINGS,
            indexes: vec![
                plain(doc! {"userId": 1}),
                plain(doc! {"eventId": 1}),
                plain(doc! {"status": 1}),
                unique(doc! {"bookingReference": 1}, "booking_reference_unique"),
                plain(doc! {"paymentId": 1}),
                plain(doc! {"expiresAt": 1}),
                plain(doc! {"createdAt": 1}),
            ],
        },
        CollectionIndexes {
            collection: names::BOOKING_SEATS,
            indexes: vec![
                plain(doc! {"bookingId": 1}),
                plain(doc! {"seatId": 1}),
                plain(doc! {"bookingId": 1, "seatId": 1}),
            ],
        },
        CollectionIndexes {
            collection: names::PAYMENTS,
            indexes: vec![
                plain(doc! {"bookingId": 1}),
                plain(doc! {"userId": 1}),
                unique(doc! {"transactionId": 1}, "transaction_id_unique"),
                plain(doc! {"status": 1}),
                plain(doc! {"createdAt": 1}),
            ],
        },
        CollectionIndexes {
            collection: names::REFUNDS,
            indexes: vec![
                plain(doc! {"paymentId": 1}),
                plain(doc! {"bookingId": 1}),
                plain(doc! {"userId": 1}),
                plain(doc! {"status": 1}),
                unique(
                    doc! {"refundTransactionId": 1},
                    "refund_transaction_id_unique",
                ),
            ],
        },
        CollectionIndexes {
            collection: names::TICKETS,
            indexes: vec![
                plain(doc! {"bookingId": 1}),
                plain(doc! {"userId": 1}),
                plain(doc! {"eventId": 1}),
                plain(doc! {"seatId": 1}),
                plain(doc! {"qrCodeId": 1}),
                unique(doc! {"ticketNumber": 1}, "ticket_number_unique"),
                plain(doc! {"status": 1}),
                unique(doc! {"qrString": 1}, "ticket_qr_string_unique"),
            ],
        },
        CollectionIndexes {
            collection: names::QR_CODES,
            indexes: vec![
                plain(doc! {"ticketId": 1}),
                unique(doc! {"qrString": 1}, "qr_string_unique"),
                plain(doc! {"isValid": 1}),
            ],
        },
        CollectionIndexes {
            collection: names::TICKET_SCANS,
            indexes: vec![
                plain(doc! {"ticketId": 1}),
                plain(doc! {"qrCodeId": 1}),
                plain(doc! {"scannedAt": 1}),
                plain(doc! {"scannedByUserId": 1}),
            ],
        },
        CollectionIndexes {
            collection: names::NOTIFICATIONS,
            indexes: vec![
                plain(doc! {"userId": 1}),
                plain(doc! {"bookingId": 1}),
                plain(doc! {"type": 1}),
                plain(doc! {"status": 1}),
                plain(doc! {"scheduledFor": 1}),
                plain(doc! {"sentAt": 1}),
            ],
        },
        CollectionIndexes {
            collection: names::AUDIT_LOGS,
            indexes: vec![
                plain(doc! {"userId": 1}),
                plain(doc! {"entityId": 1}),
                plain(doc! {"action": 1}),
                plain(doc! {"timestamp": 1}),
                plain(doc! {"status": 1}),
            ],
        },
        CollectionIndexes {
            collection: names::ANALYTICS,
            indexes: vec![
                plain(doc! {"eventId": 1}),
                plain(doc! {"metric": 1}),
                plain(doc! {"periodStart": 1}),
            ],
        },
    ];
    if with_ttl {
        for c in &mut plan {
            match c.collection {
                names::SEATS => c.indexes.push(ttl(doc! {"heldUntil": 1}, "held_until_ttl")),
                names::SEAT_HOLDS => c.indexes.push(ttl(doc! {"expiresAt": 1}, "expires_at_ttl")),
                _ => {}
            }
        }
    } else {
        // Without TTL the expiry fields are still indexed for the sweeps.
        for c in &mut plan {
            match c.collection {
                names::SEATS => c.indexes.push(plain(doc! {"heldUntil": 1})),
                names::SEAT_HOLDS => c.indexes.push(plain(doc! {"expiresAt": 1})),
                _ => {}
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_collection_of_the_er_diagram_has_indexes() {
        let plan = all(false);
        let cols: Vec<_> = plan.iter().map(|c| c.collection).collect();
        for c in names::ALL {
            assert!(cols.contains(c), "{c} has no index plan");
        }
        assert!(plan.iter().all(|c| !c.indexes.is_empty()));
    }
}
