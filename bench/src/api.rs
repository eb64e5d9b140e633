//! A thin client of the gateway's HTTP API (v1): just the calls the tools need.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::plan::EventPlan;

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

/// One seat of an event's seat map.
#[derive(Debug, Clone)]
pub struct Seat {
    pub id: String,
    pub section: String,
    pub row: String,
    pub number: i64,
}

/// What a hold request came back with.
#[derive(Debug)]
pub enum HoldOutcome {
    /// 201: the seats are ours, in the hold with this id.
    Held { id: String },
    /// 409 `seats_unavailable`, with the seats the server named as taken (may be empty).
    Conflict { taken: Vec<String> },
    /// Any other status.
    Status(u16),
    /// No HTTP answer at all (connection refused, reset, timeout).
    Transport,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Token {
    access_token: String,
}

impl Api {
    /// A client of the gateway at `base` (for example `http://127.0.0.1:8080`), with up
    /// to `connections` idle connections kept open.
    pub fn new(base: &str, connections: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST /v1/auth/login; the access token.
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let resp = self
            .http
            .post(self.url("/v1/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .with_context(|| format!("POST {}/v1/auth/login", self.base))?;
        let status = resp.status();
        if status != StatusCode::OK {
            bail!(
                "login of {email} answered {status}: {}",
                body_text(resp).await
            );
        }
        let t: Token = resp.json().await.context("login answer")?;
        Ok(t.access_token)
    }

    /// Logs in, retrying for up to `patience` while the gateway is not up or the account
    /// does not exist yet (the first admin is created asynchronously at start-up).
    pub async fn login_with_retry(
        &self,
        email: &str,
        password: &str,
        patience: Duration,
    ) -> anyhow::Result<String> {
        let started = Instant::now();
        let mut last_note: Option<Instant> = None;
        loop {
            match self.login(email, password).await {
                Ok(t) => return Ok(t),
                Err(e) if started.elapsed() < patience => {
                    // One note at the first failure, then one every 5 s.
                    if last_note.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                        crate::note(&format!("login not yet possible ({e:#}); retrying"));
                        last_note = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    return Err(e.context(format!("no login for {email} within {patience:?}")))
                }
            }
        }
    }

    /// POST /v1/auth/register; 201 expected.
    pub async fn register(&self, email: &str, password: &str, name: &str) -> anyhow::Result<()> {
        let resp = self
            .http
            .post(self.url("/v1/auth/register"))
            .json(&json!({"email": email, "password": password, "name": name}))
            .send()
            .await
            .context("POST /v1/auth/register")?;
        let status = resp.status();
        if status != StatusCode::CREATED {
            bail!(
                "register {email} answered {status}: {}",
                body_text(resp).await
            );
        }
        Ok(())
    }

    /// POST /v1/events then POST /v1/events/{id}/publish; the event id.
    pub async fn create_published_event(
        &self,
        token: &str,
        plan: &EventPlan,
    ) -> anyhow::Result<String> {
        let resp = self
            .http
            .post(self.url("/v1/events"))
            .bearer_auth(token)
            .json(&plan.body())
            .send()
            .await
            .context("POST /v1/events")?;
        let status = resp.status();
        if status != StatusCode::CREATED {
            bail!(
                "creating the event answered {status}: {}",
                body_text(resp).await
            );
        }
        let created: Value = resp.json().await.context("event creation answer")?;
        let id = created
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("event creation answer has no id: {created}"))?
            .to_string();
        let resp = self
            .http
            .post(self.url(&format!("/v1/events/{id}/publish")))
            .bearer_auth(token)
            .send()
            .await
            .context("POST /v1/events/{id}/publish")?;
        let status = resp.status();
        if status != StatusCode::OK {
            bail!(
                "publishing event {id} answered {status}: {}",
                body_text(resp).await
            );
        }
        Ok(id)
    }

    /// GET /v1/events/{id}/seats?status=available, following pages when the answer holds
    /// fewer items than its `total`.
    pub async fn available_seats(&self, event_id: &str) -> anyhow::Result<Vec<Seat>> {
        let mut seats = Vec::new();
        let mut page = 1u32;
        let mut limit: Option<usize> = None;
        loop {
            let mut url = self.url(&format!("/v1/events/{event_id}/seats?status=available"));
            if let Some(l) = limit {
                url.push_str(&format!("&page={page}&limit={l}"));
            }
            let resp = self
                .http
                .get(&url)
                .send()
                .await
                .with_context(|| format!("GET {url}"))?;
            let status = resp.status();
            if status != StatusCode::OK {
                bail!(
                    "seat map of {event_id} answered {status}: {}",
                    body_text(resp).await
                );
            }
            let body: Value = resp.json().await.context("seat map answer")?;
            let items = body
                .get("items")
                .and_then(Value::as_array)
                .ok_or_else(|| anyhow!("seat map answer has no items"))?;
            let got = items.len();
            seats.extend(items.iter().filter_map(parse_seat));
            let total = body.get("total").and_then(Value::as_u64).unwrap_or(0) as usize;
            if got == 0 || seats.len() >= total {
                break;
            }
            // A paged answer: ask for the following pages with the page size it used.
            limit.get_or_insert(got);
            page += 1;
        }
        Ok(seats)
    }

    /// One read of the whole seat map, as a buyer's page makes it: its status (0 when
    /// no HTTP answer came) and the number of seats listed.
    pub async fn seat_map(&self, event_id: &str) -> (u16, usize) {
        let url = self.url(&format!("/v1/events/{event_id}/seats"));
        let Ok(resp) = self.http.get(&url).send().await else {
            return (0, 0);
        };
        let status = resp.status().as_u16();
        let seats = match resp.json::<Value>().await {
            Ok(v) => v["items"].as_array().map_or(0, Vec::len),
            Err(_) => 0,
        };
        (status, seats)
    }

    /// POST /v1/events/{id}/holds `{seatIds}`.
    pub async fn hold(&self, token: &str, event_id: &str, seat_ids: &[&str]) -> HoldOutcome {
        let sent = self
            .http
            .post(self.url(&format!("/v1/events/{event_id}/holds")))
            .bearer_auth(token)
            .json(&json!({ "seatIds": seat_ids }))
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(_) => return HoldOutcome::Transport,
        };
        match resp.status() {
            StatusCode::CREATED => {
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                HoldOutcome::Held {
                    id: body["id"].as_str().unwrap_or_default().to_string(),
                }
            }
            StatusCode::CONFLICT => {
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                let taken = body
                    .pointer("/error/details/seatIds")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                HoldOutcome::Conflict { taken }
            }
            other => {
                let _ = resp.bytes().await;
                HoldOutcome::Status(other.as_u16())
            }
        }
    }
}

impl Api {
    /// POST /v1/bookings `{holdId}`: the booking id on 201, else the status.
    pub async fn book(&self, token: &str, hold_id: &str) -> Result<String, u16> {
        let resp = self
            .http
            .post(self.url("/v1/bookings"))
            .bearer_auth(token)
            .json(&json!({ "holdId": hold_id }))
            .send()
            .await
            .map_err(|_| 0u16)?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        match (status, body["id"].as_str()) {
            (StatusCode::CREATED, Some(id)) => Ok(id.to_string()),
            _ => Err(status.as_u16()),
        }
    }

    /// POST /v1/bookings/{id}/payments with the approving test card: Ok on 201.
    pub async fn pay(&self, token: &str, booking_id: &str) -> Result<(), u16> {
        let resp = self
            .http
            .post(self.url(&format!("/v1/bookings/{booking_id}/payments")))
            .bearer_auth(token)
            .json(&json!({ "method": "card", "cardNumber": "4242424242424242" }))
            .send()
            .await
            .map_err(|_| 0u16)?;
        let status = resp.status();
        let _ = resp.bytes().await;
        if status == StatusCode::CREATED {
            Ok(())
        } else {
            Err(status.as_u16())
        }
    }
}

fn parse_seat(v: &Value) -> Option<Seat> {
    let text = |k: &str| match v.get(k)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    Some(Seat {
        id: text("id")?,
        section: text("section").unwrap_or_default(),
        row: text("row").unwrap_or_default(),
        number: v.get("number").and_then(Value::as_i64).unwrap_or(0),
    })
}

async fn body_text(resp: reqwest::Response) -> String {
    let mut t = resp.text().await.unwrap_or_default();
    t.truncate(500);
    t
}
