//! Entities of the later workflows (bookings, payments, refunds, tickets, QR codes, scans,
//! notifications, analytics), as stored.
