//! The OpenAPI document served at `/openapi.json`, generated from the handlers'
//! `#[utoipa::path]` annotations and the request types. Responses that are a worker's
//! document (a user, an event, a hold) are described as generic objects.

use std::sync::OnceLock;

use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::routes::tickets;
use crate::routes::{
    account_tokens, accounts, analytics, bookings, events, holds, notifications, ops,
};

/// Every error: `{"error": {"code", "message", "details"?}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code such as `seats_unavailable`.
    #[schema(example = "seats_unavailable")]
    pub code: String,
    /// For people; may change.
    pub message: String,
    /// Facts about the error, such as the seats that were taken.
    pub details: Option<Value>,
}

/// 202: the command is durable but its worker has not answered yet.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingCommand {
    pub command_id: String,
    /// Always `pending`.
    #[schema(example = "pending")]
    pub status: String,
    /// Where to read the result: `/v1/commands/{id}`.
    pub location: String,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ticketing API",
        description = "Events, seats and holds. Every state change is a command: responses carry `Ticketing-Command-Id`, and a command not answered in time is 202 with `Location: /v1/commands/{id}`. Send `Idempotency-Key` on a POST to make retries safe. Errors are `{\"error\": {\"code\", \"message\"}}`."
    ),
    paths(
        accounts::register,
        accounts::login,
        accounts::me,
        events::create,
        events::list,
        events::read,
        events::publish,
        events::seats,
        holds::create,
        holds::read,
        holds::release,
        bookings::create,
        bookings::read,
        bookings::mine,
        bookings::pay,
        bookings::cancel,
        bookings::cancel_event,
        bookings::payment,
        bookings::refund,
        ops::command,
        ops::audit_logs,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi,
        tickets::booking_tickets,
        tickets::read,
        tickets::qr_png,
        tickets::scan,
        tickets::scan_keys,
        tickets::revocations,
        account_tokens::verify,
        account_tokens::reset_request,
        account_tokens::reset_confirm,
        notifications::mine,
        notifications::read,
        analytics::read,
        analytics::rebuild,
    ),
    components(schemas(
        accounts::RegisterRequest,
        accounts::LoginRequest,
        accounts::TokenResponse,
        events::CreateEventRequest,
        events::SectionRequest,
        events::PolicyRequest,
        holds::CreateHoldRequest,
        bookings::CreateBookingRequest,
        bookings::PayRequest,
        bookings::CancelRequest,
        ErrorBody,
        ErrorDetail,
        PendingCommand,
        tickets::ScanRequest,
        account_tokens::VerifyRequest,
        account_tokens::ResetRequest,
        account_tokens::ResetConfirmRequest,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "Registration, sign-in, your account"),
        (name = "events", description = "Events and their seats"),
        (name = "holds", description = "Seat holds"),
        (name = "bookings", description = "Bookings, payments and refunds"),
        (name = "ops", description = "Health, metrics, command results, audit"),
        (name = "tickets", description = "Tickets, QR codes and gate scans"),
    )
)]
pub struct ApiDoc;

/// The document as JSON, built once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null))
}
