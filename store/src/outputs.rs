//! Output names: the only file names an action result may carry. A manifest is untrusted
//! input (a remote's, or a local file anyone with write access could edit), and its names
//! become paths when outputs are exported or handed to a downstream stage, so a name must
//! stay inside the folder it is written to.

use std::path::{Component, Path, PathBuf};

/// Why `name` is not a plain relative path made of normal components (no absolute paths,
/// `..`, `.`, empty parts, backslashes or NULs), or `Ok` if it is one.
pub fn check_output_name(name: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("output name {name:?} {why}"));
    if name.is_empty() {
        return bad("is empty");
    }
    if name.starts_with('/') {
        return bad("is an absolute path; outputs are named relative to the stage's folder");
    }
    if name.contains(['\\', '\0']) {
        return bad("contains a backslash or NUL");
    }
    for part in name.split('/') {
        match part {
            "" => return bad("has an empty path component (`//` or a trailing `/`)"),
            "." | ".." => return bad("has a `.` or `..` component, which could leave its folder"),
            _ => {}
        }
    }
    Ok(())
}

/// The path of output `name` under `dir`, refusing a name that is not plain and an existing
/// symlink on the way (a planted `sub -> /etc` must not redirect `sub/passwd`): writing to
/// the returned path creates or replaces a file inside `dir` and nowhere else.
pub fn output_path(dir: &Path, name: &str) -> Result<PathBuf, String> {
    check_output_name(name)?;
    let mut path = dir.to_path_buf();
    for part in Path::new(name).components() {
        let Component::Normal(part) = part else {
            unreachable!("check_output_name admits normal components only")
        };
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "{} is a symbolic link; refusing to write output {name:?} through it \
                     (remove the link)",
                    path.display()
                ));
            }
            _ => {}
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_names() {
        for ok in ["returns.csv", "checkpoints/final.bin", "a..b", ".hidden"] {
            assert_eq!(check_output_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", "/etc/x", "../x", "a/../b", "a//b", "./a", "a/", "a\\b", "a\0", "..",
        ] {
            assert!(check_output_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn output_paths_do_not_follow_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("sub")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("f"), dir.path().join("f")).unwrap();
        assert!(
            output_path(dir.path(), "sub/x")
                .unwrap_err()
                .contains("symbolic link")
        );
        assert!(output_path(dir.path(), "f").is_err());
        assert_eq!(
            output_path(dir.path(), "a/b.csv").unwrap(),
            dir.path().join("a/b.csv")
        );
        assert!(output_path(dir.path(), "../x").is_err());
    }
}
