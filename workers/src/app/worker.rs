//! The workers a process can run: one name for each, the same as its command area (the
//! subject `<ns>.cmd.<area>.>`) where it has one, and as the folder its code lives in.
//!
//! | worker          | command area | folder                         |
//! |-----------------|--------------|--------------------------------|
//! | `users`         | `users`      | `users/`                       |
//! | `events`        | `events`     | `events/`                      |
//! | `holds`         | `holds`      | `holds/`                       |
//! | `bookings`      | `bookings`   | `bookings/`                    |
//! | `payments`      | `payments`   | `payments/` (refunds too)      |
//! | `tickets`       | `tickets`    | `tickets/`                     |
//! | `scans`         | `scans`      | `tickets/scans.rs`             |
//! | `expiry`        | -            | `holds/expiry.rs`              |
//! | `projections`   | -            | `projections/`                 |
//! | `notifications` | -            | `notifications/`               |
//! | `analytics`     | -            | `analytics/`                   |
//! | `queries`       | -            | `queries/`                     |
//!
//! NOTE: `accounts`, `catalog` and `ticketing`, the names before this table, are still
//! accepted for `users`, `events` and `tickets` (with a warning), so deployments that set
//! `TICKETING_WORKERS` keep running. Durable consumer names on NATS are not renamed: they
//! hold each consumer's position in its stream.

use streams::names::Area;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Worker {
    Users,
    Events,
    Holds,
    Bookings,
    Payments,
    Tickets,
    Scans,
    Expiry,
    Projections,
    Notifications,
    Analytics,
    Queries,
}

impl Worker {
    pub const ALL: [Worker; 12] = [
        Worker::Users,
        Worker::Events,
        Worker::Holds,
        Worker::Bookings,
        Worker::Payments,
        Worker::Tickets,
        Worker::Scans,
        Worker::Expiry,
        Worker::Projections,
        Worker::Notifications,
        Worker::Analytics,
        Worker::Queries,
    ];

    /// The command area this worker consumes, if it is a command worker.
    pub fn area(self) -> Option<Area> {
        Some(match self {
            Worker::Users => Area::Users,
            Worker::Events => Area::Events,
            Worker::Holds => Area::Holds,
            Worker::Bookings => Area::Bookings,
            Worker::Payments => Area::Payments,
            Worker::Tickets => Area::Tickets,
            Worker::Scans => Area::Scans,
            Worker::Expiry
            | Worker::Projections
            | Worker::Notifications
            | Worker::Analytics
            | Worker::Queries => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self.area() {
            Some(area) => area.as_str(),
            None => match self {
                Worker::Expiry => "expiry",
                Worker::Projections => "projections",
                Worker::Notifications => "notifications",
                Worker::Analytics => "analytics",
                _ => "queries",
            },
        }
    }

    /// The worker named `s`, and whether `s` is a former name of it.
    pub fn parse(s: &str) -> Option<(Worker, bool)> {
        let former = match s {
            "accounts" => Some(Worker::Users),
            "catalog" => Some(Worker::Events),
            "ticketing" => Some(Worker::Tickets),
            _ => None,
        };
        if let Some(w) = former {
            return Some((w, true));
        }
        Worker::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .map(|w| (w, false))
    }
}

impl std::fmt::Display for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_parses_back_and_command_workers_are_named_by_their_area() {
        for w in Worker::ALL {
            assert_eq!(Worker::parse(w.name()), Some((w, false)));
            if let Some(area) = w.area() {
                assert_eq!(w.name(), area.as_str());
            }
        }
        assert!(Area::ALL
            .iter()
            .all(|a| Worker::ALL.iter().any(|w| w.area() == Some(*a))));
    }

    #[test]
    fn former_names_are_accepted_and_flagged() {
        assert_eq!(Worker::parse("accounts"), Some((Worker::Users, true)));
        assert_eq!(Worker::parse("catalog"), Some((Worker::Events, true)));
        assert_eq!(Worker::parse("ticketing"), Some((Worker::Tickets, true)));
        assert_eq!(Worker::parse("holdz"), None);
    }
}
