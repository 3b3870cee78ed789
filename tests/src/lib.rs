//! End-to-end tests of the `prunus` binary over real pipelines live in `tests/tests/`; this
//! library gives them a scratch project: a directory with pipeline files, its own store, and
//! the release `prunus` binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

pub mod s3;

/// The `prunus` binary of this workspace.
///
/// `cargo test` builds it next to the test executables whenever the engine's own tests are
/// part of the run (the workspace test command, or `cargo test -p prunus -p
/// prunus-tests`); that build is used, so the tests share the workspace's one release build.
/// Only when it is missing is it built here (with cargo, through escargot).
pub fn prunus_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let sibling = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.join("prunus")));
        if let Some(bin) = sibling.filter(|b| b.is_file()) {
            return bin;
        }
        let build = escargot::CargoBuild::new()
            .manifest_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
            .package("prunus")
            .bin("prunus")
            .release()
            .run()
            .expect("building the prunus binary");
        build.path().to_path_buf()
    })
}

/// A throwaway project directory; `prunus` runs in it with the store `.prunus` inside.
pub struct Project {
    pub dir: tempfile::TempDir,
}

/// What a finished `prunus` command printed.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// What a finished command printed.
    pub fn from(o: Output) -> Self {
        Ran {
            // Killed by a signal: 128 + its number, as a shell says.
            code: o.status.code().unwrap_or_else(|| {
                128 + std::os::unix::process::ExitStatusExt::signal(&o.status).unwrap_or(0)
            }),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the command exited 0.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "prunus failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The "N ran, M cached, ..." counts of a `prunus run` summary line.
    pub fn counts(&self) -> (usize, usize, usize) {
        let line = self
            .stderr
            .lines()
            .chain(self.stdout.lines())
            .find(|l| l.contains(" ran, ") && l.contains(" cached, "))
            .unwrap_or_else(|| panic!("no summary in\n{}\n{}", self.stdout, self.stderr));
        let num = |word: &str| -> usize {
            let before = &line[..line.find(word).unwrap()];
            before
                .split_whitespace()
                .last()
                .unwrap()
                .trim_start_matches(':')
                .parse()
                .unwrap()
        };
        (num(" ran"), num(" cached"), num(" failed"))
    }
}

impl Project {
    pub fn new() -> Self {
        Project {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (a pipeline, a script) into the project.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// A `prunus` command in the project directory (not started).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(prunus_bin());
        c.args(args)
            .current_dir(self.path())
            .env_remove("PRUNUS_STORE")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null());
        c
    }

    /// Runs `prunus ARGS` to completion.
    pub fn prunus(&self, args: &[&str]) -> Ran {
        Ran::from(self.command(args).output().expect("running prunus"))
    }

    /// Starts `prunus ARGS` in the background, output captured.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting prunus")
    }
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

/// Waits for a background `prunus` and collects what it printed.
pub fn finish(child: Child) -> Ran {
    Ran::from(child.wait_with_output().expect("waiting for prunus"))
}
