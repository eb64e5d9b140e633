//! Every collection of `shared/er-diagram.md` with its indexes and unique constraints,
//! created idempotently at start-up (`createIndexes` with the same spec is a no-op).
//!
//! NOTE: TTL indexes are created only where the server supports them (MongoDB). FerretDB
//! v1 has none; expiry never depends on them (the expiry worker does the work).
//!
//! NOTE: a MongoDB TTL index *deletes* the document. The data model's "TTL" on
//! `seats.heldUntil` and `seat_holds.expiresAt` would delete a seat, or a hold still being
//! booked, whenever expiry or the projections lag past that time. So no TTL index is on a
//! field of a live record: seats have none, and a hold is purged only after it ended,
//! through `endedAt` (set by the projection when it is released, expires or becomes a
//! booking) plus [`HOLD_RETENTION`].

use bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::IndexModel;

use super::names;

/// One collection and the indexes it should have.
pub(crate) struct CollectionIndexes {
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

/// How long an ended hold is kept before MongoDB's TTL monitor purges it.
pub(crate) const HOLD_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(30 * 24 * 3600);

fn ttl(keys: Document, name: &str, after: std::time::Duration) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(
            IndexOptions::builder()
                .expire_after(after)
                .name(name.to_string())
                .build(),
        )
        .build()
}

/// The index plan; `with_ttl` adds the TTL indexes (MongoDB only).
pub(crate) fn all(with_ttl: bool) -> Vec<CollectionIndexes> {
    let mut plan = accounts_and_catalog();
    plan.extend(sales(with_ttl));
    plan.extend(admission());
    plan.extend(messages_and_audit());
    plan.extend(derived());
    plan
}

/// Users, the events and their seats.
fn accounts_and_catalog() -> Vec<CollectionIndexes> {
    vec![
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
                // Indexed for the sweeps; never a TTL (see the module's note).
                plain(doc! {"heldUntil": 1}),
            ],
        },
    ]
}

/// Holds, bookings and their seats, payments and refunds; `with_ttl` purges ended holds.
fn sales(with_ttl: bool) -> Vec<CollectionIndexes> {
    let mut holds = vec![
        plain(doc! {"userId": 1, "eventId": 1}),
        plain(doc! {"userId": 1, "eventId": 1, "status": 1}),
        plain(doc! {"status": 1}),
        // Indexed for the sweeps; never a TTL (see the module's note).
        plain(doc! {"expiresAt": 1}),
    ];
    if with_ttl {
        holds.push(ttl(doc! {"endedAt": 1}, "ended_at_ttl", HOLD_RETENTION));
    }
    vec![
        CollectionIndexes {
            collection: names::SEAT_HOLDS,
            indexes: holds,
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
    ]
}

/// Tickets, their QR codes and the gate scans.
fn admission() -> Vec<CollectionIndexes> {
    vec![
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
    ]
}

/// Notifications and the audit trail.
fn messages_and_audit() -> Vec<CollectionIndexes> {
    vec![
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
    ]
}

/// Read models derived from EVENTS: ticket revocations and analytics.
fn derived() -> Vec<CollectionIndexes> {
    vec![
        // Derived from EVENTS (`booking.cancelled`), rebuildable by replaying them; no
        // audit entry of its own (the event it comes from is audited). `_id` is the
        // ticket: one entry per ticket, the first revocation's. Read by event and version.
        CollectionIndexes {
            collection: names::TICKET_REVOCATIONS,
            indexes: vec![
                plain(doc! {"eventId": 1, "version": 1}),
                plain(doc! {"bookingId": 1}),
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
    ]
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

    /// The TTL indexes of a plan: (collection, keys, expireAfter).
    fn ttls(plan: &[CollectionIndexes]) -> Vec<(&'static str, Document, std::time::Duration)> {
        plan.iter()
            .flat_map(|c| {
                c.indexes.iter().filter_map(move |i| {
                    let after = i.options.as_ref()?.expire_after?;
                    Some((c.collection, i.keys.clone(), after))
                })
            })
            .collect()
    }

    #[test]
    fn no_ttl_index_can_delete_a_live_record() {
        assert!(ttls(&all(false)).is_empty(), "FerretDB gets no TTL index");
        let on_mongodb = ttls(&all(true));
        assert_eq!(
            on_mongodb,
            vec![(names::SEAT_HOLDS, doc! {"endedAt": 1}, HOLD_RETENTION)],
            "only ended holds are purged, after their retention"
        );
        assert!(HOLD_RETENTION >= std::time::Duration::from_secs(24 * 3600));
        for plan in [all(false), all(true)] {
            for c in &plan {
                for i in &c.indexes {
                    let ttl = i.options.as_ref().and_then(|o| o.expire_after);
                    if c.collection == names::SEATS {
                        assert!(ttl.is_none(), "a seat is never deleted: {:?}", i.keys);
                    }
                    if i.keys.contains_key("expiresAt") || i.keys.contains_key("heldUntil") {
                        assert!(
                            ttl.is_none(),
                            "{}: {:?} is a live record's field",
                            c.collection,
                            i.keys
                        );
                    }
                }
            }
        }
    }
}
