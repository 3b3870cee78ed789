//! Lowering: a parsed [`Pipeline`] plus the [`Registry`] of stage kinds becomes a [`Graph`]
//! of stage instances with fully resolved, type-checked parameters and their upstream
//! instances. Every problem found is reported at once, pointing at its span.

mod checks;
mod expand;
mod values;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use prunus_stage::{Params, Resources, StageKind, Value};

use crate::diagnostic::{Loc, PipelineError, Problem, Problems, Sources, did_you_mean};
use crate::pipeline::{Pipeline, StageDecl};
use crate::registry::Registry;
use checks::Resolved;
pub use values::{coerce, parse_duration, parse_memory};

/// A pipeline ready to plan and run: stages in dependency order, and their instances.
pub struct Graph {
    pub name: String,
    /// The main pipeline file (canonical), when it was loaded from one.
    pub file: Option<PathBuf>,
    pub base_dir: PathBuf,
    /// Where `prunus run` exports the outputs of the final stages.
    pub results: PathBuf,
    /// The pipeline's `remote` line (`prunus run --remote` overrides it).
    pub remote: Option<crate::pipeline::RemoteDecl>,
    /// The pipeline's `executor` block (`prunus run --executor` overrides it).
    pub executor: Option<crate::pipeline::ExecutorDecl>,
    pub stages: Vec<Stage>,
    /// Grouped by stage, in stage order: every input of an instance has a smaller index.
    pub instances: Vec<Instance>,
    /// The pipeline's files, for diagnostics found after lowering (resources this machine
    /// cannot give, [`crate::executor::fit`]).
    pub sources: Sources,
}

pub struct Stage {
    pub name: String,
    pub kind: Arc<dyn StageKind>,
    pub loc: Loc,
    pub instances: Range<usize>,
    /// Whether `run` copies its outputs to the results directory.
    pub export: bool,
    /// Parameters whose files' contents go into the key ([`ParamType::Paths`]).
    pub path_params: Vec<String>,
    /// Each parameter's default, by key (cache keys leave out parameters at their default).
    pub defaults: HashMap<&'static str, Value>,
    /// The resources the pipeline sets (`resources cpus=4`), by key, where it sets them.
    pub resources_set: Vec<(String, Loc)>,
}

pub struct Instance {
    /// `stage/segment/...`, e.g. `train/breakout/width3/seed1`.
    pub name: String,
    pub stage: usize,
    pub axes: BTreeMap<String, Value>,
    pub params: Params,
    pub inputs: Vec<usize>,
    pub resources: Resources,
}

impl Graph {
    pub fn stage_of(&self, instance: usize) -> &Stage {
        &self.stages[self.instances[instance].stage]
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.instances.iter().position(|i| i.name == name)
    }
}

/// Resolves a parsed pipeline against the stage kinds.
pub fn lower(p: &Pipeline, sources: &Sources, registry: &Registry) -> Result<Graph, PipelineError> {
    let mut problems = Problems::default();
    let templates = by_name(p.templates.iter().map(|t| (t.name.as_str(), t)));
    let decls: Vec<StageDecl> = p
        .stages
        .iter()
        .map(|s| with_template(s, p, &templates, &mut problems))
        .collect();
    let mut resolved = Resolved::new(p, &decls, registry, &mut problems);
    let order = resolved.order(&mut problems);
    resolved.check_params(&mut problems);
    problems_checkpoint(&mut problems, sources)?;
    let (stages, instances) = expand::instances(&resolved, &order, &mut problems);
    problems.into_result(sources)?;
    let results = match &p.results {
        Some((dir, _)) => dir.clone(),
        None => PathBuf::from("results").join(&p.name),
    };
    Ok(Graph {
        name: p.name.clone(),
        file: p.file.clone(),
        base_dir: p.base_dir.clone(),
        results,
        remote: p.remote.clone(),
        executor: p.executor.clone(),
        stages,
        instances,
        sources: sources.clone(),
    })
}

/// Stops before expanding instances when the stage-level checks failed (expansion would only
/// repeat the same problems per instance).
fn problems_checkpoint(problems: &mut Problems, sources: &Sources) -> Result<(), PipelineError> {
    if problems.is_empty() {
        Ok(())
    } else {
        std::mem::take(problems).into_result(sources)
    }
}

/// Items by name, the first of each name winning (duplicates are reported when parsing), so
/// that a pipeline's many stages each find their template or sweep in constant time.
pub(super) fn by_name<'a, T>(items: impl Iterator<Item = (&'a str, T)>) -> HashMap<&'a str, T> {
    let mut map = HashMap::new();
    for (name, item) in items {
        map.entry(name).or_insert(item);
    }
    map
}

/// The stage with its template's kind and parameters underneath its own.
fn with_template(
    d: &StageDecl,
    p: &Pipeline,
    templates: &HashMap<&str, &StageDecl>,
    problems: &mut Problems,
) -> StageDecl {
    let Some((name, loc)) = &d.from else {
        return d.clone();
    };
    let Some(t) = templates.get(name.as_str()) else {
        let names: Vec<&str> = p.templates.iter().map(|t| t.name.as_str()).collect();
        problems.push(
            Problem::new(
                *loc,
                format!("unknown template `{name}`"),
                "no such template",
            )
            .help(
                did_you_mean(name, names.iter().copied()).unwrap_or_else(|| {
                    format!("define it: template {name} {{ kind \"train/dqn\" ... }}")
                }),
            ),
        );
        return d.clone();
    };
    for (what, set) in [
        ("from", t.from.is_some()),
        ("over", t.over.is_some()),
        ("needs", !t.needs.is_empty()),
    ] {
        if set {
            problems.push(
                Problem::new(
                    t.loc,
                    format!("template `{}` uses `{what}`", t.name),
                    "templates hold a kind and parameters",
                )
                .help(format!("move `{what}` to the stages that use the template")),
            );
        }
    }
    let mut merged = d.clone();
    if merged.kind.is_none() {
        merged.kind = t.kind.clone();
    }
    merged.params = t.params.iter().chain(&d.params).cloned().collect();
    if merged.resources.is_empty() {
        merged.resources = t.resources.clone();
    }
    merged.export = merged.export.or(t.export);
    merged
}
