//! Seat holds: the request rules, the hold's status machine, and the decisions of
//! creating and releasing a hold.

pub mod decide;
pub mod hold;
