//! Submitting: the sbatch flags for one array of instances that need the same resources, the
//! batch script every task of it runs (`prunus exec` of its line of the array's job list), and
//! sbatch's refusals turned into messages that say what to change.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use prunus_stage::Resources;

use crate::options::SlurmOptions;

/// The sbatch flags of an array of `tasks` tasks of `stage`, each needing `r`; its log goes to
/// `log` (with Slurm's `%A_%a`).
pub fn flags(
    opts: &SlurmOptions,
    stage: &str,
    r: &Resources,
    tasks: usize,
    log: &Path,
) -> Vec<String> {
    let mut f = vec![
        "--parsable".to_string(),
        format!("--job-name=prunus:{stage}"),
        format!("--array=0-{}", tasks - 1),
        format!("--output={}", log.display()),
        // A requeued task (preempted, `scontrol requeue`) keeps its first attempt's lines.
        "--open-mode=append".into(),
        "--requeue".into(),
        format!("--cpus-per-task={}", r.cpus.max(1)),
    ];
    if r.memory_mb > 0 {
        f.push(format!("--mem={}M", r.memory_mb));
    }
    if r.gpus > 0 {
        f.push(format!("--gres=gpu:{}", r.gpus));
    }
    if let Some(t) = r.time_s.or(opts.time_s) {
        f.push(format!("--time={}", slurm_time(t)));
        let warn = opts.warning_s(t);
        if warn > 0 {
            f.push(format!("--signal=B:TERM@{warn}"));
        }
    }
    for (flag, v) in [
        ("partition", &opts.partition),
        ("account", &opts.account),
        ("qos", &opts.qos),
    ] {
        if let Some(v) = v {
            f.push(format!("--{flag}={v}"));
        }
    }
    f.extend(opts.sbatch_args.iter().cloned());
    f
}

/// Seconds as Slurm writes durations: `D-HH:MM:SS`, rounded up to the minute it counts in.
pub fn slurm_time(secs: u64) -> String {
    let mins = secs.div_ceil(60);
    let (d, h, m) = (mins / 1440, mins / 60 % 24, mins % 60);
    format!("{d}-{h:02}:{m:02}:00")
}

/// The batch script: task N runs the job on line N+1 of `list`, and records how it ended in
/// `exit_dir/<array>_<task>` (read when the cluster keeps no accounting). `exec` makes prunus
/// the batch step itself, so Slurm's SIGTERM (warning, preemption, scancel) reaches it.
pub fn script(opts: &SlurmOptions, store: &Path, list: &Path, exit_dir: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         # prunus: one stage instance per array task\n\
         job=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {list})\n\
         export PRUNUS_PROGRESS_INTERVAL={interval}\n\
         exec {prunus} --store {store} exec --exit-file {exit}/\"${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}\" \"$job\"\n",
        list = quote(&list.display().to_string()),
        interval = opts.progress_interval_s.max(1),
        prunus = quote(&opts.prunus.display().to_string()),
        store = quote(&store.display().to_string()),
        exit = quote(&exit_dir.display().to_string()),
    )
}

/// How the jobs on nodes that do not see the store reach the run's remote: what their
/// command line names (credentials come from the environment sbatch exports, or the node's).
#[derive(Debug, Clone)]
pub struct NodeRemote {
    pub url: String,
    pub endpoint: Option<String>,
}

/// The batch script for nodes that do not see the store: task N runs job N of `jobs` (listed
/// in the script, which is all a node gets) against a store of its own at `node_store`,
/// fetching the job and its inputs from `remote` and pushing the result back.
pub fn node_script(
    opts: &SlurmOptions,
    node_store: &str,
    jobs: &[prunus_store::Digest],
    remote: &NodeRemote,
) -> String {
    let digests: Vec<String> = jobs.iter().map(|d| d.to_string()).collect();
    let endpoint = remote
        .endpoint
        .as_ref()
        .map_or(String::new(), |e| format!(" --endpoint {}", quote(e)));
    format!(
        "#!/bin/sh\n\
         # prunus: one stage instance per array task, on a node with a store of its own\n\
         set -- {digests}\n\
         shift \"$SLURM_ARRAY_TASK_ID\"\n\
         export PRUNUS_PROGRESS_INTERVAL={interval}\n\
         exec {prunus} --store {store} exec --remote {url}{endpoint} \"$1\"\n",
        digests = digests.join(" "),
        interval = opts.progress_interval_s.max(1),
        prunus = quote(&opts.prunus.display().to_string()),
        store = dquote(node_store),
        url = quote(&remote.url),
    )
}

/// Double-quotes `s` for sh, leaving `$VAR` to the node's shell.
fn dquote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '`') {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// Single-quotes `s` for sh.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs sbatch with `flags` and `script` on stdin, and `env` added to the environment it
/// exports to the jobs; the array's job id.
pub fn submit(flags: &[String], script: &str, env: &[(&str, &str)]) -> Result<String, String> {
    let mut child = Command::new("sbatch")
        .args(flags)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| not_runnable("sbatch", &e))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())
        .map_err(|e| format!("writing the batch script to sbatch: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("sbatch: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(refused(String::from_utf8_lossy(&out.stderr).trim(), flags));
    }
    // `--parsable`: `JOBID` or `JOBID;CLUSTER`.
    let id = stdout.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("sbatch printed no job id (it printed {stdout:?})"));
    }
    Ok(id)
}

/// Why a Slurm command could not start, and how to fix it.
pub fn not_runnable(cmd: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        format!(
            "`{cmd}` is not on PATH: run prunus on a Slurm login node (or load Slurm's commands, \
             e.g. `module load slurm`), or run with --executor local"
        )
    } else {
        format!("cannot run `{cmd}`: {e}")
    }
}

/// sbatch's refusal with a hint at the setting that causes it.
fn refused(stderr: &str, flags: &[String]) -> String {
    let lower = stderr.to_ascii_lowercase();
    let hint = if lower.contains("partition") {
        "check the partition (`partition` in the executor block or config, --partition; `sinfo -s` lists them)"
    } else if lower.contains("account") {
        "check the account (`account`, --account; `sacctmgr show assoc user=$USER` lists yours)"
    } else if lower.contains("qos") {
        "check the QoS (`qos`, --qos; `sacctmgr show qos` lists them)"
    } else if lower.contains("time limit") {
        "lower `resources time=` or `time` to what the partition allows (`sinfo -o %P,%l`)"
    } else if lower.contains("node configuration is not available") || lower.contains("gres") {
        "no node offers these resources: lower `resources cpus=`/`memory=`/`gpus=`, or choose a partition that has them"
    } else {
        "fix the setting it names (sbatch flags come from `resources`, the executor block, the config and the command line)"
    };
    format!(
        "sbatch refused the job ({}): {stderr}; {hint}",
        flags[1..].join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_become_sbatch_flags() {
        let opts = SlurmOptions {
            partition: Some("gpu".into()),
            sbatch_args: vec!["--exclusive".into()],
            ..SlurmOptions::default()
        };
        let r = Resources {
            cpus: 2,
            gpus: 1,
            memory_mb: 16384,
            time_s: Some(3600),
        };
        let f = flags(&opts, "train", &r, 3, Path::new("/s/%A_%a.log"));
        for want in [
            "--array=0-2",
            "--cpus-per-task=2",
            "--mem=16384M",
            "--gres=gpu:1",
            "--time=0-01:00:00",
            "--signal=B:TERM@120",
            "--partition=gpu",
            "--exclusive",
        ] {
            assert!(f.iter().any(|x| x == want), "{want} not in {f:?}");
        }
        assert_eq!(slurm_time(61), "0-00:02:00");
        assert_eq!(slurm_time(90_000), "1-01:00:00");
    }

    #[test]
    fn the_script_quotes_its_paths() {
        let opts = SlurmOptions {
            prunus: "/o'k/prunus".into(),
            ..SlurmOptions::default()
        };
        let s = script(&opts, Path::new("/st"), Path::new("/l"), Path::new("/x"));
        assert!(
            s.contains("exec '/o'\\''k/prunus' --store '/st' exec"),
            "{s}"
        );
        let remote = NodeRemote {
            url: "s3://b/p".into(),
            endpoint: Some("http://h:9".into()),
        };
        let d = prunus_store::Digest::of(b"job");
        let s = node_script(&opts, "$TMPDIR/a \"b\"", &[d, d], &remote);
        assert!(s.contains(&format!("set -- {d} {d}\n")), "{s}");
        assert!(
            s.contains(
                "--store \"$TMPDIR/a \\\"b\\\"\" exec --remote 's3://b/p' --endpoint 'http://h:9' \"$1\""
            ),
            "{s}"
        );
    }
}
