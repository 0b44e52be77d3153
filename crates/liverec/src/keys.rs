//! Access keys: the bootstrap key of a fresh install, and `liverec keys …`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use liverec_catalog::Catalog;

/// Where a fresh install writes its first key (mode 0600).
pub fn bootstrap_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("bootstrap-access-key")
}

/// Makes sure the API can be used: the key from `LIVEREC_ACCESS_KEY_ID` /
/// `LIVEREC_ACCESS_KEY_SECRET` if given, else a generated key when there is none at all.
/// Secrets are never logged.
pub async fn bootstrap(catalog: &Catalog, data_dir: &Path) -> anyhow::Result<()> {
    let id = std::env::var("LIVEREC_ACCESS_KEY_ID")
        .ok()
        .filter(|v| !v.is_empty());
    let secret = std::env::var("LIVEREC_ACCESS_KEY_SECRET")
        .ok()
        .filter(|v| !v.is_empty());
    match (id, secret) {
        (Some(id), Some(secret)) => {
            match catalog.key(&id).await.context("reading access keys")? {
                Some(existing) if existing.secret == secret => {
                    if !existing.enabled {
                        catalog
                            .set_key_enabled(&id, true)
                            .await
                            .context("enabling the access key")?;
                    }
                }
                Some(_) => anyhow::bail!(
                    "access key {id} from LIVEREC_ACCESS_KEY_ID exists with a different secret; \
                     disable it with `liverec keys disable {id}` or use another id"
                ),
                None => {
                    catalog
                        .insert_key(&id, &secret)
                        .await
                        .context("storing the access key")?;
                }
            }
            tracing::info!(key_id = %id, "access key from LIVEREC_ACCESS_KEY_ID is active");
        }
        (Some(_), None) | (None, Some(_)) => {
            anyhow::bail!(
                "set both LIVEREC_ACCESS_KEY_ID and LIVEREC_ACCESS_KEY_SECRET, or neither"
            )
        }
        (None, None) => {
            if catalog
                .keys()
                .await
                .context("reading access keys")?
                .is_empty()
            {
                let key = catalog
                    .create_key()
                    .await
                    .context("creating the bootstrap access key")?;
                let path = bootstrap_key_path(data_dir);
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                writeln!(
                    file,
                    "AccessKeyId={}\nAccessKeySecret={}",
                    key.id, key.secret
                )
                .with_context(|| format!("cannot write {}", path.display()))?;
                tracing::info!(key_id = %key.id, path = %path.display(),
                    "created the bootstrap access key; its secret is in this file (mode 0600)");
            }
        }
    }
    Ok(())
}

pub enum KeysCommand {
    Create,
    List,
    Disable(String),
    Enable(String),
}

/// Runs `liverec keys …`, printing to stdout.
pub async fn run(catalog: &Catalog, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create => {
            let key = catalog
                .create_key()
                .await
                .context("creating an access key")?;
            println!("AccessKeyId={}\nAccessKeySecret={}", key.id, key.secret);
        }
        KeysCommand::List => {
            let keys = catalog.keys().await.context("reading access keys")?;
            println!("{:<28} {:<8} CREATED (UTC)", "ACCESS KEY ID", "STATE");
            for key in keys {
                let created = time::OffsetDateTime::from_unix_timestamp(key.created_at / 1000)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                println!(
                    "{:<28} {:<8} {created}",
                    key.id,
                    if key.enabled { "enabled" } else { "disabled" }
                );
            }
        }
        KeysCommand::Disable(id) | KeysCommand::Enable(id) if id.is_empty() => {
            anyhow::bail!("no key id given")
        }
        KeysCommand::Disable(id) => {
            anyhow::ensure!(
                catalog.set_key_enabled(&id, false).await?,
                "no access key {id}"
            );
            println!("disabled {id}");
        }
        KeysCommand::Enable(id) => {
            anyhow::ensure!(
                catalog.set_key_enabled(&id, true).await?,
                "no access key {id}"
            );
            println!("enabled {id}");
        }
    }
    Ok(())
}
