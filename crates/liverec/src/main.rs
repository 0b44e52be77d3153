//! `liverec`: a live-stream recording server with an Alibaba-compatible recording API.

mod configs;
mod ingest;
mod keys;
mod lazy;
mod notify;
mod publishes;
mod scheduled;
mod serve;
mod settings;
mod storage;
mod telemetry;
mod viewers;
mod workers;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Self-hosted live-stream recording server")]
struct Cli {
    /// Log lines as text (default) or one JSON object per line.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "LIVEREC_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: telemetry::LogFormat,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server: RTMP ingest on :1935, recordings under ./data (defaults; see README).
    Serve {
        /// TOML config file (optional; embedded defaults otherwise).
        #[arg(long, short, env = "LIVEREC_CONFIG")]
        config: Option<PathBuf>,
        /// Overrides `data_dir`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Overrides `rtmp_listen`, e.g. 0.0.0.0:1935.
        #[arg(long)]
        rtmp_listen: Option<std::net::SocketAddr>,
        /// Overrides `api_listen`, e.g. 0.0.0.0:8080.
        #[arg(long)]
        api_listen: Option<std::net::SocketAddr>,
    },
    /// Manage API access keys (in the configured database).
    Keys {
        /// TOML config file (for `data_dir` / `database_url`).
        #[arg(long, short, env = "LIVEREC_CONFIG", global = true)]
        config: Option<PathBuf>,
        /// Overrides `data_dir`.
        #[arg(long, global = true)]
        data_dir: Option<PathBuf>,
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Record callbacks (in the configured database).
    Notify {
        /// TOML config file (for `data_dir` / `database_url` / `[notify]`).
        #[arg(long, short, env = "LIVEREC_CONFIG", global = true)]
        config: Option<PathBuf>,
        /// Overrides `data_dir`.
        #[arg(long, global = true)]
        data_dir: Option<PathBuf>,
        #[command(subcommand)]
        action: NotifyAction,
    },
}

#[derive(Subcommand)]
enum NotifyAction {
    /// Send callbacks again: the given event ids (the Idempotency-Key a receiver saw), or with
    /// `--failed` every callback given up after its retry window (of one domain with `--domain`).
    Resend {
        /// Every given-up callback.
        #[arg(long, conflicts_with = "event_ids")]
        failed: bool,
        /// With `--failed`: only this domain's.
        #[arg(long, requires = "failed")]
        domain: Option<String>,
        /// Event ids to send again, whatever their state.
        #[arg(required_unless_present = "failed")]
        event_ids: Vec<String>,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Create a key and print its id and secret.
    Create,
    /// List keys (never their secrets).
    List,
    /// Disable a key: requests signed with it are refused.
    Disable { id: String },
    /// Enable a disabled key.
    Enable { id: String },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let recent = std::sync::Arc::new(liverec_api::RecentEvents::default());
    telemetry::init_logs(cli.log_format, recent.clone());
    match cli.command {
        Cmd::Serve {
            config,
            data_dir,
            rtmp_listen,
            api_listen,
        } => {
            let mut settings = settings::Settings::load(config.as_deref())?;
            if let Some(dir) = data_dir {
                settings.data_dir = dir;
            }
            if let Some(addr) = rtmp_listen {
                settings.rtmp_listen = addr;
            }
            if let Some(addr) = api_listen {
                settings.api_listen = addr;
            }
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            let shutdown = {
                let _runtime = runtime.enter();
                shutdown_signal()
            };
            runtime.block_on(serve::serve(settings, recent, shutdown))
        }
        Cmd::Keys {
            config,
            data_dir,
            action,
        } => {
            let command = match action {
                KeysAction::Create => keys::KeysCommand::Create,
                KeysAction::List => keys::KeysCommand::List,
                KeysAction::Disable { id } => keys::KeysCommand::Disable(id),
                KeysAction::Enable { id } => keys::KeysCommand::Enable(id),
            };
            with_catalog(config, data_dir, |catalog, _| async move {
                keys::run(&catalog, command).await
            })
        }
        Cmd::Notify {
            config,
            data_dir,
            action:
                NotifyAction::Resend {
                    failed,
                    domain,
                    event_ids,
                },
        } => {
            let filter = if failed {
                liverec_catalog::ResendFilter::Failed { domain }
            } else {
                liverec_catalog::ResendFilter::Events(event_ids)
            };
            with_catalog(config, data_dir, |catalog, settings| async move {
                notify::resend(&catalog, &settings.notify, filter).await
            })
        }
    }
}

/// Runs a CLI command against the configured database.
fn with_catalog<F, Fut>(
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    command: F,
) -> anyhow::Result<()>
where
    F: FnOnce(liverec_catalog::Catalog, settings::Settings) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut settings = settings::Settings::load(config.as_deref())?;
    if let Some(dir) = data_dir {
        settings.data_dir = dir;
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
        let catalog = liverec_catalog::Catalog::open(&settings.database_url())
            .await
            .context("cannot open the database")?;
        let result = command(catalog.clone(), settings).await;
        catalog.close().await;
        result
    })
}

/// Resolves on SIGINT or SIGTERM. The listeners are registered when this is called, not when
/// the future is first polled, so a signal during start-up (before `serve` reaches its wait)
/// still shuts down gracefully instead of killing the process. Call inside a runtime.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            (interrupt, terminate) => {
                let err = interrupt.err().or(terminate.err());
                tracing::warn!(err = ?err, "cannot listen for SIGINT/SIGTERM; falling back to Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
