//! Every subject, stream, consumer and bucket name, derived from one namespace.
//!
//! The default namespace `ticketing` gives `ticketing.cmd.holds.create`, streams
//! `COMMANDS`/`EVENTS` and bucket `seat-locks`. Any other namespace (each test uses its
//! own) prefixes them, so several stacks share one nats-server without seeing each other.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    root: String,
    prefix: String,
}

pub const DEFAULT_NAMESPACE: &str = "ticketing";

/// The command areas, each consumed by one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Users,
    Events,
    Holds,
    Bookings,
    Payments,
    /// Ticket bookkeeping (download tracking), by the ticketing worker.
    Tickets,
    /// Gate scans, by the scans worker.
    Scans,
}

impl Area {
    pub const ALL: [Area; 7] = [
        Area::Users,
        Area::Events,
        Area::Holds,
        Area::Bookings,
        Area::Payments,
        Area::Tickets,
        Area::Scans,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Area::Users => "users",
            Area::Events => "events",
            Area::Holds => "holds",
            Area::Bookings => "bookings",
            Area::Payments => "payments",
            Area::Tickets => "tickets",
            Area::Scans => "scans",
        }
    }
}

impl Namespace {
    /// `root` must be a single subject token of letters, digits, `_` or `-`.
    pub fn new(root: &str) -> Self {
        assert!(
            !root.is_empty()
                && root
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "namespace must be letters, digits, _ or -"
        );
        let prefix = if root == DEFAULT_NAMESPACE {
            String::new()
        } else {
            root.to_string()
        };
        Namespace {
            root: root.to_string(),
            prefix,
        }
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    fn stream(&self, base: &str) -> String {
        if self.prefix.is_empty() {
            base.to_string()
        } else {
            format!("{}_{base}", self.prefix)
        }
    }

    fn bucket(&self, base: &str) -> String {
        if self.prefix.is_empty() {
            base.to_string()
        } else {
            format!("{}-{base}", self.prefix)
        }
    }

    pub fn commands_stream(&self) -> String {
        self.stream("COMMANDS")
    }
    pub fn events_stream(&self) -> String {
        self.stream("EVENTS")
    }
    pub fn deadletter_stream(&self) -> String {
        self.stream("DEADLETTERS")
    }

    pub fn seat_locks_bucket(&self) -> String {
        self.bucket("seat-locks")
    }
    pub fn leases_bucket(&self) -> String {
        self.bucket("doc-leases")
    }
    pub fn card_vault_bucket(&self) -> String {
        self.bucket("card-vault")
    }
    pub fn gate_tickets_bucket(&self) -> String {
        self.bucket("gate-tickets")
    }
    pub fn results_bucket(&self) -> String {
        self.bucket("command-results")
    }
    pub fn idempotency_bucket(&self) -> String {
        self.bucket("idempotency-keys")
    }
    pub fn token_revocations_bucket(&self) -> String {
        self.bucket("token-revocations")
    }

    /// `<root>.cmd.<area>.<verb>`
    pub fn command(&self, area: Area, verb: &str) -> String {
        format!("{}.cmd.{}.{verb}", self.root, area.as_str())
    }
    pub fn commands_of(&self, area: Area) -> String {
        format!("{}.cmd.{}.>", self.root, area.as_str())
    }
    pub fn all_commands(&self) -> String {
        format!("{}.cmd.>", self.root)
    }

    /// `<root>.evt.<entity>.<verb>`
    pub fn event(&self, entity: &str, verb: &str) -> String {
        format!("{}.evt.{entity}.{verb}", self.root)
    }
    pub fn all_events(&self) -> String {
        format!("{}.evt.>", self.root)
    }

    /// Dead letters keep the tail of the original subject: `<root>.dlq.cmd.holds.create`.
    pub fn deadletter_for(&self, subject: &str) -> String {
        let tail = subject
            .strip_prefix(&format!("{}.", self.root))
            .unwrap_or(subject);
        format!("{}.dlq.{tail}", self.root)
    }
    pub fn all_deadletters(&self) -> String {
        format!("{}.dlq.>", self.root)
    }

    /// Queries go by core request-reply to a queue group: `<root>.qry.<name>`.
    pub fn query(&self, name: &str) -> String {
        format!("{}.qry.{name}", self.root)
    }
    pub fn all_queries(&self) -> String {
        format!("{}.qry.>", self.root)
    }
    pub fn queries_queue_group(&self) -> String {
        format!("{}-queries", self.root)
    }

    /// Durable consumer of a command area, shared by every replica of its worker.
    pub fn command_consumer(&self, area: Area) -> String {
        format!("{}-{}", self.root, area.as_str())
    }
    /// Durable consumer of a projection over EVENTS.
    pub fn projection_consumer(&self, name: &str) -> String {
        format!("{}-proj-{name}", self.root)
    }
    /// Core subscription queue group of the hold-expiry timers.
    pub fn expiry_queue_group(&self) -> String {
        format!("{}-expiry", self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_namespace_has_the_documented_names() {
        let ns = Namespace::new("ticketing");
        assert_eq!(
            ns.command(Area::Holds, "create"),
            "ticketing.cmd.holds.create"
        );
        assert_eq!(ns.commands_stream(), "COMMANDS");
        assert_eq!(ns.seat_locks_bucket(), "seat-locks");
        assert_eq!(
            ns.deadletter_for("ticketing.cmd.holds.create"),
            "ticketing.dlq.cmd.holds.create"
        );
    }

    #[test]
    fn other_namespaces_are_prefixed() {
        let ns = Namespace::new("t42");
        assert_eq!(ns.events_stream(), "t42_EVENTS");
        assert_eq!(ns.seat_locks_bucket(), "t42-seat-locks");
        assert_eq!(ns.event("hold", "created"), "t42.evt.hold.created");
    }
}
