//! `seed`: creates and publishes a demo event through the gateway, and prints its id on
//! stdout (progress goes to stderr). `scripts/up.sh` runs it once the system is ready.

use std::time::Duration;

use bench::api::Api;
use bench::note;
use bench::plan::EventPlan;
use clap::Parser;

/// Creates and publishes a demo event with about `--seats` seats in three priced
/// sections, as the admin, and prints the event id.
#[derive(Debug, Parser)]
#[command(name = "seed")]
struct Args {
    #[command(flatten)]
    gw: bench::cli::GatewayArgs,

    /// About how many seats (rounded up to whole rows).
    #[arg(long, default_value_t = 300)]
    seats: usize,

    /// Name of the event.
    #[arg(long, default_value = "Demo Night: The Rust Orchestra")]
    name: String,

    /// How long to keep trying to log in while the admin account is being created.
    #[arg(long, default_value_t = 30)]
    login_patience_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let password = args.gw.password()?;
    let api = Api::new(&args.gw.url, 2)?;
    let token = api
        .login_with_retry(
            &args.gw.admin_email,
            &password,
            Duration::from_secs(args.login_patience_secs),
        )
        .await?;
    let plan = EventPlan::with_seats(&args.name, args.seats)?;
    let id = api.create_published_event(&token, &plan).await?;
    let sections: Vec<String> = plan
        .sections
        .iter()
        .map(|s| format!("{} {}-{} at {}", s.name, s.first_row, s.last_row, s.price))
        .collect();
    note(&format!(
        "published \"{}\" with {} seats: {}",
        args.name,
        plan.total_seats(),
        sections.join(", ")
    ));
    println!("{id}");
    Ok(())
}
