//! `ticket-verify --keys keys.json [--event <id>] [--revocations list.json]... <qrString>`:
//! checks a ticket's QR code offline against saved keys (the answer of
//! `GET /v1/scan-keys`) and, when given, the event it must be for and the event's saved
//! revocation lists (answers of `GET /v1/events/{id}/revocations`: the whole list, then
//! each list since, in order). Prints the verdict and each check it made or did not make.
//!
//! Exit status: 0 valid (every check made passed), 1 invalid signature, 2 the keys, a
//! revocation list (a tampered one included) or the input unusable, 3 revoked, 4 a ticket
//! of another event.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use domain::ObjectId;

#[derive(Debug, Parser)]
#[command(
    name = "ticket-verify",
    about = "Check a ticket QR code offline against the keys of GET /v1/scan-keys and, when given, an event's revocation list"
)]
struct Args {
    /// The keys: the JSON answer of `GET /v1/scan-keys` (or a bare list of its keys).
    #[arg(long, env = "TICKETING_SCAN_KEYS_FILE")]
    keys: PathBuf,

    /// The event the ticket must be for (its QR payload's eventId).
    #[arg(long)]
    event: Option<String>,

    /// A saved answer of `GET /v1/events/{id}/revocations`; repeat for the lists since
    /// (oldest first: `since=0`, then each `since=<version>` of the one before). Its
    /// signature is checked with the keys; a tampered list is refused.
    #[arg(long = "revocations")]
    revocations: Vec<PathBuf>,

    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,

    /// The QR string as read; one line of standard input when absent.
    qr: Option<String>,
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn run(args: &Args) -> anyhow::Result<verifier::Status> {
    let verifier = verifier::verifier_from_json(&read(&args.keys)?)
        .with_context(|| format!("reading {}", args.keys.display()))?;
    let event = args
        .event
        .as_deref()
        .map(|e| {
            ObjectId::parse_str(e.trim())
                .with_context(|| format!("--event {e:?} is not an event id (24 hex digits)"))
        })
        .transpose()?;
    let revocations = if args.revocations.is_empty() {
        None
    } else {
        let texts = args
            .revocations
            .iter()
            .map(read)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let list = verifier::revocations_from_json(&verifier, &texts)
            .context("the revocation list cannot be trusted")?;
        if let Some(e) = event.filter(|e| *e != list.event_id()) {
            anyhow::bail!(
                "the revocation list is for event {}, not --event {}",
                list.event_id().to_hex(),
                e.to_hex()
            );
        }
        Some(list)
    };
    let qr = match &args.qr {
        Some(q) => q.clone(),
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the QR string from standard input")?;
            line
        }
    };
    let report = verifier::check_with(
        &verifier,
        &qr,
        verifier::Checks {
            event,
            revocations: revocations.as_ref(),
        },
    );
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(report.status)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(status) => ExitCode::from(status.exit_code()),
        Err(e) => {
            eprintln!("ticket-verify: {e:#}");
            ExitCode::from(2)
        }
    }
}
