//! The shutdown coordinator: runs a process's roles and stops them in
//! order. The process stops when the shutdown token is cancelled (SIGTERM)
//! **or when any role exits** (an error, a panic, or an unexpected clean
//! return). Steps then run in the order they were added: each serving
//! role is told to stop and awaited (it stops accepting and drains), and
//! each closing step (storage's final flush) runs, even when an earlier
//! role failed or panicked, so acknowledged data is flushed whatever happens.

use std::future::Future;
use std::pin::Pin;

use anyhow::anyhow;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

type Closing = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

enum Step {
    Role { name: &'static str, stop: CancellationToken, task: JoinHandle<anyhow::Result<()>> },
    Close { name: &'static str, closing: Closing },
}

/// A process's roles, in shutdown order.
#[derive(Default)]
pub struct Supervisor {
    steps: Vec<Step>,
}

impl Supervisor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a role; `serve` gets the token that tells it to stop.
    pub fn spawn<F, E>(&mut self, name: &'static str, serve: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<anyhow::Error>,
    {
        let stop = CancellationToken::new();
        let serving = serve(stop.clone());
        let task = tokio::spawn(async move { serving.await.map_err(Into::into) });
        self.steps.push(Step::Role { name, stop, task });
    }

    /// A step that runs at shutdown after the roles added before it stopped.
    pub fn then(&mut self, name: &'static str, closing: impl Future<Output = anyhow::Result<()>> + Send + 'static) {
        self.steps.push(Step::Close { name, closing: Box::pin(closing) });
    }

    /// Serves until `shutdown` is cancelled or a role exits, then runs every
    /// step in order. Returns the first failure (a role that exited on its
    /// own counts as one).
    pub async fn run(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut early: Option<(usize, anyhow::Result<()>)> = None;
        {
            let tasks: Vec<(usize, &mut JoinHandle<anyhow::Result<()>>)> = self
                .steps
                .iter_mut()
                .enumerate()
                .filter_map(|(i, step)| match step {
                    Step::Role { task, .. } => Some((i, task)),
                    Step::Close { .. } => None,
                })
                .collect();
            if !tasks.is_empty() {
                let (indexes, handles): (Vec<usize>, Vec<_>) = tasks.into_iter().unzip();
                tokio::select! {
                    _ = shutdown.cancelled() => info!("shutting down"),
                    (joined, which, _) = futures::future::select_all(handles) => {
                        early = Some((indexes[which], flatten(joined)));
                    }
                }
            } else {
                shutdown.cancelled().await;
            }
        }
        let mut first_error: Option<anyhow::Error> = None;
        if let Some((index, outcome)) = &early {
            let name = match &self.steps[*index] {
                Step::Role { name, .. } | Step::Close { name, .. } => *name,
            };
            let reason = match outcome {
                Ok(()) => anyhow!("{name} stopped unexpectedly"),
                Err(e) => anyhow!("{name} failed: {e:#}"),
            };
            error!(role = name, error = %reason, "a role stopped; stopping the process");
            first_error = Some(reason);
        }
        for (index, step) in self.steps.into_iter().enumerate() {
            let (name, outcome) = match step {
                Step::Role { name, stop, task } => {
                    stop.cancel();
                    match &early {
                        // Already joined above.
                        Some((i, _)) if *i == index => continue,
                        _ => (name, flatten(task.await)),
                    }
                }
                Step::Close { name, closing } => (name, closing.await),
            };
            if let Err(e) = outcome {
                error!(step = name, error = %format!("{e:#}"), "shutdown step failed");
                first_error.get_or_insert(e.context(format!("{name} failed")));
            }
        }
        match first_error {
            None => {
                info!("shutdown complete");
                Ok(())
            }
            Some(e) => Err(e),
        }
    }
}

fn flatten(joined: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    joined.map_err(|e| anyhow!("task panicked: {e}"))?
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_failing_role_stops_the_others_and_closing_still_runs() {
        let mut supervisor = Supervisor::new();
        let other_stopped = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&other_stopped);
        supervisor.spawn("frontend", move |stop: CancellationToken| async move {
            stop.cancelled().await;
            flag.store(true, Ordering::SeqCst);
            Ok::<(), anyhow::Error>(())
        });
        supervisor.spawn("broken", |_stop| async { Err::<(), _>(anyhow!("port in use")) });
        let flushed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&flushed);
        supervisor.then("flush", async move {
            flag.store(true, Ordering::SeqCst);
            Ok(())
        });
        let err = supervisor.run(CancellationToken::new()).await.expect_err("the failure is reported");
        assert!(format!("{err:#}").contains("port in use"), "{err:#}");
        assert!(other_stopped.load(Ordering::SeqCst));
        assert!(flushed.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_panicking_role_still_gets_the_final_flush() {
        let mut supervisor = Supervisor::new();
        supervisor.spawn("panics", |_stop| async {
            #[allow(clippy::panic)]
            if true {
                panic!("bug");
            }
            Ok::<(), anyhow::Error>(())
        });
        let flushed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&flushed);
        supervisor.then("flush", async move {
            flag.store(true, Ordering::SeqCst);
            Ok(())
        });
        let err = supervisor.run(CancellationToken::new()).await.expect_err("panic reported");
        assert!(format!("{err:#}").contains("panicked"), "{err:#}");
        assert!(flushed.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn shutdown_runs_steps_in_order() {
        let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let mut supervisor = Supervisor::new();
        let log = Arc::clone(&order);
        supervisor.spawn("collector", move |stop: CancellationToken| async move {
            stop.cancelled().await;
            log.lock().push("collector");
            Ok::<(), anyhow::Error>(())
        });
        let log = Arc::clone(&order);
        supervisor.then("storage", async move {
            log.lock().push("storage");
            Ok(())
        });
        let log = Arc::clone(&order);
        supervisor.spawn("query", move |stop: CancellationToken| async move {
            stop.cancelled().await;
            log.lock().push("query");
            Ok::<(), anyhow::Error>(())
        });
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        supervisor.run(shutdown).await.expect("clean");
        assert_eq!(*order.lock(), vec!["collector", "storage", "query"]);
    }
}
