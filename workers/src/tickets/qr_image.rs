//! QR symbols of ticket strings: their version and error-correction level (kept in
//! `qr_codes`), and the PNG image, rendered on demand.
//!
//! NOTE: the PNG is rendered when asked for, not stored in `qr_codes.qrImage`: it is a
//! pure function of the stored `qrString` (a few milliseconds to draw), and keeping it
//! would add ~2 KB per ticket to the database and to every read of the document.

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, GrayImage, ImageEncoder, Luma};
use qrcode::types::{Color, Version};
use qrcode::{EcLevel, QrCode};

use domain::entities::qr_code::ErrorCorrectionLevel;

/// The error-correction level of every ticket's symbol: M, about 15 % may be lost.
pub(crate) const EC_LEVEL: ErrorCorrectionLevel = ErrorCorrectionLevel::M;
/// Pixels per module of the PNG.
pub(crate) const SCALE: u32 = 8;
/// Light modules around the symbol, as the standard asks.
const QUIET_ZONE: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum QrImageError {
    #[error("the text does not fit a QR symbol: {0}")]
    Encode(String),
    #[error("PNG encoding: {0}")]
    Png(String),
}

fn ec_level(l: ErrorCorrectionLevel) -> EcLevel {
    match l {
        ErrorCorrectionLevel::L => EcLevel::L,
        ErrorCorrectionLevel::M => EcLevel::M,
        ErrorCorrectionLevel::Q => EcLevel::Q,
        ErrorCorrectionLevel::H => EcLevel::H,
    }
}

fn symbol(text: &str) -> Result<QrCode, QrImageError> {
    QrCode::with_error_correction_level(text.as_bytes(), ec_level(EC_LEVEL))
        .map_err(|e| QrImageError::Encode(e.to_string()))
}

/// The symbol version (1 to 40) and level a text is drawn with.
pub(crate) fn describe(text: &str) -> Result<(i32, ErrorCorrectionLevel), QrImageError> {
    let version = match symbol(text)?.version() {
        Version::Normal(v) | Version::Micro(v) => i32::from(v),
    };
    Ok((version, EC_LEVEL))
}

/// The symbol of `text` as a black-on-white PNG with its quiet zone.
pub fn png(text: &str) -> Result<Vec<u8>, QrImageError> {
    let code = symbol(text)?;
    let modules = code.width() as u32;
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * SCALE;
    let img = GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (x / SCALE, y / SCALE);
        let inside = (QUIET_ZONE..QUIET_ZONE + modules).contains(&mx)
            && (QUIET_ZONE..QUIET_ZONE + modules).contains(&my);
        let dark = inside
            && colors[((my - QUIET_ZONE) * modules + (mx - QUIET_ZONE)) as usize] == Color::Dark;
        Luma([if dark { 0 } else { 255 }])
    });
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(img.as_raw(), side, side, ExtendedColorType::L8)
        .map_err(|e| QrImageError::Png(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_string_is_a_small_symbol_and_a_png() {
        let text = format!("T1.dev-1a2b3c4d.{}.{}", "A".repeat(99), "B".repeat(86));
        let (version, level) = describe(&text).unwrap();
        assert!((1..=40).contains(&version) && version <= 12, "{version}");
        assert_eq!(level, ErrorCorrectionLevel::M);
        let bytes = png(&text).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn text_too_long_for_any_symbol_is_an_error() {
        assert!(matches!(
            png(&"x".repeat(5000)),
            Err(QrImageError::Encode(_))
        ));
    }
}
