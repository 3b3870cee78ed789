//! A watcher process that SIGKILLs a stage's process group when prunus dies, even of SIGKILL,
//! which no handler in prunus can catch. prunus holds the write end of a pipe to it; the
//! kernel closes that end whatever way prunus ends, and the watcher, reading the other,
//! wakes. When the stage ends normally prunus first writes a byte: the watcher leaves the
//! group alone (its id might be reused by then) and exits.
//!
//! The watcher is forked, not executed, so in it only async-signal-safe calls are made (this
//! process has other threads). It closes every other descriptor first, so it holds no other
//! stage's pipe open, and leaves prunus's process group, so signals to prunus's job do not
//! take it down with prunus.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub(super) struct Lifeline {
    write: Option<OwnedFd>,
    pid: libc::pid_t,
}

impl Lifeline {
    /// Forks the watcher; [`Lifeline::arm`] tells it the group to guard.
    pub fn start() -> io::Result<Lifeline> {
        let (read, write) = pipe()?;
        let max_fd = open_max();
        // SAFETY: the child runs only `watch`, which makes async-signal-safe calls and exits.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => unsafe { watch(read.as_raw_fd(), max_fd) },
            pid => Ok(Lifeline {
                write: Some(write),
                pid,
            }),
        }
    }

    /// From now on, prunus dying kills process group `pgid`.
    pub fn arm(&self, pgid: libc::pid_t) -> io::Result<()> {
        self.send(&pgid.to_ne_bytes())
    }

    /// The group has ended: the watcher exits without touching it.
    pub fn disarm(self) {
        let _ = self.send(b"x");
    }

    fn send(&self, bytes: &[u8]) -> io::Result<()> {
        let fd = self.write.as_ref().expect("open until dropped").as_raw_fd();
        // SAFETY: writing a live buffer to our own pipe; a pipe takes up to PIPE_BUF bytes
        // at once.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n == bytes.len() as isize {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

impl Drop for Lifeline {
    /// Closes the pipe (an armed watcher then kills the group) and reaps the watcher.
    fn drop(&mut self) {
        drop(self.write.take());
        // SAFETY: waiting for our own child, which exits as soon as its pipe is closed.
        unsafe {
            while libc::waitpid(self.pid, std::ptr::null_mut(), 0) == -1
                && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
            {}
        }
    }
}

/// The watcher: waits for the group id, then for a byte (the stage ended: exit) or the end of
/// the pipe (prunus died: kill the group).
///
/// # Safety
/// Only in the child of `fork`, with `fd` the pipe's read end.
unsafe fn watch(fd: libc::c_int, max_fd: libc::c_int) -> ! {
    unsafe {
        libc::setpgid(0, 0);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::signal(sig, libc::SIG_IGN);
        }
        close_all_but(fd, max_fd);
        let mut pgid = [0u8; 4];
        let mut got = 0;
        while got < pgid.len() {
            match read(fd, &mut pgid[got..]) {
                n if n > 0 => got += n as usize,
                _ => libc::_exit(0),
            }
        }
        let mut byte = [0u8; 1];
        if read(fd, &mut byte) == 0 {
            libc::kill(-libc::pid_t::from_ne_bytes(pgid), libc::SIGKILL);
        }
        libc::_exit(0)
    }
}

/// read(2), retried on EINTR.
unsafe fn read(fd: libc::c_int, buf: &mut [u8]) -> isize {
    loop {
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return n;
        }
    }
}

/// Closes every descriptor but `keep` (close_range where the kernel has it).
unsafe fn close_all_but(keep: libc::c_int, max_fd: libc::c_int) {
    #[cfg(target_os = "linux")]
    unsafe {
        let below = keep == 0 || libc::syscall(libc::SYS_close_range, 0, keep - 1, 0) == 0;
        if below && libc::syscall(libc::SYS_close_range, keep + 1, libc::c_uint::MAX, 0) == 0 {
            return;
        }
    }
    for fd in (0..max_fd).filter(|&fd| fd != keep) {
        unsafe { libc::close(fd) };
    }
}

/// The highest descriptor number to close without close_range (bounded: a huge limit would
/// make the loop slow).
fn open_max() -> libc::c_int {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
    n.clamp(256, 65_536) as libc::c_int
}

/// A pipe whose ends are closed on exec (no stage program inherits them).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills `fds` with two new descriptors that we then own. On Linux they
    // are close-on-exec from the start, so a program another thread starts meanwhile cannot
    // inherit them.
    unsafe {
        #[cfg(target_os = "linux")]
        let r = libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC);
        #[cfg(not(target_os = "linux"))]
        let r = libc::pipe(fds.as_mut_ptr());
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        #[cfg(not(target_os = "linux"))]
        for fd in fds {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
        Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])))
    }
}
