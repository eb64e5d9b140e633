//! What the command proof costs on the hold path, on one core of this machine: signing a
//! hold's envelope (the gateway), checking it (the holds worker: signature, grant,
//! times) and signing its `hold.created` event (the workers). No server involved.

use std::time::Instant;

use bson::oid::ObjectId;
use streams::commands::{new_command_id, Command, CommandEnvelope, CreateHold, Issuer};
use streams::proof::{CommandSigner, Registry, SignerEntry, Trust, ANY};

pub struct ProofCost {
    pub sign_us: f64,
    pub check_us: f64,
}

impl ProofCost {
    /// Per successful hold: two signatures (command, event) and one check.
    pub fn per_hold_us(&self) -> f64 {
        2.0 * self.sign_us + self.check_us
    }
}

/// Times `n` signatures and `n` checks of a 4-seat hold envelope.
pub fn measure(n: usize) -> ProofCost {
    let signer = CommandSigner::generate("bench-1").expect("key id");
    let trust = Trust::new(Registry {
        signers: vec![SignerEntry::new(&signer, "gateway", &[ANY], &[ANY])],
    })
    .expect("registry");
    let env = CommandEnvelope {
        id: new_command_id(),
        issuer: Some(Issuer {
            user_id: ObjectId::new(),
            role: domain::user::Role::User,
        }),
        issued_at: chrono::Utc::now(),
        context: Default::default(),
        command: Command::CreateHold(CreateHold {
            event_id: ObjectId::new(),
            seat_ids: (0..4).map(|_| ObjectId::new()).collect(),
        }),
    };
    let body = serde_json::to_vec(&env).expect("json");
    let n = n.max(1);
    let t = Instant::now();
    let mut h = async_nats::HeaderMap::new();
    for _ in 0..n {
        h = async_nats::HeaderMap::new();
        signer.sign_into(&mut h, &body);
    }
    let sign_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let now = chrono::Utc::now();
    let t = Instant::now();
    for _ in 0..n {
        trust
            .check_command(Some(&h), &body, "ticketing.cmd.holds.create", &env, now)
            .expect("a valid proof");
    }
    let check_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    ProofCost { sign_us, check_us }
}
