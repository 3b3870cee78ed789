//! Why a task ended without a result, in words: its Slurm state (TIMEOUT, OUT_OF_MEMORY,
//! NODE_FAIL, CANCELLED, PREEMPTED, an exit code), what `prunus exec` said in its exit file,
//! and what to do about it.

use crate::state::{Ended, TaskId};

/// The failure message of task `id`, which ended as `ended` (where Slurm still knows) and
/// left `exit` (`prunus exec`'s code and last line), if it could write it.
pub fn failure(
    id: &TaskId,
    ended: Option<&Ended>,
    exit: Option<(i32, String)>,
    warn_s: u64,
) -> String {
    let said = exit
        .as_ref()
        .map(|(_, m)| format!(" ({m})"))
        .unwrap_or_default();
    let Some(e) = ended else {
        return match exit {
            Some((code, msg)) => format!("Slurm job {id} exited with code {code}: {msg}"),
            None => format!(
                "Slurm job {id} is gone and left no exit code (killed before prunus could record \
                 how it ended; its log may say why); the next run submits it again"
            ),
        };
    };
    let resumes = "the next run resubmits it, and a training stage resumes from its checkpoint";
    let limit = e
        .limit_s
        .map(crate::sbatch::slurm_time)
        .unwrap_or_else(|| "?".into());
    match e.state.as_str() {
        "TIMEOUT" => format!(
            "Slurm job {id} TIMEOUT: it ran past its time limit {limit}; {resumes} \
             (or raise `resources time=`)"
        ),
        "FAILED" if interrupted_near_limit(e, &exit, warn_s) => format!(
            "Slurm job {id} TIMEOUT: stopped by Slurm's warning signal {warn_s} s before its \
             time limit {limit}, after checkpointing; {resumes} (or raise `resources time=`)"
        ),
        "OUT_OF_MEMORY" => format!(
            "Slurm job {id} OUT_OF_MEMORY: it used more memory than it asked for (--mem); raise \
             `resources memory=`"
        ),
        "NODE_FAIL" | "BOOT_FAIL" => {
            format!("Slurm job {id} {}: its node failed; {resumes}", e.state)
        }
        "CANCELLED" => {
            format!("Slurm job {id} CANCELLED (scancel, or an administrator){said}; {resumes}")
        }
        "PREEMPTED" => format!("Slurm job {id} PREEMPTED and not requeued{said}; {resumes}"),
        "DEADLINE" => {
            format!("Slurm job {id} DEADLINE: it could not finish before its deadline; {resumes}")
        }
        state => {
            let code = e.exit_code.map_or("?".into(), |c| c.to_string());
            let signal = e
                .signal
                .filter(|&s| s != 0)
                .map(|s| format!(", signal {s}"))
                .unwrap_or_default();
            let reason = match e.reason.as_str() {
                "" | "None" | "NonZeroExitCode" => String::new(),
                r => format!(", reason {r}"),
            };
            format!("Slurm job {id} {state} (exit code {code}{signal}{reason}){said}")
        }
    }
}

/// `prunus exec` ended on a SIGTERM (exit 130) within the warning time of the time limit.
fn interrupted_near_limit(e: &Ended, exit: &Option<(i32, String)>, warn_s: u64) -> bool {
    let interrupted = e.exit_code == Some(130) || exit.as_ref().is_some_and(|(c, _)| *c == 130);
    match (e.run_s, e.limit_s) {
        (Some(run), Some(limit)) => interrupted && run + warn_s + 15 >= limit,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_in_words() {
        let id: TaskId = "9_1".parse().unwrap();
        let e = |state: &str, code, run, limit| Ended {
            state: state.into(),
            exit_code: Some(code),
            run_s: Some(run),
            limit_s: Some(limit),
            ..Ended::default()
        };
        let t = failure(&id, Some(&e("TIMEOUT", 0, 60, 60)), None, 10);
        assert!(t.contains("9_1 TIMEOUT") && t.contains("0-00:01:00"), "{t}");
        let w = failure(&id, Some(&e("FAILED", 130, 50, 60)), None, 10);
        assert!(
            w.contains("TIMEOUT: stopped by Slurm's warning signal"),
            "{w}"
        );
        let f = failure(
            &id,
            Some(&e("FAILED", 1, 5, 60)),
            Some((1, "✗ x failed".into())),
            10,
        );
        assert!(f.contains("FAILED (exit code 1) (✗ x failed)"), "{f}");
        assert!(failure(&id, Some(&e("OUT_OF_MEMORY", 0, 1, 9)), None, 0).contains("memory="));
        assert!(failure(&id, None, None, 0).contains("left no exit code"));
    }
}
