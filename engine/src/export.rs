//! Results export: the outputs of a pipeline's final stages (those nothing needs, or marked
//! `export #true`) copied out of the store to `results/<pipeline>/<instance>/`, for pandas
//! and image viewers.

use std::path::PathBuf;

use prunus_store::Store;

use crate::Error;
use crate::lower::Graph;
use crate::plan::Entry;

/// Copies the outputs of the final stages that are done (`done[i]`) to the results directory:
/// `results/<pipeline>/<instance>/<output>`. Unchanged instances are not copied again.
pub fn results(
    graph: &Graph,
    store: &Store,
    entries: &[Entry],
    done: &[bool],
) -> Result<Option<PathBuf>, Error> {
    let root = &graph.results;
    let mut any = false;
    for stage in graph.stages.iter().filter(|s| s.export) {
        for i in stage.instances.clone() {
            let (Some(result), Some(key), true) = (&entries[i].result, entries[i].key, done[i])
            else {
                continue;
            };
            if !any {
                crate::identity::claim_results(graph, root)?;
            }
            any = true;
            let dir = root.join(&graph.instances[i].name);
            let marker = dir.join(".prunus-key");
            if std::fs::read_to_string(&marker).is_ok_and(|k| k.trim() == key.to_string()) {
                continue;
            }
            std::fs::create_dir_all(&dir).map_err(|e| Error::Export(dir.clone(), e))?;
            for (name, blob) in &result.outputs {
                store.export_output(&blob.digest, &dir, name)?;
            }
            std::fs::write(&marker, format!("{key}\n"))
                .map_err(|e| Error::Export(marker.clone(), e))?;
        }
    }
    Ok(any.then(|| root.clone()))
}
