//! `skein token create`: makes a bearer token, appends its hash to a
//! tokens file (checked as a whole first, so a bad entry never lands), and
//! prints the token: the only time it is ever shown.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use skein_model::security::{NewToken, Scope, TokensFile, create_token};

#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// The tenant the token acts for.
    #[arg(long)]
    pub tenant: String,
    /// What the token may do: comma-separated ingest, query, admin.
    #[arg(long, value_delimiter = ',', required = true)]
    pub scopes: Vec<Scope>,
    /// Append the token's hashed entry to this tokens file (created if
    /// missing, readable by its owner only); servers re-read it on change.
    #[arg(long)]
    pub tokens_file: Option<PathBuf>,
    /// A name for the token, shown in logs and the UI.
    #[arg(long)]
    pub name: Option<String>,
    /// Refuse the token after this long, e.g. `90d`.
    #[arg(long, value_parser = humantime_serde::re::humantime::parse_duration)]
    pub expires_in: Option<Duration>,
    /// Print `{"token", "tenant", "scopes"}` as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn create(args: CreateArgs) -> anyhow::Result<()> {
    let expires_at = args
        .expires_in
        .map(|d| humantime_serde::re::humantime::format_rfc3339_seconds(SystemTime::now() + d).to_string());
    let scopes: BTreeSet<Scope> = args.scopes.into_iter().collect();
    let NewToken { token, entry } = create_token(&args.tenant, scopes, args.name, expires_at)?;
    if let Some(path) = &args.tokens_file {
        append_checked(path, &entry.to_toml(), "token", |text| Ok(TokensFile::parse(text).map(|_| ())?))?;
    }
    let scopes: Vec<&str> = entry.scopes.iter().map(|s| s.name()).collect();
    if args.json {
        let json = serde_json::json!({ "token": token, "tenant": entry.tenant, "scopes": scopes });
        println!("{json}");
    } else {
        println!("{token}");
        eprintln!(
            "tenant {}, scopes {}; this token is not stored anywhere: keep it now.",
            entry.tenant,
            scopes.join(",")
        );
        if args.tokens_file.is_none() {
            eprintln!("add its entry to the tokens file named by [auth] tokens_file:{}", entry.to_toml());
        }
    }
    Ok(())
}

/// Appends `entry` (a new `what`) to the secrets file `path` after `check`
/// accepted the file with it; the file is created readable by its owner only.
pub(crate) fn append_checked(
    path: &Path,
    entry: &str,
    what: &str,
    check: impl FnOnce(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    check(&format!("{existing}{entry}"))
        .with_context(|| format!("{} with the new {what} would not load; nothing was written", path.display()))?;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("opening {}", path.display()))?;
    file.write_all(entry.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    file.sync_all().with_context(|| format!("syncing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(tenant: &str, file: &Path) -> CreateArgs {
        CreateArgs {
            tenant: tenant.into(),
            scopes: vec![Scope::Ingest],
            tokens_file: Some(file.to_path_buf()),
            name: None,
            expires_in: Some(Duration::from_secs(3600)),
            json: true,
        }
    }

    #[test]
    fn appends_entries_and_refuses_one_that_would_break_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.toml");
        create(args("acme", &path)).expect("first");
        create(args("acme", &path)).expect("second");
        let file = TokensFile::parse(&std::fs::read_to_string(&path).expect("reads")).expect("loads");
        assert_eq!(file.tokens.len(), 2);
        assert!(file.tokens.iter().all(|t| t.expires_at.is_some()));
        create(args("globex", &path)).expect("another tenant's token");
        let file = TokensFile::parse(&std::fs::read_to_string(&path).expect("reads")).expect("loads");
        assert_eq!(file.tenants().into_iter().collect::<Vec<_>>(), ["acme", "globex"]);

        // A file that does not load (a bad hand edit) is not appended to.
        let broken = dir.path().join("broken.toml");
        std::fs::write(&broken, "[[tokens]]\ntenant = \"acme\"\n").expect("writes");
        let before = std::fs::read_to_string(&broken).expect("reads");
        let err = create(args("acme", &broken)).expect_err("refused");
        assert!(format!("{err:#}").contains("nothing was written"), "{err:#}");
        assert_eq!(std::fs::read_to_string(&broken).expect("reads"), before);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
