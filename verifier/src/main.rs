//! `ticket-verify --keys keys.json <qrString>`: checks a ticket's QR code offline against
//! saved keys (the answer of `GET /v1/scan-keys`). Prints `valid` and what the code says,
//! or `invalid: <why>`. Exit status: 0 valid, 1 invalid, 2 the keys or input unusable.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "ticket-verify",
    about = "Check a ticket QR code offline against the keys of GET /v1/scan-keys"
)]
struct Args {
    /// The keys: the JSON answer of `GET /v1/scan-keys` (or a bare list of its keys).
    #[arg(long, env = "TICKETING_SCAN_KEYS_FILE")]
    keys: PathBuf,

    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,

    /// The QR string as read; one line of standard input when absent.
    qr: Option<String>,
}

fn run(args: &Args) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(&args.keys)
        .with_context(|| format!("reading {}", args.keys.display()))?;
    let verifier = verifier::verifier_from_json(&text)
        .with_context(|| format!("reading {}", args.keys.display()))?;
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
    let report = verifier::check(&verifier, &qr);
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(report.is_valid())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ticket-verify: {e:#}");
            ExitCode::from(2)
        }
    }
}
