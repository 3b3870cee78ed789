//! `prunus ls`: the instances with recorded results.

use std::path::Path;
use std::process::ExitCode;

use miette::{IntoDiagnostic, Result};
use prunus_engine::run::human_secs;

use crate::format::{human_bytes, unix_ms};

#[derive(clap::Args)]
pub struct Args {
    prefix: Option<String>,
}

pub fn run(store: &Path, args: Args) -> Result<ExitCode> {
    let store = super::open(store)?;
    for (name, key) in store.refs().into_diagnostic()? {
        let instance = name.split_once(':').map_or(name.as_str(), |(_, i)| i);
        if args
            .prefix
            .as_deref()
            .is_some_and(|p| !instance.starts_with(p) && !name.starts_with(p))
        {
            continue;
        }
        let detail = match store.lookup(&key).into_diagnostic()? {
            Some(r) => format!(
                "{}  {:>9}  {:>10}",
                unix_ms(r.meta.started_unix_ms),
                human_secs(r.meta.duration_s),
                human_bytes(r.outputs.values().map(|b| b.size).sum())
            ),
            None => "(result removed)".into(),
        };
        println!("{name:<60} {}  {detail}", &key.to_string()[..12]);
    }
    Ok(ExitCode::SUCCESS)
}
