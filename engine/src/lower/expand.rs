//! Instances, stage by stage in dependency order: one per sweep point, named by its axis
//! values, with resolved parameters (defaults, literals, axis values, `{axis}` templates),
//! resources, and the upstream instances it reads.

use std::collections::{BTreeMap, HashMap};

use prunus_stage::{ParamSpec, ParamType, Params, Resources, StageError, StageKind, Value};

use super::checks::{Resolved, type_problem};
use super::values::{axis_refs, coerce, set_resource, substitute};
use super::{Instance, Stage};
use crate::diagnostic::{Problem, Problems};
use crate::pipeline::{Cond, Need, ParamSet, StageDecl, Sweep};
use crate::sweep;

/// Every stage's instances, in `order`.
pub(super) fn instances(
    st: &Resolved,
    order: &[usize],
    problems: &mut Problems,
) -> (Vec<Stage>, Vec<Instance>) {
    let mut x = Expansion {
        stages: Vec::new(),
        instances: Vec::new(),
        stage_pos: vec![usize::MAX; st.decls.len()],
        consumed: consumed(st),
    };
    let limit = crate::pipeline::max_instances() as usize;
    for &i in order {
        x.stage(st, i, problems);
        if x.instances.len() > limit {
            let d = &st.decls[i];
            problems.push(
                Problem::new(
                    d.loc,
                    format!("the pipeline has more than {limit} instances once stage `{}` is expanded", d.name),
                    "too many instances",
                )
                .help("run fewer stages over the large sweeps, or raise the limit with PRUNUS_MAX_INSTANCES=N"),
            );
            break;
        }
    }
    (x.stages, x.instances)
}

/// The stages expanded so far, and where each declared stage landed.
struct Expansion {
    stages: Vec<Stage>,
    instances: Vec<Instance>,
    stage_pos: Vec<usize>,
    /// Whether another stage needs each declared stage (it is then not exported by default).
    consumed: Vec<bool>,
}

/// Which declared stages another stage needs, in one pass over every `needs`.
fn consumed(st: &Resolved) -> Vec<bool> {
    let mut out = vec![false; st.decls.len()];
    for need in st.decls.iter().flat_map(|d| &d.needs) {
        if let Some(&j) = st.index.get(need.stage.as_str()) {
            out[j] = true;
        }
    }
    out
}

impl Expansion {
    /// Expands stage `i` (its upstream stages are expanded already).
    fn stage(&mut self, st: &Resolved, i: usize, problems: &mut Problems) {
        let d = &st.decls[i];
        let kind = st.kinds[i].clone().expect("checked");
        let start = self.instances.len();
        let points = points(d, st.sweeps[i], problems);
        let stage = StageParams::new(st, i, problems);
        let mut seen_names = HashMap::new();
        let mut stage_resources = None;
        let (mut bad_outputs, mut missing_deps) = (false, false);
        for (axes, name) in points {
            let params = stage.params(&axes, kind.as_ref(), problems);
            if !bad_outputs {
                bad_outputs = !outputs_are_plain(kind.as_ref(), d, &params, problems);
            }
            if !missing_deps && (!stage.uniform() || self.instances.len() == start) {
                missing_deps = !deps_exist(st, i, &params, problems);
            }
            // Uniform stages share their parameters: one check covers every instance.
            if !stage.uniform() || self.instances.len() == start {
                stage.validate(kind.as_ref(), &params, &name, problems);
            }
            // Kinds rarely size resources by parameters; compute once when they do not.
            let resources = if stage.uniform() {
                *stage_resources.get_or_insert_with(|| resources(kind.as_ref(), d, &params))
            } else {
                resources(kind.as_ref(), d, &params)
            };
            if seen_names.insert(name.clone(), ()).is_some() {
                problems.push(
                    Problem::new(d.loc, format!("two instances of stage `{}` are both named `{name}`", d.name), "duplicate instance")
                        .help("axis values that differ only in punctuation map to the same name; rename them"),
                );
            }
            self.instances.push(Instance {
                name,
                stage: self.stages.len(),
                axes,
                params,
                inputs: Vec::new(),
                resources,
            });
        }
        for need in &d.needs {
            self.wire(st, i, need, start, problems);
        }
        for inst in &mut self.instances[start..] {
            inst.inputs.sort_unstable();
            inst.inputs.dedup();
        }
        self.stage_pos[i] = self.stages.len();
        self.stages.push(Stage {
            name: d.name.clone(),
            path_params: st.specs[i]
                .values()
                .filter(|s| s.ty == ParamType::Paths)
                .map(|s| s.key.to_string())
                .collect(),
            defaults: st.specs[i]
                .values()
                .filter_map(|s| Some((s.key, s.default.clone()?)))
                .collect(),
            resources_set: d
                .resources
                .iter()
                .map(|(k, _, loc)| (k.clone(), *loc))
                .collect(),
            kind,
            loc: d.loc,
            instances: start..self.instances.len(),
            export: d.export.unwrap_or(!self.consumed[i]),
        });
    }

    /// Inputs of stage `i`'s instances (from `start`) through `need`: the upstream instances
    /// that match the filters and agree on the axes the two sweeps share.
    fn wire(
        &mut self,
        st: &Resolved,
        i: usize,
        need: &Need,
        start: usize,
        problems: &mut Problems,
    ) {
        let Some(&j) = st.index.get(need.stage.as_str()) else {
            return;
        };
        let shared: Vec<String> = st
            .axes_of(i)
            .into_iter()
            .filter(|a| st.axes_of(j).contains(a))
            .map(String::from)
            .collect();
        let mut by_shared: HashMap<Vec<String>, Vec<usize>> = HashMap::new();
        for u in self.stages[self.stage_pos[j]].instances.clone() {
            let inst = &self.instances[u];
            if need.filters.iter().all(|f| matches_filter(inst, f)) {
                by_shared
                    .entry(shared_key(&inst.axes, &shared))
                    .or_default()
                    .push(u);
            }
        }
        let d = &st.decls[i];
        for inst in &mut self.instances[start..] {
            match by_shared.get(&shared_key(&inst.axes, &shared)) {
                Some(ups) => inst.inputs.extend(ups),
                None => problems.push(
                    Problem::new(need.loc, format!("`needs {}` selects no instance for some instances of `{}` (e.g. {})", need.stage, d.name, inst.name), "selects nothing")
                        .help("check the filters and that the two sweeps share values on their common axes"),
                ),
            }
        }
    }
}

/// The sweep points of stage `d` with their instance names (one unnamed point without a
/// sweep); a sweep whose excludes leave nothing is a problem.
fn points(
    d: &StageDecl,
    sweep: Option<&Sweep>,
    problems: &mut Problems,
) -> Vec<(BTreeMap<String, Value>, String)> {
    let Some(s) = sweep else {
        return vec![(BTreeMap::new(), d.name.clone())];
    };
    let segs = sweep::segments(s);
    let points: Vec<(BTreeMap<String, Value>, String)> = sweep::expand_indices(s)
        .into_iter()
        .map(|point| {
            let mut name = d.name.clone();
            let mut axes = BTreeMap::new();
            for (n, (a, k)) in s.axes.iter().zip(point).enumerate() {
                name.push('/');
                name.push_str(&segs[n][k]);
                axes.insert(a.name.clone(), a.values[k].clone());
            }
            (axes, name)
        })
        .collect();
    if points.is_empty() {
        problems.push(
            Problem::new(
                s.loc,
                format!("sweep `{}` has no points left", s.name),
                "everything is excluded",
            )
            .help("check its `exclude` lines"),
        );
    }
    points
}

/// What every instance of a stage shares: defaults and literal settings; and what varies by
/// instance: parameters bound to axes of the same name, and `{axis}` templates.
struct StageParams<'a> {
    base: Params,
    spec: &'a HashMap<&'static str, ParamSpec>,
    templated: Vec<&'a ParamSet>,
    bound: Vec<&'a str>,
    decl: &'a StageDecl,
    sweep: Option<&'a Sweep>,
}

impl<'a> StageParams<'a> {
    fn new(st: &'a Resolved, i: usize, problems: &mut Problems) -> Self {
        let (d, spec) = (&st.decls[i], &st.specs[i]);
        let mut base = Params::default();
        for ps in spec.values() {
            if let Some(v) = &ps.default {
                base.0.insert(ps.key.to_string(), v.clone());
            }
        }
        let mut templated: Vec<&ParamSet> = Vec::new();
        for set in &d.params {
            let Some(ps) = spec.get(set.key.as_str()) else {
                continue;
            };
            if axis_refs(&set.value).is_empty() {
                if let Ok(v) = coerce(&set.value, ps.ty) {
                    base.0.insert(set.key.clone(), v);
                }
            } else {
                templated.push(set);
            }
        }
        let bound: Vec<&str> = st
            .axes_of(i)
            .into_iter()
            .filter(|a| spec.contains_key(a) && !d.params.iter().any(|s| s.key == *a))
            .collect();
        for (k, v, loc) in &d.resources {
            if let Err(msg) = set_resource(&mut Resources::default(), k, v) {
                problems.push(
                    Problem::new(*loc, msg, "invalid resource")
                        .help("resources cpus=2 gpus=1 memory=\"8G\" time=\"12h\""),
                );
            }
        }
        StageParams {
            base,
            spec,
            templated,
            bound,
            decl: d,
            sweep: st.sweeps[i],
        }
    }

    /// The kind's own check of an instance's parameters ([`StageKind::validate`]), reported
    /// where the bad value came from: its setting, the sweep axis that bound it, or the stage
    /// (a default).
    fn validate(
        &self,
        kind: &dyn StageKind,
        params: &Params,
        instance: &str,
        problems: &mut Problems,
    ) {
        let Err(e) = kind.validate(params) else {
            return;
        };
        let d = self.decl;
        let StageError::Param { key, message } = e else {
            problems.push(
                Problem::new(
                    d.loc,
                    format!("kind `{}` cannot run stage `{}`: {e}", kind.name(), d.name),
                    "here",
                )
                .help(format!(
                    "in instance {instance}; `prunus kinds {}` documents its parameters",
                    kind.name()
                )),
            );
            return;
        };
        let message = format!("invalid `{key}` for kind `{}`: {message}", kind.name());
        let doc = self
            .spec
            .get(key.as_str())
            .map_or_else(String::new, |ps| format!("`{key}`: {} ({})", ps.doc, ps.ty));
        let set = d.params.iter().rev().find(|s| s.key == key);
        let axis = self
            .sweep
            .and_then(|s| s.axes.iter().find(|a| a.name == key));
        let problem = match (set, axis) {
            (Some(set), _) if axis_refs(&set.value).is_empty() => {
                Problem::new(set.loc, message, "invalid value").help(doc)
            }
            (Some(set), _) => Problem::new(set.loc, message, "invalid value here")
                .help(format!("in instance {instance}; {doc}")),
            (None, Some(a)) if self.bound.contains(&key.as_str()) => Problem::new(
                a.loc,
                message,
                format!("sets `{key}` of stage `{}`", d.name),
            )
            .help(format!("in instance {instance}; {doc}")),
            _ => Problem::new(d.loc, format!("{message} (its default)"), "here")
                .help(format!("set `{key}` in the stage; {doc}")),
        };
        problems.push(problem);
    }

    /// Whether every instance has the same parameters (and so the same resources).
    fn uniform(&self) -> bool {
        self.decl.resources.is_empty() && self.templated.is_empty() && self.bound.is_empty()
    }

    /// The resolved parameters of the instance at `axes`.
    fn params(
        &self,
        axes: &BTreeMap<String, Value>,
        kind: &dyn StageKind,
        problems: &mut Problems,
    ) -> Params {
        let mut params = self.base.clone();
        for a in &self.bound {
            let ps = &self.spec[a];
            match coerce(&axes[*a], ps.ty) {
                Ok(v) => {
                    params.0.insert(a.to_string(), v);
                }
                Err(msg) => problems.push(
                    Problem::new(
                        self.decl.loc,
                        format!("axis `{a}` cannot set parameter `{a}`: {msg}"),
                        "here",
                    )
                    .help(format!(
                        "`{a}` of kind `{}` is {}",
                        kind.name(),
                        ps.ty
                    )),
                ),
            }
        }
        for set in &self.templated {
            let ps = &self.spec[set.key.as_str()];
            let v = substitute(&set.value, axes);
            match coerce(&v, ps.ty) {
                Ok(v) => {
                    params.0.insert(set.key.clone(), v);
                }
                Err(msg) => problems.push(type_problem(set, ps, &msg)),
            }
        }
        params
    }
}

/// The kind's resources for these parameters, overridden by the stage's `resources`.
/// Whether every output the kind declares for these parameters is a plain relative name
/// (a `command` stage's `outputs "/etc/x"` must fail here, not write there); else a problem
/// at the `outputs` setting, or at the stage when the kind chose the names.
fn outputs_are_plain(
    kind: &dyn StageKind,
    d: &StageDecl,
    params: &Params,
    problems: &mut Problems,
) -> bool {
    let Some(reason) = kind
        .outputs(params)
        .iter()
        .find_map(|name| prunus_store::check_output_name(name).err())
    else {
        return true;
    };
    let loc = d
        .params
        .iter()
        .find(|s| s.key == "outputs")
        .map_or(d.loc, |s| s.loc);
    problems.push(
        Problem::new(loc, format!("stage `{}`: {reason}", d.name), "not a plain relative name")
            .help("name outputs relative to the stage's output folder, e.g. `returns.csv` or `plots/curve.svg`"),
    );
    false
}

/// Files the key hashes (path parameters such as `deps`) must exist: reported where they are
/// set, not when planning cannot hash them.
fn deps_exist(st: &Resolved, i: usize, params: &Params, problems: &mut Problems) -> bool {
    let d = &st.decls[i];
    for spec in st.specs[i].values().filter(|s| s.ty == ParamType::Paths) {
        for rel in params.strs(spec.key).unwrap_or_default() {
            let path = st.base_dir.join(&rel);
            if path.is_file() {
                continue;
            }
            let loc = d
                .params
                .iter()
                .rev()
                .find(|s| s.key == spec.key)
                .map_or(d.loc, |s| s.loc);
            problems.push(
                Problem::new(loc, format!("stage `{}`: `{rel}` (in `{}`) is not a file", d.name, spec.key), "no such file")
                    .help(format!("paths are relative to the pipeline file's folder ({}); create the file or fix the path", st.base_dir.display())),
            );
            return false;
        }
    }
    true
}

fn resources(kind: &dyn StageKind, d: &StageDecl, params: &Params) -> Resources {
    let mut r = kind.resources(params);
    for (k, v, _) in &d.resources {
        let _ = set_resource(&mut r, k, v);
    }
    r
}

fn matches_filter(inst: &Instance, f: &Cond) -> bool {
    inst.axes
        .get(&f.axis)
        .is_some_and(|v| sweep::same(v, &f.value))
}

fn shared_key(axes: &BTreeMap<String, Value>, shared: &[String]) -> Vec<String> {
    shared
        .iter()
        .map(|a| match &axes[a] {
            Value::Int(i) => (*i as f64).to_string(),
            v => v.to_string(),
        })
        .collect()
}
