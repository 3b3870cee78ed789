//! Progress for logs (stderr is not a terminal: CI, a Slurm job's log), where bars cannot
//! be drawn: every `PRUNUS_PROGRESS_INTERVAL` seconds (default 30, `0` turns it off) one
//! line per running stage instance with done/total, percent, rate and ETA.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::run::human_secs;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// The interval from `PRUNUS_PROGRESS_INTERVAL` (seconds), `None` when it is `0`.
pub(super) fn interval() -> Option<Duration> {
    let Ok(text) = std::env::var("PRUNUS_PROGRESS_INTERVAL") else {
        return Some(DEFAULT_INTERVAL);
    };
    match text.trim().parse::<f64>() {
        Ok(0.0) => None,
        Ok(s) if s > 0.0 && s.is_finite() => Some(Duration::from_secs_f64(s)),
        _ => {
            eprintln!(
                "warning: PRUNUS_PROGRESS_INTERVAL={text:?} is not a number of seconds; \
                 using {} s (0 turns the progress lines off)",
                DEFAULT_INTERVAL.as_secs()
            );
            Some(DEFAULT_INTERVAL)
        }
    }
}

/// A rate with two decimals and an SI prefix past a thousand: `92.01/s`, `12.35k/s`.
pub fn format_rate(per_sec: f64) -> String {
    let (x, prefix) = match per_sec {
        r if !r.is_finite() => return "-/s".into(),
        r if r >= 1e9 => (r / 1e9, "G"),
        r if r >= 1e6 => (r / 1e6, "M"),
        r if r >= 1e3 => (r / 1e3, "k"),
        r => (r, ""),
    };
    format!("{x:.2}{prefix}/s")
}

/// What one running instance last reported.
pub(super) struct Live {
    name: String,
    started: Instant,
    state: Mutex<State>,
    finished: AtomicBool,
}

#[derive(Default)]
struct State {
    done: u64,
    total: u64,
    unit: String,
    /// The first report: the rate counts from there, not from the stage's setup.
    first: Option<(Instant, u64)>,
}

impl Live {
    pub fn new(name: &str) -> Arc<Live> {
        Arc::new(Live {
            name: name.to_string(),
            started: Instant::now(),
            state: Mutex::new(State::default()),
            finished: AtomicBool::new(false),
        })
    }

    /// No more lines for this instance.
    pub fn finish(&self) {
        self.finished.store(true, Ordering::Relaxed);
    }

    pub fn report(&self, done: u64, total: u64, unit: &str) {
        let mut s = self.state.lock().expect("progress lock");
        s.first.get_or_insert((Instant::now(), done));
        if s.unit != unit {
            s.unit = unit.to_string();
        }
        (s.done, s.total) = (done, total);
    }

    /// `train/x: 1200/5000 steps (24.0%), 92.01/s, ETA 41.3 s`.
    fn line(&self, now: Instant) -> String {
        let s = self.state.lock().expect("progress lock");
        let Some((t0, d0)) = s.first else {
            let secs = now.duration_since(self.started).as_secs_f64();
            return format!("  {}: running for {}", self.name, human_secs(secs));
        };
        let secs = now.duration_since(t0).as_secs_f64();
        let rate = (s.done.saturating_sub(d0)) as f64 / secs;
        let pct = if s.total > 0 {
            format!(" ({:.1}%)", 100.0 * s.done as f64 / s.total as f64)
        } else {
            String::new()
        };
        let eta = if rate > 0.0 && s.total >= s.done {
            human_secs((s.total - s.done) as f64 / rate)
        } else {
            "unknown".into()
        };
        format!(
            "  {}: {}/{} {}{pct}, {}, ETA {eta}",
            self.name,
            s.done,
            s.total,
            s.unit,
            format_rate(rate)
        )
    }
}

/// The thread that prints the lines, and the instances it prints them for.
pub(super) struct Ticker {
    running: Arc<Mutex<Vec<Weak<Live>>>>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    pub fn start(every: Duration) -> Ticker {
        let running: Arc<Mutex<Vec<Weak<Live>>>> = Arc::default();
        let (stop, stopped) = mpsc::channel::<()>();
        let list = running.clone();
        let thread = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let now = Instant::now();
                let mut list = list.lock().expect("progress lock");
                list.retain(|l| {
                    l.upgrade()
                        .is_some_and(|l| !l.finished.load(Ordering::Relaxed))
                });
                for live in list.iter().filter_map(Weak::upgrade) {
                    eprintln!("{}", live.line(now));
                }
            }
        });
        Ticker {
            running,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn track(&self, live: &Arc<Live>) {
        let mut list = self.running.lock().expect("progress lock");
        list.push(Arc::downgrade(live));
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_have_two_decimals() {
        assert_eq!(format_rate(92.009925713409), "92.01/s");
        assert_eq!(format_rate(0.5), "0.50/s");
        assert_eq!(format_rate(12_345.6), "12.35k/s");
        assert_eq!(format_rate(3.2e6), "3.20M/s");
        assert_eq!(format_rate(f64::INFINITY), "-/s");
    }

    #[test]
    fn a_line_has_progress_rate_and_eta() {
        let live = Live::new("train/x");
        let t0 = Instant::now();
        assert!(live.line(t0).starts_with("  train/x: running for "));
        live.state.lock().unwrap().first = Some((t0, 0));
        live.report(200, 1000, "steps");
        let line = live.line(t0 + Duration::from_secs(2));
        assert_eq!(
            line,
            "  train/x: 200/1000 steps (20.0%), 100.00/s, ETA 8.0 s"
        );
    }
}
