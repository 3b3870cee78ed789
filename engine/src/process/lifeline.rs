//! A watcher process that SIGKILLs a stage's process group when prunus dies, even of SIGKILL,
//! which no handler in prunus can catch. prunus holds one end of a socket pair to it; the
//! kernel closes that end whatever way prunus ends, and the watcher, reading the other,
//! wakes. When the stage ends normally prunus first sends a byte: the watcher leaves the
//! group alone (its id might be reused by then) and exits. (A socket, not a pipe: sending
//! to a watcher that was killed must fail, not raise SIGPIPE in prunus.)
//!
//! The watcher is forked, not executed, so in it only async-signal-safe calls are made (this
//! process has other threads). It closes every other descriptor first, so it holds no other
//! stage's pipe open, and leaves prunus's process group, so signals to prunus's job do not
//! take it down with prunus.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

pub(super) struct Lifeline {
    write: Option<UnixStream>,
    pid: libc::pid_t,
}

impl Lifeline {
    /// Forks the watcher; [`Lifeline::arm`] tells it the group to guard.
    pub fn start() -> io::Result<Lifeline> {
        // Close-on-exec from the start: no stage program started meanwhile inherits them.
        let (read, write) = UnixStream::pair()?;
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
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        let flags = libc::MSG_NOSIGNAL;
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
        let flags = 0;
        // SAFETY: sending a few bytes of a live buffer on our own socket (they fit its buffer).
        let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), flags) };
        if n == bytes.len() as isize {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

impl Drop for Lifeline {
    /// Closes the socket (an armed watcher then kills the group) and reaps the watcher.
    fn drop(&mut self) {
        drop(self.write.take());
        // SAFETY: waiting for our own child, which exits as soon as its socket is closed.
        unsafe {
            while libc::waitpid(self.pid, std::ptr::null_mut(), 0) == -1
                && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
            {}
        }
    }
}

/// The watcher: waits for the group id, then for a byte (the stage ended: exit) or the end of
/// the socket (prunus died: kill the group).
///
/// # Safety
/// Only in the child of `fork`, with `fd` its end of the socket pair.
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
