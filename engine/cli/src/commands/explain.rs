//! `prunus explain`: which key component of an instance differs from its last recorded run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use miette::{IntoDiagnostic, Result, miette};
use prunus_engine::plan::{self, Status};

use prunus::registry;

#[derive(clap::Args)]
pub struct Args {
    pipeline: PathBuf,
    instance: String,
}

pub fn run(store: &Path, args: Args) -> Result<ExitCode> {
    let Args { pipeline, instance } = args;
    let graph = registry::load(&pipeline)?;
    let store = super::open(store)?;
    let Some(i) = graph.find(&instance) else {
        let names: Vec<&str> = graph.instances.iter().map(|i| i.name.as_str()).collect();
        let hint = prunus_engine::diagnostic::did_you_mean(&instance, names.iter().copied())
            .unwrap_or_else(|| "`prunus plan --all` lists every instance".into());
        return Err(miette!(
            help = hint,
            "no instance `{instance}` in {}",
            pipeline.display()
        ));
    };
    let entries = plan::plan(&graph, &store)?;
    let e = &entries[i];
    println!("{instance}");
    println!(
        "  kind     {} v{}",
        graph.stage_of(i).kind.name(),
        graph.stage_of(i).kind.version()
    );
    match e.key {
        Some(k) => println!("  key      {k}"),
        None => println!("  key      not known yet: {}", e.status.reason()),
    }
    match &e.status {
        Status::Cached => println!("  status   cached: nothing changed since it ran"),
        Status::Remote => println!("  status   on the remote: it is fetched, not run"),
        Status::Run(reasons) => {
            println!("  status   runs, because:");
            for r in reasons {
                println!("    - {r}");
            }
        }
        Status::Waits(up) => {
            println!("  status   runs after {up}, whose outputs are part of this key")
        }
    }
    if let Some(prev) = store
        .get_ref(&plan::ref_name(&graph, i))
        .into_diagnostic()?
    {
        println!("  last run {prev}");
    }
    Ok(ExitCode::SUCCESS)
}
