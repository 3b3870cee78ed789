//! The stage kinds a pipeline can name: the built-in `command` and `test/echo`, and every
//! kind the science crates contribute through their `kinds()`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use prunus_stage::StageKind;

use crate::kinds;

pub struct Registry {
    kinds: BTreeMap<&'static str, Arc<dyn StageKind>>,
}

impl Registry {
    /// Every kind prunus ships; `command` paths resolve against `base_dir` (the pipeline's
    /// directory).
    pub fn standard(base_dir: &Path) -> Registry {
        let mut kinds = Registry::builtin(base_dir).kinds;
        for k in prunus_agents::kinds()
            .into_iter()
            .chain(prunus_stats::kinds())
            .chain(prunus_figures::kinds())
        {
            kinds.insert(k.name(), k);
        }
        Registry { kinds }
    }

    /// Only the built-in kinds (`command`, `test/echo`).
    pub fn builtin(base_dir: &Path) -> Registry {
        let list: Vec<Arc<dyn StageKind>> = vec![
            Arc::new(kinds::command::Command::new(base_dir)),
            Arc::new(kinds::echo::Echo),
        ];
        Registry {
            kinds: list.into_iter().map(|k| (k.name(), k)).collect(),
        }
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
