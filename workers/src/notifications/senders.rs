//! The pluggable senders: e-mail over SMTP (`lettre`), SMS and push through webhooks.
//!
//! A sender says whether a failure is worth another attempt ([`SendError::Transient`]:
//! the relay was unreachable, a 5xx) or not ([`SendError::Permanent`]: no address, the
//! medium is not configured, a 4xx).

use std::time::Duration;

use futures::future::BoxFuture;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;

use super::templates::Rendered;

/// One message on its way out.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub notification_id: String,
    pub kind: String,
    /// E-mail address, phone number or device token, as the medium needs.
    pub to: String,
    pub rendered: Rendered,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Permanent(String),
}

pub(crate) trait Sender: Send + Sync + 'static {
    fn send<'a>(&'a self, msg: &'a Outgoing) -> BoxFuture<'a, Result<(), SendError>>;
}

/// E-mail over SMTP.
pub(crate) struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl EmailSender {
    pub(crate) fn new(smtp_url: &str, from: &str) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| anyhow::anyhow!("TICKETING_SMTP_URL is not a valid SMTP URL: {e}"))?
            .timeout(Some(Duration::from_secs(10)))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| anyhow::anyhow!("TICKETING_MAIL_FROM is not a mailbox: {e}"))?;
        Ok(EmailSender { transport, from })
    }

    fn message(&self, msg: &Outgoing) -> Result<Message, SendError> {
        let to = msg
            .to
            .parse::<Mailbox>()
            .map_err(|e| SendError::Permanent(format!("bad recipient address: {e}")))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(msg.rendered.subject.clone())
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(msg.rendered.text.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(msg.rendered.html.clone()),
                    ),
            )
            .map_err(|e| SendError::Permanent(format!("message not built: {e}")))
    }
}

impl Sender for EmailSender {
    fn send<'a>(&'a self, msg: &'a Outgoing) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let m = self.message(msg)?;
            match self.transport.send(m).await {
                Ok(_) => Ok(()),
                // A permanent SMTP answer (5xx) will not change on retry.
                Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("smtp: {e}"))),
                Err(e) => Err(SendError::Transient(format!("smtp: {e}"))),
            }
        })
    }
}

/// SMS or push: a JSON POST to a configured webhook (an SMS gateway, a push relay).
pub(crate) struct WebhookSender {
    medium: &'static str,
    url: Option<String>,
    http: reqwest::Client,
}

impl WebhookSender {
    pub(crate) fn new(medium: &'static str, url: Option<String>) -> Self {
        WebhookSender {
            medium,
            url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }
}

impl Sender for WebhookSender {
    fn send<'a>(&'a self, msg: &'a Outgoing) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let Some(url) = &self.url else {
                return Err(SendError::Permanent(format!(
                    "no {} sender is configured",
                    self.medium
                )));
            };
            if msg.to.is_empty() {
                return Err(SendError::Permanent(format!(
                    "the user has no {} address",
                    self.medium
                )));
            }
            let body = json!({
                "notificationId": msg.notification_id, "type": msg.kind, "to": msg.to,
                "subject": msg.rendered.subject, "text": msg.rendered.text,
            });
            match self.http.post(url).json(&body).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                    Err(SendError::Transient(format!(
                        "{} webhook answered {}",
                        self.medium,
                        r.status()
                    )))
                }
                Ok(r) => Err(SendError::Permanent(format!(
                    "{} webhook answered {}",
                    self.medium,
                    r.status()
                ))),
                Err(e) => Err(SendError::Transient(format!(
                    "{} webhook: {e}",
                    self.medium
                ))),
            }
        })
    }
}

/// The senders of each medium.
pub(crate) struct Senders {
    pub email: Box<dyn Sender>,
    pub sms: Box<dyn Sender>,
    pub push: Box<dyn Sender>,
}

impl Senders {
    pub(crate) fn from_config(cfg: &crate::app::config::Config) -> anyhow::Result<Self> {
        Ok(Senders {
            email: Box::new(EmailSender::new(&cfg.smtp_url, &cfg.mail_from)?),
            sms: Box::new(WebhookSender::new("sms", cfg.sms_webhook_url.clone())),
            push: Box::new(WebhookSender::new("push", cfg.push_webhook_url.clone())),
        })
    }

    pub(crate) fn for_medium(&self, medium: &str) -> &dyn Sender {
        match medium {
            "sms" => self.sms.as_ref(),
            "push_notification" => self.push.as_ref(),
            _ => self.email.as_ref(),
        }
    }
}
