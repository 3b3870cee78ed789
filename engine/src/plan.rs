//! Planning: each instance's key, whether its result is already in the store, and if not,
//! why it must run (new, parameters changed, upstream changed, kind version bumped ...).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use prunus_store::{ActionResult, Digest, Store};

use crate::Error;
use crate::key::{Identity, InputId, KeyInfo, context_hash};
use crate::lower::Graph;
use crate::remote::{Found, RemoteCache};

/// The state of one instance before a run.
pub struct Entry {
    /// Known once every input's identity is known.
    pub info: Option<KeyInfo>,
    pub key: Option<Digest>,
    /// The stored result, when the key is cached.
    pub result: Option<ActionResult>,
    pub status: Status,
    /// Why the remote's result for the key is not used (untrusted, invalid), if it has one.
    pub refused: Option<String>,
}

pub enum Status {
    Cached,
    /// Not in the store but on the run's remote (checked, trusted): fetched, not run.
    Remote,
    /// Must run, with the reasons (key components that differ from the last recorded run).
    Run(Vec<String>),
    /// Its key depends on outputs of a deterministic upstream instance that must run first.
    Waits(String),
}

impl Status {
    pub fn label(&self) -> &'static str {
        match self {
            Status::Cached => "cached",
            Status::Remote => "remote",
            Status::Run(_) => "run",
            Status::Waits(_) => "run",
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Status::Cached => String::new(),
            Status::Remote => "fetched from the remote".into(),
            Status::Run(reasons) => reasons.join("; "),
            Status::Waits(up) => format!("after {up} (upstream runs first)"),
        }
    }
}

/// The name of the ref that records an instance's last result.
pub fn ref_name(graph: &Graph, instance: usize) -> String {
    format!("{}:{}", graph.name, graph.instances[instance].name)
}

/// Computes keys in dependency order and looks each up in the store.
pub fn plan(graph: &Graph, store: &Store) -> Result<Vec<Entry>, Error> {
    plan_with(graph, store, None)
}

/// Computes keys in dependency order and looks each up in the store, then on `remote`.
pub fn plan_with(
    graph: &Graph,
    store: &Store,
    remote: Option<&RemoteCache>,
) -> Result<Vec<Entry>, Error> {
    let mut files = FileHashes::default();
    // Large sweeps: list what the store holds once instead of probing it per instance.
    let listed = graph.instances.len() > 256;
    let actions = if listed {
        Some(store.action_keys()?)
    } else {
        None
    };
    let refs = if listed {
        Some(store.ref_names()?)
    } else {
        None
    };
    let mut entries: Vec<Entry> = Vec::with_capacity(graph.instances.len());
    for i in 0..graph.instances.len() {
        let entry = match key_info(graph, i, &mut files, |j| identity(graph, j, &entries[j]))? {
            Err(waits_for) => Entry {
                info: None,
                key: None,
                result: None,
                status: Status::Waits(graph.instances[waits_for].name.clone()),
                refused: None,
            },
            Ok(info) => {
                let key = info.key();
                let local = match &actions {
                    Some(keys) if !keys.contains(&key) => None,
                    _ => store.lookup(&key)?,
                };
                let (result, status, refused) = match find(store, remote, &key, local)? {
                    Hit::Local(r) => (Some(r), Status::Cached, None),
                    Hit::Remote(r) => (Some(r), Status::Remote, None),
                    Hit::Miss(refused) => {
                        let mut reasons = match &refs {
                            Some(names) if !names.contains(&ref_name(graph, i)) => {
                                vec!["new".into()]
                            }
                            _ => why(graph, i, &info, store)?,
                        };
                        reasons.extend(refused.clone());
                        (None, Status::Run(reasons), refused)
                    }
                };
                Entry {
                    info: Some(info),
                    key: Some(key),
                    result,
                    status,
                    refused,
                }
            }
        };
        entries.push(entry);
    }
    Ok(entries)
}

/// Where a key's result is.
pub enum Hit {
    Local(ActionResult),
    /// On the remote, checked; not yet fetched.
    Remote(ActionResult),
    /// Nowhere; with why the remote's entry is not used, if it has one.
    Miss(Option<String>),
}

/// The result for `key`: `local` (the store's, looked up by the caller), else the remote's.
pub fn find(
    store: &Store,
    remote: Option<&RemoteCache>,
    key: &Digest,
    local: Option<ActionResult>,
) -> Result<Hit, Error> {
    if let Some(r) = local {
        return Ok(Hit::Local(r));
    }
    Ok(match remote.map(|r| r.find(store, key)) {
        Some(Found::Result(r)) => Hit::Remote(r),
        Some(Found::Refused(why)) => Hit::Miss(Some(why)),
        Some(Found::Absent) | None => Hit::Miss(None),
    })
}

/// How instance `j` is named in its consumers' keys, if already known.
pub fn identity(graph: &Graph, j: usize, e: &Entry) -> Option<Identity> {
    if graph
        .stage_of(j)
        .kind
        .deterministic(&graph.instances[j].params)
    {
        e.result.as_ref().map(|r| {
            Identity::Outputs(
                r.outputs
                    .iter()
                    .map(|(n, b)| (n.clone(), b.digest.to_string()))
                    .collect(),
            )
        })
    } else {
        e.key.map(|k| Identity::Key(k.to_string()))
    }
}

/// The key components of instance `i`, or the first input whose identity is not known yet.
pub fn key_info(
    graph: &Graph,
    i: usize,
    files: &mut FileHashes,
    mut identity: impl FnMut(usize) -> Option<Identity>,
) -> Result<Result<KeyInfo, usize>, Error> {
    let inst = &graph.instances[i];
    let stage = &graph.stages[inst.stage];
    let mut inputs = Vec::with_capacity(inst.inputs.len());
    for &j in &inst.inputs {
        let Some(identity) = identity(j) else {
            return Ok(Err(j));
        };
        let up = &graph.instances[j];
        inputs.push(InputId {
            instance: up.name.clone(),
            context: context_hash(&up.axes),
            identity,
        });
    }
    let mut file_digests = BTreeMap::new();
    for key in &stage.path_params {
        for rel in inst.params.strs(key).unwrap_or_default() {
            let digest = files.get(&graph.base_dir, &rel).map_err(|e| Error::Deps {
                instance: inst.name.clone(),
                path: graph.base_dir.join(&rel).display().to_string(),
                source: e,
            })?;
            file_digests.insert(rel, digest);
        }
    }
    // Parameters at their kind's default stay out of the key: an explicit default keys like
    // an implicit one, and a new parameter whose default keeps the old behaviour leaves every
    // cached result valid (changing a default is a kind-version bump).
    let params = inst
        .params
        .0
        .iter()
        .filter(|(k, v)| stage.defaults.get(k.as_str()) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Ok(KeyInfo {
        kind: stage.kind.name().to_string(),
        version: stage.kind.version(),
        params,
        axes: inst.axes.clone(),
        files: file_digests,
        inputs,
    }))
}

/// Files declared by `deps`, hashed once per planning.
#[derive(Default)]
pub struct FileHashes(HashMap<String, String>);

impl FileHashes {
    fn get(&mut self, base: &Path, rel: &str) -> std::io::Result<String> {
        if let Some(d) = self.0.get(rel) {
            return Ok(d.clone());
        }
        let bytes = std::fs::read(base.join(rel))?;
        let d = blake3::hash(&bytes).to_hex().to_string();
        self.0.insert(rel.to_string(), d.clone());
        Ok(d)
    }
}

/// Why instance `i` runs: what differs from the last result recorded for it.
fn why(graph: &Graph, i: usize, info: &KeyInfo, store: &Store) -> Result<Vec<String>, Error> {
    // A ref garbled by a power cut (refs are not fsynced) only loses the explanation.
    let prev = match store.get_ref(&ref_name(graph, i)) {
        Err(prunus_store::StoreError::BadRef { .. }) => None,
        other => other?,
    };
    let Some(prev_key) = prev else {
        return Ok(vec!["new".into()]);
    };
    if prev_key == info.key() {
        return Ok(vec![
            "no result in the store (removed by gc, or a run that failed)".into(),
        ]);
    }
    let prev = store
        .lookup(&prev_key)?
        .and_then(|r| serde_json::from_value::<KeyInfo>(r.key_info).ok());
    Ok(match prev {
        None => vec!["the last run's record is gone; running anew".into()],
        Some(prev) => diff(&prev, info),
    })
}

/// Human-readable differences between two keys' components, most telling first.
pub fn diff(old: &KeyInfo, new: &KeyInfo) -> Vec<String> {
    let mut out = Vec::new();
    if old.kind != new.kind {
        out.push(format!("kind changed: {} -> {}", old.kind, new.kind));
    } else if old.version != new.version {
        out.push(format!(
            "kind version bumped: {} -> {}",
            old.version, new.version
        ));
    }
    let mut changed = Vec::new();
    for (k, v) in &new.params {
        match old.params.get(k) {
            Some(o) if o == v => {}
            Some(o) => changed.push(format!("{k}: {o} -> {v}")),
            None => changed.push(format!("{k}: default -> {v}")),
        }
    }
    for (k, o) in old
        .params
        .iter()
        .filter(|(k, _)| !new.params.contains_key(*k))
    {
        changed.push(format!("{k}: {o} -> default"));
    }
    if !changed.is_empty() {
        out.push(format!("params changed ({})", changed.join(", ")));
    }
    if old.axes != new.axes {
        out.push("axes changed".into());
    }
    let files: Vec<&String> = new
        .files
        .iter()
        .filter(|(p, d)| old.files.get(*p) != Some(d))
        .map(|(p, _)| p)
        .collect();
    if !files.is_empty() || old.files.len() != new.files.len() {
        out.push(format!(
            "files changed ({})",
            files
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let old_inputs: HashMap<&str, &InputId> = old
        .inputs
        .iter()
        .map(|i| (i.instance.as_str(), i))
        .collect();
    let mut up = Vec::new();
    for i in &new.inputs {
        match old_inputs.get(i.instance.as_str()) {
            Some(o) if *o == i => {}
            Some(_) => up.push(format!("{} changed", i.instance)),
            None => up.push(format!("{} added", i.instance)),
        }
    }
    let removed =
        old.inputs.len() + up.iter().filter(|u| u.ends_with("added")).count() > new.inputs.len();
    if removed {
        up.push("inputs removed".into());
    }
    if !up.is_empty() {
        let n = up.len();
        let shown: Vec<String> = up.into_iter().take(3).collect();
        out.push(format!(
            "upstream changed ({}{})",
            shown.join(", "),
            if n > 3 {
                format!(", and {} more", n - 3)
            } else {
                String::new()
            }
        ));
    }
    if out.is_empty() {
        out.push("key encoding changed".into());
    }
    out
}
