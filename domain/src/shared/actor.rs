//! Who sent a command: the issuer of the envelope, as the decisions need it.

use bson::oid::ObjectId;

use crate::accounts::user::Role;

/// The signed-in user a command comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub user_id: ObjectId,
    pub role: Role,
}

impl Actor {
    pub fn new(user_id: ObjectId, role: Role) -> Self {
        Actor { user_id, role }
    }

    pub fn is_admin(&self) -> bool {
        self.role.is_admin()
    }

    /// Whether the actor may act on something owned by `owner`: its owner or an admin.
    pub fn owns_or_admin(&self, owner: ObjectId) -> bool {
        self.user_id == owner || self.is_admin()
    }
}
