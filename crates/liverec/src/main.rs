//! `liverec`: a live-stream recording server with an Alibaba-compatible recording API.

mod configs;
mod ingest;
mod keys;
mod lazy;
mod notify;
mod progress;
mod publishes;
mod remote;
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
    /// What is live and recording on a running server (through its API port).
    Status {
        #[command(flatten)]
        remote: RemoteArgs,
        /// Print the dashboard's overview as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Recordings of a running server (through its API port).
    Recordings {
        #[command(subcommand)]
        action: RecordingsAction,
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

/// How the CLI reaches a running server.
#[derive(clap::Args)]
struct RemoteArgs {
    /// The server's API address.
    #[arg(long, env = "LIVEREC_API_URL", default_value = "http://127.0.0.1:8080")]
    api: String,
    /// Access key id (default: the bootstrap key in the data directory).
    #[arg(long, env = "LIVEREC_ACCESS_KEY_ID")]
    key_id: Option<String>,
    /// Access key secret.
    #[arg(long, env = "LIVEREC_ACCESS_KEY_SECRET", hide_env_values = true)]
    key_secret: Option<String>,
    /// Where the server keeps `bootstrap-access-key`, when no key is given.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
}

impl RemoteArgs {
    async fn login(self) -> anyhow::Result<remote::Remote> {
        let credentials = remote::Credentials::find(self.key_id, self.key_secret, &self.data_dir)?;
        remote::Remote::login(&self.api, &credentials).await
    }
}

#[derive(Subcommand)]
enum RecordingsAction {
    /// List one stream's recordings in a time range (default: the last 24 hours), oldest first.
    List {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long, default_value = settings::DEFAULT_DOMAIN)]
        domain: String,
        #[arg(long, default_value = "live")]
        app: String,
        #[arg(long)]
        stream: String,
        /// Start of the range, e.g. 2026-12-08T00:00:00Z.
        #[arg(long)]
        from: Option<String>,
        /// End of the range (default: now).
        #[arg(long)]
        to: Option<String>,
        /// Print the index rows as JSON (with their RecordUrl).
        #[arg(long)]
        json: bool,
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
        Cmd::Status { remote, json } => block_on(async move {
            let overview = remote.login().await?.overview().await?;
            remote::print(&overview, json, |out| remote::write_status(&overview, out))
        }),
        Cmd::Recordings {
            action:
                RecordingsAction::List {
                    remote,
                    domain,
                    app,
                    stream,
                    from,
                    to,
                    json,
                },
        } => block_on(async move {
            let to = match to {
                Some(t) => remote::parse_time(&t)?,
                None => remote::now_secs(),
            };
            let from = match from {
                Some(t) => remote::parse_time(&t)?,
                None => to - 24 * 3600,
            };
            anyhow::ensure!(from < to, "--from must be before --to");
            let items = remote
                .login()
                .await?
                .recordings(&domain.to_ascii_lowercase(), &app, &stream, from, to)
                .await?;
            remote::print(&items, json, |out| remote::write_recordings(&items, out))
        }),
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

/// Runs a CLI command that talks to a running server.
fn block_on(command: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")?
        .block_on(command)
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
