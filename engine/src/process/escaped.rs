//! A stage's descendants that left its process group (`setsid`, daemons), found in `/proc`
//! by the stage token in their environment (readable for this user's own processes).

use std::path::Path;

/// Sends `sig` to every process whose environment has `TOKEN_VAR=token`.
pub(super) fn signal(token: &str, sig: libc::c_int) {
    for pid in carrying(token) {
        // SAFETY: kill(2) on a process id just read from /proc.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Whether a process (not a zombie) still carries `token`.
pub(super) fn any(token: &str) -> bool {
    carrying(token).next().is_some()
}

fn carrying(token: &str) -> impl Iterator<Item = libc::pid_t> {
    let needle = format!("{}={token}", super::TOKEN_VAR).into_bytes();
    let me = std::process::id() as libc::pid_t;
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(move |&pid| {
            pid != me && has_var(&Path::new("/proc").join(pid.to_string()), &needle)
        })
}

/// Whether the live process at `dir` has the environment entry `needle` (zombies have an
/// empty environment).
fn has_var(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read(dir.join("environ"))
        .is_ok_and(|env| env.split(|&b| b == 0).any(|entry| entry == needle))
}
