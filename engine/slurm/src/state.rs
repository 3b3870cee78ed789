//! Job states as Slurm's commands print them, parsed: `squeue` for jobs still queued or
//! running, `sacct` (accounting) or `scontrol show job` (the controller's memory, when there
//! is no accounting) for how a finished one ended.

use std::collections::HashMap;
use std::fmt;

/// One array task: `123_4`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    pub array: String,
    pub task: u32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.array, self.task)
    }
}

impl std::str::FromStr for TaskId {
    type Err = String;
    fn from_str(s: &str) -> Result<TaskId, String> {
        let (array, task) = s.split_once('_').ok_or(format!("not an array task: {s}"))?;
        Ok(TaskId {
            array: array.to_string(),
            task: task
                .parse()
                .map_err(|_| format!("not an array task: {s}"))?,
        })
    }
}

/// A queued or running task, as squeue lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub state: String,
    pub reason: String,
    /// Its `--comment` (prunus marks its arrays with their job list).
    pub comment: String,
}

impl Queued {
    /// Whether its script runs (its log grows).
    pub fn running(&self) -> bool {
        matches!(
            self.state.as_str(),
            "RUNNING" | "COMPLETING" | "SIGNALING" | "STAGE_OUT"
        )
    }
}

/// How a task that left the queue ended.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ended {
    /// `COMPLETED`, `FAILED`, `TIMEOUT`, `OUT_OF_MEMORY`, `CANCELLED`, `NODE_FAIL`, ...
    pub state: String,
    pub reason: String,
    /// The script's exit code and the signal that ended it (`ExitCode=1:0`).
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub run_s: Option<u64>,
    pub limit_s: Option<u64>,
}

impl Ended {
    /// States a job leaves again (a requeued one pends anew): not an ending yet.
    pub fn is_final(&self) -> bool {
        !matches!(
            self.state.as_str(),
            "PENDING"
                | "RUNNING"
                | "CONFIGURING"
                | "COMPLETING"
                | "REQUEUED"
                | "REQUEUE_FED"
                | "RESIZING"
                | "SUSPENDED"
                | "SIGNALING"
                | "STAGE_OUT"
                | ""
        )
    }
}

/// `squeue -h -r -o %i|%T|%r|%k` lines: each task by id (pending arrays expanded by `-r`).
pub fn parse_squeue(text: &str) -> HashMap<TaskId, Queued> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut f = line.trim().splitn(4, '|');
        let (Some(id), Some(state)) = (f.next(), f.next()) else {
            continue;
        };
        if let Ok(id) = id.parse::<TaskId>() {
            let mut rest = || f.next().unwrap_or("").to_string();
            let (reason, comment) = (rest(), rest());
            let state = state.to_string();
            out.insert(
                id,
                Queued {
                    state,
                    reason,
                    comment,
                },
            );
        }
    }
    out
}

/// `sacct -n -P -X -o JobID,State,ExitCode,Elapsed,Timelimit,Reason` lines.
pub fn parse_sacct(text: &str) -> HashMap<TaskId, Ended> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.trim().split('|').collect();
        let [id, state, exit, elapsed, limit, reason, ..] = f.as_slice() else {
            continue;
        };
        let Ok(id) = id.parse::<TaskId>() else {
            continue;
        };
        let (exit_code, signal) = exit_pair(exit);
        let ended = Ended {
            // `CANCELLED by 1000`
            state: state.split_whitespace().next().unwrap_or("").to_string(),
            reason: reason.to_string(),
            exit_code,
            signal,
            run_s: duration(elapsed),
            limit_s: duration(limit),
        };
        out.insert(id, ended);
    }
    out
}

/// `scontrol show job -o` lines (one record per line, `Key=Value` fields); a pending array
/// record (`ArrayTaskId=3-9%2`) stands for each of its tasks.
pub fn parse_scontrol(text: &str) -> HashMap<TaskId, Ended> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let fields: HashMap<&str, &str> = line
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let (Some(array), Some(tasks)) = (fields.get("ArrayJobId"), fields.get("ArrayTaskId"))
        else {
            continue;
        };
        let (exit_code, signal) = exit_pair(fields.get("ExitCode").unwrap_or(&""));
        let ended = Ended {
            state: fields.get("JobState").unwrap_or(&"").to_string(),
            reason: fields.get("Reason").unwrap_or(&"").to_string(),
            exit_code,
            signal,
            run_s: fields.get("RunTime").and_then(|t| duration(t)),
            limit_s: fields.get("TimeLimit").and_then(|t| duration(t)),
        };
        for task in task_range(tasks) {
            out.insert(
                TaskId {
                    array: array.to_string(),
                    task,
                },
                ended.clone(),
            );
        }
    }
    out
}

/// `1:0` -> (1, 0).
fn exit_pair(s: &str) -> (Option<i32>, Option<i32>) {
    let mut it = s.split(':').map(|x| x.trim().parse().ok());
    (it.next().flatten(), it.next().flatten())
}

/// `3`, `3-9`, `1,4-6%2` -> the task numbers.
fn task_range(s: &str) -> Vec<u32> {
    let s = s.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u32>().ok()),
        }
    }
    out
}

/// Slurm's `[D-]HH:MM:SS` or `MM:SS`; `None` for `UNLIMITED`, `INVALID`, ...
fn duration(s: &str) -> Option<u64> {
    prunus_engine::lower::parse_duration(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines() {
        let q = parse_squeue("12_0|RUNNING|None|prunus:a\n12_1|PENDING|Resources|(null)\n");
        assert_eq!(q[&"12_0".parse().unwrap()].comment, "prunus:a");
        assert!(q[&"12_0".parse().unwrap()].running());
        assert_eq!(q[&"12_1".parse().unwrap()].reason, "Resources");
    }

    #[test]
    fn scontrol_records_and_pending_ranges() {
        let text = "JobId=14 ArrayJobId=12 ArrayTaskId=2 JobState=TIMEOUT Reason=TimeLimit \
                    ExitCode=0:15 RunTime=00:01:03 TimeLimit=00:01:00\n\
                    JobId=12 ArrayJobId=12 ArrayTaskId=3-5%2 JobState=PENDING Reason=None \
                    ExitCode=0:0 RunTime=00:00:00 TimeLimit=UNLIMITED\n";
        let s = parse_scontrol(text);
        let t = &s[&"12_2".parse().unwrap()];
        assert_eq!(
            (t.state.as_str(), t.signal, t.run_s, t.limit_s),
            ("TIMEOUT", Some(15), Some(63), Some(60))
        );
        assert!(t.is_final());
        assert!(!s[&"12_5".parse().unwrap()].is_final());
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn sacct_lines() {
        let s = parse_sacct(
            "7_1|CANCELLED by 0|0:15|00:00:09|1-00:00:00|None\n7_0|OUT_OF_MEMORY|0:125|00:01:00|UNLIMITED|None\n",
        );
        assert_eq!(s[&"7_1".parse().unwrap()].state, "CANCELLED");
        assert_eq!(s[&"7_1".parse().unwrap()].limit_s, Some(86400));
        assert_eq!(s[&"7_0".parse().unwrap()].limit_s, None);
    }
}
