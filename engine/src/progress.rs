//! Live progress on the terminal: an overall bar and one bar per running stage instance
//! (steps/s and ETA); plain lines when stderr is not a terminal (CI logs, Slurm).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use prunus_stage::Reporter;

/// The terminal side of a run.
pub struct Ui {
    multi: MultiProgress,
    overall: ProgressBar,
    /// Also print every stage log line (`-v`).
    pub verbose: bool,
    /// Only failures and the summary (`-q`).
    quiet: bool,
}

impl Ui {
    pub fn new(total: u64, verbose: bool, quiet: bool) -> Ui {
        let target = if quiet || !std::io::stderr().is_terminal() {
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
                "  {prefix:40!} [{bar:25}] {human_pos}/{human_len} {msg} {per_sec:>12} ETA {eta:>4}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(instance.to_string());
        StageReporter {
            bar,
            lines: Mutex::new(Vec::new()),
            verbose: self
                .verbose
                .then(|| (self.multi.clone(), instance.to_string())),
        }
    }

    pub fn finish(&self) {
        self.overall.finish_and_clear();
    }
}

/// Collects a stage's log (stored with its result) and drives its bar.
pub struct StageReporter {
    bar: ProgressBar,
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
    }
}

impl Reporter for StageReporter {
    fn progress(&self, done: u64, total: u64, unit: &str) {
        if self.bar.length() != Some(total) {
            self.bar.set_length(total);
            self.bar.set_message(unit.to_string());
        }
        self.bar.set_position(done);
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
