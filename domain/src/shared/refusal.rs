//! Refusals.
pub enum Refusal {}
