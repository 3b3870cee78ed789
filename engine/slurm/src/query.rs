//! Asking Slurm about our tasks: one `squeue` per poll for everything still queued; for
//! tasks that left the queue, `sacct` where the cluster keeps accounting, else
//! `scontrol show job` (the controller remembers finished jobs for `MinJobAge`).

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use crate::sbatch::not_runnable;
use crate::state::{self, Ended, Queued, TaskId};

/// How to learn how finished tasks ended; remembers whether sacct works here.
pub struct Query {
    sacct: bool,
}

impl Default for Query {
    fn default() -> Self {
        Query { sacct: true }
    }
}

impl Query {
    /// This user's queued and running tasks.
    pub fn queue(&self) -> Result<HashMap<TaskId, Queued>, String> {
        let out = run("squeue", &["--me", "-h", "-r", "-o", "%i|%T|%r|%k"])?;
        Ok(state::parse_squeue(&out))
    }

    /// How each of `tasks` (no longer queued) ended, where Slurm still knows.
    pub fn ended(&mut self, tasks: &[TaskId]) -> HashMap<TaskId, Ended> {
        let arrays: BTreeSet<&str> = tasks.iter().map(|t| t.array.as_str()).collect();
        let mut found = HashMap::new();
        if self.sacct {
            let ids: Vec<String> = tasks.iter().map(|t| t.to_string()).collect();
            let fields = "JobID,State,ExitCode,Elapsed,Timelimit,Reason";
            match run(
                "sacct",
                &["-n", "-P", "-X", "-o", fields, "-j", &ids.join(",")],
            ) {
                Ok(out) => found = state::parse_sacct(&out),
                // "Slurm accounting storage is disabled", or no slurmdbd: don't ask again.
                Err(_) => self.sacct = false,
            }
        }
        for array in arrays {
            if tasks
                .iter()
                .any(|t| t.array == array && !found.contains_key(t))
            {
                // An unknown (purged) job is an error here: the exit file answers then.
                if let Ok(out) = run("scontrol", &["show", "job", "-o", array]) {
                    for (id, e) in state::parse_scontrol(&out) {
                        found.entry(id).or_insert(e);
                    }
                }
            }
        }
        found
    }
}

/// Runs a Slurm command; its stdout, or why it failed.
fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| not_runnable(cmd, &e))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{cmd} {}: {}", args.join(" "), err.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
