//! The task that drives one stream's [`Machine`]: the only async code around it. It owns the
//! hub subscription, the timer and the outputs, and carries out the machine's actions.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use liverec_hub::{
    Delivered, Hub, HubEvent, Lifecycle, PublishInfo, StreamKey, SubscribeOptions, Subscription,
};
use liverec_media::{TrackKind, Tracks};
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use crate::config::{ConfigSource, RecordConfig, RecordMode};
use crate::hooks::{
    AskError, OnDemand, RecordAnswer, RecordQuestion, RecordStatus, SessionFormats, StatusSink,
};
use crate::machine::{
    Action, Announcement, Command, CommandOutcome, Event, FrameMeta, Machine, MachineConfig, Mode,
};
use crate::output::{FrameIn, Output, OutputContext, new_id};
use crate::spool::SpoolPolicy;
use liverec_storage::Storage;

/// Longest time a recorder spends writing its queued frames at shutdown.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(2);
/// At most one `record_error` announcement per recording in this time: a disk that stays full
/// fails at every keyframe, and each failure is logged and counted anyway.
const ERROR_ANNOUNCE_EVERY: Duration = Duration::from_secs(60);

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
    /// Answers the on-demand question of OnDemand = 1 configs.
    pub on_demand: Arc<dyn OnDemand>,
    /// Longest wait for an on-demand answer; past it the publish is recorded.
    pub on_demand_timeout: Duration,
    /// Hears recordings start, pause, resume and lose data.
    pub status: Arc<dyn StatusSink>,
    /// Where each recorder posts its state for the dashboard and `liverec status`.
    pub board: crate::board::StatusBoard,
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
    /// When a `record_error` was last announced for this recording.
    error_announced: Option<Instant>,
}

type AnswerFuture = Pin<
    Box<
        dyn Future<Output = Result<Result<RecordAnswer, AskError>, tokio::time::error::Elapsed>>
            + Send,
    >,
>;

/// The on-demand question of one publish session. It is asked when the first frame arrives
/// (the codec is known by then); while it is out, the subscription is not read, so the
/// publish's frames wait in the recorder's bounded queue (the first one here).
struct Question {
    session: u64,
    held: Option<Delivered>,
    answer: Option<AnswerFuture>,
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
    /// The current (or last) publish session.
    publish: Option<Arc<PublishInfo>>,
    /// The on-demand answer's formats for the current publish session.
    session_formats: Option<SessionFormats>,
    question: Option<Question>,
    /// What was last posted to the status board, and this recorder's name there.
    posted: Option<(crate::machine::State, Option<u64>)>,
    board_owner: u64,
}

/// The machine's config for a stream published with `publish` (its URL decides OnDemand = 2).
fn machine_config(config: Option<&RecordConfig>, publish: Option<&PublishInfo>) -> MachineConfig {
    match config {
        Some(c) => MachineConfig {
            mode: match c.mode {
                RecordMode::Automatic => Mode::Automatic,
                RecordMode::Manual => Mode::Manual,
                RecordMode::OnDemandUrl => Mode::Ask,
                RecordMode::OnDemandParam if publish.is_some_and(asks_to_record) => Mode::Automatic,
                RecordMode::OnDemandParam => Mode::Manual,
            },
            delay: c.delay,
        },
        None => MachineConfig {
            mode: Mode::Manual,
            delay: crate::config::DEFAULT_DELAY,
        },
    }
}

/// The publish URL carries `record=1` (OnDemand = 2).
fn asks_to_record(publish: &PublishInfo) -> bool {
    publish
        .query
        .iter()
        .any(|(name, value)| name == "record" && value == "1")
}

/// The `callback_` parameters of a publish URL: name (prefix kept) → first value, echoed as
/// the file callback's `push_args`.
pub fn push_args(query: &[(String, String)]) -> BTreeMap<String, String> {
    let mut args = BTreeMap::new();
    for (name, value) in query {
        if name.starts_with("callback_") {
            args.entry(name.clone()).or_insert_with(|| value.clone());
        }
    }
    args
}

impl Driver {
    pub(crate) fn new(key: StreamKey, deps: RecorderDeps) -> Self {
        let config = deps.configs.resolve(&key);
        Self {
            machine: Machine::new(machine_config(config.as_ref(), None)),
            key,
            deps,
            session: None,
            subscription: None,
            tracks: Tracks::default(),
            recording: None,
            timer: None,
            actions: Vec::with_capacity(8),
            gaps: 0,
            publish: None,
            session_formats: None,
            question: None,
            posted: None,
            board_owner: crate::board::new_owner(),
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
                event = next_event(&mut self.subscription),
                    if self.subscription.is_some() && !self.waiting_for_answer() => {
                    self.on_hub_event(event).await;
                }
                answer = next_answer(&mut self.question), if self.waiting_for_answer() => {
                    self.on_answer(answer).await;
                }
                _ = sleep_until(self.timer), if self.timer.is_some() => {
                    self.timer = None;
                    self.step(Event::DelayElapsed, None).await;
                }
            }
            // A question overtaken (by a `start`, or its publish gone): the frame it held goes
            // first, if a recording is there to take it.
            if let Some(held) = self.settle_question() {
                self.on_hub_event(Some(HubEvent::Frame(held))).await;
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
        self.deps.board.remove(&self.key, self.board_owner);
    }

    /// Posts the machine's state to the status board when it changed.
    fn post_status(&mut self) {
        let now = (self.machine.state(), self.recording.as_ref().map(|r| r.id));
        if self.posted == Some(now) {
            return;
        }
        self.posted = Some(now);
        let status = crate::board::status_of(now.0, now.1, Instant::now(), SystemTime::now());
        self.deps.board.post(&self.key, self.board_owner, status);
    }

    /// Returns `true` when the recorder should stop.
    async fn on_inbox(&mut self, msg: Inbox) -> bool {
        match msg {
            Inbox::Lifecycle(Lifecycle::Published { info, ready }) => {
                self.session = Some(info.session);
                self.session_formats = None;
                // A config change applies from the next publish on.
                let config = self.deps.configs.resolve(&self.key);
                self.machine
                    .set_config(machine_config(config.as_ref(), Some(&info)));
                self.publish = Some(info.clone());
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
        // Frames the publisher sent before this command are the recording's (DESIGN.md):
        // the ones still queued are written before a stop, cancel_delay or restart acts.
        if matches!(
            command,
            Command::Stop | Command::CancelDelay | Command::Restart
        ) {
            self.take_in_queued_frames().await;
        }
        // A config changed through the API applies to what this command starts or pauses.
        if config.is_some() {
            self.machine
                .set_config(machine_config(config.as_ref(), self.publish.as_deref()));
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
            Some(HubEvent::Frame(delivered))
                if self.question.as_ref().is_some_and(|q| q.answer.is_none()) =>
            {
                self.ask(delivered);
            }
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
                metrics::counter!(crate::metrics::RECORDING_GAPS, "cause" => "slow_recorder")
                    .increment(1);
                tracing::warn!(
                    dropped,
                    total = self.gaps,
                    "recorder fell behind (storage too slow): frames skipped up to the next keyframe"
                );
                if self.machine.state() == crate::machine::State::Recording {
                    let description = format!(
                        "{dropped} frames skipped (the recorder fell behind; {} in all on this stream)",
                        self.gaps
                    );
                    self.announce_error(description);
                }
            }
            Some(HubEvent::PublishEnded) | None => {
                let session = self.subscription.take().map(|s| s.info().session);
                if let Some(session) = session {
                    self.step(Event::PublishEnded { session }, None).await;
                }
            }
        }
    }

    /// Handles the events already queued in the subscription (not those that arrive while
    /// doing so), unless a question holds them back.
    async fn take_in_queued_frames(&mut self) {
        if self.waiting_for_answer() {
            return;
        }
        let queued = self.subscription.as_ref().map_or(0, Subscription::queued);
        for _ in 0..queued {
            let Some(event) = self.subscription.as_mut().and_then(Subscription::try_recv) else {
                break;
            };
            self.on_hub_event(Some(event)).await;
        }
    }

    /// Asks the on-demand question, now that the publish's first frame (held until the answer)
    /// tells its codec.
    fn ask(&mut self, first: Delivered) {
        let Some(question) = &mut self.question else {
            return;
        };
        let info = self.subscription.as_ref().map(|s| s.info().clone());
        let asked = RecordQuestion {
            key: self.key.clone(),
            codec: self.tracks.video.as_ref().map(|v| v.codec),
            video_kbps: info.map_or(0, |i| i.video_kbps.load(Ordering::Relaxed)),
        };
        tracing::debug!(codec = ?asked.codec, vbitrate = asked.video_kbps, "asking whether to record");
        question.held = Some(first);
        question.answer = Some(Box::pin(tokio::time::timeout(
            self.deps.on_demand_timeout,
            self.deps.on_demand.ask(asked),
        )));
    }

    fn waiting_for_answer(&self) -> bool {
        self.question.as_ref().is_some_and(|q| q.answer.is_some())
    }

    async fn on_answer(
        &mut self,
        answer: Result<Result<RecordAnswer, AskError>, tokio::time::error::Elapsed>,
    ) {
        let Some(question) = self.question.take() else {
            return;
        };
        let record = match answer {
            Ok(Ok(RecordAnswer::Record(formats))) => {
                tracing::info!(formats = ?formats.formats, "on-demand answer: record");
                self.session_formats = Some(formats);
                true
            }
            Ok(Ok(RecordAnswer::Skip)) => {
                tracing::info!("on-demand answer: do not record");
                false
            }
            Ok(Err(err)) => {
                tracing::warn!(%err, "on-demand question failed; recording anyway");
                true
            }
            Err(_) => {
                tracing::warn!(timeout = ?self.deps.on_demand_timeout,
                    "on-demand URL did not answer in time; recording anyway");
                true
            }
        };
        let session = question.session;
        self.step(Event::Answered { session, record }, None).await;
        // The frame asked with is the recording's first, if the answer started one.
        if let Some(held) = question.held
            && self.subscription.is_some()
            && self.machine.state() == crate::machine::State::Recording
        {
            self.on_hub_event(Some(HubEvent::Frame(held))).await;
        }
    }

    /// Drops the question once the machine no longer waits for it, returning its held frame
    /// when a recording is there to take it.
    fn settle_question(&mut self) -> Option<Delivered> {
        let session = self.question.as_ref()?.session;
        if self.machine.asking() == Some(session) {
            return None;
        }
        let held = self.question.take()?.held?;
        (self.subscription.is_some() && self.machine.state() == crate::machine::State::Recording)
            .then_some(held)
    }

    /// Announces that the open recording lost data, at most once per [`ERROR_ANNOUNCE_EVERY`].
    fn announce_error(&mut self, description: String) {
        let Some(rec) = &mut self.recording else {
            return;
        };
        let now = Instant::now();
        if rec
            .error_announced
            .is_some_and(|at| now.duration_since(at) < ERROR_ANNOUNCE_EVERY)
        {
            return;
        }
        rec.error_announced = Some(now);
        self.deps
            .status
            .announce(&self.key, RecordStatus::Error { description });
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
        self.post_status();
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
                    Some(mut config) => {
                        if let Some(formats) = &self.session_formats {
                            formats.apply(&mut config);
                        }
                        self.outputs(&config)
                    }
                    None => Vec::new(),
                };
                tracing::info!(recording = id, formats = outputs.len(), "recording started");
                metrics::gauge!(crate::metrics::RECORDINGS_OPEN).increment(1);
                self.recording = Some(ActiveRecording {
                    id,
                    outputs,
                    error_announced: None,
                });
                self.deps.status.announce(&self.key, RecordStatus::Started);
            }
            Action::WriteFrame { dts } => {
                let (Some(rec), Some(delivered)) = (&mut self.recording, frame) else {
                    return;
                };
                let frame = &delivered.frame;
                let now = Instant::now();
                // A pre-roll frame, or one that waited for an on-demand answer, arrived before
                // this moment: a file's start time is when its first frame arrived, not when
                // it was written.
                let age = now.saturating_duration_since(delivered.arrived);
                let wall = SystemTime::now().checked_sub(age).unwrap_or(UNIX_EPOCH);
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
                let mut failure = None;
                for output in &mut rec.outputs {
                    output.write(&input).await;
                    if let Some(err) = output.take_new_failure() {
                        failure = Some(err);
                    }
                }
                if let Some(description) = failure {
                    metrics::counter!(crate::metrics::RECORDING_GAPS, "cause" => "write_error")
                        .increment(1);
                    self.announce_error(description);
                }
            }
            Action::Finalize { id } => {
                if let Some(mut rec) = self.recording.take() {
                    metrics::gauge!(crate::metrics::RECORDINGS_OPEN).decrement(1);
                    if rec.id != id {
                        tracing::error!(
                            expected = id,
                            open = rec.id,
                            "finalizing an unexpected recording"
                        );
                    }
                    tracing::info!(recording = rec.id, "recording ends; generating files");
                    for output in &mut rec.outputs {
                        output.close();
                    }
                }
            }
            Action::ArmTimer { at } => self.timer = Some(at),
            Action::DisarmTimer => self.timer = None,
            Action::Ask { session } => {
                self.question = Some(Question {
                    session,
                    held: None,
                    answer: None,
                });
            }
            Action::Announce(change) => {
                let status = match change {
                    Announcement::Paused => RecordStatus::Paused,
                    Announcement::Resumed => RecordStatus::Resumed,
                };
                self.deps.status.announce(&self.key, status);
            }
        }
    }

    fn outputs(&self, config: &RecordConfig) -> Vec<Output> {
        let target = self.deps.storage.target(&config.bucket);
        let session_id = new_id();
        let push_args = Arc::new(
            self.publish
                .as_ref()
                .map(|p| push_args(&p.query))
                .unwrap_or_default(),
        );
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
                    push_args: push_args.clone(),
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

async fn next_answer(
    question: &mut Option<Question>,
) -> Result<Result<RecordAnswer, AskError>, tokio::time::error::Elapsed> {
    match question.as_mut().and_then(|q| q.answer.as_mut()) {
        Some(answer) => answer.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
