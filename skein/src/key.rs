//! `skein key create`: makes a random AES-256 key for `[storage.encryption]`
//! and appends it to a keys file (checked as a whole first), or prints the
//! entry. The last key a tenant has in the file encrypts new data, so
//! appending is also how a key is rotated (docs/security.md).

use std::path::PathBuf;

use skein_storage::{ANY_TENANT, Keyring, new_secret};

#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// The key's name, stored with everything it encrypts (e.g. `2026-12`).
    #[arg(long)]
    pub id: String,
    /// The tenant whose data it encrypts; `*` (default): every tenant
    /// without keys of its own.
    #[arg(long, default_value = ANY_TENANT)]
    pub tenant: String,
    /// Append the key to this keys file (created if missing, readable by
    /// its owner only); storage reads it at start-up.
    #[arg(long)]
    pub keys_file: Option<PathBuf>,
}

pub fn create(args: CreateArgs) -> anyhow::Result<()> {
    let secret = new_secret()?;
    let entry = format!(
        "\n[[keys]]\nid = {}\ntenant = {}\nsecret = \"{secret}\"\n",
        toml_string(&args.id),
        toml_string(&args.tenant)
    );
    Keyring::parse(&entry, "the new key")?;
    match &args.keys_file {
        Some(path) => {
            crate::token::append_checked(path, &entry, "key", |text| {
                Ok(Keyring::parse(text, "the keys file").map(|_| ())?)
            })?;
            eprintln!(
                "key {:?} for tenant {:?} appended to {}; it encrypts new data from the next start",
                args.id,
                args.tenant,
                path.display()
            );
        }
        None => print!("{entry}"),
    }
    Ok(())
}

/// A TOML basic string.
fn toml_string(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}
