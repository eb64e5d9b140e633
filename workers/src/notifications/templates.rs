//! The words of every notification: a subject, a plain-text body and an HTML body made
//! from the notification's type and its `messageData` (template variables).
//!
//! NOTE: plain Rust string templates rather than a template engine: a dozen short
//! messages do not pay for another dependency, and every variable is HTML-escaped here.

use serde_json::Value;

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn s<'a>(d: &'a Value, k: &str) -> &'a str {
    d.get(k).and_then(Value::as_str).unwrap_or("")
}

fn escape(x: &str) -> String {
    let mut o = String::with_capacity(x.len());
    for c in x.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Lines of the body: the text version joins them with newlines, the HTML one wraps each
/// in a paragraph (escaped).
fn build(subject: String, greeting: &str, lines: Vec<String>) -> Rendered {
    let hello = if greeting.is_empty() {
        "Hello,".to_string()
    } else {
        format!("Hello {greeting},")
    };
    let mut text = format!("{hello}\n\n");
    let mut html = format!("<!doctype html><html><body><p>{}</p>", escape(&hello));
    for l in &lines {
        text.push_str(l);
        text.push('\n');
        html.push_str(&format!("<p>{}</p>", escape(l)));
    }
    text.push_str("\n-- Ticketing\n");
    html.push_str("<p>-- Ticketing</p></body></html>");
    Rendered {
        subject,
        text,
        html,
    }
}

fn event_line(d: &Value) -> String {
    let mut l = s(d, "eventName").to_string();
    let when = [s(d, "eventDate"), s(d, "eventTime")]
        .iter()
        .filter(|x| !x.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    if !when.is_empty() {
        l.push_str(&format!(", {when}"));
    }
    let place = [s(d, "venue"), s(d, "city")]
        .iter()
        .filter(|x| !x.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if !place.is_empty() {
        l.push_str(&format!(", {place}"));
    }
    l
}

/// Renders a notification of `kind` (the stored `type`) from its template variables.
pub(crate) fn render(kind: &str, d: &Value) -> Rendered {
    let name = s(d, "name");
    let reference = s(d, "bookingReference");
    match kind {
        "booking_confirmation" => booking_confirmation(d, name, reference),
        "payment_confirmation" => payment_confirmation(d, name, reference),
        "booking_cancellation" => booking_cancellation(d, name, reference),
        "refund_processed" => refund_processed(d, name, reference),
        "payment_failed" => payment_failed(d, name, reference),
        "event_cancelled" => event_cancelled(d, name),
        "event_reminder" => event_reminder(d, name, reference),
        "account_verification" => account_verification(d, name),
        "password_reset" => password_reset(d, name),
        other => build(
            format!("Notification: {}", other.replace('_', " ")),
            name,
            vec![s(d, "message").to_string()],
        ),
    }
}

/// The booking's confirmation: the show, its tickets (or seats until issued), the total.
fn booking_confirmation(d: &Value, name: &str, reference: &str) -> Rendered {
    let mut lines = vec![
        format!("Your booking {reference} is confirmed."),
        format!("Event: {}", event_line(d)),
    ];
    let tickets = d.get("tickets").and_then(Value::as_array);
    match tickets {
        Some(t) if !t.is_empty() => {
            lines.push("Your tickets:".into());
            for t in t {
                lines.push(format!(
                    "  Ticket {} - seat {}",
                    s(t, "ticketNumber"),
                    s(t, "seat")
                ));
            }
        }
        _ => {
            lines.push("Your seats:".into());
            for seat in d
                .get("seats")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                lines.push(format!(
                    "  {} ({}) - {}",
                    s(seat, "label"),
                    s(seat, "section"),
                    s(seat, "price")
                ));
            }
        }
    }
    lines.push(format!("Total paid: {}", s(d, "total")));
    build(
        format!("Your booking {reference} is confirmed"),
        name,
        lines,
    )
}

/// The receipt of a payment.
fn payment_confirmation(d: &Value, name: &str, reference: &str) -> Rendered {
    build(
        format!("Payment received for booking {reference}"),
        name,
        vec![
            format!(
                "We received your payment of {} for booking {reference}.",
                s(d, "amount")
            ),
            format!("Card ending in {}.", s(d, "cardLast4")),
            format!("Transaction: {}", s(d, "transactionId")),
        ],
    )
}

/// A booking's cancellation, why, and its refund.
fn booking_cancellation(d: &Value, name: &str, reference: &str) -> Rendered {
    build(
        format!("Your booking {reference} is cancelled"),
        name,
        vec![
            format!(
                "Your booking {reference} for {} is cancelled ({}).",
                s(d, "eventName"),
                s(d, "reason").replace('_', " ")
            ),
            format!("Refund: {}", s(d, "refund")),
        ],
    )
}

/// A refund paid back.
fn refund_processed(d: &Value, name: &str, reference: &str) -> Rendered {
    build(
        format!("Refund processed for booking {reference}"),
        name,
        vec![
            format!(
                "We refunded {} ({}% of {}) for booking {reference}.",
                s(d, "refundAmount"),
                s(d, "refundPercentage"),
                s(d, "originalAmount")
            ),
            "It may take a few days to show on your statement.".into(),
        ],
    )
}

/// A payment that did not go through.
fn payment_failed(d: &Value, name: &str, reference: &str) -> Rendered {
    build(
        format!("Payment failed for booking {reference}"),
        name,
        vec![
            format!(
                "The payment for booking {reference} did not go through ({}).",
                s(d, "reason").replace('_', " ")
            ),
            "The seats were released; you can book again.".into(),
        ],
    )
}

/// A show's cancellation.
fn event_cancelled(d: &Value, name: &str) -> Rendered {
    build(
        format!("{} is cancelled", s(d, "eventName")),
        name,
        vec![
            format!("We are sorry: {} is cancelled.", event_line(d)),
            "Every booking for it is refunded in full.".into(),
        ],
    )
}

/// The reminder ahead of the show.
fn event_reminder(d: &Value, name: &str, reference: &str) -> Rendered {
    build(
        format!("Reminder: {} is coming up", s(d, "eventName")),
        name,
        vec![
            format!("See you at {}.", event_line(d)),
            format!("Booking: {reference}"),
        ],
    )
}

/// The e-mail address's verification token.
fn account_verification(d: &Value, name: &str) -> Rendered {
    build(
        "Verify your e-mail address".into(),
        name,
        vec![
            "Confirm this address by sending this token to POST /v1/auth/verify:".into(),
            format!("Verification token: {}", s(d, "token")),
            format!(
                "The request's JSON body: {{\"token\": \"{}\"}}. Paying for bookings needs a verified address.",
                s(d, "token")
            ),
        ],
    )
}

/// The password reset token.
fn password_reset(d: &Value, name: &str) -> Rendered {
    build(
        "Reset your password".into(),
        name,
        vec![
            "Someone asked to reset the password of this account. If it was you, send this token with your new password to POST /v1/auth/password-reset/confirm:".into(),
            format!("Reset token: {}", s(d, "token")),
            format!(
                "The request's JSON body: {{\"token\": \"{}\", \"newPassword\": \"<8 to 128 characters>\"}}.",
                s(d, "token")
            ),
            "Signing in again afterwards is needed everywhere: the reset ends every token issued before it.".into(),
            format!("It expires at {}. If it was not you, ignore this e-mail.", s(d, "expiresAt")),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_confirmation_lists_the_seats_or_the_tickets() {
        let mut d = json!({"name": "Ana", "bookingReference": "BK-1", "eventName": "Gig", "total": "50.00 USD",
            "seats": [{"label": "A1", "section": "Standard", "price": "25.00 USD"}]});
        let r = render("booking_confirmation", &d);
        assert_eq!(r.subject, "Your booking BK-1 is confirmed");
        assert!(r.text.contains("A1 (Standard)") && r.text.contains("50.00 USD"));
        d["tickets"] = json!([{"ticketNumber": "TK-9", "seat": "A1"}]);
        assert!(render("booking_confirmation", &d).text.contains("TK-9"));
    }

    #[test]
    fn variables_are_escaped_in_html() {
        let r = render("event_cancelled", &json!({"eventName": "<b>x</b>"}));
        assert!(r.html.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(!r.html.contains("<b>x"));
    }
}
