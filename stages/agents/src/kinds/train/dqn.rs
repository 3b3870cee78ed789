//! `train/dqn`: Dopamine's JAX DQN (`dopamine/jax/agents/dqn/dqn_agent.py` at
//! google/dopamine@1093179): the TD objective ([`crate::objectives::td`]), 1-step returns and
//! uniform replay by default. Its own parameter: `loss`.

use prunus_stage::{ParamSpec, ParamType, Params, StageError, Value};

use super::common::{Defaults, spec};
use crate::kinds::param_err;
use crate::objectives::{Objective, TdLoss};

pub const NAME: &str = "train/dqn";

pub const DOC: &str = "Trains Dopamine's JAX DQN (MSE loss, Adam, hard target updates) on an environment, \
                 optionally with gradual magnitude pruning and/or the paper's baselines (weight decay, \
                 L2 feature normalisation, Reset, ReDo); writes per-iteration returns, layer \
                 sparsities, checkpoints for the probes and a fixed probe batch. Resumes after a kill.";

pub const DEFAULTS: Defaults = Defaults {
    n_step: 1,
    prioritized: false,
};

/// The parameters only `train/dqn` takes.
pub fn params() -> Vec<ParamSpec> {
    use ParamType::*;
    vec![spec(
        "loss",
        Str,
        Some(Value::Str("mse".into())),
        "train/dqn: mse (Dopamine JAX default) | huber",
    )]
}

/// The parameters `train/dqn` declared (and ignored) until it took only its own, with their
/// defaults then (see [`Setup::previous_fingerprint`](super::Setup::previous_fingerprint)).
pub fn dropped() -> Vec<(&'static str, Value)> {
    vec![("atoms", Value::Int(51)), ("vmax", Value::Float(0.0))]
}

/// The TD objective with the loss `loss` names.
pub fn objective(p: &Params) -> Result<Objective, StageError> {
    let loss = p.str("loss")?;
    let loss = TdLoss::parse(loss)
        .ok_or_else(|| param_err("loss", format!("unknown loss `{loss}`; use mse or huber")))?;
    Ok(Objective::Dqn(loss))
}
