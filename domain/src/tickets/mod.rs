//! Tickets with their scans and QR codes: the ticket and QR code documents and their status
//! machines, QR signing (`qr`), signed revocation lists (`revocation`), scan records, and
//! the decisions of issuing, downloading, scanning and invalidating.

pub mod decide;
pub mod qr;
pub mod qr_code;
pub mod revocation;
pub mod scan_decide;
pub mod ticket;
pub mod ticket_scan;

pub use qr_code::{ErrorCorrectionLevel, QrCode, QrValidity};
pub use ticket::{SeatInfo, Ticket, TicketStatus};
pub use ticket_scan::{ScanLocation, ScanStatus, TicketScan};
