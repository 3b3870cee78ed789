//! `command`: runs an external program as a stage, DVC-style, so users plug their own
//! scripts into a pipeline and still get caching, sweeps and sharing.
//!
//! ```kdl
//! stage plot {
//!     kind "command"
//!     needs iqm
//!     run "python3" "plot.py" "--style" "paper"   // argv; "{axis}" takes the axis value
//!     deps "plot.py"                              // file contents go into the cache key
//!     outputs "plot.png"                          // must exist in $PRUNUS_OUT afterwards
//! }
//! ```
//!
//! The program runs in the pipeline file's directory with `PRUNUS_OUT` (write outputs
//! there), `PRUNUS_SCRATCH` (checkpoints that survive a kill), `PRUNUS_INPUTS` (a JSON file
//! listing upstream instances: stage, instance, axes, outputs -> path), `PRUNUS_AXES` (JSON)
//! and `PRUNUS_AXIS_<NAME>` per axis; a stage with `resources gpus=N` sees only its own GPUs
//! in `CUDA_VISIBLE_DEVICES` (stages may share one: `prunus run --runs-per-gpu`). Its stdout and stderr become the stage log (bytes that
//! are not UTF-8 are shown as U+FFFD); a line `##prunus progress DONE TOTAL` drives the
//! progress bar. Exit status 0 means success.
//!
//! The stage ends when the program exits: whatever it left running (`server &`, a daemon)
//! gets SIGTERM, then SIGKILL a second later. On Ctrl-C the program gets SIGTERM and 3 s to
//! checkpoint before SIGKILL. If prunus dies, even of SIGKILL, the program's process group
//! is killed with it (the engine's `process` module says how, and what is out of reach).
//! `PRUNUS_STAGE_TOKEN` marks the stage's processes; a descendant keeps it to be ended too.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use prunus_stage::{Context, ParamSpec, ParamType, Params, Reporter, StageError, StageKind, Value};

use crate::process::Group;
use crate::process::output::Output;

/// `CUDA_VISIBLE_DEVICES` for a program given GPU ordinals `gpus`: counted within the GPUs
/// this process may see (a batch system may already have narrowed them), else the machine's.
fn visible_devices(gpus: &[usize]) -> String {
    let outer = std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_default();
    let outer: Vec<&str> = outer.split(',').filter(|s| !s.trim().is_empty()).collect();
    let name = |g: usize| outer.get(g).map_or(g.to_string(), |s| s.trim().to_string());
    gpus.iter().map(|&g| name(g)).collect::<Vec<_>>().join(",")
}

/// How often a running program's exit and the cancel flag are checked.
const POLL: Duration = Duration::from_millis(20);
/// A cancelled program's time to checkpoint between SIGTERM and SIGKILL.
const CHECKPOINT_GRACE: Duration = Duration::from_secs(3);
/// What a finished program left running gets between SIGTERM and SIGKILL.
const LEFTOVER_GRACE: Duration = Duration::from_secs(1);
/// How long output still in the pipes is read once the program's processes are gone.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

pub struct Command {
    base_dir: PathBuf,
}

impl Command {
    pub fn new(base_dir: &Path) -> Self {
        Command {
            base_dir: base_dir.to_path_buf(),
        }
    }
}

impl StageKind for Command {
    fn name(&self) -> &'static str {
        "command"
    }

    fn version(&self) -> u32 {
        1
    }

    fn doc(&self) -> &'static str {
        "Runs an external program (`run` is its argv) in the pipeline's directory. It writes \
         the declared `outputs` into $PRUNUS_OUT, reads upstream outputs listed in the JSON \
         file $PRUNUS_INPUTS, and may keep checkpoints in $PRUNUS_SCRATCH. Files named in \
         `deps` (e.g. the script) are hashed into the cache key, so editing them reruns it. \
         The stage ends when the program exits: what it left running is stopped. On Ctrl-C \
         it gets SIGTERM and 3 s to checkpoint, then SIGKILL."
    }

    /// An arbitrary program may be nondeterministic; downstream keys use this stage's key.
    fn deterministic(&self, _params: &Params) -> bool {
        false
    }

    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::new(
                "run",
                ParamType::StrList,
                None,
                "the program and its arguments",
            ),
            ParamSpec::new(
                "outputs",
                ParamType::StrList,
                Some(Value::List(vec![])),
                "output file names the program writes into $PRUNUS_OUT",
            ),
            ParamSpec::new(
                "deps",
                ParamType::Paths,
                Some(Value::List(vec![])),
                "files (relative to the pipeline) whose contents are part of the key",
            ),
        ]
    }

    fn outputs(&self, params: &Params) -> Vec<String> {
        params.strs("outputs").unwrap_or_default()
    }

    fn validate(&self, params: &Params) -> Result<(), StageError> {
        argv(params).map(drop)
    }

    fn run(&self, ctx: &Context) -> Result<(), StageError> {
        let argv = argv(&ctx.params)?;
        let (program, args) = argv.split_first().expect("argv checks it is not empty");
        let program = if program.contains('/') {
            self.base_dir.join(program)
        } else {
            PathBuf::from(program)
        };
        let inputs: Vec<serde_json::Value> = ctx
            .inputs
            .iter()
            .map(|i| {
                serde_json::json!({
                    "stage": i.stage, "instance": i.instance, "axes": i.axes, "outputs": i.outputs,
                })
            })
            .collect();
        let inputs_file = ctx.scratch.join("prunus-inputs.json");
        std::fs::write(
            &inputs_file,
            serde_json::to_vec_pretty(&inputs).map_err(StageError::failed)?,
        )?;
        let mut cmd = std::process::Command::new(&program);
        cmd.args(args)
            .current_dir(if self.base_dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                &self.base_dir
            })
            .env("PRUNUS_OUT", &ctx.out_dir)
            .env("PRUNUS_SCRATCH", &ctx.scratch)
            .env("PRUNUS_INPUTS", &inputs_file)
            .env(
                "PRUNUS_AXES",
                serde_json::to_string(&ctx.axes).map_err(StageError::failed)?,
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !ctx.gpus.is_empty() {
            cmd.env("CUDA_VISIBLE_DEVICES", visible_devices(&ctx.gpus));
        }
        for (k, v) in &ctx.axes {
            cmd.env(
                format!("PRUNUS_AXIS_{}", k.to_uppercase().replace('-', "_")),
                v.to_string(),
            );
        }
        let mut group = Group::spawn(&mut cmd).map_err(|e| {
            StageError::Failed(format!(
                "cannot start `{}`: {e} (is it installed and on PATH, or a path relative to the pipeline file?)",
                program.display()
            ))
        })?;
        let child = group.child();
        let streams = [
            child.stdout.take().map(OwnedFd::from),
            child.stderr.take().map(OwnedFd::from),
        ];
        let mut output = Output::new(streams.into_iter().flatten());
        let reporter = ctx.reporter.clone();
        let mut line = |line: &str| forward(line, reporter.as_ref());
        let status = loop {
            output.pump(POLL, &mut line)?;
            if let Some(status) = group.try_wait()? {
                break status;
            }
            if ctx.cancelled() {
                group.end(CHECKPOINT_GRACE, || {
                    let _ = output.pump(POLL, &mut line);
                });
                output.drain(DRAIN_GRACE, &mut line);
                return Err(StageError::Cancelled);
            }
        };
        // The stage ends with its program: what it left running is stopped.
        group.end(LEFTOVER_GRACE, || {
            let _ = output.pump(POLL, &mut line);
        });
        output.drain(DRAIN_GRACE, &mut line);
        if status.success() {
            Ok(())
        } else {
            Err(StageError::Failed(format!(
                "`{}` exited with {status}",
                argv.join(" ")
            )))
        }
    }
}

/// The program and its arguments (`run`): a program name must come first.
fn argv(params: &Params) -> Result<Vec<String>, StageError> {
    let argv = params.strs("run")?;
    if argv.first().is_none_or(|p| p.trim().is_empty()) {
        return Err(StageError::Param {
            key: "run".into(),
            message: "names no program; give the program and its arguments, e.g. run \"python3\" \"plot.py\"".into(),
        });
    }
    Ok(argv)
}

/// A program's output line goes to the stage log; `##prunus progress D T` lines to progress.
fn forward(line: &str, reporter: &dyn Reporter) {
    let progress = line.strip_prefix("##prunus progress ").and_then(|rest| {
        let mut it = rest.split_whitespace().map(|x| x.parse::<u64>());
        match (it.next(), it.next()) {
            (Some(Ok(d)), Some(Ok(t))) => Some((d, t)),
            _ => None,
        }
    });
    match progress {
        Some((done, total)) => reporter.progress(done, total, "steps"),
        None => reporter.log(line),
    }
}
