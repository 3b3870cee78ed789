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
//! and `PRUNUS_AXIS_<NAME>` per axis. Its stdout and stderr become the stage log; a line
//! `##prunus progress DONE TOTAL` drives the progress bar. Exit status 0 means success.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use prunus_stage::{Context, ParamSpec, ParamType, Params, Reporter, StageError, StageKind, Value};

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
         `deps` (e.g. the script) are hashed into the cache key, so editing them reruns it."
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
            .stderr(Stdio::piped())
            // Its own process group: Ctrl-C reaches prunus, which stops the whole group.
            .process_group(0);
        for (k, v) in &ctx.axes {
            cmd.env(
                format!("PRUNUS_AXIS_{}", k.to_uppercase().replace('-', "_")),
                v.to_string(),
            );
        }
        let mut child = cmd.spawn().map_err(|e| {
            StageError::Failed(format!(
                "cannot start `{}`: {e} (is it installed and on PATH, or a path relative to the pipeline file?)",
                program.display()
            ))
        })?;
        let readers = [
            forward(
                child
                    .stdout
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
                ctx.reporter.clone(),
            ),
            forward(
                child
                    .stderr
                    .take()
                    .map(|s| Box::new(s) as Box<dyn Read + Send>),
                ctx.reporter.clone(),
            ),
        ];
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if ctx.cancelled() {
                kill_group(&mut child);
                return Err(StageError::Cancelled);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for r in readers.into_iter().flatten() {
            let _ = r.join();
        }
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

/// Forwards a child's output lines to the stage log; `##prunus progress D T` lines to progress.
fn forward(
    stream: Option<Box<dyn Read + Send>>,
    reporter: Arc<dyn Reporter>,
) -> Option<std::thread::JoinHandle<()>> {
    let stream = stream?;
    Some(std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let progress = line.strip_prefix("##prunus progress ").and_then(|rest| {
                let mut it = rest.split_whitespace().map(|x| x.parse::<u64>());
                match (it.next(), it.next()) {
                    (Some(Ok(d)), Some(Ok(t))) => Some((d, t)),
                    _ => None,
                }
            });
            match progress {
                Some((done, total)) => reporter.progress(done, total, "steps"),
                None => reporter.log(&line),
            }
        }
    }))
}

fn kill_group(child: &mut Child) {
    // SAFETY: kill(2) with a negative pid signals the process group the child leads.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGTERM);
    }
    std::thread::sleep(Duration::from_millis(200));
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
    let _ = child.wait();
}
