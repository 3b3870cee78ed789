//! Cache keys: blake3 over a canonical, length-prefixed encoding of what determines a stage
//! instance's outputs: its kind and the kind's version, its parameters that differ from the
//! kind's defaults (so adding a parameter keeps old keys; changing a default bumps the kind's
//! version), its axes, the contents of files it declares (`deps`), and the identity of each
//! input.
//!
//! An input's identity is its upstream *key* when the upstream kind is nondeterministic (a
//! rerun of GPU training does not cascade), and its output *digests* when it is
//! deterministic (early cutoff: a kind-version bump that reproduces the same bytes does not
//! rerun anything downstream). Never a map's iteration order, a timestamp or the host.
//!
//! The [`KeyInfo`] is stored with each result, so `prunus explain` can say which component
//! changed.

use std::collections::BTreeMap;

use prunus_stage::Value;
use prunus_store::Digest;
use serde::{Deserialize, Serialize};

/// Version of the encoding itself; bumping it changes every key.
const DOMAIN: &[u8] = b"prunus-key/2\n";

/// Everything a key is made of, in readable form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub kind: String,
    pub version: u32,
    /// The parameters not at their kind's default.
    pub params: BTreeMap<String, Value>,
    pub axes: BTreeMap<String, Value>,
    /// Declared files (relative path) -> blake3 of their contents.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    pub inputs: Vec<InputId>,
}

/// How a downstream key names one input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputId {
    pub instance: String,
    /// Hash of the upstream instance's parameters and axes, which the downstream kind sees.
    pub context: String,
    #[serde(flatten)]
    pub identity: Identity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    /// The upstream stage's key (nondeterministic upstream).
    Key(String),
    /// Output name -> digest (deterministic upstream).
    Outputs(BTreeMap<String, String>),
}

impl KeyInfo {
    /// The cache key.
    pub fn key(&self) -> Digest {
        let mut e = Encoder(blake3::Hasher::new());
        e.0.update(DOMAIN);
        e.str(&self.kind);
        e.u64(self.version as u64);
        e.map(&self.params);
        e.map(&self.axes);
        e.u64(self.files.len() as u64);
        for (path, digest) in &self.files {
            e.str(path);
            e.str(digest);
        }
        e.u64(self.inputs.len() as u64);
        for input in &self.inputs {
            e.str(&input.instance);
            e.str(&input.context);
            match &input.identity {
                Identity::Key(k) => {
                    e.0.update(b"k");
                    e.str(k);
                }
                Identity::Outputs(outs) => {
                    e.0.update(b"o");
                    e.u64(outs.len() as u64);
                    for (name, d) in outs {
                        e.str(name);
                        e.str(d);
                    }
                }
            }
        }
        Digest(*e.0.finalize().as_bytes())
    }
}

/// The hash of what a downstream kind sees of an upstream instance besides its name and
/// outputs: its axis values. (Upstream parameters are not shown to kinds, so an edit that
/// leaves a deterministic stage's outputs unchanged stops there: early cutoff.)
pub fn context_hash(axes: &BTreeMap<String, Value>) -> String {
    let mut e = Encoder(blake3::Hasher::new());
    e.map(axes);
    e.0.finalize().to_hex()[..32].to_string()
}

struct Encoder(blake3::Hasher);

impl Encoder {
    fn u64(&mut self, n: u64) {
        self.0.update(&n.to_le_bytes());
    }

    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.update(s.as_bytes());
    }

    fn map(&mut self, m: &BTreeMap<String, Value>) {
        self.u64(m.len() as u64);
        for (k, v) in m {
            self.str(k);
            self.value(v);
        }
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Bool(b) => {
                self.0.update(&[b'b', *b as u8]);
            }
            Value::Int(i) => {
                self.0.update(b"i");
                self.0.update(&i.to_le_bytes());
            }
            Value::Float(x) => {
                self.0.update(b"f");
                // -0.0 and 0.0 are the same parameter.
                let x = if *x == 0.0 { 0.0f64 } else { *x };
                self.0.update(&x.to_bits().to_le_bytes());
            }
            Value::Str(s) => {
                self.0.update(b"s");
                self.str(s);
            }
            Value::List(items) => {
                self.0.update(b"l");
                self.u64(items.len() as u64);
                for i in items {
                    self.value(i);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> KeyInfo {
        KeyInfo {
            kind: "train/dqn".into(),
            version: 1,
            params: [
                ("lr".to_string(), Value::Float(0.1)),
                ("steps".to_string(), Value::Int(10)),
            ]
            .into(),
            axes: BTreeMap::new(),
            files: BTreeMap::new(),
            inputs: vec![],
        }
    }

    #[test]
    fn every_component_changes_the_key() {
        let base = info().key();
        let mut i = info();
        i.version = 2;
        assert_ne!(i.key(), base);
        let mut i = info();
        i.params.insert("lr".into(), Value::Float(0.2));
        assert_ne!(i.key(), base);
        let mut i = info();
        i.params.insert("steps".into(), Value::Float(10.0));
        assert_ne!(i.key(), base, "an integer and a float are different values");
        let mut i = info();
        i.axes.insert("seed".into(), Value::Int(0));
        assert_ne!(i.key(), base);
        let mut i = info();
        i.kind = "train/rainbow".into();
        assert_ne!(i.key(), base);
        assert_eq!(info().key(), base, "deterministic");
    }

    #[test]
    fn length_prefixes_keep_fields_apart() {
        let mut a = info();
        a.params = [("ab".to_string(), Value::Str("c".into()))].into();
        let mut b = info();
        b.params = [("a".to_string(), Value::Str("bc".into()))].into();
        assert_ne!(a.key(), b.key());
    }

    #[test]
    fn negative_zero_is_zero() {
        let mut a = info();
        a.params.insert("x".into(), Value::Float(0.0));
        let mut b = info();
        b.params.insert("x".into(), Value::Float(-0.0));
        assert_eq!(a.key(), b.key());
    }
}
