//! Suspensions and one-time tokens, on a fixed clock.

use super::*;
use crate::shared::fixtures::{admin, at, user, user_actor};

#[test]
fn an_admin_suspends_another_account_once() {
    let u = user();
    let SuspendDecision::Suspend(s) = decide_suspend(Some(admin()), Some(&u), at(1)) else {
        panic!()
    };
    assert_eq!(s.status, UserStatus::Suspended);
    assert_eq!(
        decide_suspend(Some(admin()), Some(&s), at(2)),
        SuspendDecision::Unchanged(UserStatus::Suspended)
    );
    assert_eq!(
        decide_suspend(Some(user_actor()), Some(&u), at(1)),
        SuspendDecision::Refuse(Refusal::Forbidden("admins only"))
    );
    let me = Actor::new(u.id, crate::user::Role::Admin);
    assert_eq!(
        decide_suspend(Some(me), Some(&u), at(1)),
        SuspendDecision::Refuse(Refusal::Forbidden(
            "an admin cannot suspend their own account"
        ))
    );
    assert_eq!(
        decide_suspend(Some(admin()), None, at(1)),
        SuspendDecision::Refuse(Refusal::AccountNotFound)
    );
}

#[test]
fn a_verification_token_verifies_once() {
    let mut u = user();
    u.verification_token = Some("h".into());
    let v = decide_verify_email("tok", Some(&u), "h", at(1)).unwrap();
    assert!(v.is_verified && v.verification_token.is_none());
    assert_eq!(
        decide_verify_email("tok", Some(&v), "h", at(2)),
        Err(Refusal::InvalidOrExpiredToken)
    );
    assert_eq!(
        decide_verify_email(" ", Some(&u), "h", at(1)),
        Err(Refusal::InvalidOrExpiredToken)
    );
}

#[test]
fn a_reset_token_works_until_its_expiry() {
    let mut u = user();
    u.reset_password_token = Some("h".into());
    u.reset_password_expiry = Some(at(1000));
    assert_eq!(
        decide_password_reset("t", "$argon2id$new", Some(&u), "h", at(999)),
        ResetDecision::Reset
    );
    assert_eq!(
        decide_password_reset("t", "$argon2id$new", Some(&u), "h", at(1000)),
        ResetDecision::Expired
    );
    assert_eq!(
        decide_password_reset("t", "plain", Some(&u), "h", at(1)),
        ResetDecision::Refuse(Refusal::Invalid(
            "passwordHash must be an argon2 PHC string".into()
        ))
    );
    assert_eq!(
        decide_password_reset("t", "$argon2id$new", Some(&u), "other", at(1)),
        ResetDecision::Refuse(Refusal::InvalidOrExpiredToken)
    );
}
