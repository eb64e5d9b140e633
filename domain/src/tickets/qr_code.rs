//! QR codes (`qr_codes`): the signed string printed on a ticket, its image, how often it
//! was scanned, and whether it is still valid.

use bson::oid::ObjectId;
use bson::{Binary, DateTime};
use serde::{Deserialize, Serialize};

use crate::DomainError;

string_enum! {
    /// QR error-correction level: about 7, 15, 25 or 30 % of the symbol can be lost.
    pub enum ErrorCorrectionLevel {
        L => "L",
        M => "M",
        Q => "Q",
        H => "H",
    }
}

/// Checks a QR symbol version (1 to 40).
pub fn check_version(version: i32) -> Result<i32, DomainError> {
    if !(1..=40).contains(&version) {
        return Err(DomainError::invalid(
            "version",
            "a QR code version is 1 to 40",
        ));
    }
    Ok(version)
}

/// Whether a QR code still lets its ticket in: `valid -> invalidated`, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QrValidity {
    Valid,
    Invalidated,
}

impl QrValidity {
    pub const ALL: &'static [QrValidity] = &[QrValidity::Valid, QrValidity::Invalidated];

    /// Only `valid -> invalidated`.
    pub fn can_become(self, next: QrValidity) -> bool {
        self == QrValidity::Valid && next == QrValidity::Invalidated
    }
}

/// The `qr_codes` collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QrCode {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub ticket_id: ObjectId,
    /// The signed payload; unique.
    pub qr_string: String,
    /// PNG bytes, when kept in the database rather than rendered on demand.
    pub qr_image: Option<Binary>,
    pub qr_image_url: Option<String>,
    /// QR symbol version, 1 to 40.
    pub version: i32,
    pub error_correction_level: ErrorCorrectionLevel,
    /// Successful scans.
    #[serde(default)]
    pub scan_count: i64,
    pub last_scanned_at: Option<DateTime>,
    pub is_valid: bool,
    pub invalidated_at: Option<DateTime>,
    pub invalidation_reason: Option<String>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

impl QrCode {
    pub fn validity(&self) -> QrValidity {
        if self.is_valid {
            QrValidity::Valid
        } else {
            QrValidity::Invalidated
        }
    }

    /// Marks the code invalid (its ticket was cancelled). Invalidating twice keeps the first
    /// time and reason, so a redelivered command changes nothing.
    pub fn invalidate(&mut self, at: DateTime, reason: &str) {
        if !self.validity().can_become(QrValidity::Invalidated) {
            return;
        }
        self.is_valid = false;
        self.invalidated_at = Some(at);
        self.invalidation_reason = Some(reason.to_string());
        self.updated_at = at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_1_to_40() {
        assert!(check_version(0).is_err() && check_version(41).is_err());
        assert_eq!(check_version(40).unwrap(), 40);
    }

    #[test]
    fn invalidation_happens_once_and_the_code_round_trips_through_bson() {
        let t0 = DateTime::from_millis(1_700_000_000_000);
        let mut q = QrCode {
            id: ObjectId::new(),
            ticket_id: ObjectId::new(),
            qr_string: "payload.signature".into(),
            qr_image: Some(Binary {
                subtype: bson::spec::BinarySubtype::Generic,
                bytes: vec![0x89, b'P', b'N', b'G'],
            }),
            qr_image_url: None,
            version: 5,
            error_correction_level: ErrorCorrectionLevel::M,
            scan_count: 0,
            last_scanned_at: None,
            is_valid: true,
            invalidated_at: None,
            invalidation_reason: None,
            created_at: t0,
            updated_at: t0,
        };
        let t1 = DateTime::from_millis(1_700_000_001_000);
        q.invalidate(t1, "booking cancelled");
        q.invalidate(DateTime::from_millis(1_700_000_002_000), "again");
        assert!(!q.is_valid);
        assert_eq!(
            (q.invalidated_at, q.invalidation_reason.as_deref()),
            (Some(t1), Some("booking cancelled"))
        );
        let doc = bson::to_document(&q).unwrap();
        assert_eq!(doc.get_str("errorCorrectionLevel").unwrap(), "M");
        assert_eq!(bson::from_document::<QrCode>(doc).unwrap(), q);
    }
}
