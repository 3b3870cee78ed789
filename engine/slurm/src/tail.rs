//! Live progress from a running task's Slurm log: `prunus exec` prints its stage's log lines
//! as `[instance] line` and, every `PRUNUS_PROGRESS_INTERVAL` seconds, a progress line
//! `  instance: 1200/5000 steps (24.0%), ...`; the coordinator reads what is new in the log
//! and feeds both to the instance's reporter, so its bar moves as with the local executor.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use prunus_stage::Reporter;

/// How far a log has been read.
pub struct LogTail {
    pub path: PathBuf,
    offset: u64,
    partial: String,
}

impl LogTail {
    pub fn new(path: PathBuf) -> LogTail {
        LogTail {
            path,
            offset: 0,
            partial: String::new(),
        }
    }

    /// Reads what the log gained and reports it.
    pub fn poll(&mut self, instance: &str, reporter: &dyn Reporter) {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return;
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut new = Vec::new();
        let Ok(n) = f.read_to_end(&mut new) else {
            return;
        };
        self.offset += n as u64;
        self.partial.push_str(&String::from_utf8_lossy(&new));
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            report(instance, line.trim_end(), reporter);
        }
    }
}

/// One line of the log to the reporter: a stage log line or a progress line.
fn report(instance: &str, line: &str, reporter: &dyn Reporter) {
    if let Some(text) = line.strip_prefix(&format!("[{instance}] ")) {
        reporter.log(text);
    } else if let Some((done, total, unit)) = progress(instance, line) {
        reporter.progress(done, total, &unit);
    }
}

/// `  train/x: 1200/5000 steps (24.0%), ...` -> (1200, 5000, "steps").
fn progress(instance: &str, line: &str) -> Option<(u64, u64, String)> {
    let rest = line
        .trim_start()
        .strip_prefix(instance)?
        .strip_prefix(": ")?;
    let (counts, rest) = rest.split_once(' ')?;
    let (done, total) = counts.split_once('/')?;
    let unit = rest.split([' ', ',']).next()?.to_string();
    Some((done.parse().ok()?, total.parse().ok()?, unit))
}

/// The last `n` lines of a log (shown with a failure).
pub fn last_lines(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);
    impl Reporter for Seen {
        fn progress(&self, d: u64, t: u64, u: &str) {
            self.0.lock().unwrap().push(format!("{d}/{t} {u}"));
        }
        fn log(&self, line: &str) {
            self.0.lock().unwrap().push(line.to_string());
        }
    }

    #[test]
    fn log_and_progress_lines_reach_the_reporter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1_0.log");
        std::fs::write(
            &path,
            "[t/a] hello\n  t/a: 200/1000 steps (20.0%), 1.00/s, ETA 8 s\n[t/a] part",
        )
        .unwrap();
        let (seen, mut tail) = (Seen::default(), LogTail::new(path.clone()));
        tail.poll("t/a", &seen);
        std::fs::write(
            &path,
            "[t/a] hello\n  t/a: 200/1000 steps (20.0%), 1.00/s, ETA 8 s\n[t/a] partial\n",
        )
        .unwrap();
        tail.poll("t/a", &seen);
        assert_eq!(
            *seen.0.lock().unwrap(),
            ["hello", "200/1000 steps", "partial"]
        );
    }
}
