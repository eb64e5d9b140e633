//! Accounts: users, their e-mail, roles and status, and the decisions of the account
//! commands (sign-up, verification, suspension).

pub mod decide;
pub mod user;
