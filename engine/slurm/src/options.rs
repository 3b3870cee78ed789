//! What a Slurm run asks the cluster for beyond each instance's `resources`: partition,
//! account, QoS, a default time limit, extra sbatch flags, and how the jobs find prunus. Set
//! (in increasing precedence) by the user's config, the pipeline's `executor "slurm"` block and
//! the command line, each through [`SlurmOptions::set`].

use std::path::PathBuf;
use std::time::Duration;

/// Settings of the Slurm executor.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// `--time` for instances whose `resources` set no `time`.
    pub time_s: Option<u64>,
    /// Passed to sbatch as they are (`--constraint=a100`, `--exclusive`).
    pub sbatch_args: Vec<String>,
    /// The prunus the jobs run: it must be visible on the nodes (default: this binary).
    pub prunus: PathBuf,
    /// Slurm sends SIGTERM this long before the time limit (`--signal=B:TERM@N`), so a
    /// training stage checkpoints before it is killed. Default: 2 minutes, at most half the
    /// limit; set, it leaves the job at least 10 s.
    pub signal_before_s: Option<u64>,
    /// How often the coordinator asks Slurm how its jobs are doing.
    pub poll: Duration,
    /// How often a job prints its progress line (the coordinator's bars read them).
    pub progress_interval_s: u64,
    /// The largest array one sbatch call submits (Slurm's MaxArraySize is 1001 by default).
    pub max_array: usize,
    /// For nodes that do not see the store: each job uses a store of its own at this path on
    /// its node (expanded by the node's shell, e.g. `$TMPDIR/prunus`) and moves its inputs and
    /// result through the run's remote (`--remote`). `None`: the nodes see the store.
    pub node_store: Option<String>,
    /// Where such a job's Slurm log goes on its node (Slurm's `%A`, `%a` patterns).
    pub node_log: String,
}

impl Default for SlurmOptions {
    fn default() -> Self {
        SlurmOptions {
            partition: None,
            account: None,
            qos: None,
            time_s: None,
            sbatch_args: Vec::new(),
            prunus: std::env::current_exe().unwrap_or_else(|_| "prunus".into()),
            signal_before_s: None,
            poll: Duration::from_millis(500),
            progress_interval_s: 10,
            max_array: 1000,
            node_store: None,
            node_log: "/tmp/prunus-slurm-%A_%a.log".into(),
        }
    }
}

/// The settings [`SlurmOptions::set`] knows, for error messages.
pub const SETTINGS: &str = "partition, account, qos, time, sbatch, prunus, signal-before, poll, \
     progress-interval, node-store, node-log";

impl SlurmOptions {
    /// How long before a time limit of `limit_s` the warning signal comes (0: none).
    pub fn warning_s(&self, limit_s: u64) -> u64 {
        match self.signal_before_s {
            None => (limit_s / 2).min(120),
            Some(s) => s.min(limit_s.saturating_sub(10)),
        }
    }

    /// Applies one setting as the config, a pipeline or the CLI writes it (`partition "gpu"`,
    /// `sbatch "--exclusive" "--constraint=a100"`, `time "24h"`).
    pub fn set(&mut self, key: &str, values: &[String]) -> Result<(), String> {
        let one = || match values {
            [v] => Ok(v.clone()),
            _ => Err(format!("`{key}` takes one value, e.g. {}", example(key))),
        };
        let secs = |v: String| {
            prunus_engine::lower::parse_duration(&v).ok_or(format!(
                "cannot read `{key} {v:?}` as a duration; write e.g. {}",
                example(key)
            ))
        };
        match key {
            "partition" => self.partition = Some(one()?),
            "account" => self.account = Some(one()?),
            "qos" => self.qos = Some(one()?),
            "time" => self.time_s = Some(secs(one()?)?),
            "sbatch" => self.sbatch_args.extend(values.iter().cloned()),
            "prunus" => self.prunus = PathBuf::from(one()?),
            "signal-before" => self.signal_before_s = Some(secs(one()?)?),
            "poll" => self.poll = Duration::from_secs(secs(one()?)?),
            "progress-interval" => self.progress_interval_s = secs(one()?)?,
            "node-store" => self.node_store = Some(one()?),
            "node-log" => self.node_log = one()?,
            _ => return Err(format!("unknown Slurm setting `{key}` (known: {SETTINGS})")),
        }
        Ok(())
    }
}

fn example(key: &str) -> &'static str {
    match key {
        "time" => "time \"24h\" or time \"1-00:00:00\"",
        "signal-before" => "signal-before \"2m\"",
        "poll" | "progress-interval" => "poll \"5s\"",
        "prunus" => "prunus \"/shared/bin/prunus\"",
        "node-store" => "node-store \"$TMPDIR/prunus\"",
        "node-log" => "node-log \"/tmp/prunus-%A_%a.log\"",
        _ => "partition \"gpu\"",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_durations() {
        let mut o = SlurmOptions::default();
        o.set("time", &["1-12:00:00".into()]).unwrap();
        assert_eq!(o.time_s, Some(36 * 3600));
        o.set("time", &["90m".into()]).unwrap();
        assert_eq!(o.time_s, Some(5400));
        o.set("sbatch", &["--a".into(), "--b".into()]).unwrap();
        assert_eq!(o.sbatch_args, ["--a", "--b"]);
        assert!(
            o.set("time", &["soon".into()])
                .unwrap_err()
                .contains("duration")
        );
        assert!(
            o.set("partitoin", &["x".into()])
                .unwrap_err()
                .contains("unknown Slurm setting")
        );
        assert!(o.set("partition", &[]).unwrap_err().contains("one value"));
        // The warning signal: 2 min by default, at most half the limit; set, at least 10 s left.
        assert_eq!((o.warning_s(3600), o.warning_s(60)), (120, 30));
        o.set("signal-before", &["50s".into()]).unwrap();
        assert_eq!((o.warning_s(60), o.warning_s(30)), (50, 20));
    }
}
