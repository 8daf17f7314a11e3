//! Progress on stderr: scenario k of n, phase, connections open, events/s, live p50/p99.
//!
//! Drawn with indicatif only when stderr is a terminal; otherwise silent apart from
//! `tracing` events at `info` level for each phase, which `RUST_LOG` controls.

use std::io::IsTerminal as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::client::LiveStats;
use crate::results::ScenarioResult;

/// The progress display of a run.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    index: usize,
    total: usize,
    name: String,
    phase: &'static str,
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// A display for `total` scenarios; drawn only if stderr is a terminal.
    pub fn new(total: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            bar,
            state: Mutex::new(State {
                total,
                ..State::default()
            }),
        }
    }

    /// A display that never draws (tests, libraries).
    pub fn hidden() -> Self {
        Self {
            bar: None,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A scenario starts; `live` feeds the display until it finishes.
    pub fn start_scenario(&self, name: &str, repeat: u32, n_clients: usize, live: Arc<LiveStats>) {
        let mut st = self.state();
        st.index += 1;
        st.name = format!("{name} #{repeat}");
        st.phase = "setup";
        tracing::info!(scenario = %st.name, index = st.index, total = st.total, "scenario started");
        let Some(bar) = self.bar.clone() else { return };
        let prefix = format!("[{}/{}] {}", st.index, st.total.max(st.index), st.name);
        if let Some(old) = st.ticker.take() {
            old.abort();
        }
        st.ticker = Some(tokio::spawn(tick(bar, prefix, n_clients, live)));
    }

    /// The current scenario entered `phase`.
    pub fn phase(&self, phase: &'static str) {
        let mut st = self.state();
        st.phase = phase;
        tracing::info!(scenario = %st.name, phase, "phase");
        if let Some(bar) = &self.bar {
            bar.set_prefix(phase);
        }
    }

    /// The current scenario ended with `result`.
    pub fn finish_scenario(&self, result: &ScenarioResult) {
        let mut st = self.state();
        if let Some(t) = st.ticker.take() {
            t.abort();
        }
        let line = format!(
            "[{}/{}] {} #{}: {} p50 {} µs p99 {} µs, {} delivered, {} missed",
            st.index,
            st.total.max(st.index),
            result.name,
            result.repeat,
            result.status.as_str(),
            result.latency_us.p50,
            result.latency_us.p99,
            result.events.delivered,
            result.events.missed
        );
        tracing::info!("{line}");
        if let Some(bar) = &self.bar {
            bar.println(line);
        }
    }

    /// Clears the display.
    pub fn finish(&self) {
        if let Some(t) = self.state().ticker.take() {
            t.abort();
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

async fn tick(bar: ProgressBar, prefix: String, n_clients: usize, live: Arc<LiveStats>) {
    let mut last = live.delivered.load(Ordering::Relaxed);
    let period = Duration::from_millis(500);
    let mut interval = tokio::time::interval(period);
    loop {
        interval.tick().await;
        let delivered = live.delivered.load(Ordering::Relaxed);
        let rate = (delivered - last.min(delivered)) as f64 / period.as_secs_f64();
        last = delivered;
        let (p50, p99) = match live.latency.lock() {
            Ok(h) if !h.is_empty() => (h.value_at_quantile(0.5), h.value_at_quantile(0.99)),
            _ => (0, 0),
        };
        bar.set_message(format!(
            "{prefix} {} | open {}/{n_clients} | {rate:.0} ev/s | p50 {p50} µs p99 {p99} µs | errors {}",
            bar.prefix(),
            live.open.load(Ordering::Relaxed),
            live.errors.load(Ordering::Relaxed),
        ));
    }
}
