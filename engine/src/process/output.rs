//! A program's stdout and stderr, read as lines of bytes. Logs are bytes: a line that is not
//! UTF-8 is kept (lossily, for display) and reading goes on, so the program never blocks on
//! a full pipe or dies of SIGPIPE. One poll(2) loop reads both streams on the stage's own
//! thread, so it can stop at any time, even while an escaped process holds a pipe open.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// A line longer than this is passed on in pieces (a program printing without newlines
/// would otherwise grow the buffer without bound).
const MAX_LINE: usize = 1 << 20;

pub(crate) struct Output {
    streams: Vec<Stream>,
}

struct Stream {
    fd: OwnedFd,
    pending: Vec<u8>,
}

impl Output {
    pub fn new(fds: impl IntoIterator<Item = OwnedFd>) -> Output {
        Output {
            streams: fds
                .into_iter()
                .map(|fd| Stream {
                    fd,
                    pending: Vec::new(),
                })
                .collect(),
        }
    }

    /// Waits up to `timeout` for output and passes each complete line to `line`. With both
    /// streams closed (the program is exiting, as a rule) it naps briefly instead, so that
    /// the caller sees the exit soon.
    pub fn pump(&mut self, timeout: Duration, line: &mut dyn FnMut(&str)) -> io::Result<()> {
        if self.streams.is_empty() {
            std::thread::sleep(timeout.min(Duration::from_millis(2)));
            return Ok(());
        }
        let mut fds: Vec<libc::pollfd> = self
            .streams
            .iter()
            .map(|s| libc::pollfd {
                fd: s.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `fds` is a live array of `fds.len()` pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        let mut closed = Vec::new();
        for (k, p) in fds.iter().enumerate() {
            if p.revents != 0 && !self.streams[k].read(line) {
                closed.push(k);
            }
        }
        for k in closed.into_iter().rev() {
            self.streams.remove(k).flush(line);
        }
        Ok(())
    }

    /// Reads on until every writer has closed its end or `grace` has passed, then passes on
    /// what is left and stops reading.
    pub fn drain(mut self, grace: Duration, line: &mut dyn FnMut(&str)) {
        let deadline = Instant::now() + grace;
        while !self.streams.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero()
                || self
                    .pump(left.min(Duration::from_millis(50)), line)
                    .is_err()
            {
                break;
            }
        }
        for s in self.streams {
            s.flush(line);
        }
    }
}

impl Stream {
    /// Reads what is there; false at the end of the stream (or on an error).
    fn read(&mut self, line: &mut dyn FnMut(&str)) -> bool {
        let mut buf = [0u8; 64 * 1024];
        // SAFETY: reading into a live buffer of its length; poll said it will not block.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return io::Error::last_os_error().kind() == io::ErrorKind::Interrupted;
        }
        if n == 0 {
            return false;
        }
        self.pending.extend_from_slice(&buf[..n as usize]);
        let mut start = 0;
        while let Some(end) = self.pending[start..].iter().position(|&b| b == b'\n') {
            emit(&self.pending[start..start + end], line);
            start += end + 1;
        }
        self.pending.drain(..start);
        if self.pending.len() >= MAX_LINE {
            emit(&self.pending, line);
            self.pending.clear();
        }
        true
    }

    /// Passes on a last line that had no newline.
    fn flush(self, line: &mut dyn FnMut(&str)) {
        if !self.pending.is_empty() {
            emit(&self.pending, line);
        }
    }
}

fn emit(bytes: &[u8], line: &mut dyn FnMut(&str)) {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    line(&String::from_utf8_lossy(bytes));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Lines split across reads, a non-UTF-8 line, CRLF and a last line without newline.
    #[test]
    fn lines_are_bytes_split_at_newlines() {
        let (read, mut write) = std::io::pipe().unwrap();
        let mut out = Output::new([OwnedFd::from(read)]);
        let mut lines = Vec::new();
        write.write_all(b"one\r\ntw").unwrap();
        out.pump(Duration::from_secs(1), &mut |l| lines.push(l.to_string()))
            .unwrap();
        write.write_all(b"o\nbad \xff\nlast").unwrap();
        drop(write);
        out.drain(Duration::from_secs(1), &mut |l| lines.push(l.to_string()));
        assert_eq!(lines, ["one", "two", "bad \u{fffd}", "last"]);
    }
}
