//! Owns one recorder task per stream that is published or has a recording open, routes
//! publish events and commands to it, and lets it go when it is idle.

use std::collections::HashMap;
use std::time::Duration;

use liverec_hub::{Lifecycle, StreamKey};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::driver::{CommandReply, Dormant, Driver, Inbox, RecorderDeps};
use crate::machine::Command;

/// Bound of the API → supervisor command queue.
const COMMAND_QUEUE: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the recorder is shutting down")]
pub struct RecorderGone;

/// Sends commands to the recorders. Cheap to clone.
#[derive(Clone)]
pub struct RecorderHandle {
    tx: mpsc::Sender<(StreamKey, Command, oneshot::Sender<CommandReply>)>,
    board: crate::board::StatusBoard,
}

impl RecorderHandle {
    /// What each stream's recorder is doing now.
    pub fn board(&self) -> &crate::board::StatusBoard {
        &self.board
    }

    pub async fn command(
        &self,
        key: StreamKey,
        command: Command,
    ) -> Result<CommandReply, RecorderGone> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((key, command, reply))
            .await
            .map_err(|_| RecorderGone)?;
        rx.await.map_err(|_| RecorderGone)
    }
}

struct Entry {
    // Control messages only (publish events, commands): their rate is bounded upstream by
    // the connection limit and API throttling, so a slow recorder cannot make this grow
    // without bound, and the supervisor never waits on one recorder.
    inbox: mpsc::UnboundedSender<Inbox>,
    sent: u64,
}

pub struct Supervisor {
    deps: RecorderDeps,
    recorders: HashMap<StreamKey, Entry>,
    tasks: TaskTracker,
    dormant_tx: mpsc::UnboundedSender<Dormant>,
}

impl Supervisor {
    /// Starts the supervisor. It runs until `cancel`, then finalizes every recording (waiting
    /// at most `shutdown_timeout` for the files) and returns.
    pub fn spawn(
        deps: RecorderDeps,
        lifecycle: mpsc::Receiver<Lifecycle>,
        cancel: CancellationToken,
        shutdown_timeout: Duration,
    ) -> (RecorderHandle, tokio::task::JoinHandle<()>) {
        let (tx, commands) = mpsc::channel(COMMAND_QUEUE);
        let (dormant_tx, dormant_rx) = mpsc::unbounded_channel();
        let board = deps.board.clone();
        let supervisor = Supervisor {
            deps,
            recorders: HashMap::new(),
            tasks: TaskTracker::new(),
            dormant_tx,
        };
        let join =
            tokio::spawn(supervisor.run(lifecycle, commands, dormant_rx, cancel, shutdown_timeout));
        (RecorderHandle { tx, board }, join)
    }

    async fn run(
        mut self,
        mut lifecycle: mpsc::Receiver<Lifecycle>,
        mut commands: mpsc::Receiver<(StreamKey, Command, oneshot::Sender<CommandReply>)>,
        mut dormant: mpsc::UnboundedReceiver<Dormant>,
        cancel: CancellationToken,
        shutdown_timeout: Duration,
    ) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                Some(event) = lifecycle.recv() => {
                    let key = match &event {
                        Lifecycle::Published { info, .. } => info.key.clone(),
                        Lifecycle::Unpublished { key, .. } => key.clone(),
                    };
                    let (create, runtime) = match &event {
                        Lifecycle::Published { info, .. } => (true, info.runtime.clone()),
                        Lifecycle::Unpublished { .. } => (false, None),
                    };
                    self.route(key, Inbox::Lifecycle(event), create, runtime);
                }
                Some((key, command, reply)) = commands.recv() => {
                    self.route(key, Inbox::Command { command, reply }, true, None);
                }
                Some(d) = dormant.recv() => {
                    if self.recorders.get(&d.key).is_some_and(|e| e.sent == d.processed) {
                        // Dropping the sender ends the task once it drained its inbox.
                        self.recorders.remove(&d.key);
                    }
                }
            }
        }
        self.shutdown(shutdown_timeout).await;
    }

    /// Delivers `msg` to the recorder of `key`, starting one if `create` (on `runtime` if
    /// given: the publisher's, see `PublishInfo::runtime`).
    fn route(
        &mut self,
        key: StreamKey,
        msg: Inbox,
        create: bool,
        runtime: Option<tokio::runtime::Handle>,
    ) {
        if !self.recorders.contains_key(&key) {
            if !create {
                return;
            }
            let (inbox, rx) = mpsc::unbounded_channel();
            let driver = Driver::new(key.clone(), self.deps.clone());
            // Every line the recorder logs, or its tasks, names the stream.
            let run = tracing::Instrument::instrument(
                driver.run(rx, self.dormant_tx.clone()),
                tracing::info_span!("recorder", stream = %key),
            );
            match &runtime {
                Some(runtime) => self.tasks.spawn_on(run, runtime),
                None => self.tasks.spawn(run),
            };
            self.recorders.insert(key.clone(), Entry { inbox, sent: 0 });
        }
        let Some(entry) = self.recorders.get_mut(&key) else {
            return;
        };
        match entry.inbox.send(msg) {
            Ok(()) => entry.sent += 1,
            Err(mpsc::error::SendError(msg)) => {
                // The task ended without being let go: it panicked (a bug). Whatever it had
                // open stays in the spool for recovery; the stream gets a new recorder.
                tracing::error!(stream = %key, "the stream's recorder stopped unexpectedly; starting a new one");
                self.recorders.remove(&key);
                self.route(key, msg, create, runtime);
            }
        }
    }

    async fn shutdown(mut self, timeout: Duration) {
        let count = self.recorders.len();
        for (_, entry) in self.recorders.drain() {
            let _ = entry.inbox.send(Inbox::Shutdown);
        }
        self.tasks.close();
        let finalizers = self.deps.finalizers.clone();
        let all = async {
            self.tasks.wait().await;
            finalizers.close();
            finalizers.wait().await;
        };
        if tokio::time::timeout(timeout, all).await.is_err() {
            tracing::error!(
                recorders = count,
                "shutdown timed out; unfinished files stay in the spool for recovery"
            );
        } else {
            tracing::info!(recorders = count, "all recordings finalized");
        }
    }
}
