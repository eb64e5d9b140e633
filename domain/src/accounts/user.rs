//! Users: e-mail, roles and the stored account document.

use bson::oid::ObjectId;
use bson::DateTime;
use serde::{Deserialize, Serialize};

use crate::DomainError;

/// A syntactically plausible, lower-cased e-mail address. It deserializes through
/// [`Email::parse`], so a command or document that carries one has been checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim().to_ascii_lowercase();
        let bad =
            || DomainError::invalid("email", "must be an e-mail address like ana@example.com");
        if s.len() > 254 || s.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        let (local, host) = s.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || host.len() < 3
            || !host.contains('.')
            || host.starts_with('.')
            || host.ends_with('.')
            || host.contains('@')
        {
            return Err(bad());
        }
        Ok(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = DomainError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Email::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> Self {
        e.0
    }
}

impl schemars::JsonSchema for Email {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Email".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "email",
            "maxLength": 254,
            "description": "An e-mail address; read trimmed and lower-cased."
        })
    }
}

/// Password rules, checked before hashing: 8 to 128 characters.
pub fn check_password(p: &str) -> Result<(), DomainError> {
    let n = p.chars().count();
    if !(8..=128).contains(&n) {
        return Err(DomainError::invalid(
            "password",
            "must be 8 to 128 characters",
        ));
    }
    Ok(())
}

/// A display name: 1 to 100 characters after trimming.
pub fn check_name(n: &str) -> Result<String, DomainError> {
    let t = n.trim();
    if t.is_empty() || t.chars().count() > 100 {
        return Err(DomainError::invalid("name", "must be 1 to 100 characters"));
    }
    Ok(t.to_string())
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    User,
    Staff,
    Admin,
}

impl Role {
    /// The wire name (`user`, `staff`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Staff => "staff",
            Role::Admin => "admin",
        }
    }

    /// An admin has every staff right.
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Staff | Role::Admin)
    }

    pub fn is_admin(self) -> bool {
        self == Role::Admin
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    #[default]
    Active,
    Suspended,
    Deleted,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Suspended => "suspended",
            UserStatus::Deleted => "deleted",
        }
    }

    /// `active -> suspended | deleted`, `suspended -> active | deleted`; a deleted
    /// account stays deleted.
    pub fn can_become(self, next: UserStatus) -> bool {
        use UserStatus::*;
        matches!(
            (self, next),
            (Active, Suspended) | (Active, Deleted) | (Suspended, Active) | (Suspended, Deleted)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip_code: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preferences {
    pub email_notifications: bool,
    pub sms_notifications: bool,
    pub marketing_emails: bool,
    pub newsletter: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            email_notifications: true,
            sms_notifications: false,
            marketing_emails: false,
            newsletter: false,
        }
    }
}

/// The `users` collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub email: Email,
    pub password_hash: String,
    pub name: String,
    pub phone: Option<String>,
    pub address: Option<Address>,
    pub is_verified: bool,
    /// Stored hashed (SHA-256 hex) so a database leak does not leak usable tokens.
    pub verification_token: Option<String>,
    pub reset_password_token: Option<String>,
    pub reset_password_expiry: Option<DateTime>,
    pub last_login_at: Option<DateTime>,
    #[serde(default)]
    pub login_count: i64,
    pub role: Role,
    pub status: UserStatus,
    #[serde(default)]
    pub preferences: Preferences,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// Fields of a user that never leave the service.
pub const PRIVATE_USER_FIELDS: &[&str] = &[
    "passwordHash",
    "verificationToken",
    "resetPasswordToken",
    "resetPasswordExpiry",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse(" Ana@Example.COM ").unwrap().as_str(),
            "ana@example.com"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@x.io",
            "a b@x.io",
            "ana@localhost",
            "a@b@c.io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_email_deserializes_only_through_parse() {
        let e: Email = serde_json::from_value(serde_json::json!(" Ana@Example.COM ")).unwrap();
        assert_eq!(e.as_str(), "ana@example.com");
        assert_eq!(serde_json::to_value(&e).unwrap(), "ana@example.com");
        let err = serde_json::from_value::<Email>(serde_json::json!("ana")).unwrap_err();
        assert!(err.to_string().starts_with("email: "), "{err}");
    }

    #[test]
    fn passwords_need_eight_characters() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough").is_ok());
        assert!(check_password(&"x".repeat(129)).is_err());
    }

    #[test]
    fn admins_have_staff_rights() {
        assert!(Role::Admin.is_staff() && Role::Staff.is_staff() && !Role::User.is_staff());
    }
}
