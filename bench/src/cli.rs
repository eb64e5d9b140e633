//! The flags every tool shares: where the gateway is and how to sign in as the admin.

use std::path::PathBuf;

/// The running system's gateway and admin credentials.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    /// Base URL of the gateway.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// Admin e-mail.
    #[arg(
        long,
        env = "TICKETING_ADMIN_EMAIL",
        default_value = "admin@example.com"
    )]
    pub admin_email: String,

    /// Admin password; when absent, the one scripts/up.sh kept beside the run dir.
    #[arg(long, env = "TICKETING_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Where scripts/up.sh keeps its files (pids, logs; the admin password beside it).
    #[arg(long, default_value = ".data/dev/run")]
    pub run_dir: PathBuf,
}

impl GatewayArgs {
    /// The admin password: the flag or environment value, or the one up.sh generated.
    pub fn password(&self) -> anyhow::Result<String> {
        crate::admin_password(self.admin_password.clone(), &self.run_dir)
    }
}
