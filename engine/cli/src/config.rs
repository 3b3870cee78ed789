//! The user's configuration: `$PRUNUS_CONFIG`, else `$XDG_CONFIG_HOME/prunus/config.kdl`,
//! else `~/.config/prunus/config.kdl`. KDL, like the pipelines:
//!
//! ```kdl
//! remote "lab" url="s3://lab-cache/prunus" endpoint="https://minio.lab.example:9000" default=#true
//! remote "nfs" url="file:///mnt/shared/prunus-remote"
//! trust "alice@gpu1:q83vEjOb5N8HdHmlYRzOy8bdCTzzKCSGtoCEG+P4Iu8="   // `prunus store key` of a colleague
//! executor "slurm" default=#true {   // runs go to Slurm unless a pipeline or --executor says otherwise
//!     partition "gpu"
//!     account "lab"
//! }
//! ```
//!
//! Credentials never go here: S3 takes them from the usual AWS environment variables.

use std::collections::BTreeMap;
use std::path::PathBuf;

use miette::{IntoDiagnostic, Result, WrapErr, miette};

/// A remote as the config names it.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    pub url: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// `store push`/`pull` use it when no remote is named.
    pub default: bool,
}

/// An `executor` block: its settings as written (the executor checks them) and whether runs
/// use it by default.
#[derive(Debug, Clone, Default)]
pub struct ExecutorConfig {
    pub default: bool,
    /// (key, values, line)
    pub settings: Vec<(String, Vec<String>, usize)>,
}

#[derive(Debug, Default)]
pub struct Config {
    pub remotes: BTreeMap<String, RemoteConfig>,
    pub executors: BTreeMap<String, ExecutorConfig>,
    /// Public keys whose signed results this user believes (`NAME:BASE64`).
    pub trusted: Vec<String>,
}

impl Config {
    /// The remote `store push`/`pull` use when none is named: the one marked
    /// `default=#true`, else the only one.
    pub fn default_remote(&self) -> Result<String> {
        let marked: Vec<&String> = self
            .remotes
            .iter()
            .filter(|(_, r)| r.default)
            .map(|(n, _)| n)
            .collect();
        match (marked.as_slice(), self.remotes.len()) {
            ([one], _) => Ok((*one).clone()),
            ([], 1) => Ok(self.remotes.keys().next().expect("one").clone()),
            _ => Err(miette!(
                help = format!(
                    "name one (`prunus store push lab`), or mark one in {} with \
                     remote \"lab\" url=\"...\" default=#true",
                    path().map_or("the config file".into(), |p| p.display().to_string())
                ),
                "no remote named, and {} configured remotes to choose from",
                if marked.len() > 1 {
                    "several default"
                } else if self.remotes.is_empty() {
                    "no"
                } else {
                    "several"
                }
            )),
        }
    }
}

/// Where the config file is looked for.
pub fn path() -> Option<PathBuf> {
    let var = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("PRUNUS_CONFIG")
        .or_else(|| var("XDG_CONFIG_HOME").map(|d| d.join("prunus/config.kdl")))
        .or_else(|| var("HOME").map(|h| h.join(".config/prunus/config.kdl")))
}

/// The config, or an empty one if there is no file.
pub fn load() -> Result<Config> {
    let Some(path) = path() else {
        return Ok(Config::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(e) => {
            return Err(e)
                .into_diagnostic()
                .wrap_err(format!("reading {}", path.display()));
        }
    };
    parse(&text).wrap_err(format!("in the config file {}", path.display()))
}

fn parse(text: &str) -> Result<Config> {
    let doc: kdl::KdlDocument = text.parse().map_err(|e: kdl::KdlError| miette!("{e}"))?;
    let mut config = Config::default();
    for node in doc.nodes() {
        let line = text[..node.span().offset()].matches('\n').count() + 1;
        let arg = |i: usize| node.entries().iter().filter(|e| e.name().is_none()).nth(i);
        let prop = |k: &str| node.get(k).and_then(|v| v.as_string()).map(str::to_string);
        match node.name().value() {
            "remote" => {
                let name = arg(0).and_then(|e| e.value().as_string()).ok_or_else(|| {
                    miette!("line {line}: `remote` needs a name: remote \"lab\" url=\"s3://bucket/prefix\"")
                })?;
                let url = prop("url").ok_or_else(|| {
                    miette!(
                        "line {line}: remote `{name}` needs url=\"s3://...\" or url=\"file:///...\""
                    )
                })?;
                let remote = RemoteConfig {
                    url,
                    endpoint: prop("endpoint"),
                    region: prop("region"),
                    default: node.get("default").and_then(|v| v.as_bool()) == Some(true),
                };
                config.remotes.insert(name.to_string(), remote);
            }
            "trust" => match arg(0).and_then(|e| e.value().as_string()) {
                Some(key) => config.trusted.push(key.to_string()),
                None => {
                    return Err(miette!(
                        "line {line}: `trust` takes a public key: trust \"NAME:BASE64\""
                    ));
                }
            },
            "executor" => {
                let name = arg(0).and_then(|e| e.value().as_string()).ok_or_else(|| {
                    miette!("line {line}: `executor` needs a name: executor \"slurm\" {{ partition \"gpu\" }}")
                })?;
                let exec = ExecutorConfig {
                    default: node.get("default").and_then(|v| v.as_bool()) == Some(true),
                    settings: executor_settings(text, node),
                };
                config.executors.insert(name.to_string(), exec);
            }
            other => {
                return Err(miette!(
                    "line {line}: unknown setting `{other}` (known: remote, trust, executor)"
                ));
            }
        }
    }
    Ok(config)
}

/// The children of an `executor` block: each a key and its values, with its line.
fn executor_settings(text: &str, node: &kdl::KdlNode) -> Vec<(String, Vec<String>, usize)> {
    let children = node.children().map(|c| c.nodes()).unwrap_or_default();
    children
        .iter()
        .map(|c| {
            let values = c
                .entries()
                .iter()
                .filter(|e| e.name().is_none())
                .map(|e| match e.value() {
                    kdl::KdlValue::String(s) => s.clone(),
                    v => v.to_string(),
                })
                .collect();
            let line = text[..c.span().offset()].matches('\n').count() + 1;
            (c.name().value().to_string(), values, line)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn remotes_and_trusted_keys() {
        let c = parse(
            "remote \"lab\" url=\"s3://b/p\" endpoint=\"http://127.0.0.1:9000\"\n\
             // a colleague\ntrust \"alice@h:AAAA\"\n",
        )
        .unwrap();
        assert_eq!(c.remotes["lab"].url, "s3://b/p");
        assert_eq!(
            c.remotes["lab"].endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(c.trusted, ["alice@h:AAAA"]);
        let c = parse("executor \"slurm\" default=#true {\n    partition \"gpu\"\n    sbatch \"--a\" \"--b\"\n}\n").unwrap();
        let slurm = &c.executors["slurm"];
        assert!(slurm.default);
        assert_eq!(
            slurm.settings[1],
            ("sbatch".into(), vec!["--a".into(), "--b".into()], 3)
        );
        let e = parse("\n\nremote \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("needs url"), "{e}");
        assert!(
            parse("remotes \"x\"")
                .unwrap_err()
                .to_string()
                .contains("unknown setting")
        );
    }
}
