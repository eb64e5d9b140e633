//! The command catalogue for systems that publish commands straight to NATS, generated
//! from the Rust types (`docs/commands.md` and `docs/commands.schema.json`), so it cannot
//! drift: a test compares the committed files with what this module renders now
//! (`UPDATE_CATALOGUE=1 cargo test -p streams catalogue` rewrites them).

use std::fmt::Write as _;

use domain::ObjectId;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Value};

use crate::codes::{ErrorCode, Reply};
use crate::commands::*;
use crate::headers;
use crate::names::Namespace;
use crate::proof::{MAX_CLOCK_AHEAD, MAX_SIGNED_TO_STORED, WORKERS_COMMANDS};
use crate::setup::WireConfig;

/// The JSON Schema of an id: 24 lowercase hex digits (a MongoDB ObjectId).
pub struct Oid;

impl JsonSchema for Oid {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ObjectId".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[0-9a-f]{24}$",
            "description": "An id: 24 lowercase hexadecimal digits."
        })
    }
}

/// One command of each kind: their subjects come from [`Command::route`]. A test checks
/// every kind in the envelope's schema is here.
pub fn samples() -> Vec<Command> {
    let id = ObjectId::from_bytes([0; 12]);
    let email = || domain::user::Email::parse("ana@example.com").expect("an e-mail");
    let user = || RegisterUser {
        email: email(),
        password_hash: String::new(),
        name: String::new(),
        phone: None,
    };
    vec![
        Command::RegisterUser(user()),
        Command::EnsureAdmin(user()),
        Command::CreateEvent(CreateEvent {
            name: String::new(),
            description: String::new(),
            event_date: String::new(),
            event_time: String::new(),
            venue: String::new(),
            city: String::new(),
            country: String::new(),
            category: domain::event::Category::Other,
            currency: domain::Currency::USD,
            image_url: None,
            sections: vec![],
            cancellation_policy: None,
        }),
        Command::PublishEvent(EventRef { event_id: id }),
        Command::CreateHold(CreateHold {
            event_id: id,
            seat_ids: vec![],
        }),
        Command::ReleaseHold(ReleaseHold {
            hold_id: id,
            reason: ReleaseReason::Released,
        }),
        Command::CancelEvent(EventRef { event_id: id }),
        Command::CreateBooking(CreateBooking { hold_id: id }),
        Command::PayBooking(PayBooking {
            booking_id: id,
            method: domain::entities::payment::PaymentMethod::Card,
            card_token: String::new(),
            card_last4: String::new(),
            card_brand: domain::entities::card::CardBrand::Visa,
            currency: None,
        }),
        Command::CancelBooking(CancelBooking {
            booking_id: id,
            cause: CancelCause::UserRequested,
            note: None,
        }),
        Command::ExpireBooking(BookingRef { booking_id: id }),
        Command::ScanTicket(ScanTicket {
            qr_string: String::new(),
            device_id: String::new(),
            gate: None,
        }),
        Command::RecordTicketDownload(TicketRef { ticket_id: id }),
        Command::VerifyEmail(OneTimeToken {
            token: String::new(),
        }),
        Command::RequestPasswordReset(PasswordResetRequest { email: email() }),
        Command::ConfirmPasswordReset(PasswordResetConfirm {
            token: String::new(),
            password_hash: String::new(),
        }),
        Command::RecordLogin,
        Command::MarkNotificationRead(NotificationRef {
            notification_id: id,
        }),
        Command::RebuildAnalytics,
        Command::Logout,
        Command::SuspendUser(UserRef { user_id: id }),
    ]
}

/// The `type` tag of a command (`create_hold`).
pub fn type_tag(c: &Command) -> String {
    serde_json::to_value(c).expect("commands serialize")["type"]
        .as_str()
        .expect("a type tag")
        .to_string()
}

/// The envelope's schema, with every payload under `$defs`.
pub fn envelope_schema() -> Value {
    schemars::schema_for!(CommandEnvelope).to_value()
}

/// Each kind of command in the envelope's schema: its `type` tag and payload schema
/// (`None` for a command without payload).
pub fn kinds_in_schema(envelope: &Value) -> Vec<(String, Option<Value>)> {
    let mut out = Vec::new();
    let variants = envelope
        .get("oneOf")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for v in variants {
        let props = &v["properties"];
        let tag = props["type"]["const"]
            .as_str()
            .or_else(|| props["type"]["enum"][0].as_str())
            .unwrap_or_default()
            .to_string();
        out.push((tag, props.get("payload").cloned()));
    }
    out
}

fn error_codes(schema: &Value) -> Vec<(String, u16)> {
    let mut codes = Vec::new();
    let mut collect = |v: &Value| {
        if let Some(s) = v.as_str() {
            let code: ErrorCode =
                serde_json::from_value(Value::String(s.into())).expect("a code of the schema");
            codes.push((s.to_string(), code.status()));
        }
    };
    if let Some(list) = schema["enum"].as_array() {
        list.iter().for_each(&mut collect);
    }
    if let Some(list) = schema["oneOf"].as_array() {
        for v in list {
            collect(&v["const"]);
            if let Some(e) = v["enum"].as_array() {
                e.iter().for_each(&mut collect);
            }
        }
    }
    codes
}

/// Who sends a command by default: the gateway for HTTP users, the workers for what they
/// fan out; any other system with a grant for it.
fn senders(route: &str) -> &'static str {
    if WORKERS_COMMANDS.contains(&route) {
        "gateway, workers"
    } else {
        "gateway"
    }
}

/// `docs/commands.schema.json`.
pub fn json() -> String {
    let envelope = envelope_schema();
    let ns = Namespace::new(crate::names::DEFAULT_NAMESPACE);
    let commands: Vec<Value> = samples()
        .iter()
        .map(|c| {
            let (area, verb) = c.route();
            json!({
                "type": type_tag(c),
                "subject": ns.command(area, verb),
                "grant": format!("{}.{verb}", area.as_str()),
            })
        })
        .collect();
    let doc = json!({
        "$comment": "Generated from the Rust types by streams::catalogue; do not edit.",
        "envelope": envelope,
        "reply": schemars::schema_for!(Reply).to_value(),
        "errorCode": schemars::schema_for!(ErrorCode).to_value(),
        "commands": commands,
    });
    serde_json::to_string_pretty(&doc).expect("json") + "\n"
}

/// `docs/commands.md`.
pub fn markdown() -> String {
    let envelope = envelope_schema();
    let ns = Namespace::new(crate::names::DEFAULT_NAMESPACE);
    let wire = WireConfig::default();
    let kinds = kinds_in_schema(&envelope);
    let mut m = String::new();
    let w = &mut m;
    let _ = writeln!(
        w,
        "# Command catalogue\n\n\
         <!-- Generated from the Rust types by `streams::catalogue` (UPDATE_CATALOGUE=1 cargo test -p streams catalogue); do not edit. -->\n\n\
         Other systems change the platform by publishing commands to NATS JetStream, the way the\n\
         HTTP gateway does. Each command is a JSON envelope published to its subject; a worker\n\
         applies it once and answers on the inbox you name. The JSON Schemas of the envelope,\n\
         every payload, the reply and the error codes are in\n\
         [`commands.schema.json`](commands.schema.json).\n"
    );
    let _ = writeln!(
        w,
        "## Before you publish\n\n\
         1. **A NATS identity.** nats-server refuses anonymous clients. Your system gets a user\n   \
            and password allowed to publish only its granted subjects and to subscribe only to\n   \
            `_INBOX.<user>.>` (connect with that inbox prefix: `nats --inbox-prefix _INBOX.<user>`,\n   \
            async-nats `custom_inbox_prefix`).\n\
         2. **A signing key in the workers' registry.** An Ed25519 key (`ticketing-keys new`);\n   \
            its public half is registered with your system's grant: the commands\n   \
            (`<area>.<verb>`, as in the table below) and the issuer roles it may claim\n   \
            (`ticketing-keys add`). A command outside the grant is refused.\n"
    );
    let _ = writeln!(
        w,
        "## Publishing a command\n\n\
         Publish the envelope's JSON bytes to the command's subject with these headers:\n\n\
         | header | value |\n|---|---|\n\
         | `Nats-Msg-Id` | the envelope's `id`: JetStream drops a second publish of it within {} s |\n\
         | `{}` | your key id |\n\
         | `{}` | base64 of the Ed25519 signature of the exact body bytes you publish |\n\
         | `{}` | an inbox of yours (`_INBOX.<user>.<anything>`): the worker's reply goes there |\n\
         | `{}` (optional) | Unix milliseconds after which the worker must not apply it (answers `request_expired`) |\n\
         | `{}` (optional) | a request id carried into every log line and the audit log |\n",
        wire.duplicate_window.as_secs(),
        headers::SIGNER,
        headers::SIGNATURE,
        headers::REPLY_TO,
        headers::DEADLINE,
        headers::REQUEST_ID,
    );
    let _ = writeln!(
        w,
        "The signature covers the body as published, byte for byte (nothing is re-encoded, so\n\
         sign exactly what you send). `issuedAt` must be within {} s of the time JetStream stores\n\
         the message (and at most {} s ahead of it); a stored command replayed later still\n\
         verifies. A retired key's commands are refused once it is retired; those stored before\n\
         still verify.\n\n\
         The reply on your inbox is `{{\"status\": <HTTP status>, \"body\": <resource or error>}}`;\n\
         an error body is `{{\"error\": {{\"code\", \"message\", \"details\"?}}}}`. A success body is\n\
         the resource as the HTTP API returns it (see the gateway's `/openapi.json`).\n\n\
         **Idempotency.** The envelope `id` is the idempotency key: choose it once per intended\n\
         change and reuse it on every retry. It must start with your system's name and `-`\n\
         (`boxoffice-7f3a...`), so no system can take or read another's ids. Set\n\
         `Nats-Msg-Id` to it: within {} s JetStream drops a second publish; after that the\n\
         worker answers with the first result, kept for {} h in the `{}` KV bucket (key: the\n\
         id), to the same system for the same issuer only (anyone else reusing the id gets\n\
         `idempotency_key_reused`). A command whose proof is refused keeps no result.\n\n\
         **Missed the reply?** Within the duplicate window a second publish is dropped and\n\
         nothing answers; after it, publish the same id again, re-signed with a fresh\n\
         `issuedAt`: you get the stored result, with no second effect.\n",
        MAX_SIGNED_TO_STORED.num_seconds(),
        MAX_CLOCK_AHEAD.num_seconds(),
        wire.duplicate_window.as_secs(),
        wire.results_ttl.as_secs() / 3600,
        ns.results_bucket(),
    );
    let _ = writeln!(
        w,
        "## The envelope\n\n\
         | field | type | meaning |\n|---|---|---|\n\
         | `id` | string | the command id, also `Nats-Msg-Id`: letters, digits, `-`, `_` |\n\
         | `issuer` | `{{userId, role}}` or null | on whose behalf (null: anonymous, such as a registration); your grant limits the roles |\n\
         | `issuedAt` | RFC 3339 time | when you signed it |\n\
         | `context` | `{{requestId?, ipAddress?, userAgent?}}` | kept in the audit log |\n\
         | `type` | string | the command, from the table below |\n\
         | `payload` | object | the command's fields (schema: `commands.schema.json`, `envelope.$defs`) |\n"
    );
    let _ = writeln!(
        w,
        "## Commands\n\n\
         | subject | `type` | grant | sent by default by | payload |\n|---|---|---|---|---|"
    );
    for c in samples() {
        let (area, verb) = c.route();
        let route = format!("{}.{verb}", area.as_str());
        let tag = type_tag(&c);
        let payload = kinds
            .iter()
            .find(|(t, _)| *t == tag)
            .and_then(|(_, p)| p.as_ref())
            .and_then(|p| p["$ref"].as_str())
            .map(|r| format!("`{}`", r.trim_start_matches("#/$defs/")))
            .unwrap_or_else(|| "none".into());
        let _ = writeln!(
            w,
            "| `{}` | `{tag}` | `{route}` | {} | {payload} |",
            ns.command(area, verb),
            senders(&route),
        );
    }
    let _ = writeln!(
        w,
        "\nIn another namespace (`TICKETING_NAMESPACE`) the subjects start with it instead of\n\
         `ticketing`.\n\n\
         ## Error codes\n\n\
         | code | HTTP status |\n|---|---|"
    );
    for (code, status) in error_codes(&schemars::schema_for!(ErrorCode).to_value()) {
        let _ = writeln!(w, "| `{code}` | {status} |");
    }
    let _ = writeln!(
        w,
        "\nThe `command_*` codes are about the proof, not the command: the message is\n\
         terminated (never retried), copied to the `DEADLETTERS` stream with the reason in\n\
         `{}`, and recorded in the audit log as a failed `command_refused` with the issuer\n\
         it claimed.",
        headers::DEADLETTER_REASON
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    fn docs() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs")
    }

    #[test]
    fn every_kind_of_command_in_the_schema_has_a_subject() {
        let in_schema: BTreeSet<String> = kinds_in_schema(&envelope_schema())
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        let sampled: BTreeSet<String> = samples().iter().map(type_tag).collect();
        assert!(in_schema.len() >= 19, "{in_schema:?}");
        assert_eq!(in_schema, sampled);
    }

    #[test]
    fn every_error_code_has_its_status() {
        let codes = error_codes(&schemars::schema_for!(ErrorCode).to_value());
        assert!(codes
            .iter()
            .any(|(c, s)| c == "command_not_granted" && *s == 403));
        assert!(codes
            .iter()
            .any(|(c, s)| c == "seats_unavailable" && *s == 409));
        assert!(codes.len() > 40);
    }

    #[test]
    fn an_envelope_as_another_system_writes_it_decodes() {
        let text = r#"{"id":"bo-1","issuer":{"userId":"000000000000000000000001","role":"user"},
            "issuedAt":"2026-12-02T10:00:00Z","type":"create_hold",
            "payload":{"eventId":"000000000000000000000002","seatIds":["000000000000000000000003"]}}"#;
        let env: CommandEnvelope = serde_json::from_str(text).unwrap();
        assert_eq!(type_tag(&env.command), "create_hold");
    }

    #[test]
    fn the_committed_catalogue_is_current() {
        let files = [
            ("commands.md", markdown()),
            ("commands.schema.json", json()),
        ];
        if std::env::var_os("UPDATE_CATALOGUE").is_some() {
            std::fs::create_dir_all(docs()).unwrap();
            for (name, text) in &files {
                std::fs::write(docs().join(name), text).unwrap();
            }
        }
        for (name, text) in &files {
            let committed = std::fs::read_to_string(docs().join(name)).unwrap_or_default();
            assert!(
                committed == *text,
                "docs/{name} is stale: UPDATE_CATALOGUE=1 cargo test -p streams catalogue"
            );
        }
    }
}
