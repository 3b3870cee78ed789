//! Live progress on the terminal: an overall bar and one bar per running stage instance
//! (steps/s and ETA); plain lines when stderr is not a terminal (CI logs, Slurm), with a
//! periodic line per running instance ([`plain`]).

mod plain;

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use prunus_stage::Reporter;

pub use plain::format_rate;

/// The terminal side of a run.
pub struct Ui {
    multi: MultiProgress,
    overall: ProgressBar,
    /// Also print every stage log line (`-v`).
    pub verbose: bool,
    /// Only failures and the summary (`-q`).
    quiet: bool,
    /// Prints the running instances' progress now and then when there are no bars.
    ticker: Mutex<Option<plain::Ticker>>,
}

impl Ui {
    pub fn new(total: u64, verbose: bool, quiet: bool) -> Ui {
        let tty = std::io::stderr().is_terminal();
        let ticker = (!quiet && !tty)
            .then(plain::interval)
            .flatten()
            .map(plain::Ticker::start);
        let target = if quiet || !tty {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr_with_hz(8)
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(total));
        overall.set_style(
            ProgressStyle::with_template(
                "{spinner} {pos}/{len} instances {wide_msg} [{elapsed_precise}]",
            )
            .expect("valid template"),
        );
        overall.enable_steady_tick(Duration::from_millis(250));
        Ui {
            multi,
            overall,
            verbose,
            quiet,
            ticker: Mutex::new(ticker),
        }
    }

    /// A line above the bars (or on stderr when there are no bars).
    pub fn println(&self, line: impl AsRef<str>) {
        if self.multi.is_hidden() {
            eprintln!("{}", line.as_ref());
        } else {
            let _ = self.multi.println(line.as_ref());
        }
    }

    /// A line of routine news (a stage finished), suppressed by `-q`.
    pub fn note(&self, line: impl AsRef<str>) {
        if !self.quiet {
            self.println(line);
        }
    }

    pub fn set_summary(&self, done: u64, msg: String) {
        self.overall.set_position(done);
        self.overall.set_message(msg);
    }

    /// A reporter for one running instance, with its own bar.
    pub fn stage(&self, instance: &str) -> StageReporter {
        let bar = self.multi.insert_before(&self.overall, ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template(
                "  {prefix:40!} [{bar:25}] {human_pos}/{human_len} {msg} {rate:>10} ETA {eta:>4}",
            )
            .expect("valid template")
            .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&format_rate(s.per_sec()));
            })
            .progress_chars("=> "),
        );
        bar.set_prefix(instance.to_string());
        let live = self.ticker.lock().expect("ticker lock").as_ref().map(|t| {
            let live = plain::Live::new(instance);
            t.track(&live);
            live
        });
        StageReporter {
            bar,
            live,
            lines: Mutex::new(Vec::new()),
            verbose: self
                .verbose
                .then(|| (self.multi.clone(), instance.to_string())),
        }
    }

    pub fn finish(&self) {
        self.overall.finish_and_clear();
        drop(self.ticker.lock().expect("ticker lock").take());
    }
}

/// Collects a stage's log (stored with its result) and drives its bar.
pub struct StageReporter {
    bar: ProgressBar,
    /// Its periodic line when there are no bars.
    live: Option<Arc<plain::Live>>,
    lines: Mutex<Vec<String>>,
    verbose: Option<(MultiProgress, String)>,
}

impl StageReporter {
    /// The whole log, one line each.
    pub fn log_text(&self) -> String {
        let lines = self.lines.lock().expect("log lock");
        let mut text = lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        text
    }

    /// The last `n` log lines (shown when a stage fails).
    pub fn tail(&self, n: usize) -> Vec<String> {
        let lines = self.lines.lock().expect("log lock");
        lines[lines.len().saturating_sub(n)..].to_vec()
    }

    pub fn done(&self) {
        self.bar.finish_and_clear();
        if let Some(live) = &self.live {
            live.finish();
        }
    }
}

impl Reporter for StageReporter {
    fn progress(&self, done: u64, total: u64, unit: &str) {
        if self.bar.length() != Some(total) {
            self.bar.set_length(total);
            self.bar.set_message(unit.to_string());
        }
        self.bar.set_position(done);
        if let Some(live) = &self.live {
            live.report(done, total, unit);
        }
    }

    fn log(&self, line: &str) {
        if let Some((multi, name)) = &self.verbose {
            if multi.is_hidden() {
                eprintln!("[{name}] {line}");
            } else {
                let _ = multi.println(format!("[{name}] {line}"));
            }
        }
        self.lines.lock().expect("log lock").push(line.to_string());
    }
}
