//! Command signing keys and the signers registry (see `streams::proof`).
//!
//!   ticketing-keys init --dir .data/dev/keys     development keys and registry (kept if present)
//!   ticketing-keys new --kid boxoffice-2 --out boxoffice.key
//!   ticketing-keys add --registry signers.json --key boxoffice.key --system boxoffice \
//!                      --commands holds.create --roles user
//!   ticketing-keys retire --registry signers.json --kid gateway-1
//!   ticketing-keys sign --key boxoffice.key < body.json     the Ticketing-Signature value

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use streams::proof::{
    CommandSigner, Registry, SignerEntry, Trust, ANONYMOUS, ANY, WORKERS_COMMANDS,
};

#[derive(Parser)]
#[command(
    name = "ticketing-keys",
    about = "Command signing keys and the signers registry"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Makes the development keys (gateway, workers, boxoffice) and their registry in DIR,
    /// keeping any that exist.
    Init {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Makes a new key and writes it (`kid:base64(seed)`, mode 0600) to OUT.
    New {
        #[arg(long)]
        kid: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Adds a key's public half to the registry with its grant.
    Add {
        #[arg(long)]
        registry: PathBuf,
        /// A key file (`new` wrote it); only its public half is stored.
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        system: String,
        /// Comma-separated `<area>.<verb>` (holds.create), or `*`.
        #[arg(long, value_delimiter = ',')]
        commands: Vec<String>,
        /// Comma-separated roles the system may claim (user, staff, admin, anonymous), or `*`.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
    },
    /// Marks a key retired now: commands stored later are refused, older ones still verify.
    Retire {
        #[arg(long)]
        registry: PathBuf,
        #[arg(long)]
        kid: String,
    },
    /// Prints the base64 signature of standard input with the key in KEY.
    Sign {
        #[arg(long)]
        key: PathBuf,
    },
}

fn read_key(path: &Path) -> anyhow::Result<CommandSigner> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    CommandSigner::parse(&text).with_context(|| format!("key file {}", path.display()))
}

fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist)", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn read_registry(path: &Path) -> anyhow::Result<Registry> {
    if !path.exists() {
        return Ok(Registry::default());
    }
    let text = std::fs::read_to_string(path)?;
    serde_json::from_str(&text).with_context(|| format!("registry {}", path.display()))
}

fn write_registry(path: &Path, r: &Registry) -> anyhow::Result<()> {
    // Checked as the workers will load it before anything is written.
    Trust::new(r.clone()).context("the registry would not load")?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(r)? + "\n")?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn key_or_new(path: &Path, kid: &str) -> anyhow::Result<CommandSigner> {
    if path.exists() {
        return read_key(path);
    }
    let k = CommandSigner::generate(kid)?;
    write_secret(path, &k.to_spec())?;
    Ok(k)
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Init { dir } => init(&dir)?,
        Cmd::New { kid, out } => {
            let k = CommandSigner::generate(&kid)?;
            write_secret(&out, &k.to_spec())?;
            println!("{kid} {}", k.public_key());
        }
        Cmd::Add {
            registry,
            key,
            system,
            commands,
            roles,
        } => add(&registry, &key, &system, &commands, &roles)?,
        Cmd::Retire { registry, kid } => retire(&registry, &kid)?,
        Cmd::Sign { key } => {
            let k = read_key(&key)?;
            let mut body = Vec::new();
            std::io::stdin().read_to_end(&mut body)?;
            println!("{}", k.sign(&body));
        }
    }
    Ok(())
}

/// `init`: the development keys in `dir` (kept if present) and their registry.
fn init(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let registry_path = dir.join("signers.json");
    let mut registry = read_registry(&registry_path)?;
    let systems: [(&str, Vec<&str>, Vec<&str>); 3] = [
        ("gateway", vec![ANY], vec![ANY]),
        ("workers", WORKERS_COMMANDS.to_vec(), vec![ANY]),
        ("boxoffice", vec!["holds.create"], vec!["user"]),
    ];
    for (system, commands, roles) in systems {
        let key = key_or_new(
            &dir.join(format!("{system}.key")),
            &format!("{system}-dev-1"),
        )?;
        if !registry.signers.iter().any(|e| e.kid == key.kid()) {
            registry
                .signers
                .push(SignerEntry::new(&key, system, &commands, &roles));
        }
    }
    write_registry(&registry_path, &registry)?;
    println!("{}", registry_path.display());
    Ok(())
}

/// `add`: a key's public half into the registry, with its checked grant.
fn add(
    registry: &Path,
    key: &Path,
    system: &str,
    commands: &[String],
    roles: &[String],
) -> anyhow::Result<()> {
    let k = read_key(key)?;
    let mut r = read_registry(registry)?;
    if r.signers.iter().any(|e| e.kid == k.kid()) {
        bail!("{} is already in {}", k.kid(), registry.display());
    }
    for role in roles {
        if ![ANY, ANONYMOUS, "user", "staff", "admin"].contains(&role.as_str()) {
            bail!("unknown role {role:?} (user, staff, admin, anonymous or *)");
        }
    }
    let known: Vec<String> = streams::catalogue::samples()
        .iter()
        .map(|c| {
            let (area, verb) = c.route();
            format!("{}.{verb}", area.as_str())
        })
        .collect();
    for c in commands {
        if c != ANY && !known.contains(c) {
            bail!(
                "unknown command {c:?}: one of {} (docs/commands.md)",
                known.join(", ")
            );
        }
    }
    let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
    let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
    // The gateway and the workers choose ids of every shape; any other system's
    // ids start with its name, so it cannot take or read another's.
    let entry = if system == "gateway" || system == "workers" {
        SignerEntry::new(&k, system, &commands, &roles)
    } else {
        if !system.starts_with(|c: char| c.is_ascii_lowercase())
            || ["idem", "expire", "evcancel", "issue"].contains(&system)
        {
            bail!("a system's name starts with a lowercase letter and is not idem, expire, evcancel or issue (prefixes of our own ids)");
        }
        SignerEntry::for_system(&k, system, &commands, &roles)
    };
    r.signers.push(entry);
    write_registry(registry, &r)?;
    Ok(())
}

/// `retire`: marks the key `kid` retired now.
fn retire(registry: &Path, kid: &str) -> anyhow::Result<()> {
    let mut r = read_registry(registry)?;
    let e = r
        .signers
        .iter_mut()
        .find(|e| e.kid == kid)
        .with_context(|| format!("no key {kid} in {}", registry.display()))?;
    e.retired_at = Some(chrono::Utc::now());
    write_registry(registry, &r)?;
    Ok(())
}
