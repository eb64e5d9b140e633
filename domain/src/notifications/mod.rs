//! Notifications: what to tell a user, by which medium and when, the status machine of
//! sending, and the decisions of creating, sending, retrying and reading one.

pub mod decide;
pub mod notification;

pub use notification::{Medium, Notification, NotificationStatus, NotificationType};
