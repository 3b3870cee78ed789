//! `prunus show`: a stored result's outputs, run metadata and log; or a copy of its outputs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use miette::{IntoDiagnostic, Result, miette};
use prunus_engine::run::human_secs;
use prunus_store::{ActionResult, Store};

use crate::format::{human_bytes, unix_ms};

#[derive(clap::Args)]
pub struct Args {
    /// An instance name (as in `prunus ls`) or a stage key (hex prefix).
    what: String,
    /// Print the whole log.
    #[arg(long)]
    log: bool,
    /// Copy the outputs into this directory.
    #[arg(long)]
    export: Option<PathBuf>,
}

pub fn run(store: &Path, args: Args) -> Result<ExitCode> {
    let store = super::open(store)?;
    let (label, key) = super::find_result(&store, &args.what)?;
    let result = store.lookup(&key).into_diagnostic()?.ok_or_else(|| {
        miette!("{label}: its result {key} is no longer in the store (removed by gc?)")
    })?;
    println!("{label}");
    println!("  key       {key}");
    print_result(&result);
    print_log(&store, &result, args.log)?;
    if let Some(dir) = args.export {
        std::fs::create_dir_all(&dir).into_diagnostic()?;
        for (name, blob) in &result.outputs {
            store
                .export_output(&blob.digest, &dir, name)
                .into_diagnostic()?;
        }
        println!("outputs copied to {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Kind, run metadata, parameters and outputs.
fn print_result(result: &ActionResult) {
    if let Some(kind) = result.key_info.get("kind") {
        println!(
            "  kind      {} v{}",
            kind.as_str().unwrap_or("?"),
            result.key_info["version"]
        );
    }
    let m = &result.meta;
    println!(
        "  ran       {} on {} (prunus {}), {}",
        unix_ms(m.started_unix_ms),
        m.host,
        m.prunus_version,
        human_secs(m.duration_s)
    );
    if let Some(params) = result.key_info.get("params").and_then(|p| p.as_object()) {
        println!("  params");
        for (k, v) in params {
            println!("    {k} = {v}");
        }
    }
    println!("  outputs");
    for (name, blob) in &result.outputs {
        println!(
            "    {name:<24} {:>12}  {}",
            human_bytes(blob.size),
            blob.digest
        );
    }
}

/// The log's last 10 lines, or all of it with `--log`.
fn print_log(store: &Store, result: &ActionResult, all: bool) -> Result<()> {
    let Some(log_blob) = result.meta.log else {
        return Ok(());
    };
    let text =
        String::from_utf8_lossy(&store.get_bytes(&log_blob.digest).into_diagnostic()?).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let from = if all {
        0
    } else {
        lines.len().saturating_sub(10)
    };
    println!(
        "  log ({} lines{})",
        lines.len(),
        if all { "" } else { "; --log prints all" }
    );
    for l in &lines[from..] {
        println!("    | {l}");
    }
    Ok(())
}
