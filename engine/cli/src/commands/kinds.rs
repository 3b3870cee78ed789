//! `prunus kinds`: the stage kinds, or one kind's parameters and defaults.

use std::process::ExitCode;

use miette::{Result, miette};
use prunus_stage::{Params, StageKind};

use prunus::registry;

#[derive(clap::Args)]
pub struct Args {
    name: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let registry = registry::standard(std::path::Path::new("."));
    let Some(name) = args.name else {
        for k in registry.all() {
            let first = k.doc().split(". ").next().unwrap_or("");
            println!(
                "{:<22} v{:<3} {}",
                k.name(),
                k.version(),
                first.trim_end_matches('.')
            );
        }
        println!("\n`prunus kinds NAME` shows a kind's parameters");
        return Ok(ExitCode::SUCCESS);
    };
    let k = registry.get(&name).ok_or_else(|| {
        miette!(
            help = prunus_engine::diagnostic::did_you_mean(&name, registry.names())
                .unwrap_or_default(),
            "unknown stage kind `{name}`"
        )
    })?;
    describe(k.as_ref());
    Ok(ExitCode::SUCCESS)
}

/// Name, version, determinism (at the defaults), doc, and every parameter.
fn describe(k: &dyn StageKind) {
    let defaults = Params(
        k.params()
            .into_iter()
            .filter_map(|s| Some((s.key.to_string(), s.default?)))
            .collect(),
    );
    println!(
        "{} (version {}, {})\n",
        k.name(),
        k.version(),
        if k.deterministic(&defaults) {
            "deterministic"
        } else {
            "nondeterministic"
        }
    );
    println!("{}\n", k.doc());
    let mut specs = k.params();
    specs.sort_by_key(|s| s.key);
    for s in specs {
        let default = s
            .default
            .map_or("(required)".to_string(), |d| d.to_string());
        println!("  {:<28} {:<14} {}", s.key, default, s.doc);
    }
}
