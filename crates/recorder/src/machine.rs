//! The recorder's state machine for one stream: pure, no I/O, no clock reads.
//!
//! ```text
//!   Idle ──start / publish (automatic)──▶ Recording ──stop / publisher drops──▶ Paused
//!    ▲                                     │    ▲                                 │
//!    └──── cancel_delay / deadline ────────┴────┴──── start / publisher returns ──┘
//! ```
//! Finalizing runs in the background (the driver carries out [`Action::Finalize`]), so the
//! machine is back in `Idle` at once and a new command acts on the next recording.
//!
//! Which frames go where (DESIGN.md "The recorder"):
//! - a recording starts at the latest keyframe of the GOP cache (the driver subscribes with
//!   pre-roll), or at the next keyframe if the cache has none; that pre-roll may repeat the end
//!   of the previous recording's file (a frame is written once per recording, not per stream);
//! - `stop` pauses at once; resuming continues right after the last frame written when that
//!   frame is still in the cache (no gap), else from the cache's keyframe, bridging the pause
//!   so the recording's timeline stays continuous;
//! - `restart` cuts at the next keyframe: the old recording ends just before it and the new
//!   one starts with it;
//! - in [`Mode::Ask`] a publish subscribes at once and asks (the driver carries out
//!   [`Action::Ask`]) whether to record; a yes starts the recording on that same subscription,
//!   so it begins at the publish's first keyframe however long the answer took.

use std::time::{Duration, Instant};

use liverec_media::TrackKind;

/// Bridging step after a pause when no frame duration is known yet.
const DEFAULT_FRAME_STEP_MS: i64 = 40;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Record whenever the stream is published.
    Automatic,
    /// Record only on command.
    Manual,
    /// Ask whether to record when a publish starts (on-demand recording); a publisher
    /// returning within DelayTime continues the recording the answer started.
    Ask,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MachineConfig {
    pub mode: Mode,
    /// How long an interrupted recording waits before its files are generated.
    pub delay: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Start,
    Stop,
    CancelDelay,
    Restart,
}

/// What a command did, for the API's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandOutcome {
    Done,
    AlreadyStarted,
    NotPublishing,
}

/// What the machine needs of a frame; the driver keeps the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    /// Hub-wide sequence number (increasing, never repeated).
    pub seq: u64,
    pub track: TrackKind,
    pub dts: i64,
    /// Composition offset (`pts - dts`), ms.
    pub cts: i32,
    /// A point a recording may start at: a video keyframe, or any frame of an audio-only stream.
    pub starts_gop: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    PublishStarted {
        session: u64,
    },
    PublishEnded {
        session: u64,
    },
    FrameArrived(FrameMeta),
    CommandReceived(Command),
    DelayElapsed,
    ShutdownRequested,
    /// The answer to [`Action::Ask`] for `session`.
    Answered {
        session: u64,
        record: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Subscribe to the stream with its GOP cache first.
    Subscribe,
    Unsubscribe,
    /// A new recording begins; its files open with the first frame written.
    OpenRecording {
        id: u64,
    },
    /// Write the frame just stepped with, at `dts` on the recording's timeline (ms).
    WriteFrame {
        dts: i64,
    },
    /// Close the recording's files and generate them, in the background.
    Finalize {
        id: u64,
    },
    ArmTimer {
        at: Instant,
    },
    DisarmTimer,
    /// Ask whether to record this publish session; frames wait in the subscription until
    /// [`Event::Answered`] (a question is dropped when [`Machine::asking`] no longer names it).
    Ask {
        session: u64,
    },
    /// Tell whoever listens that the open recording paused or resumed (status callbacks).
    Announce(Announcement),
}

/// Changes of a recording's state that status callbacks report. A recording starting is
/// [`Action::OpenRecording`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announcement {
    Paused,
    Resumed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PauseCause {
    Stopped,
    PublisherGone,
}

/// Where a recording stands with respect to the frames it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gate {
    /// Just (re)subscribed: the first frame tells whether the cache still holds the frame
    /// after the last one written.
    FirstFrame,
    /// Dropping frames up to and including `seq`, already written before a short pause.
    SkipThrough {
        seq: u64,
    },
    /// Waiting for a keyframe to start or resume at.
    Keyframe,
    Open,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Recording {
    id: u64,
    gate: Gate,
    /// Recording timeline = stream dts − offset.
    offset: i64,
    /// Frames of the stream before this dts are not written (audio interleaved before the
    /// keyframe a recording starts or resumes at).
    floor_dts: i64,
    last_seq: Option<u64>,
    /// Largest timeline dts written, any track.
    last_dts: Option<i64>,
    /// Largest timeline pts written, any track: a resumed recording is shown after it.
    last_pts: Option<i64>,
    last_video_dts: Option<i64>,
    video_step: i64,
    restart_pending: bool,
}

impl Recording {
    fn new(id: u64) -> Self {
        Self {
            id,
            gate: Gate::FirstFrame,
            offset: 0,
            floor_dts: i64::MIN,
            last_seq: None,
            last_dts: None,
            last_pts: None,
            last_video_dts: None,
            video_step: DEFAULT_FRAME_STEP_MS,
            restart_pending: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    Recording,
    Paused {
        cause: PauseCause,
        deadline: Instant,
    },
}

/// One stream's recorder. Feed it [`Event`]s with [`Machine::step`]; carry out the actions.
#[derive(Debug)]
pub struct Machine {
    config: MachineConfig,
    state: State,
    recording: Option<Recording>,
    publishing: Option<u64>,
    subscribed: bool,
    /// The publish session whose question is out.
    asking: Option<u64>,
    next_id: u64,
}

impl Machine {
    pub fn new(config: MachineConfig) -> Self {
        Self {
            config,
            state: State::Idle,
            recording: None,
            publishing: None,
            subscribed: false,
            asking: None,
            next_id: 1,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn is_publishing(&self) -> bool {
        self.publishing.is_some()
    }

    /// The publish session whose record question is out, if any.
    pub fn asking(&self) -> Option<u64> {
        self.asking
    }

    /// Applies a new config (mode, delay); it takes effect from the next event.
    pub fn set_config(&mut self, config: MachineConfig) {
        self.config = config;
    }

    /// Idle, not publishing: the driver may let this stream's recorder go.
    pub fn is_dormant(&self) -> bool {
        self.state == State::Idle && self.publishing.is_none()
    }

    /// Steps the machine at wall-clock time `now`. Actions are appended to `out`; the command
    /// outcome is returned for `CommandReceived` (and `Done` otherwise).
    pub fn step(&mut self, now: Instant, event: Event, out: &mut Vec<Action>) -> CommandOutcome {
        match event {
            Event::PublishStarted { session } => {
                self.publishing = Some(session);
                self.asking = None;
                match (self.state, self.config.mode) {
                    (State::Idle, Mode::Automatic) => self.start_new(out),
                    (State::Idle, Mode::Ask) => {
                        // Frames queue in the subscription while the question is out.
                        self.asking = Some(session);
                        self.unsubscribe(out);
                        self.subscribe(out);
                        out.push(Action::Ask { session });
                    }
                    (
                        State::Paused {
                            cause: PauseCause::PublisherGone,
                            ..
                        },
                        Mode::Automatic | Mode::Ask,
                    ) => self.resume(out),
                    _ => {}
                }
            }
            Event::Answered { session, record } => {
                if self.asking != Some(session) {
                    return CommandOutcome::Done;
                }
                if record && self.state == State::Idle {
                    // Records on the question's subscription (`start_new` takes it).
                    self.start_new(out);
                } else {
                    self.asking = None;
                    if self.state == State::Idle {
                        self.unsubscribe(out);
                    }
                }
            }
            Event::PublishEnded { session } => {
                if self.publishing != Some(session) {
                    return CommandOutcome::Done;
                }
                self.publishing = None;
                self.subscribed = false;
                self.asking = None;
                if self.state == State::Recording {
                    self.pause(now, PauseCause::PublisherGone, out);
                }
            }
            Event::FrameArrived(frame) => self.on_frame(frame, out),
            Event::CommandReceived(command) => return self.on_command(now, command, out),
            Event::DelayElapsed => {
                if let State::Paused { deadline, .. } = self.state {
                    if now >= deadline {
                        self.finalize(out);
                    } else {
                        out.push(Action::ArmTimer { at: deadline });
                    }
                }
            }
            Event::ShutdownRequested => {
                self.asking = None;
                if self.state != State::Idle {
                    self.finalize(out);
                }
                self.unsubscribe(out);
            }
        }
        CommandOutcome::Done
    }

    fn on_command(
        &mut self,
        now: Instant,
        command: Command,
        out: &mut Vec<Action>,
    ) -> CommandOutcome {
        match (command, self.state) {
            (Command::Start, State::Recording) => CommandOutcome::AlreadyStarted,
            (Command::Start | Command::Restart, _) if self.publishing.is_none() => {
                if command == Command::Restart && matches!(self.state, State::Paused { .. }) {
                    self.finalize(out);
                }
                CommandOutcome::NotPublishing
            }
            (Command::Start | Command::Restart, State::Idle) => {
                self.start_new(out);
                CommandOutcome::Done
            }
            (Command::Start, State::Paused { .. }) => {
                self.resume(out);
                CommandOutcome::Done
            }
            (Command::Restart, State::Paused { .. }) => {
                self.finalize(out);
                self.start_new(out);
                CommandOutcome::Done
            }
            (Command::Restart, State::Recording) => {
                if let Some(rec) = &mut self.recording {
                    rec.restart_pending = true;
                }
                CommandOutcome::Done
            }
            (Command::Stop, State::Recording) => {
                self.pause(now, PauseCause::Stopped, out);
                CommandOutcome::Done
            }
            (Command::Stop, State::Paused { deadline, .. }) => {
                // DESIGN.md: state and deadline unchanged; from now on the pause counts as
                // paused by `stop`, so a returning publisher does not resume it.
                self.state = State::Paused {
                    cause: PauseCause::Stopped,
                    deadline,
                };
                CommandOutcome::Done
            }
            (Command::Stop, State::Idle) => CommandOutcome::Done,
            (Command::CancelDelay, State::Idle) => CommandOutcome::Done,
            (Command::CancelDelay, _) => {
                self.finalize(out);
                CommandOutcome::Done
            }
        }
    }

    fn subscribe(&mut self, out: &mut Vec<Action>) {
        if !self.subscribed {
            self.subscribed = true;
            out.push(Action::Subscribe);
        }
    }

    fn unsubscribe(&mut self, out: &mut Vec<Action>) {
        if self.subscribed {
            self.subscribed = false;
            out.push(Action::Unsubscribe);
        }
    }

    fn start_new(&mut self, out: &mut Vec<Action>) {
        let id = self.next_id;
        self.next_id += 1;
        self.recording = Some(Recording::new(id));
        self.state = State::Recording;
        out.push(Action::OpenRecording { id });
        // The subscription made for a question holds every frame since the publish started
        // (a `start` command overtaking the answer uses it too); otherwise a fresh
        // subscription delivers the GOP cache: the pre-roll.
        if self.asking.take().is_some() && self.subscribed {
            return;
        }
        self.unsubscribe(out);
        self.subscribe(out);
    }

    fn resume(&mut self, out: &mut Vec<Action>) {
        if let Some(rec) = &mut self.recording {
            rec.gate = Gate::FirstFrame;
            rec.restart_pending = false;
        }
        self.state = State::Recording;
        out.push(Action::DisarmTimer);
        out.push(Action::Announce(Announcement::Resumed));
        self.unsubscribe(out);
        self.subscribe(out);
    }

    fn pause(&mut self, now: Instant, cause: PauseCause, out: &mut Vec<Action>) {
        let deadline = now + self.config.delay;
        self.state = State::Paused { cause, deadline };
        if let Some(rec) = &mut self.recording {
            rec.restart_pending = false;
        }
        out.push(Action::Announce(Announcement::Paused));
        self.unsubscribe(out);
        out.push(Action::ArmTimer { at: deadline });
    }

    fn finalize(&mut self, out: &mut Vec<Action>) {
        if matches!(self.state, State::Paused { .. }) {
            out.push(Action::DisarmTimer);
        }
        if let Some(rec) = self.recording.take() {
            out.push(Action::Finalize { id: rec.id });
        }
        self.state = State::Idle;
        self.unsubscribe(out);
    }

    fn on_frame(&mut self, frame: FrameMeta, out: &mut Vec<Action>) {
        if self.state != State::Recording {
            return;
        }
        if frame.starts_gop
            && self
                .recording
                .is_some_and(|r| r.restart_pending && r.gate == Gate::Open)
        {
            if let Some(old) = self.recording.take() {
                out.push(Action::Finalize { id: old.id });
            }
            let id = self.next_id;
            self.next_id += 1;
            let mut rec = Recording::new(id);
            rec.gate = Gate::Keyframe;
            self.recording = Some(rec);
            out.push(Action::OpenRecording { id });
        }
        let Some(rec) = &mut self.recording else {
            return;
        };
        // Within one recording a frame is written once. A new recording's pre-roll may reach
        // back into the previous file: the moment of `start` must be inside the new one.
        if let Some(last) = rec.last_seq
            && frame.seq <= last
        {
            // A resumed recording whose last frame is still cached continues right after it.
            if rec.gate == Gate::FirstFrame {
                rec.gate = Gate::SkipThrough { seq: last };
            }
            return;
        }
        if rec.gate == Gate::FirstFrame {
            rec.gate = Gate::Keyframe;
        }
        match rec.gate {
            Gate::FirstFrame => return,
            Gate::SkipThrough { seq } => {
                if frame.seq <= seq {
                    return;
                }
                // The frame right after the last one written: no gap to bridge.
                rec.gate = Gate::Open;
            }
            Gate::Keyframe => {
                if !frame.starts_gop {
                    return;
                }
                rec.offset = match rec.last_dts {
                    // Resuming after a gap: one frame after the last one written, in decode
                    // order and in display order (B-frames may have shown later than they
                    // decoded).
                    Some(last) => {
                        let by_dts = last + rec.video_step;
                        let by_pts = rec
                            .last_pts
                            .map_or(i64::MIN, |p| p + rec.video_step - i64::from(frame.cts));
                        frame.dts - by_dts.max(by_pts)
                    }
                    None => frame.dts,
                };
                rec.floor_dts = frame.dts;
                rec.gate = Gate::Open;
            }
            Gate::Open => {}
        }
        if frame.dts < rec.floor_dts {
            return;
        }
        let dts = frame.dts - rec.offset;
        if frame.track == TrackKind::Video {
            if let Some(prev) = rec.last_video_dts
                && dts > prev
            {
                rec.video_step = dts - prev;
            }
            rec.last_video_dts = Some(dts);
        }
        rec.last_seq = Some(frame.seq);
        rec.last_dts = Some(rec.last_dts.map_or(dts, |d| d.max(dts)));
        let pts = dts + i64::from(frame.cts);
        rec.last_pts = Some(rec.last_pts.map_or(pts, |p| p.max(pts)));
        out.push(Action::WriteFrame { dts });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DELAY: Duration = Duration::from_secs(180);

    struct Harness {
        m: Machine,
        now: Instant,
        seq: u64,
        out: Vec<Action>,
    }

    impl Harness {
        fn new(mode: Mode) -> Self {
            Self {
                m: Machine::new(MachineConfig { mode, delay: DELAY }),
                now: Instant::now(),
                seq: 0,
                out: vec![],
            }
        }
        fn ev(&mut self, e: Event) -> CommandOutcome {
            self.out.clear();
            self.m.step(self.now, e, &mut self.out)
        }
        fn cmd(&mut self, c: Command) -> CommandOutcome {
            self.ev(Event::CommandReceived(c))
        }
        /// Pushes a video frame; returns the timeline dts if written.
        fn video(&mut self, dts: i64, key: bool) -> Option<i64> {
            self.frame(TrackKind::Video, dts, key)
        }
        fn frame(&mut self, track: TrackKind, dts: i64, key: bool) -> Option<i64> {
            self.seq += 1;
            let starts_gop = key && track == TrackKind::Video;
            self.ev(Event::FrameArrived(FrameMeta {
                cts: 0,
                seq: self.seq,
                track,
                dts,
                starts_gop,
            }));
            self.out.iter().find_map(|a| match a {
                Action::WriteFrame { dts } => Some(*dts),
                _ => None,
            })
        }
        fn replay(&mut self, seq: u64, dts: i64, key: bool) -> Option<i64> {
            self.ev(Event::FrameArrived(FrameMeta {
                cts: 0,
                seq,
                track: TrackKind::Video,
                dts,
                starts_gop: key,
            }));
            self.out.iter().find_map(|a| match a {
                Action::WriteFrame { dts } => Some(*dts),
                _ => None,
            })
        }
        fn has(&self, a: Action) -> bool {
            self.out.contains(&a)
        }
        fn finalized(&self) -> Vec<u64> {
            self.out
                .iter()
                .filter_map(|a| match a {
                    Action::Finalize { id } => Some(*id),
                    _ => None,
                })
                .collect()
        }
    }

    #[test]
    fn automatic_publish_starts_recording_at_first_keyframe() {
        let mut h = Harness::new(Mode::Automatic);
        h.ev(Event::PublishStarted { session: 1 });
        assert!(h.has(Action::OpenRecording { id: 1 }) && h.has(Action::Subscribe));
        assert_eq!(
            h.video(1000, false),
            None,
            "a file never starts with a non-keyframe"
        );
        assert_eq!(h.video(1040, true), Some(0));
        assert_eq!(
            h.frame(TrackKind::Audio, 1030, true),
            None,
            "audio before the start keyframe"
        );
        assert_eq!(h.frame(TrackKind::Audio, 1050, true), Some(10));
        assert_eq!(h.video(1080, false), Some(40));
    }

    #[test]
    fn manual_mode_waits_for_start_and_start_needs_a_publisher() {
        let mut h = Harness::new(Mode::Manual);
        assert_eq!(h.cmd(Command::Start), CommandOutcome::NotPublishing);
        h.ev(Event::PublishStarted { session: 1 });
        assert!(h.out.is_empty());
        assert_eq!(h.cmd(Command::Start), CommandOutcome::Done);
        assert!(h.has(Action::OpenRecording { id: 1 }));
        assert_eq!(h.cmd(Command::Start), CommandOutcome::AlreadyStarted);
    }

    #[test]
    fn publish_drop_return_within_delay_continues() {
        let mut h = Harness::new(Mode::Automatic);
        h.ev(Event::PublishStarted { session: 1 });
        h.video(0, true);
        h.video(40, false);
        h.ev(Event::PublishEnded { session: 1 });
        assert!(matches!(
            h.m.state(),
            State::Paused {
                cause: PauseCause::PublisherGone,
                ..
            }
        ));
        h.now += Duration::from_secs(10);
        h.ev(Event::PublishStarted { session: 2 });
        assert!(h.has(Action::Subscribe) && h.has(Action::DisarmTimer));
        assert!(
            !h.out
                .iter()
                .any(|a| matches!(a, Action::OpenRecording { .. })),
            "same recording"
        );
        // The new session's timestamps restart at 0; the timeline continues after 40.
        assert_eq!(h.video(0, true), Some(80));
        assert_eq!(h.video(40, false), Some(120));
    }

    #[test]
    fn publisher_gone_past_delay_finalizes() {
        let mut h = Harness::new(Mode::Automatic);
        h.ev(Event::PublishStarted { session: 1 });
        h.video(0, true);
        h.ev(Event::PublishEnded { session: 1 });
        let deadline = h.now + DELAY;
        h.now = deadline;
        h.ev(Event::DelayElapsed);
        assert_eq!(h.finalized(), vec![1]);
        assert_eq!(h.m.state(), State::Idle);
        assert!(h.m.is_dormant());
    }

    #[test]
    fn stale_end_of_an_evicted_session_is_ignored() {
        let mut h = Harness::new(Mode::Automatic);
        h.ev(Event::PublishStarted { session: 1 });
        h.ev(Event::PublishStarted { session: 2 });
        h.ev(Event::PublishEnded { session: 1 });
        assert_eq!(h.m.state(), State::Recording);
    }

    #[test]
    fn stop_then_start_resumes_same_recording_without_losing_frames() {
        let mut h = Harness::new(Mode::Manual);
        h.ev(Event::PublishStarted { session: 1 });
        h.cmd(Command::Start);
        assert_eq!(h.video(0, true), Some(0)); // seq 1
        assert_eq!(h.video(40, false), Some(40)); // seq 2
        h.cmd(Command::Stop);
        assert!(h.has(Action::Unsubscribe));
        assert_eq!(h.video(80, false), None, "not written after stop");
        h.cmd(Command::Start);
        assert!(
            h.has(Action::Subscribe)
                && !h
                    .out
                    .iter()
                    .any(|a| matches!(a, Action::OpenRecording { .. }))
        );
        // The new subscription replays the GOP cache: seq 1..=3; 1 and 2 were written.
        assert_eq!(h.replay(1, 0, true), None);
        assert_eq!(h.replay(2, 40, false), None);
        assert_eq!(
            h.replay(3, 80, false),
            Some(80),
            "continues right after the last frame written"
        );
    }

    #[test]
    fn resume_after_a_keyframe_bridges_the_pause() {
        let mut h = Harness::new(Mode::Manual);
        h.ev(Event::PublishStarted { session: 1 });
        h.cmd(Command::Start);
        h.video(0, true);
        h.video(40, false);
        h.cmd(Command::Stop);
        h.video(80, false);
        h.video(5000, true); // seq 4: a new GOP during the pause
        h.video(5040, false);
        h.cmd(Command::Start);
        assert_eq!(h.replay(4, 5000, true), Some(80));
        assert_eq!(h.replay(5, 5040, false), Some(120));
    }

    #[test]
    fn resume_after_b_frames_is_shown_after_everything_written() {
        let mut h = Harness::new(Mode::Manual);
        h.ev(Event::PublishStarted { session: 1 });
        h.cmd(Command::Start);
        let frame = |h: &mut Harness, seq: u64, dts: i64, cts: i32, key: bool| {
            let meta = FrameMeta {
                seq,
                track: TrackKind::Video,
                dts,
                cts,
                starts_gop: key,
            };
            h.ev(Event::FrameArrived(meta));
            h.out.iter().find_map(|a| match a {
                Action::WriteFrame { dts } => Some(*dts),
                _ => None,
            })
        };
        assert_eq!(frame(&mut h, 1, 0, 0, true), Some(0));
        // A P-frame shown at 120 whose B-frames never come: the recording stops here.
        assert_eq!(frame(&mut h, 2, 40, 80, false), Some(40));
        h.cmd(Command::Stop);
        frame(&mut h, 3, 5000, 0, true);
        h.cmd(Command::Start);
        // Decode order alone would allow 80; display order needs more than 120.
        let resumed = frame(&mut h, 3, 5000, 0, true).unwrap();
        assert_eq!(resumed, 160);
    }

    #[test]
    fn stop_paused_recording_stays_paused_when_publisher_returns() {
        let mut h = Harness::new(Mode::Automatic);
        h.ev(Event::PublishStarted { session: 1 });
        h.video(0, true);
        h.cmd(Command::Stop);
        h.ev(Event::PublishEnded { session: 1 });
        h.ev(Event::PublishStarted { session: 2 });
        assert!(matches!(
            h.m.state(),
            State::Paused {
                cause: PauseCause::Stopped,
                ..
            }
        ));
    }

    #[test]
    fn stop_after_the_publisher_dropped_keeps_the_recording_stopped() {
        let mut h = Harness::new(Mode::Automatic);
        h.ev(Event::PublishStarted { session: 1 });
        h.video(0, true);
        h.ev(Event::PublishEnded { session: 1 });
        let State::Paused { deadline, .. } = h.m.state() else {
            panic!("paused");
        };
        h.now += Duration::from_secs(10);
        assert_eq!(h.cmd(Command::Stop), CommandOutcome::Done);
        assert!(h.out.is_empty());
        assert_eq!(
            h.m.state(),
            State::Paused {
                cause: PauseCause::Stopped,
                deadline
            },
            "deadline unchanged"
        );
        h.ev(Event::PublishStarted { session: 2 });
        assert!(
            !h.has(Action::Subscribe),
            "the returning publisher does not resume it"
        );
        assert_eq!(h.cmd(Command::Start), CommandOutcome::Done);
        assert_eq!(h.m.state(), State::Recording);
    }

    #[test]
    fn cancel_delay_finalizes_now() {
        let mut h = Harness::new(Mode::Manual);
        h.ev(Event::PublishStarted { session: 1 });
        h.cmd(Command::Start);
        h.video(0, true);
        h.cmd(Command::Stop);
        assert_eq!(h.cmd(Command::CancelDelay), CommandOutcome::Done);
        assert_eq!(h.finalized(), vec![1]);
        assert!(h.has(Action::DisarmTimer));
        assert_eq!(h.m.state(), State::Idle);
        // Idle: stop and cancel_delay change nothing and succeed.
        assert_eq!(h.cmd(Command::Stop), CommandOutcome::Done);
        assert_eq!(h.cmd(Command::CancelDelay), CommandOutcome::Done);
        assert!(h.out.is_empty());
    }

    #[test]
    fn new_recording_pre_rolls_even_into_the_previous_file() {
        let mut h = Harness::new(Mode::Manual);
        h.ev(Event::PublishStarted { session: 1 });
        h.cmd(Command::Start);
        h.video(0, true); // seq 1
        h.video(40, false); // seq 2
        h.cmd(Command::Stop);
        h.cmd(Command::CancelDelay);
        assert_eq!(h.finalized(), vec![1]);
        h.video(80, false); // seq 3, not recorded
        // `start` within the same GOP: the new file begins at the cached keyframe, so the
        // moment of the command is inside it, although seq 1 and 2 are also in the first file.
        h.cmd(Command::Start);
        assert!(h.has(Action::OpenRecording { id: 2 }) && h.has(Action::Subscribe));
        assert_eq!(h.replay(1, 0, true), Some(0));
        assert_eq!(h.replay(2, 40, false), Some(40));
        assert_eq!(h.replay(3, 80, false), Some(80));
        assert_eq!(h.video(120, false), Some(120));
    }

    #[test]
    fn restart_cuts_at_next_keyframe() {
        let mut h = Harness::new(Mode::Automatic);
        h.ev(Event::PublishStarted { session: 1 });
        h.video(1000, true);
        h.video(1040, false);
        assert_eq!(h.cmd(Command::Restart), CommandOutcome::Done);
        assert_eq!(
            h.video(1080, false),
            Some(80),
            "old recording goes on until the keyframe"
        );
        assert_eq!(
            h.video(2000, true),
            Some(0),
            "the new one starts with the keyframe"
        );
        assert_eq!(h.finalized(), vec![1]);
        assert!(h.has(Action::OpenRecording { id: 2 }));
        assert_eq!(h.video(2040, false), Some(40));
    }

    #[test]
    fn restart_waiting_for_keyframe_is_overtaken_by_stop() {
        let mut h = Harness::new(Mode::Automatic);
        h.ev(Event::PublishStarted { session: 1 });
        h.video(0, true);
        h.cmd(Command::Restart);
        h.cmd(Command::Stop);
        h.cmd(Command::Start);
        h.replay(1, 0, true);
        assert_eq!(h.video(40, false), Some(40));
        assert!(h.finalized().is_empty());
        assert_eq!(
            h.video(80, true),
            Some(80),
            "no cut: the restart was overtaken"
        );
    }

    #[test]
    fn restart_from_paused_without_publisher_finalizes_and_reports_not_publishing() {
        let mut h = Harness::new(Mode::Manual);
        h.ev(Event::PublishStarted { session: 1 });
        h.cmd(Command::Start);
        h.video(0, true);
        h.ev(Event::PublishEnded { session: 1 });
        assert_eq!(h.cmd(Command::Restart), CommandOutcome::NotPublishing);
        assert_eq!(h.finalized(), vec![1]);
        assert_eq!(h.m.state(), State::Idle);
    }

    #[test]
    fn shutdown_finalizes_open_recording() {
        let mut h = Harness::new(Mode::Automatic);
        h.ev(Event::PublishStarted { session: 1 });
        h.video(0, true);
        h.ev(Event::ShutdownRequested);
        assert_eq!(h.finalized(), vec![1]);
    }

    /// Checks what a test run of the machine writes.
    #[derive(Default)]
    struct Tracker {
        written: std::collections::HashSet<u64>,
        last_dts: Option<i64>,
        first_of_recording: bool,
        /// The hub's GOP cache: (seq, dts, keyframe).
        cache: Vec<(u64, i64, bool)>,
    }

    impl Tracker {
        /// Steps `h` with `event` (a frame `(seq, dts, key)` if it is one), carries out the
        /// actions in order and replays the cache on every subscription, as the hub does.
        fn step(&mut self, h: &mut Harness, event: Event, frame: Option<(u64, i64, bool)>) {
            h.ev(event);
            let actions = h.out.clone();
            // A recording opened with a fresh subscription may pre-roll frames the previous one
            // wrote; a restart cut opens on a live keyframe and must not repeat any.
            if actions
                .iter()
                .any(|a| matches!(a, Action::OpenRecording { .. }))
                && actions.contains(&Action::Subscribe)
            {
                self.written.clear();
            }
            for action in actions {
                match action {
                    Action::OpenRecording { .. } => {
                        self.last_dts = None;
                        self.first_of_recording = true;
                    }
                    Action::WriteFrame { dts } => {
                        let (seq, _, key) = frame.expect("writes only follow frames");
                        assert!(self.written.insert(seq), "frame {seq} written twice");
                        if self.first_of_recording {
                            assert!(key, "recording starts with a non-keyframe");
                            self.first_of_recording = false;
                        }
                        if let Some(prev) = self.last_dts {
                            assert!(dts >= prev, "timeline went backwards: {prev} -> {dts}");
                        }
                        self.last_dts = Some(dts);
                    }
                    Action::Subscribe => {
                        for (seq, dts, key) in self.cache.clone() {
                            let meta = FrameMeta {
                                cts: 0,
                                seq,
                                track: TrackKind::Video,
                                dts,
                                starts_gop: key,
                            };
                            self.step(h, Event::FrameArrived(meta), Some((seq, dts, key)));
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn ask_mode_records_on_the_question_subscription_after_a_yes() {
        let mut h = Harness::new(Mode::Ask);
        h.ev(Event::PublishStarted { session: 1 });
        assert!(h.has(Action::Subscribe));
        assert!(h.has(Action::Ask { session: 1 }));
        assert_eq!(h.m.asking(), Some(1));
        assert_eq!(h.m.state(), State::Idle);
        h.ev(Event::Answered {
            session: 1,
            record: true,
        });
        assert!(h.has(Action::OpenRecording { id: 1 }));
        // The frames queued since the publish started are the recording's: no resubscribe.
        assert!(!h.has(Action::Subscribe) && !h.has(Action::Unsubscribe));
        assert_eq!(h.m.asking(), None);
        assert_eq!(h.video(0, false), None);
        assert_eq!(h.video(40, true), Some(0));
        assert_eq!(h.video(80, false), Some(40));
    }

    #[test]
    fn ask_mode_a_no_unsubscribes_and_a_command_can_still_start() {
        let mut h = Harness::new(Mode::Ask);
        h.ev(Event::PublishStarted { session: 1 });
        h.ev(Event::Answered {
            session: 1,
            record: false,
        });
        assert!(h.has(Action::Unsubscribe));
        assert!(
            !h.out
                .iter()
                .any(|a| matches!(a, Action::OpenRecording { .. }))
        );
        assert_eq!(h.m.state(), State::Idle);
        assert_eq!(h.cmd(Command::Start), CommandOutcome::Done);
        assert!(h.has(Action::OpenRecording { id: 1 }) && h.has(Action::Subscribe));
    }

    #[test]
    fn ask_mode_ignores_stale_answers_and_a_start_overtakes_the_question() {
        let mut h = Harness::new(Mode::Ask);
        h.ev(Event::PublishStarted { session: 1 });
        h.ev(Event::PublishEnded { session: 1 });
        assert_eq!(h.m.asking(), None);
        h.ev(Event::Answered {
            session: 1,
            record: true,
        });
        assert!(h.out.is_empty());
        h.ev(Event::PublishStarted { session: 2 });
        assert_eq!(h.cmd(Command::Start), CommandOutcome::Done);
        assert!(h.has(Action::OpenRecording { id: 1 }));
        assert!(
            !h.has(Action::Subscribe),
            "the question's subscription is kept"
        );
        assert_eq!(h.m.asking(), None);
        h.ev(Event::Answered {
            session: 2,
            record: false,
        });
        assert!(h.out.is_empty());
        assert_eq!(h.m.state(), State::Recording);
    }

    #[test]
    fn ask_mode_continues_a_recording_when_the_publisher_returns() {
        let mut h = Harness::new(Mode::Ask);
        h.ev(Event::PublishStarted { session: 1 });
        h.ev(Event::Answered {
            session: 1,
            record: true,
        });
        h.video(0, true);
        h.ev(Event::PublishEnded { session: 1 });
        assert!(h.has(Action::Announce(Announcement::Paused)));
        h.ev(Event::PublishStarted { session: 2 });
        assert!(!h.out.iter().any(|a| matches!(a, Action::Ask { .. })));
        assert!(h.has(Action::Announce(Announcement::Resumed)));
        assert_eq!(h.m.state(), State::Recording);
    }

    #[test]
    fn pauses_and_resumes_are_announced() {
        let mut h = Harness::new(Mode::Manual);
        h.ev(Event::PublishStarted { session: 1 });
        h.cmd(Command::Start);
        assert!(!h.out.iter().any(|a| matches!(a, Action::Announce(_))));
        h.cmd(Command::Stop);
        assert!(h.has(Action::Announce(Announcement::Paused)));
        h.cmd(Command::Stop);
        assert!(h.out.is_empty(), "a second stop announces nothing");
        h.cmd(Command::Start);
        assert!(h.has(Action::Announce(Announcement::Resumed)));
    }

    proptest! {
        /// Random event sequences: no frame is written twice, the timeline never goes
        /// backwards within a recording, a recording's first frame starts a GOP, and `Idle`
        /// is always reachable.
        #[test]
        fn invariants_hold_for_random_event_sequences(
            mode in prop_oneof![Just(Mode::Automatic), Just(Mode::Manual), Just(Mode::Ask)],
            ops in proptest::collection::vec(0u8..14, 1..200),
        ) {
            let mut h = Harness::new(mode);
            let mut t = Tracker::default();
            let mut session = 0u64;
            let mut stream_dts = 0i64;
            for op in ops {
                match op {
                    0 => { session += 1; t.cache.clear(); t.step(&mut h, Event::PublishStarted { session }, None); }
                    1 => t.step(&mut h, Event::PublishEnded { session }, None),
                    2 => t.step(&mut h, Event::CommandReceived(Command::Start), None),
                    3 => t.step(&mut h, Event::CommandReceived(Command::Stop), None),
                    4 => t.step(&mut h, Event::CommandReceived(Command::CancelDelay), None),
                    5 => t.step(&mut h, Event::CommandReceived(Command::Restart), None),
                    6 => { h.now += DELAY; t.step(&mut h, Event::DelayElapsed, None); }
                    12 | 13 => t.step(&mut h, Event::Answered { session, record: op == 12 }, None),
                    _ => {
                        stream_dts += 40;
                        h.seq += 1;
                        let key = op == 7;
                        if key { t.cache.clear(); }
                        t.cache.push((h.seq, stream_dts, key));
                        let seq = h.seq;
                        let meta = FrameMeta { cts: 0, seq, track: TrackKind::Video, dts: stream_dts, starts_gop: key };
                        t.step(&mut h, Event::FrameArrived(meta), Some((seq, stream_dts, key)));
                    }
                }
            }
            h.cmd(Command::CancelDelay);
            prop_assert_eq!(h.m.state(), State::Idle);
        }
    }
}
