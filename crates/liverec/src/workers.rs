//! Media workers: single-threaded runtimes, one per core by default, that run the RTMP
//! connections and the recorders of the streams they publish.
//!
//! On tokio's shared multi-threaded runtime a frame pushed by a connection task woke the
//! recorder task on whichever worker was idle, a futex wake-up and a context switch per frame
//! or two. Here a connection and its recorder share one thread (like an nginx worker process),
//! so handing a frame over is a push onto that thread's run queue. The API, the catalog and
//! the supervisor stay on the main runtime.

use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// How long a stopping worker waits for its blocking tasks (spool writes) to end.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

pub struct MediaWorkers {
    handles: Vec<Handle>,
    workers: Vec<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl MediaWorkers {
    /// Starts `count` workers (0: one per available core).
    pub fn start(count: usize) -> anyhow::Result<Self> {
        let count = match count {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let mut handles = Vec::with_capacity(count);
        let mut workers = Vec::with_capacity(count);
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name(format!("liverec-media-{index}"))
                .build()
                .context("cannot start a media worker runtime")?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("liverec-media-{index}"))
                .spawn(move || {
                    // Runs the tasks handed to this worker until told to stop.
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                    runtime.shutdown_timeout(STOP_TIMEOUT);
                })
                .context("cannot start a media worker thread")?;
            workers.push((stop, thread));
        }
        tracing::info!(workers = count, "media workers started");
        Ok(Self { handles, workers })
    }

    pub fn handles(&self) -> Vec<Handle> {
        self.handles.clone()
    }

    /// Stops every worker, dropping tasks still on it, and waits for the threads. Call it
    /// once the connections and recorders are done.
    pub async fn stop(self) {
        let threads: Vec<JoinHandle<()>> = self
            .workers
            .into_iter()
            .map(|(stop, thread)| {
                let _ = stop.send(());
                thread
            })
            .collect();
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads {
                if thread.join().is_err() {
                    tracing::error!("a media worker panicked");
                }
            }
        })
        .await;
        if joined.is_err() {
            tracing::error!("waiting for the media workers failed");
        }
    }
}
