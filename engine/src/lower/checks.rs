//! Stage-level resolution and checks, before any instance exists: each stage's kind and sweep,
//! the stage graph (unknown upstream stages, filters on missing axes, cycles), and parameters
//! (known keys, literal types, `{axis}` references, required keys).

use std::collections::HashMap;
use std::sync::Arc;

use petgraph::graph::DiGraph;
use prunus_stage::{ParamSpec, StageKind};

use super::values::{axis_refs, coerce};
use crate::diagnostic::{Loc, Problem, Problems, did_you_mean};
use crate::pipeline::{Need, ParamSet, Pipeline, StageDecl, Sweep};
use crate::registry::Registry;

/// The pipeline's stages with what each resolved to (`None` where it did not, reported).
pub(super) struct Resolved<'a> {
    pub decls: &'a [StageDecl],
    pub kinds: Vec<Option<Arc<dyn StageKind>>>,
    pub sweeps: Vec<Option<&'a Sweep>>,
    /// Stage name -> position in `decls`.
    pub index: HashMap<&'a str, usize>,
    /// Each stage's accepted parameters by key (filled by [`Resolved::check_params`]).
    pub specs: Vec<HashMap<&'static str, ParamSpec>>,
    /// Where `deps` paths resolve (the main file's directory).
    pub base_dir: &'a std::path::Path,
}

impl<'a> Resolved<'a> {
    pub fn new(
        p: &'a Pipeline,
        decls: &'a [StageDecl],
        registry: &Registry,
        problems: &mut Problems,
    ) -> Self {
        let mut kinds = Vec::new();
        let mut sweeps = Vec::new();
        let by_name = super::by_name(p.sweeps.iter().map(|s| (s.name.as_str(), s)));
        for d in decls {
            kinds.push(kind_of(d, registry, problems));
            sweeps.push(sweep_of(d, p, &by_name, problems));
        }
        Resolved {
            base_dir: &p.base_dir,
            decls,
            kinds,
            sweeps,
            index: decls
                .iter()
                .enumerate()
                .map(|(i, d)| (d.name.as_str(), i))
                .collect(),
            specs: Vec::new(),
        }
    }

    /// The axes of stage `i`'s sweep (none without `over`).
    pub fn axes_of(&self, i: usize) -> Vec<&'a str> {
        self.sweeps[i]
            .map(|s| s.axes.iter().map(|a| a.name.as_str()).collect())
            .unwrap_or_default()
    }

    /// Stage positions in dependency order (empty when there is a cycle, which is reported).
    pub fn order(&self, problems: &mut Problems) -> Vec<usize> {
        let decls = self.decls;
        let mut graph = DiGraph::<usize, Loc>::new();
        let nodes: Vec<_> = (0..decls.len()).map(|i| graph.add_node(i)).collect();
        for (i, d) in decls.iter().enumerate() {
            for need in &d.needs {
                let Some(&j) = self.index.get(need.stage.as_str()) else {
                    problems.push(self.unknown_stage(d, need));
                    continue;
                };
                graph.add_edge(nodes[j], nodes[i], need.loc);
                self.check_filters(need, j, problems);
            }
        }
        match petgraph::algo::toposort(&graph, None) {
            Ok(order) => order.into_iter().map(|n| graph[n]).collect(),
            Err(_) => {
                for scc in petgraph::algo::tarjan_scc(&graph) {
                    let cyclic = scc.len() > 1 || graph.contains_edge(scc[0], scc[0]);
                    if !cyclic {
                        continue;
                    }
                    let mut names: Vec<&str> = scc
                        .iter()
                        .rev()
                        .map(|&n| decls[graph[n]].name.as_str())
                        .collect();
                    names.push(names[0]);
                    let first = decls[graph[scc[scc.len() - 1]]].loc;
                    problems.push(
                        Problem::new(first, format!("stages form a cycle: {}", names.join(" -> ")), "part of the cycle")
                            .help("a stage cannot depend on itself, directly or through others; remove one `needs`"),
                    );
                }
                Vec::new() // never used: the cycle is reported with the parameter problems
            }
        }
    }

    fn unknown_stage(&self, d: &StageDecl, need: &Need) -> Problem {
        Problem::new(
            need.loc,
            format!("stage `{}` needs unknown stage `{}`", d.name, need.stage),
            "no such stage",
        )
        .help(
            did_you_mean(&need.stage, self.index.keys().copied()).unwrap_or_else(|| {
                format!(
                    "stages: {}",
                    self.decls
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
        )
    }

    /// Each filter of `need` must name an axis of the upstream stage `j`.
    fn check_filters(&self, need: &Need, j: usize, problems: &mut Problems) {
        for f in &need.filters {
            if self.axes_of(j).contains(&f.axis.as_str()) {
                continue;
            }
            problems.push(
                Problem::new(
                    f.loc,
                    format!(
                        "axis `{}` is not in the sweep of stage `{}`",
                        f.axis, need.stage
                    ),
                    "unknown axis",
                )
                .help(match self.sweeps[j] {
                    Some(s) => did_you_mean(&f.axis, self.axes_of(j)).unwrap_or_else(|| {
                        format!(
                            "`{}` runs over sweep `{}` with axes: {}",
                            need.stage,
                            s.name,
                            self.axes_of(j).join(", ")
                        )
                    }),
                    None => format!(
                        "`{}` has no sweep (`over`), so it has one instance",
                        need.stage
                    ),
                }),
            );
        }
    }

    /// Known keys, types of literal values, `{axis}` references naming real axes, and
    /// required parameters set; fills [`Resolved::specs`].
    pub fn check_params(&mut self, problems: &mut Problems) {
        for (i, d) in self.decls.iter().enumerate() {
            let Some(kind) = &self.kinds[i] else {
                self.specs.push(HashMap::new());
                continue;
            };
            let spec: HashMap<&'static str, ParamSpec> =
                kind.params().into_iter().map(|s| (s.key, s)).collect();
            for set in &d.params {
                match spec.get(set.key.as_str()) {
                    None => problems.push(unknown_key(set, kind.as_ref(), &spec)),
                    Some(ps) => self.check_value(i, set, ps, problems),
                }
            }
            for ps in spec.values() {
                let set =
                    d.params.iter().any(|s| s.key == ps.key) || self.axes_of(i).contains(&ps.key);
                if ps.default.is_none() && !set {
                    problems.push(
                        Problem::new(
                            d.loc,
                            format!("stage `{}` must set `{}`", d.name, ps.key),
                            "missing parameter",
                        )
                        .help(format!("`{}`: {} ({})", ps.key, ps.doc, ps.ty)),
                    );
                }
            }
            self.specs.push(spec);
        }
    }

    /// One setting of stage `i`: its `{axis}` references exist, or its literal has the type.
    fn check_value(&self, i: usize, set: &ParamSet, ps: &ParamSpec, problems: &mut Problems) {
        let d = &self.decls[i];
        for axis in axis_refs(&set.value) {
            if !self.axes_of(i).contains(&axis.as_str()) {
                problems.push(
                    Problem::new(
                        set.loc,
                        format!("`{{{axis}}}` names no axis of stage `{}`", d.name),
                        "axis not in the sweep",
                    )
                    .help(match self.sweeps[i] {
                        Some(s) => format!(
                            "sweep `{}` has axes: {}",
                            s.name,
                            self.axes_of(i).join(", ")
                        ),
                        None => format!(
                            "add `over <sweep>` to stage `{}` to use axis values",
                            d.name
                        ),
                    }),
                );
            }
        }
        if axis_refs(&set.value).is_empty()
            && let Err(msg) = coerce(&set.value, ps.ty)
        {
            problems.push(type_problem(set, ps, &msg));
        }
    }
}

fn kind_of(
    d: &StageDecl,
    registry: &Registry,
    problems: &mut Problems,
) -> Option<Arc<dyn StageKind>> {
    match &d.kind {
        None => {
            problems.push(
                Problem::new(
                    d.loc,
                    format!("stage `{}` has no kind", d.name),
                    "what does it run?",
                )
                .help("add a kind, e.g. kind \"train/dqn\" (`prunus kinds` lists them)"),
            );
            None
        }
        Some((k, loc)) => {
            let kind = registry.get(k);
            if kind.is_none() {
                problems.push(
                    Problem::new(*loc, format!("unknown stage kind `{k}`"), "no such kind").help(
                        did_you_mean(k, registry.names()).unwrap_or_else(|| {
                            format!(
                                "known kinds: {}",
                                registry.names().collect::<Vec<_>>().join(", ")
                            )
                        }),
                    ),
                );
            }
            kind
        }
    }
}

fn sweep_of<'a>(
    d: &StageDecl,
    p: &'a Pipeline,
    by_name: &HashMap<&str, &'a Sweep>,
    problems: &mut Problems,
) -> Option<&'a Sweep> {
    let (name, loc) = d.over.as_ref()?;
    let found = by_name.get(name.as_str()).copied();
    if found.is_none() {
        let names: Vec<&str> = p.sweeps.iter().map(|s| s.name.as_str()).collect();
        problems.push(
            Problem::new(*loc, format!("unknown sweep `{name}`"), "no such sweep").help(
                did_you_mean(name, names.iter().copied())
                    .unwrap_or_else(|| format!("define it: sweep {name} {{ seed 0 1 }}")),
            ),
        );
    }
    found
}

fn unknown_key(
    set: &ParamSet,
    kind: &dyn StageKind,
    spec: &HashMap<&'static str, ParamSpec>,
) -> Problem {
    let mut keys: Vec<&str> = spec.keys().copied().collect();
    keys.sort();
    Problem::new(
        set.loc,
        format!("`{}` is not a parameter of kind `{}`", set.key, kind.name()),
        "unknown key",
    )
    .help(if UPSTREAM_WORDS.contains(&set.key.as_str()) {
        format!(
            "a stage names the stages it reads with `needs`: needs \"{}\"",
            set.value
        )
    } else {
        did_you_mean(&set.key, keys.iter().copied()).unwrap_or_else(|| {
            format!(
                "`prunus kinds {}` lists its parameters: {}",
                kind.name(),
                keys.join(", ")
            )
        })
    })
}

/// Keys users write for upstream stages, which pipelines spell `needs`.
const UPSTREAM_WORDS: [&str; 6] = [
    "after",
    "input",
    "inputs",
    "depends",
    "depends-on",
    "upstream",
];

pub(super) fn type_problem(set: &ParamSet, ps: &ParamSpec, msg: &str) -> Problem {
    Problem::new(
        set.loc,
        format!("`{}` {msg}", set.key),
        format!("expected {}", ps.ty),
    )
    .help(format!("`{}`: {}", ps.key, ps.doc))
}
