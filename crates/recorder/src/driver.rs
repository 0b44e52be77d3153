//! The task that drives one stream's [`Machine`]: the only async code around it. It owns the
//! hub subscription, the timer and the outputs, and carries out the machine's actions.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use liverec_hub::{Delivered, Hub, HubEvent, Lifecycle, StreamKey, SubscribeOptions, Subscription};
use liverec_media::{TrackKind, Tracks};
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use crate::config::{ConfigSource, RecordConfig};
use crate::machine::{
    Action, Command, CommandOutcome, Event, FrameMeta, Machine, MachineConfig, Mode,
};
use crate::output::{FrameIn, Output, OutputContext, new_id};
use crate::spool::SpoolPolicy;
use liverec_storage::Storage;

/// Longest time a recorder spends writing its queued frames at shutdown.
const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// A command's answer as the API needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandReply {
    Done,
    AlreadyStarted,
    NotPublishing,
    /// No record config applies to the stream.
    NoConfig,
}

/// What every stream's recorder shares.
#[derive(Clone)]
pub struct RecorderDeps {
    pub hub: Hub,
    pub configs: Arc<dyn ConfigSource>,
    /// Where files go (by the record config's bucket); finished files reach the record index
    /// through its completion hook.
    pub storage: Arc<Storage>,
    pub policy: SpoolPolicy,
    pub subscribe: SubscribeOptions,
    /// Background finalizations.
    pub finalizers: TaskTracker,
}

pub(crate) enum Inbox {
    Lifecycle(Lifecycle),
    Command {
        command: Command,
        reply: oneshot::Sender<CommandReply>,
    },
    Shutdown,
}

/// Sent to the supervisor when the recorder is idle with no publisher, after `processed`
/// inbox messages: if none were sent since, it may let the recorder go.
pub(crate) struct Dormant {
    pub key: StreamKey,
    pub processed: u64,
}

struct ActiveRecording {
    id: u64,
    outputs: Vec<Output>,
}

pub(crate) struct Driver {
    key: StreamKey,
    deps: RecorderDeps,
    machine: Machine,
    session: Option<u64>,
    subscription: Option<Subscription>,
    tracks: Tracks,
    recording: Option<ActiveRecording>,
    timer: Option<Instant>,
    actions: Vec<Action>,
    gaps: u64,
}

fn machine_config(config: Option<&RecordConfig>) -> MachineConfig {
    match config {
        Some(c) => MachineConfig {
            mode: c.mode,
            delay: c.delay,
        },
        None => MachineConfig {
            mode: Mode::Manual,
            delay: crate::config::DEFAULT_DELAY,
        },
    }
}

impl Driver {
    pub(crate) fn new(key: StreamKey, deps: RecorderDeps) -> Self {
        let config = deps.configs.resolve(&key);
        Self {
            machine: Machine::new(machine_config(config.as_ref())),
            key,
            deps,
            session: None,
            subscription: None,
            tracks: Tracks::default(),
            recording: None,
            timer: None,
            actions: Vec::with_capacity(8),
            gaps: 0,
        }
    }

    pub(crate) async fn run(
        mut self,
        mut inbox: mpsc::UnboundedReceiver<Inbox>,
        dormant: mpsc::UnboundedSender<Dormant>,
    ) {
        let mut processed = 0u64;
        let mut reported = false;
        loop {
            tokio::select! {
                biased;
                msg = inbox.recv() => {
                    let Some(msg) = msg else { break };
                    processed += 1;
                    reported = false;
                    if self.on_inbox(msg).await {
                        break;
                    }
                }
                event = next_event(&mut self.subscription), if self.subscription.is_some() => {
                    self.on_hub_event(event).await;
                }
                _ = sleep_until(self.timer), if self.timer.is_some() => {
                    self.timer = None;
                    self.step(Event::DelayElapsed, None).await;
                }
            }
            if self.machine.is_dormant() && !reported {
                reported = true;
                let _ = dormant.send(Dormant {
                    key: self.key.clone(),
                    processed,
                });
            }
        }
        // Frames the publisher sent before it was closed are still queued: write them, up to
        // the end of the session (or a bound, if the publisher is somehow still live).
        let deadline = tokio::time::Instant::now() + SHUTDOWN_DRAIN;
        while let Some(subscription) = &mut self.subscription {
            match tokio::time::timeout_at(deadline, subscription.recv()).await {
                Ok(event) => self.on_hub_event(event).await,
                Err(_) => break,
            }
        }
        // Whatever is still open is finalized (shutdown, or the supervisor went away).
        self.step(Event::ShutdownRequested, None).await;
    }

    /// Returns `true` when the recorder should stop.
    async fn on_inbox(&mut self, msg: Inbox) -> bool {
        match msg {
            Inbox::Lifecycle(Lifecycle::Published { info, ready }) => {
                self.session = Some(info.session);
                // A config change applies from the next publish on.
                let config = self.deps.configs.resolve(&self.key);
                self.machine.set_config(machine_config(config.as_ref()));
                self.step(
                    Event::PublishStarted {
                        session: info.session,
                    },
                    None,
                )
                .await;
                // Subscribed (if recording): the publisher's frames may flow.
                drop(ready);
            }
            Inbox::Lifecycle(Lifecycle::Unpublished { session, .. }) => {
                // While subscribed to that session, its end comes through the subscription,
                // after the last frame, so nothing queued is lost.
                let subscribed_to_it = self
                    .subscription
                    .as_ref()
                    .is_some_and(|s| s.info().session == session);
                if !subscribed_to_it {
                    self.step(Event::PublishEnded { session }, None).await;
                }
            }
            Inbox::Command { command, reply } => {
                let answer = self.on_command(command).await;
                let _ = reply.send(answer);
            }
            Inbox::Shutdown => return true,
        }
        false
    }

    async fn on_command(&mut self, command: Command) -> CommandReply {
        let config = self.deps.configs.resolve(&self.key);
        // DESIGN.md: parameters → domain → a config applies → state table. A recording that is
        // already open (its config deleted since) can still be stopped and finalized.
        let idle = self.machine.state() == crate::machine::State::Idle;
        if config.is_none() && (idle || matches!(command, Command::Start | Command::Restart)) {
            return CommandReply::NoConfig;
        }
        // A config changed through the API applies to what this command starts or pauses.
        if config.is_some() {
            self.machine.set_config(machine_config(config.as_ref()));
        }
        match self.step(Event::CommandReceived(command), None).await {
            CommandOutcome::Done => CommandReply::Done,
            CommandOutcome::AlreadyStarted => CommandReply::AlreadyStarted,
            CommandOutcome::NotPublishing => CommandReply::NotPublishing,
        }
    }

    async fn on_hub_event(&mut self, event: Option<HubEvent>) {
        match event {
            Some(HubEvent::Tracks(tracks)) => self.tracks = tracks,
            Some(HubEvent::Frame(delivered)) => {
                let frame = &delivered.frame;
                let starts_gop = frame.keyframe
                    && (frame.track == TrackKind::Video || self.tracks.video.is_none());
                let meta = FrameMeta {
                    seq: delivered.seq,
                    track: frame.track,
                    dts: frame.dts,
                    cts: frame.cts,
                    starts_gop,
                };
                self.step(Event::FrameArrived(meta), Some(&delivered)).await;
            }
            Some(HubEvent::Gap { dropped }) => {
                self.gaps += dropped;
                tracing::warn!(stream = %self.key, dropped, total = self.gaps,
                    "recorder fell behind (storage too slow): frames skipped up to the next keyframe");
            }
            Some(HubEvent::PublishEnded) | None => {
                let session = self.subscription.take().map(|s| s.info().session);
                if let Some(session) = session {
                    self.step(Event::PublishEnded { session }, None).await;
                }
            }
        }
    }

    /// Steps the machine and carries out its actions in order. `frame` is the frame of a
    /// `FrameArrived` event.
    async fn step(&mut self, event: Event, frame: Option<&Delivered>) -> CommandOutcome {
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        let outcome = self.machine.step(Instant::now(), event, &mut actions);
        for action in actions.drain(..) {
            self.act(action, frame).await;
        }
        self.actions = actions;
        outcome
    }

    async fn act(&mut self, action: Action, frame: Option<&Delivered>) {
        match action {
            Action::Subscribe => {
                self.subscription = self.deps.hub.subscribe(&self.key, self.deps.subscribe);
                if self.subscription.is_none() {
                    // The publisher left between its announcement and now.
                    if let Some(session) = self.session {
                        Box::pin(self.step(Event::PublishEnded { session }, None)).await;
                    }
                }
            }
            Action::Unsubscribe => {
                self.subscription = None;
                if let Some(rec) = &mut self.recording {
                    for output in &mut rec.outputs {
                        output.flush().await;
                    }
                }
            }
            Action::OpenRecording { id } => {
                let outputs = match self.deps.configs.resolve(&self.key) {
                    Some(config) => self.outputs(&config),
                    None => Vec::new(),
                };
                tracing::info!(stream = %self.key, recording = id, formats = outputs.len(), "recording started");
                self.recording = Some(ActiveRecording { id, outputs });
            }
            Action::WriteFrame { dts } => {
                let (Some(rec), Some(delivered)) = (&mut self.recording, frame) else {
                    return;
                };
                let frame = &delivered.frame;
                let now = Instant::now();
                // A pre-roll frame arrived before this moment: a file's start time is when
                // its first frame arrived, not when it was written.
                let wall = match delivered.arrived {
                    Some(arrived) => {
                        let age = now.saturating_duration_since(arrived);
                        SystemTime::now().checked_sub(age).unwrap_or(UNIX_EPOCH)
                    }
                    None => SystemTime::now(),
                };
                let starts_gop = frame.keyframe
                    && (frame.track == TrackKind::Video || self.tracks.video.is_none());
                let input = FrameIn {
                    frame,
                    dts,
                    starts_gop,
                    tracks: &self.tracks,
                    now,
                    wall,
                };
                for output in &mut rec.outputs {
                    output.write(&input).await;
                }
            }
            Action::Finalize { id } => {
                if let Some(mut rec) = self.recording.take() {
                    if rec.id != id {
                        tracing::error!(stream = %self.key, expected = id, open = rec.id, "finalizing an unexpected recording");
                    }
                    tracing::info!(stream = %self.key, recording = rec.id, "recording ends; generating files");
                    for output in &mut rec.outputs {
                        output.close();
                    }
                }
            }
            Action::ArmTimer { at } => self.timer = Some(at),
            Action::DisarmTimer => self.timer = None,
        }
    }

    fn outputs(&self, config: &RecordConfig) -> Vec<Output> {
        let target = self.deps.storage.target(&config.bucket);
        let session_id = new_id();
        config
            .formats
            .iter()
            .map(|spec| {
                Output::new(OutputContext {
                    key: self.key.clone(),
                    spec: spec.clone(),
                    target: target.clone(),
                    endpoint: config.endpoint.clone(),
                    session_id: session_id.clone(),
                    policy: self.deps.policy,
                    tasks: self.deps.finalizers.clone(),
                })
            })
            .collect()
    }
}

async fn next_event(subscription: &mut Option<Subscription>) -> Option<HubEvent> {
    match subscription {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
