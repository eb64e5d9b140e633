//! What every workflow shares: ids derived from commands, money, validation errors, the
//! audit trail, the injectable clock, and the `string_enum!` macro of stored statuses.

#[macro_use]
mod macros;

pub mod actor;
pub mod audit;
pub mod clock;
pub mod error;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod ids;
pub mod money;
pub mod refusal;
