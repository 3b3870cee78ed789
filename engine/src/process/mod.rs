//! A stage's program as a process tree that does not outlive its stage. The program runs in
//! its own process group (a terminal's Ctrl-C reaches prunus alone, which decides), and what
//! is left of that group is ended:
//!
//! - when the program exits: background children (`sleep 60 &`) get SIGTERM, then SIGKILL;
//! - when the stage is cancelled (Ctrl-C): the same, with time to checkpoint;
//! - when prunus dies, even of SIGKILL: the program gets SIGKILL as a parent-death signal,
//!   and a [`lifeline`] watcher process SIGKILLs the whole group.
//!
//! On Linux, descendants that left the group (`setsid`, double-forking daemons) carry the
//! stage's [`TOKEN_VAR`] in their environment and are ended with the stage too, while prunus
//! lives; one that also drops that variable, or outlives a SIGKILLed prunus outside the
//! group, is beyond reach without cgroups.

#[cfg(target_os = "linux")]
mod escaped;
mod lifeline;
pub(crate) mod output;

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lifeline::Lifeline;

/// Marks every process of one stage (inherited by its descendants).
pub(crate) const TOKEN_VAR: &str = "PRUNUS_STAGE_TOKEN";

/// A running stage program and its process group.
pub(crate) struct Group {
    child: Child,
    pgid: libc::pid_t,
    token: String,
    status: Option<ExitStatus>,
    lifeline: Option<Lifeline>,
}

impl Group {
    /// Starts `cmd` as the leader of a new process group that dies with prunus.
    pub fn spawn(cmd: &mut Command) -> io::Result<Group> {
        let token = new_token();
        let lifeline = Lifeline::start()?;
        cmd.process_group(0).env(TOKEN_VAR, &token);
        die_with_parent(cmd);
        let child = cmd.spawn()?;
        let pgid = child.id() as libc::pid_t;
        lifeline.arm(pgid)?;
        Ok(Group {
            child,
            pgid,
            token,
            status: None,
            lifeline: Some(lifeline),
        })
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The program's exit status once it has exited (its group may live on).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
        }
        Ok(self.status)
    }

    /// Ends whatever is left of the group (and, on Linux, of the stage's escaped
    /// descendants): SIGTERM, up to `grace` for all of it to exit, then SIGKILL. `wait`
    /// passes some of that time (reading the program's output, so that it cannot block on a
    /// full pipe while it checkpoints).
    pub fn end(&mut self, grace: Duration, mut wait: impl FnMut()) {
        if self.lifeline.is_none() {
            return;
        }
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            let exited = matches!(self.try_wait(), Ok(Some(_)) | Err(_));
            if exited && !self.anything_left() {
                break;
            }
            wait();
        }
        self.signal(libc::SIGKILL);
        if self.status.is_none() {
            self.status = self.child.wait().ok();
        }
        if let Some(lifeline) = self.lifeline.take() {
            lifeline.disarm();
        }
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) with a negative pid signals the group this program leads.
        unsafe { libc::kill(-self.pgid, sig) };
        #[cfg(target_os = "linux")]
        escaped::signal(&self.token, sig);
    }

    /// Whether a process of the group (or an escaped descendant) still exists.
    fn anything_left(&self) -> bool {
        // SAFETY: signal 0 only checks that the group has a member.
        let group = unsafe { libc::kill(-self.pgid, 0) } == 0;
        #[cfg(target_os = "linux")]
        let group = group || escaped::any(&self.token);
        group
    }
}

impl Drop for Group {
    /// A group dropped early (an error, a panic) is killed at once.
    fn drop(&mut self) {
        self.end(Duration::ZERO, || {});
    }
}

/// A token no other stage of any prunus process shares.
fn new_token() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// On Linux, the program gets SIGKILL when the thread that started it (the stage's, which
/// waits for it) dies, so it cannot outlive prunus; if prunus died before that was set up,
/// it does not start.
fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: prctl and getppid are async-signal-safe; no allocation happens here.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}
