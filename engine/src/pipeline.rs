//! The pipeline language: KDL 2.0 documents parsed into sweeps, templates and stages.
//!
//! ```kdl
//! pipeline "quickstart"              // name (default: the file's stem)
//! include "agents.kdl"               // sweeps, templates and stages of another file
//! results "results/quickstart"       // where `prunus run` exports the final outputs
//! remote "lab"                       // share results through this remote (a name from the
//!                                    // user's config, or a URL; read-only=#true to only read)
//! executor "slurm" {                 // run on Slurm by default (`--executor local` overrides),
//!     partition "gpu"                // with these settings (the executor checks them)
//! }
//!
//! sweep main {                       // a cartesian product of axes ...
//!     game "minatar/breakout" "minatar/asterix"
//!     seed from=0 to=4               // integer range, inclusive
//!     sparsity 0.0 0.95
//!     exclude game="minatar/asterix" sparsity=0.0   // ... minus the points that match
//! }
//!
//! template dqn {                     // shared parameters, reused with `from`
//!     kind "train/dqn"
//!     steps 100_000
//! }
//!
//! stage train {
//!     from dqn
//!     over main                      // one instance per sweep point: train/breakout/seed0/...
//!     env "{game}"                   // "{axis}" takes the instance's axis value (typed)
//!     prune "gmp" sparsity="{sparsity}"   // -> prune = "gmp", prune.sparsity = 0.95
//!     resources cpus=1
//! }
//!
//! stage iqm {
//!     kind "aggregate/iqm"
//!     needs train                    // every train instance (this stage has no sweep)
//!     needs train sparsity=0.95      // or only those with these axis values
//!     export #true                   // copy its tables to `results` (default: only stages
//! }                                  // nothing needs, the pipeline's final products)
//! ```
//!
//! A stage `over` a sweep that `needs` another swept stage receives, per instance, the
//! upstream instances that agree with it on every axis they share (a join), so a probe over
//! the same sweep gets exactly its own training run and an aggregate over a `game` sweep gets
//! all runs of its game. A parameter of the kind with the same name as an axis (`seed`) takes
//! the axis value unless the stage sets it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use kdl::{KdlEntry, KdlNode, KdlValue};
use miette::SourceSpan;
use prunus_stage::Value;

use crate::diagnostic::{Loc, PipelineError, Problem, Problems, Sources, did_you_mean};
use crate::prescan;

/// A parsed pipeline with all includes merged; nothing is resolved against stage kinds yet.
#[derive(Debug, Default)]
pub struct Pipeline {
    pub name: String,
    /// Where `pipeline "<name>"` set the name (else it is the file's stem).
    pub name_loc: Option<Loc>,
    /// The main file, canonical: the name's owner in a store (see `identity`).
    pub file: Option<PathBuf>,
    /// Directory of the main file: `include` and `command` paths are relative to it.
    pub base_dir: PathBuf,
    pub results: Option<(PathBuf, Loc)>,
    pub remote: Option<RemoteDecl>,
    pub executor: Option<ExecutorDecl>,
    pub sweeps: Vec<Sweep>,
    pub templates: Vec<StageDecl>,
    pub stages: Vec<StageDecl>,
}

/// `remote "lab" read-only=#true`: the remote `prunus run` shares results through (the CLI
/// resolves the name against the user's config; `--remote` overrides it).
#[derive(Debug, Clone)]
pub struct RemoteDecl {
    pub remote: String,
    pub read_only: bool,
    pub loc: Loc,
}

/// `executor "slurm" { partition "gpu"; time "24h" }`: where `prunus run` runs the pipeline by
/// default, and that executor's settings, kept as written: the engine knows no executor's
/// settings, so the CLI checks them (pointing at `loc` of the one it refuses).
#[derive(Debug, Clone)]
pub struct ExecutorDecl {
    pub name: String,
    pub settings: Vec<ExecutorSetting>,
    pub loc: Loc,
}

/// One line of an `executor` block: `sbatch "--constraint=a100" "--exclusive"`.
#[derive(Debug, Clone)]
pub struct ExecutorSetting {
    pub key: String,
    pub values: Vec<String>,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct Sweep {
    pub name: String,
    pub loc: Loc,
    pub axes: Vec<Axis>,
    /// Each exclude removes the points that match all of its `axis=value` conditions.
    pub excludes: Vec<Vec<Cond>>,
}

#[derive(Debug, Clone)]
pub struct Axis {
    pub name: String,
    pub loc: Loc,
    pub values: Vec<Value>,
}

/// `axis=value`, in an `exclude` or a `needs` filter.
#[derive(Debug, Clone)]
pub struct Cond {
    pub axis: String,
    pub value: Value,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct StageDecl {
    pub name: String,
    pub loc: Loc,
    pub kind: Option<(String, Loc)>,
    pub from: Option<(String, Loc)>,
    pub over: Option<(String, Loc)>,
    pub needs: Vec<Need>,
    pub resources: Vec<(String, Value, Loc)>,
    /// `export #true|#false`: copy the outputs to the results directory (default: only
    /// stages nothing else needs, the pipeline's final products).
    pub export: Option<bool>,
    /// Parameters in file order; later settings of a key win.
    pub params: Vec<ParamSet>,
}

#[derive(Debug, Clone)]
pub struct Need {
    pub stage: String,
    pub loc: Loc,
    pub filters: Vec<Cond>,
}

/// One `key = value` a stage sets; `value` may hold `{axis}` references until lowering.
#[derive(Debug, Clone)]
pub struct ParamSet {
    pub key: String,
    pub value: Value,
    pub loc: Loc,
}

const STAGE_KEYWORDS: [&str; 6] = ["kind", "from", "over", "needs", "resources", "export"];
const TOP_LEVEL: [&str; 8] = [
    "pipeline", "include", "results", "remote", "executor", "sweep", "template", "stage",
];

/// Reads and parses a pipeline file and everything it includes.
pub fn load(path: &Path) -> Result<(Pipeline, Sources), PipelineError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        PipelineError::plain(
            format!("cannot read pipeline {}: {e}", path.display()),
            "check the path; pipelines are .kdl files such as pipelines/quickstart.kdl",
        )
    })?;
    let mut sources = Sources::default();
    let mut problems = Problems::default();
    let mut pipeline = Pipeline {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pipeline".into()),
        base_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        ..Pipeline::default()
    };
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    pipeline.file = Some(canonical.clone());
    let mut seen = HashSet::new();
    seen.insert(canonical);
    parse_file(
        path,
        text,
        true,
        &mut pipeline,
        &mut sources,
        &mut problems,
        &mut seen,
    );
    check_names(&pipeline, &mut problems);
    // A file of only templates and sweeps is one to `include` (`plan` says it runs nothing).
    let nothing =
        pipeline.stages.is_empty() && pipeline.templates.is_empty() && pipeline.sweeps.is_empty();
    if nothing && problems.is_empty() {
        problems.push(
            Problem::new(Loc::new(0, (0, 0).into()), "the pipeline has no stages", "nothing to run")
                .help("add one, e.g. stage \"train\" { kind \"train/dqn\"; env \"minatar/breakout\" } (`prunus kinds` lists the kinds)"),
        );
    }
    problems.into_result(&sources)?;
    Ok((pipeline, sources))
}

/// Parses pipeline text (no file system; includes are errors). For tests and fuzzing.
pub fn parse_str(name: &str, text: &str) -> Result<(Pipeline, Sources), PipelineError> {
    let mut sources = Sources::default();
    let mut problems = Problems::default();
    let mut pipeline = Pipeline {
        name: name.to_string(),
        ..Pipeline::default()
    };
    parse_file(
        Path::new(name),
        text.to_string(),
        true,
        &mut pipeline,
        &mut sources,
        &mut problems,
        &mut HashSet::new(),
    );
    check_names(&pipeline, &mut problems);
    problems.into_result(&sources)?;
    Ok((pipeline, sources))
}

fn parse_file(
    path: &Path,
    text: String,
    main: bool,
    p: &mut Pipeline,
    sources: &mut Sources,
    problems: &mut Problems,
    seen: &mut HashSet<PathBuf>,
) {
    let pre = prescan::prescan(&text);
    let file = sources.add_mapped(path, text, pre.map);
    let mut syntax_ok = true;
    for (base, parsed) in prescan::parse(&pre.text, &pre.chunks) {
        let at = At { file, base };
        match parsed {
            Ok(doc) if syntax_ok => {
                for node in doc.nodes() {
                    top_level(node, at, path, main, p, sources, problems, seen);
                }
            }
            Ok(_) => {}
            Err(e) => {
                problems.syntax(|span| at.loc(span), e);
                syntax_ok = false;
            }
        }
    }
}

/// Where the nodes of one chunk of a file are: spans the parser gives are relative to it.
#[derive(Clone, Copy)]
struct At {
    file: usize,
    base: usize,
}

impl At {
    fn loc(self, span: SourceSpan) -> Loc {
        Loc::new(
            self.file,
            SourceSpan::new((self.base + span.offset()).into(), span.len()),
        )
    }
}

/// One top-level node: the pipeline's name, an include (parsed here), a sweep, ...
#[allow(clippy::too_many_arguments)]
fn top_level(
    node: &KdlNode,
    at: At,
    path: &Path,
    main: bool,
    p: &mut Pipeline,
    sources: &mut Sources,
    problems: &mut Problems,
    seen: &mut HashSet<PathBuf>,
) {
    {
        let loc = at.loc(node.span());
        match node.name().value() {
            key @ ("pipeline" | "results" | "remote" | "executor")
                if (main || key == "results") && set_before(p, key).is_some() =>
            {
                let first = set_before(p, key).expect("checked");
                problems.push(
                    Problem::new(loc, format!("`{key}` is set twice"), "set again here")
                        .also(first, "first set here")
                        .help(format!("keep one `{key}` line")),
                );
            }
            "pipeline" if main => match single_string(node, at, problems) {
                Some(name) if is_folder_name(&name) => {
                    p.name = name;
                    p.name_loc = Some(loc);
                }
                Some(_) => problems.push(
                    Problem::new(loc, "invalid pipeline name", "not a folder name")
                        .help("the name names the results folder (results/<name>) and the refs: use letters, digits, `-`, `_` and `.`, without `/`"),
                ),
                None => {}
            },
            "pipeline" => problems.push(
                Problem::new(
                    loc,
                    "`pipeline` in an included file",
                    "only the main file names the pipeline",
                )
                .help("remove this line from the included file"),
            ),
            "results" => {
                if let Some(dir) = single_string(node, at, problems) {
                    p.results = Some((PathBuf::from(dir), loc));
                }
            }
            "remote" if main => p.remote = parse_remote(node, at, problems),
            "remote" => problems.push(
                Problem::new(loc, "`remote` in an included file", "only the main file names the remote")
                    .help("move this line to the main pipeline file"),
            ),
            "executor" if main => p.executor = parse_executor(node, at, problems),
            "executor" => problems.push(
                Problem::new(loc, "`executor` in an included file", "only the main file names the executor")
                    .help("move this block to the main pipeline file"),
            ),
            "include" => {
                let Some(rel) = single_string(node, at, problems) else {
                    return;
                };
                let dir = path.parent().unwrap_or(Path::new(""));
                let inc = dir.join(&rel);
                let canon = inc.canonicalize().unwrap_or_else(|_| inc.clone());
                if !seen.insert(canon) {
                    problems.push(
                        Problem::new(
                            loc,
                            format!("`{rel}` is included twice (or includes itself)"),
                            "included again here",
                        )
                        .help("include each file once"),
                    );
                    return;
                }
                match std::fs::read_to_string(&inc) {
                    Ok(text) => parse_file(&inc, text, false, p, sources, problems, seen),
                    Err(e) => problems.push(
                        Problem::new(
                            loc,
                            format!("cannot read included file {}: {e}", inc.display()),
                            "included here",
                        )
                        .help("include paths are relative to the file that includes them"),
                    ),
                }
            }
            "sweep" => {
                if let Some(s) = parse_sweep(node, at, problems) {
                    p.sweeps.push(s);
                }
            }
            "template" => {
                if let Some(s) = parse_stage(node, at, problems) {
                    p.templates.push(s);
                }
            }
            "stage" => {
                if let Some(s) = parse_stage(node, at, problems) {
                    p.stages.push(s);
                }
            }
            other => {
                let mut pr = Problem::new(
                    loc,
                    format!("unknown top-level node `{other}`"),
                    "not a pipeline node",
                );
                pr =
                    pr.help(did_you_mean(other, TOP_LEVEL).unwrap_or_else(|| {
                        format!("a pipeline consists of {}", TOP_LEVEL.join(", "))
                    }));
                problems.push(pr);
            }
        }
    }
}

/// Duplicate sweep, template and stage names, across all files.
fn check_names(p: &Pipeline, problems: &mut Problems) {
    fn dups<'a>(what: &str, items: impl Iterator<Item = (&'a str, Loc)>, problems: &mut Problems) {
        let mut first: std::collections::HashMap<&str, Loc> = Default::default();
        for (name, loc) in items {
            if let Some(prev) = first.get(name) {
                problems.push(
                    Problem::new(
                        loc,
                        format!("duplicate {what} `{name}`"),
                        "defined again here",
                    )
                    .also(*prev, "first defined here")
                    .help(format!("give each {what} a unique name")),
                );
            } else {
                first.insert(name, loc);
            }
        }
    }
    dups(
        "sweep",
        p.sweeps.iter().map(|s| (s.name.as_str(), s.loc)),
        problems,
    );
    dups(
        "template",
        p.templates.iter().map(|s| (s.name.as_str(), s.loc)),
        problems,
    );
    dups(
        "stage",
        p.stages.iter().map(|s| (s.name.as_str(), s.loc)),
        problems,
    );
}

fn parse_sweep(node: &KdlNode, at: At, problems: &mut Problems) -> Option<Sweep> {
    let name = block_name(node, at, "sweep", problems)?;
    let mut sweep = Sweep {
        name,
        loc: at.loc(node.span()),
        axes: Vec::new(),
        excludes: Vec::new(),
    };
    let Some(children) = node.children() else {
        problems.push(
            Problem::new(
                sweep.loc,
                format!("sweep `{}` has no axes", sweep.name),
                "empty sweep",
            )
            .help("add axes in braces: sweep main { seed 0 1 2 }"),
        );
        return None;
    };
    for child in children.nodes() {
        let loc = at.loc(child.span());
        let name = child.name().value();
        if name == "exclude" {
            let conds = conds(child, at, problems);
            if conds.is_empty() {
                problems.push(
                    Problem::new(loc, "`exclude` without conditions", "excludes nothing")
                        .help("write the axis values to leave out: exclude width=1 sparsity=0.95"),
                );
            }
            sweep.excludes.push(conds);
            continue;
        }
        if sweep.axes.iter().any(|a| a.name == name) {
            problems.push(
                Problem::new(
                    loc,
                    format!("axis `{name}` appears twice in sweep `{}`", sweep.name),
                    "again here",
                )
                .help("list all values of an axis on one line"),
            );
            continue;
        }
        if let Some(values) = axis_values(child, name, at, problems) {
            sweep.axes.push(Axis {
                name: name.to_string(),
                loc,
                values,
            });
        }
    }
    for conds in &sweep.excludes {
        for c in conds {
            if !sweep.axes.iter().any(|a| a.name == c.axis) {
                let names: Vec<&str> = sweep.axes.iter().map(|a| a.name.as_str()).collect();
                problems.push(
                    Problem::new(
                        c.loc,
                        format!("axis `{}` is not in sweep `{}`", c.axis, sweep.name),
                        "unknown axis",
                    )
                    .help(
                        did_you_mean(&c.axis, names.iter().copied()).unwrap_or_else(|| {
                            format!("the sweep's axes are: {}", names.join(", "))
                        }),
                    ),
                );
            }
        }
    }
    check_size(&sweep, problems);
    Some(sweep)
}

/// The most instances a pipeline may expand to unless `PRUNUS_MAX_INSTANCES` says otherwise:
/// far above the paper's ~7,500, far below what exhausts memory.
pub const DEFAULT_MAX_INSTANCES: u64 = 1_000_000;

/// The instance limit: `PRUNUS_MAX_INSTANCES`, else [`DEFAULT_MAX_INSTANCES`].
pub fn max_instances() -> u64 {
    std::env::var("PRUNUS_MAX_INSTANCES")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(DEFAULT_MAX_INSTANCES)
}

/// A sweep's point count, computed without overflow, must stay under the limit: a 20-axis
/// sweep is refused here instead of exhausting memory when it is expanded.
fn check_size(sweep: &Sweep, problems: &mut Problems) {
    let count = sweep
        .axes
        .iter()
        .try_fold(1u64, |n, a| n.checked_mul(a.values.len() as u64));
    let limit = max_instances();
    if count.is_some_and(|n| n <= limit) {
        return;
    }
    let count = count.map_or("more than 2^64".to_string(), |n| n.to_string());
    problems.push(
        Problem::new(
            sweep.loc,
            format!(
                "sweep `{}` has {count} points, more than the limit of {limit}",
                sweep.name
            ),
            "too many points",
        )
        .help("split it into smaller sweeps, leave points out with `exclude`, or raise the limit with PRUNUS_MAX_INSTANCES=N"),
    );
}

/// The values of one sweep axis: listed (`seed 0 1 2`) or an integer range (`seed from=0
/// to=9`), of one type (integers mixed with floats become floats), each once.
fn axis_values(child: &KdlNode, name: &str, at: At, problems: &mut Problems) -> Option<Vec<Value>> {
    let loc = at.loc(child.span());
    let mut values = Vec::new();
    let (mut from, mut to) = (None, None);
    for e in child.entries() {
        let eloc = at.loc(e.span());
        match e.name().map(|n| n.value()) {
            None => {
                if let Some(v) = value(e, at, problems) {
                    values.push(v);
                }
            }
            Some("from") => from = int_entry(e, at, problems),
            Some("to") => to = int_entry(e, at, problems),
            Some(other) => problems.push(
                Problem::new(
                    eloc,
                    format!("unknown property `{other}` on axis `{name}`"),
                    "not allowed here",
                )
                .help(
                    "an axis lists its values (seed 0 1 2) or an integer range (seed from=0 to=9)",
                ),
            ),
        }
    }
    match (from, to) {
        (Some(a), Some(b)) if a <= b && b - a < 10_000_000 => {
            values.extend((a..=b).map(Value::Int))
        }
        (Some(_), Some(_)) => problems.push(
            Problem::new(loc, "empty or huge integer range", "from > to?")
                .help("write from=<first> to=<last>, both inclusive"),
        ),
        (None, None) => {}
        _ => problems.push(
            Problem::new(
                loc,
                "an integer range needs both `from` and `to`",
                "incomplete range",
            )
            .help("seed from=0 to=9 gives seeds 0..=9"),
        ),
    }
    if values.is_empty() {
        problems.push(
            Problem::new(loc, format!("axis `{name}` has no values"), "no values")
                .help(format!("list its values: {name} 0 1 2")),
        );
        return None;
    }
    let category = |v: &Value| match v {
        Value::Int(_) | Value::Float(_) => 0,
        Value::Str(_) => 1,
        _ => 2,
    };
    if values.iter().any(|v| category(v) != category(&values[0])) {
        problems.push(
            Problem::new(
                loc,
                format!("axis `{name}` mixes value types"),
                "all values must have one type",
            )
            .help("quote all values or none"),
        );
        return None;
    }
    // Mixed integers and floats become floats, so `0 0.5 1` is one numeric axis.
    if values.iter().any(|v| matches!(v, Value::Float(_))) {
        for v in &mut values {
            if let Value::Int(i) = *v {
                *v = Value::Float(i as f64);
            }
        }
    }
    let mut distinct = HashSet::with_capacity(values.len());
    for v in &values {
        if !distinct.insert(ValueId::of(v)) {
            problems.push(
                Problem::new(
                    loc,
                    format!("axis `{name}` lists `{v}` twice"),
                    "duplicate value",
                )
                .help("each value may appear once"),
            );
        }
    }
    Some(values)
}

/// An axis value as a hash key that is equal exactly when the values are (`-0.0` is `0.0`),
/// so a range of a million seeds is checked for duplicates in one pass.
#[derive(PartialEq, Eq, Hash)]
enum ValueId<'a> {
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(&'a str),
    List(String),
}

impl<'a> ValueId<'a> {
    fn of(v: &'a Value) -> Self {
        match v {
            Value::Bool(b) => ValueId::Bool(*b),
            Value::Int(i) => ValueId::Int(*i),
            Value::Float(x) => ValueId::Float((x + 0.0).to_bits()),
            Value::Str(s) => ValueId::Str(s),
            Value::List(_) => ValueId::List(v.to_string()),
        }
    }
}

fn parse_stage(node: &KdlNode, at: At, problems: &mut Problems) -> Option<StageDecl> {
    let what = node.name().value();
    let name = block_name(node, at, what, problems)?;
    let mut s = StageDecl {
        name,
        loc: at.loc(node.span()),
        kind: None,
        from: None,
        over: None,
        needs: Vec::new(),
        resources: Vec::new(),
        export: None,
        params: Vec::new(),
    };
    let Some(children) = node.children() else {
        problems.push(
            Problem::new(s.loc, format!("{what} `{}` has no body", s.name), "empty").help(format!(
                "give it a kind in braces: {what} {} {{ kind \"train/dqn\" }}",
                s.name
            )),
        );
        return None;
    };
    for child in children.nodes() {
        let loc = at.loc(child.span());
        match child.name().value() {
            key @ ("kind" | "from" | "over") => {
                let slot = match key {
                    "kind" => &mut s.kind,
                    "from" => &mut s.from,
                    _ => &mut s.over,
                };
                if let Some((_, first)) = slot {
                    problems.push(set_twice(what, &s.name, key, loc, *first));
                }
                *slot = single_string(child, at, problems).map(|k| (k, loc));
            }
            "export" => match child.entries() {
                [e] if e.name().is_none() && e.value().as_bool().is_some() => {
                    s.export = e.value().as_bool();
                }
                _ => problems.push(
                    Problem::new(loc, "`export` takes #true or #false", "expected a boolean")
                        .help("export #true copies this stage's outputs to the results directory"),
                ),
            },
            "needs" => {
                let args: Vec<&KdlEntry> = child
                    .entries()
                    .iter()
                    .filter(|e| e.name().is_none())
                    .collect();
                let filters = conds(child, at, problems);
                match args.as_slice() {
                    [e] => match e.value() {
                        KdlValue::String(stage) => s.needs.push(Need {
                            stage: stage.clone(),
                            loc,
                            filters,
                        }),
                        _ => problems.push(
                            Problem::new(
                                at.loc(e.span()),
                                "`needs` takes a stage name",
                                "not a name",
                            )
                            .help("needs train   or   needs train width=1"),
                        ),
                    },
                    _ => problems.push(
                        Problem::new(loc, "`needs` takes exactly one stage name", "one per line")
                            .help("write one `needs` line per upstream stage"),
                    ),
                }
            }
            "resources" => {
                for e in child.entries() {
                    let eloc = at.loc(e.span());
                    match (e.name().map(|n| n.value()), value(e, at, problems)) {
                        (Some(k), Some(v)) => s.resources.push((k.to_string(), v, eloc)),
                        (None, _) => problems.push(
                            Problem::new(eloc, "resources are named", "which resource?")
                                .help("resources cpus=2 gpus=1 memory=\"8G\""),
                        ),
                        _ => {}
                    }
                }
            }
            _ => param_sets(child, "", at, problems, &mut s.params),
        }
    }
    for (i, set) in s.params.iter().enumerate() {
        if let Some(first) = s.params[..i].iter().find(|f| f.key == set.key) {
            problems.push(set_twice(what, &s.name, &set.key, set.loc, first.loc));
        }
    }
    Some(s)
}

/// A stage (or template) that sets `key` twice: which one counts would be a guess.
fn set_twice(what: &str, name: &str, key: &str, loc: Loc, first: Loc) -> Problem {
    Problem::new(
        loc,
        format!("{what} `{name}` sets `{key}` twice"),
        "set again here",
    )
    .also(first, "first set here")
    .help(format!("keep one `{key}` line"))
}

/// `prune "gmp" sparsity=0.95 { start 0.2 }` -> prune, prune.sparsity, prune.start.
fn param_sets(
    node: &KdlNode,
    prefix: &str,
    at: At,
    problems: &mut Problems,
    out: &mut Vec<ParamSet>,
) {
    let key = format!("{prefix}{}", node.name().value());
    let loc = at.loc(node.span());
    let mut args = Vec::new();
    let mut arg_loc = loc;
    for e in node.entries() {
        let Some(v) = value(e, at, problems) else {
            continue;
        };
        match e.name() {
            None => {
                if args.is_empty() {
                    arg_loc = at.loc(e.span());
                }
                args.push(v);
            }
            Some(prop) => out.push(ParamSet {
                key: format!("{key}.{}", prop.value()),
                value: v,
                loc: at.loc(e.span()),
            }),
        }
    }
    match args.len() {
        0 if node.entries().is_empty() && node.children().is_none() => problems.push(
            Problem::new(loc, format!("`{key}` has no value"), "missing value").help(format!(
                "write a value: {} 0.5   (booleans are #true / #false)",
                node.name().value()
            )),
        ),
        0 => {}
        1 => out.push(ParamSet {
            key: key.clone(),
            value: args.pop().expect("one"),
            loc: arg_loc,
        }),
        _ => out.push(ParamSet {
            key: key.clone(),
            value: Value::List(args),
            loc: arg_loc,
        }),
    }
    if let Some(children) = node.children() {
        for child in children.nodes() {
            if STAGE_KEYWORDS.contains(&child.name().value()) {
                problems.push(
                    Problem::new(
                        at.loc(child.span()),
                        format!("`{}` inside a parameter block", child.name().value()),
                        "belongs to the stage",
                    )
                    .help("move it to the stage's own body"),
                );
                continue;
            }
            param_sets(child, &format!("{key}."), at, problems, out);
        }
    }
}

fn conds(node: &KdlNode, at: At, problems: &mut Problems) -> Vec<Cond> {
    node.entries()
        .iter()
        .filter_map(|e| {
            let axis = e.name()?.value().to_string();
            let value = value(e, at, problems)?;
            Some(Cond {
                axis,
                value,
                loc: at.loc(e.span()),
            })
        })
        .collect()
}

/// `sweep NAME { ... }`: the single argument naming a block.
fn block_name(node: &KdlNode, at: At, what: &str, problems: &mut Problems) -> Option<String> {
    let loc = at.loc(node.span());
    match node.entries() {
        [e] if e.name().is_none() => match e.value() {
            KdlValue::String(s) if !s.is_empty() && valid_name(s) => Some(s.clone()),
            _ => {
                problems.push(
                    Problem::new(
                        at.loc(e.span()),
                        format!("invalid {what} name"),
                        "not a name",
                    )
                    .help("names use letters, digits, `-` and `_` (e.g. train-dense)"),
                );
                None
            }
        },
        _ => {
            problems.push(
                Problem::new(loc, format!("a {what} needs exactly one name"), "name it")
                    .help(format!("{what} NAME {{ ... }}")),
            );
            None
        }
    }
}

/// A single path component that stays where it is joined: not empty, `.` or `..`, no `/`.
fn is_folder_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0'])
}

pub fn valid_name(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Where a top-level setting of the main file was set already, if it was.
fn set_before(p: &Pipeline, key: &str) -> Option<Loc> {
    match key {
        "pipeline" => p.name_loc,
        "results" => p.results.as_ref().map(|(_, loc)| *loc),
        "remote" => p.remote.as_ref().map(|r| r.loc),
        "executor" => p.executor.as_ref().map(|e| e.loc),
        _ => None,
    }
}

/// `executor "NAME" { key "value" ...; }`: each child a key with string or number values.
fn parse_executor(node: &KdlNode, at: At, problems: &mut Problems) -> Option<ExecutorDecl> {
    let loc = at.loc(node.span());
    let name = single_string(node, at, problems)?;
    let mut settings = Vec::new();
    for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
        let mut values = Vec::new();
        for e in child.entries() {
            match (e.name(), e.value()) {
                (None, KdlValue::String(s)) => values.push(s.clone()),
                (None, KdlValue::Integer(i)) => values.push(i.to_string()),
                (None, KdlValue::Float(x)) => values.push(x.to_string()),
                (None, KdlValue::Bool(b)) => values.push(b.to_string()),
                _ => {
                    problems.push(
                        Problem::new(at.loc(e.span()), "an executor setting takes values", "not understood")
                            .help("write each setting as a key and its values: partition \"gpu\"; sbatch \"--exclusive\""),
                    );
                    return None;
                }
            }
        }
        settings.push(ExecutorSetting {
            key: child.name().value().to_string(),
            values,
            loc: at.loc(child.span()),
        });
    }
    Some(ExecutorDecl {
        name,
        settings,
        loc,
    })
}

/// `remote "NAME-OR-URL"` with an optional `read-only=#true`.
fn parse_remote(node: &KdlNode, at: At, problems: &mut Problems) -> Option<RemoteDecl> {
    let loc = at.loc(node.span());
    let mut remote = None;
    let mut read_only = false;
    for e in node.entries() {
        match (e.name().map(|n| n.value()), e.value()) {
            (None, KdlValue::String(s)) if remote.is_none() => remote = Some(s.clone()),
            (Some("read-only"), KdlValue::Bool(b)) => read_only = *b,
            _ => {
                problems.push(
                    Problem::new(at.loc(e.span()), "`remote` takes a remote and read-only=#true|#false", "not understood")
                        .help("remote \"lab\" (a name from ~/.config/prunus/config.kdl) or remote \"s3://bucket/prefix\" read-only=#true"),
                );
                return None;
            }
        }
    }
    let Some(remote) = remote else {
        problems.push(
            Problem::new(loc, "`remote` names no remote", "expected a name or URL")
                .help("remote \"lab\" (a name from ~/.config/prunus/config.kdl) or remote \"s3://bucket/prefix\""),
        );
        return None;
    };
    Some(RemoteDecl {
        remote,
        read_only,
        loc,
    })
}

fn single_string(node: &KdlNode, at: At, problems: &mut Problems) -> Option<String> {
    match node.entries() {
        [e] if e.name().is_none() => {
            if let KdlValue::String(s) = e.value() {
                return Some(s.clone());
            }
        }
        _ => {}
    }
    let name = node.name().value();
    problems.push(
        Problem::new(
            at.loc(node.span()),
            format!("`{name}` takes one string"),
            "expected one string",
        )
        .help(format!("{name} \"...\"")),
    );
    None
}

fn int_entry(e: &KdlEntry, at: At, problems: &mut Problems) -> Option<i64> {
    match value(e, at, problems)? {
        Value::Int(i) => Some(i),
        _ => {
            problems.push(Problem::new(
                at.loc(e.span()),
                "expected an integer",
                "not an integer",
            ));
            None
        }
    }
}

/// A KDL value as a parameter value (`#null` has no meaning in a pipeline).
fn value(e: &KdlEntry, at: At, problems: &mut Problems) -> Option<Value> {
    let loc = at.loc(e.span());
    Some(match e.value() {
        KdlValue::String(s) => Value::Str(s.clone()),
        KdlValue::Integer(i) => match i64::try_from(*i) {
            Ok(i) => Value::Int(i),
            Err(_) => {
                problems.push(Problem::new(
                    loc,
                    "integer out of range",
                    "does not fit in 64 bits",
                ));
                return None;
            }
        },
        KdlValue::Float(x) if x.is_finite() => Value::Float(*x),
        KdlValue::Float(_) => {
            problems.push(Problem::new(
                loc,
                "not a finite number",
                "inf/nan is not allowed here",
            ));
            return None;
        }
        KdlValue::Bool(b) => Value::Bool(*b),
        KdlValue::Null => {
            problems.push(
                Problem::new(loc, "`#null` is not a value here", "null")
                    .help("leave the parameter out to get its default"),
            );
            return None;
        }
    })
}
