//! One module per subcommand (as cargo's `src/bin/cargo/commands/`): each has its `Args`
//! (clap) and a `run`; what several share (opening the store, finding a result) is here.

pub mod device;
pub mod exec;
pub mod executor;
pub mod explain;
pub mod kinds;
pub mod ls;
pub mod plan;
pub mod remote;
pub mod roms;
pub mod run;
pub mod show;
pub mod store;

use std::path::Path;

use miette::{IntoDiagnostic, Result, WrapErr, miette};
use prunus_store::{Digest, Store};

pub fn open(root: &Path) -> Result<Store> {
    Store::open(root).into_diagnostic().wrap_err_with(|| {
        format!(
            "cannot open the store at {} (set --store or PRUNUS_STORE to another directory)",
            root.display()
        )
    })
}

/// An instance name (matched against recorded refs) or a key hex prefix.
pub fn find_result(store: &Store, what: &str) -> Result<(String, Digest)> {
    let refs = store.refs().into_diagnostic()?;
    let by_name: Vec<&(String, Digest)> = refs
        .iter()
        .filter(|(name, _)| name == what || name.split_once(':').is_some_and(|(_, i)| i == what))
        .collect();
    match by_name.as_slice() {
        [(name, key)] => return Ok((name.clone(), *key)),
        [] => {}
        many => {
            return Err(miette!(
                help = "give the pipeline too, as PIPELINE:INSTANCE",
                "`{what}` is recorded by several pipelines: {}",
                many.iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if what.len() >= 6 && what.chars().all(|c| c.is_ascii_hexdigit()) {
        let hits: Vec<Digest> = store
            .actions()
            .into_diagnostic()?
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.to_string().starts_with(&what.to_ascii_lowercase()))
            .collect();
        match hits.as_slice() {
            [k] => return Ok((k.to_string(), *k)),
            [] => {}
            _ => {
                return Err(miette!(
                    "key prefix `{what}` is ambiguous; give more digits"
                ));
            }
        }
    }
    Err(miette!(
        help = "`prunus ls` lists recorded instances, `prunus store ls` every stored result",
        "nothing recorded as `{what}` in this store"
    ))
}
