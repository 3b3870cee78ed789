//! A pipeline's identity. Refs (`<pipeline>:<instance>`, which `gc` keeps) and results
//! (`results/<pipeline>/`) are named by the pipeline's name, which defaults to the file's
//! stem: `x/main.kdl` and `y/main.kdl` would overwrite each other's refs and results, and a
//! `gc` would then delete the first one's. So the store and the results folder record which
//! file owns a name, and a second file under that name is an error naming both.

use std::path::{Path, PathBuf};

use prunus_store::Store;

use crate::Error;
use crate::lower::Graph;

/// The file in a results folder that names the pipeline file exporting there.
const RESULTS_OWNER: &str = ".prunus-pipeline";

/// Checks that the store knows no other file under this pipeline's name; with `record`, also
/// records this file as the owner. A recorded file that no longer exists (the pipeline was
/// moved or renamed) is taken over; the returned note says so.
pub fn claim(graph: &Graph, store: &Store, record: bool) -> Result<Option<String>, Error> {
    let Some(file) = &graph.file else {
        return Ok(None);
    };
    let owner = if record {
        store.claim_pipeline_name(&graph.name, file)?
    } else {
        store.pipeline_file(&graph.name)?
    };
    let place = format!("the store {}", store.root().display());
    let taken_over = check(&graph.name, file, owner, &place)?;
    if record && taken_over.is_some() {
        store.set_pipeline_file(&graph.name, file)?;
    }
    Ok(taken_over)
}

/// The same for a results folder: `export` writes there only for its owner (or a new one).
pub fn claim_results(graph: &Graph, dir: &Path) -> Result<Option<String>, Error> {
    let Some(file) = &graph.file else {
        return Ok(None);
    };
    let marker = dir.join(RESULTS_OWNER);
    let owner = std::fs::read_to_string(&marker)
        .ok()
        .map(|s| PathBuf::from(s.trim_end_matches('\n')));
    let place = format!("the results folder {}", dir.display());
    let note = check(&graph.name, file, owner.clone(), &place)?;
    if owner.as_deref() != Some(file) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Export(dir.to_path_buf(), e))?;
        let text = format!("{}\n", file.display());
        std::fs::write(&marker, text).map_err(|e| Error::Export(marker.clone(), e))?;
    }
    Ok(note)
}

/// `Err` if another existing file owns the name; a note if a vanished one did.
fn check(
    name: &str,
    file: &Path,
    owner: Option<PathBuf>,
    place: &str,
) -> Result<Option<String>, Error> {
    match owner {
        Some(other) if other != file && other.exists() => Err(Error::NameTaken {
            name: name.to_string(),
            this: file.to_path_buf(),
            other,
            place: place.to_string(),
        }),
        Some(other) if other != file => Ok(Some(format!(
            "pipeline `{name}` was last run from {}, which no longer exists; {} takes it over in {place}",
            other.display(),
            file.display()
        ))),
        _ => Ok(None),
    }
}
