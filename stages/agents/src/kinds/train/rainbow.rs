//! `train/rainbow`: Dopamine's compact Rainbow (`dopamine/jax/agents/rainbow/rainbow_agent.py`
//! at google/dopamine@1093179): the C51 objective ([`crate::objectives::c51`]), 3-step returns
//! and prioritized replay by default. Its own parameters: `atoms` and `vmax`.

use prunus_stage::{ParamSpec, ParamType, Params, StageError, Value};

use super::common::{Defaults, or_default_f, spec};
use crate::kinds::param_err;
use crate::objectives::{Categorical, Objective};
use crate::presets::Preset;

pub const NAME: &str = "train/rainbow";

pub const DOC: &str = "Trains Dopamine's compact Rainbow (C51, 3-step returns, prioritized replay) on an \
                 environment, optionally with gradual magnitude pruning and/or the baselines (weight \
                 decay, L2, Reset, ReDo); same outputs as train/dqn.";

pub const DEFAULTS: Defaults = Defaults {
    n_step: 3,
    prioritized: true,
};

/// The parameters only `train/rainbow` takes.
pub fn params() -> Vec<ParamSpec> {
    use ParamType::*;
    vec![
        spec(
            "atoms",
            Int,
            Some(Value::Int(51)),
            "train/rainbow: atoms of the C51 support",
        ),
        spec(
            "vmax",
            Float,
            Some(Value::Float(0.0)),
            "train/rainbow: support [-vmax, vmax]; 0: 10 (Atari), 100 (MinAtar, classic)",
        ),
    ]
}

/// The parameters `train/rainbow` declared (and ignored) until it took only its own, with their
/// defaults then (see [`Setup::previous_fingerprint`](super::Setup::previous_fingerprint)).
pub fn dropped() -> Vec<(&'static str, Value)> {
    vec![("loss", Value::Str("mse".into()))]
}

/// The C51 objective on the support `[-vmax, vmax]` (`vmax` 0: the family's).
pub fn objective(p: &Params, preset: &Preset) -> Result<Objective, StageError> {
    let atoms = p.u64("atoms")? as usize;
    if atoms < 2 {
        return Err(param_err("atoms", "needs at least 2 atoms"));
    }
    let vmax = or_default_f(p, "vmax", preset.vmax)? as f32;
    Ok(Objective::C51(Categorical {
        atoms,
        vmin: -vmax,
        vmax,
    }))
}
