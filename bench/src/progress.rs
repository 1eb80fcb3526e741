//! The progress bar of `skein bench ingest`: elapsed time against
//! `--duration`, acknowledged items per second and errors, on stderr. It
//! is drawn only when stderr is a terminal and JSON output is off.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ingest::Counters;
use super::signal::Signal;

const REFRESH: Duration = Duration::from_millis(250);

/// A running progress bar (or nothing, when not shown).
pub struct Progress(Option<(CancellationToken, JoinHandle<()>)>);

impl Progress {
    pub(crate) fn start(wanted: bool, duration: Duration, signal: Signal, counters: Arc<Counters>) -> Self {
        if !wanted || !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let length = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        let stop = CancellationToken::new();
        let task = tokio::spawn(refresh(bar, signal, counters, stop.clone()));
        Self(Some((stop, task)))
    }

    /// Removes the bar before the report is printed.
    pub async fn finish(self) {
        if let Some((stop, task)) = self.0 {
            stop.cancel();
            let _ = task.await;
        }
    }
}

async fn refresh(bar: ProgressBar, signal: Signal, counters: Arc<Counters>, stop: CancellationToken) {
    let start = Instant::now();
    let mut ticker = tokio::time::interval(REFRESH);
    let (mut last_items, mut last_at) = (0u64, start);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let now = Instant::now();
        let items = counters.acknowledged_items.load(Ordering::Relaxed);
        let rate = items.saturating_sub(last_items) as f64 / (now - last_at).as_secs_f64().max(f64::EPSILON);
        (last_items, last_at) = (items, now);
        bar.set_position(u64::try_from((now - start).as_millis()).unwrap_or(u64::MAX));
        let errors = counters.errors.load(Ordering::Relaxed);
        let unit = signal.items_short();
        bar.set_message(format!("{rate:>10.0} {unit}/s  {items} acknowledged  {errors} errors"));
    }
    bar.finish_and_clear();
}
