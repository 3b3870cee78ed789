//! The stage kinds a pipeline can name. The engine itself knows only its built-ins
//! (`command`, `test/echo`); a binary adds the science crates' kinds with [`Registry::with`],
//! so the engine builds, and can be used with one's own kinds, without any of them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use prunus_stage::{Kinds, StageKind};

use crate::kinds;

pub struct Registry {
    kinds: BTreeMap<&'static str, Arc<dyn StageKind>>,
}

impl Registry {
    /// Only the built-in kinds (`command`, `test/echo`); `command` paths resolve against
    /// `base_dir` (the pipeline's directory).
    pub fn builtin(base_dir: &Path) -> Registry {
        let list: Vec<Arc<dyn StageKind>> = vec![
            Arc::new(kinds::command::Command::new(base_dir)),
            Arc::new(kinds::echo::Echo),
        ];
        Registry {
            kinds: list.into_iter().map(|k| (k.name(), k)).collect(),
        }
    }

    /// These kinds too (a kind of the same name replaces the earlier one).
    pub fn with(mut self, kinds: Kinds) -> Registry {
        for k in kinds {
            self.kinds.insert(k.name(), k);
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn StageKind>> {
        self.kinds.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn StageKind>> {
        self.kinds.values()
    }
}
