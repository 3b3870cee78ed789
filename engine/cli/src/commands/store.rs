//! `prunus store`: maintain the artifact store (verify, gc, du, ls, show).

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use miette::{IntoDiagnostic, Result, miette};
use prunus_engine::run::human_secs;
use prunus_stage::sealed::{self, SealError};
use prunus_store::{Digest, GcOptions, ScratchCheck};

use crate::format::unix_ms;

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Re-hash every blob and check every scratch checkpoint; quarantine corrupt ones;
    /// report dangling results.
    Verify,
    /// Delete what no recorded instance references and what killed runs left behind; keep
    /// the newest N checkpoint scratches of unfinished stages, and everything a submitted
    /// Slurm job without a result will read (its saved job, inputs and checkpoint), however
    /// long it has been queued.
    Gc {
        #[arg(long, default_value_t = 1)]
        keep_checkpoints: usize,
    },
    /// Sizes, counts and compression ratio of everything under the store.
    Du,
    /// Every stored result (stage key, kind, when, outputs).
    Ls,
    /// One stored result by key (hex prefix).
    Show { key: String },
    /// Upload every result a remote lacks (blobs, then signed entries).
    Push(super::remote::Args),
    /// Download every result of a remote that this store lacks and trusts.
    Pull(super::remote::Args),
    /// Print this store's public key (what colleagues add to their trusted keys).
    Key,
}

pub fn run(root: &Path, cmd: StoreCommand) -> Result<ExitCode> {
    let store = super::open(root)?;
    match cmd {
        StoreCommand::Verify => {
            let r = store.verify_with(&check_scratch).into_diagnostic()?;
            println!("{r}");
            Ok(if r.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        StoreCommand::Gc { keep_checkpoints } => {
            let roots: Vec<Digest> = store
                .refs()
                .into_diagnostic()?
                .into_iter()
                .map(|(_, k)| k)
                .collect();
            let r = store
                .gc_with(&GcOptions {
                    roots,
                    keep_checkpoints,
                    grace: std::time::Duration::from_secs(3600),
                    pending: prunus_slurm::ledger::pending(&store),
                })
                .into_diagnostic()?;
            println!("{r}");
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Du => {
            println!("{}", store.du().into_diagnostic()?);
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Ls => {
            let mut actions = store.actions().into_diagnostic()?;
            actions.sort_by_key(|(_, r)| r.meta.started_unix_ms);
            for (key, r) in actions {
                let kind = r
                    .key_info
                    .get("kind")
                    .and_then(|k| k.as_str())
                    .unwrap_or("?")
                    .to_string();
                println!(
                    "{}  {:<18} {}  {:>9}  {}",
                    &key.to_string()[..16],
                    kind,
                    unix_ms(r.meta.started_unix_ms),
                    human_secs(r.meta.duration_s),
                    r.outputs.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Push(args) => super::remote::push(&store, args),
        StoreCommand::Pull(args) => super::remote::pull(&store, args),
        StoreCommand::Key => super::remote::key(&store),
        StoreCommand::Show { key } => {
            let (_, key) = super::find_result(&store, &key)?;
            let r = store
                .lookup(&key)
                .into_diagnostic()?
                .ok_or_else(|| miette!("no result {key}"))?;
            println!("{}", serde_json::to_string_pretty(&r).into_diagnostic()?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Checks a scratch file as the stages write what they resume from: sealed (see
/// `prunus_stage::sealed`). Other files (a `command` stage's own) are not checked.
fn check_scratch(path: &Path) -> ScratchCheck {
    if sealed::is_leftover(path) {
        return ScratchCheck::Unchecked;
    }
    match sealed::check(path) {
        Ok(_) => ScratchCheck::Sound,
        Err(SealError::NotSealed { .. } | SealError::Missing { .. }) => ScratchCheck::Unchecked,
        Err(e) => ScratchCheck::Corrupt(e.to_string()),
    }
}
