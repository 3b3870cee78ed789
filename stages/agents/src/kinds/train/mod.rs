//! The stage kinds `train/dqn` ([`dqn`]), `train/rainbow` ([`rainbow`]) and the Atari-100k
//! agents `train/drq-eps` and `train/der` ([`atari100k`]): one value-based training run each, with the parameters both share ([`common`]) resolved into a [`Setup`]
//! ([`setup`]) and run by [`run`].
//!
//! Defaults are Dopamine's, chosen by the environment's family ([`crate::presets`]) because the
//! paper's Atari settings and Dopamine's MinAtar settings differ: numeric hyperparameters whose
//! default is `0` mean "the family default" (listed in each `doc`). The cache key covers the
//! values as written; the resolved values are logged.

pub mod atari100k;
pub mod common;
pub(crate) mod cost;
pub mod dqn;
pub mod rainbow;
pub mod run;
pub mod setup;

use prunus_stage::{Context, ParamSpec, Params, Resources, StageError, StageKind};

use self::common::training_outputs;
pub use self::run::run_training;
pub use self::setup::{RedoSettings, Settings, Setup};
use crate::envs::EnvFactory;
use crate::presets::Family;

/// Which agent a kind trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Dqn,
    Rainbow,
    /// Atari-100k DrQ(ε).
    DrqEps,
    /// Atari-100k DER.
    Der,
}

impl Algorithm {
    /// Whether the kind takes the paper's baselines (weight decay, L2, Reset, ReDo).
    pub fn has_baselines(self) -> bool {
        matches!(self, Algorithm::Dqn | Algorithm::Rainbow)
    }
}

/// `train/dqn` or `train/rainbow`.
pub struct TrainKind {
    pub algorithm: Algorithm,
    /// Where environments come from (prunus-env's factory; tests may substitute their own).
    pub env_factory: EnvFactory,
}

impl TrainKind {
    pub fn new(algorithm: Algorithm) -> Self {
        TrainKind {
            algorithm,
            env_factory: crate::envs::make,
        }
    }
}

impl StageKind for TrainKind {
    fn name(&self) -> &'static str {
        match self.algorithm {
            Algorithm::Dqn => dqn::NAME,
            Algorithm::Rainbow => rainbow::NAME,
            Algorithm::DrqEps => atari100k::DRQ_EPS,
            Algorithm::Der => atari100k::DER,
        }
    }

    fn version(&self) -> u32 {
        match self.algorithm {
            // 2: optax-exact Adam (rounding differs from burn's), snapshot/resume format v2.
            Algorithm::Dqn | Algorithm::Rainbow => 2,
            Algorithm::DrqEps | Algorithm::Der => 1,
        }
    }

    fn doc(&self) -> &'static str {
        match self.algorithm {
            Algorithm::Dqn => dqn::DOC,
            Algorithm::Rainbow => rainbow::DOC,
            Algorithm::DrqEps => atari100k::DRQ_EPS_DOC,
            Algorithm::Der => atari100k::DER_DOC,
        }
    }

    fn deterministic(&self, params: &Params) -> bool {
        // Bit-reproducible on the CPU backends given the seed; on a GPU, kernels reorder float
        // sums from run to run, so downstream keys use this stage's key, not its outputs.
        !matches!(params.str("device"), Ok("cuda"))
    }

    /// The shared parameters with the objective's own between them (only those this kind
    /// uses: an inapplicable key is an unknown key).
    fn params(&self) -> Vec<ParamSpec> {
        let (defaults, own) = match self.algorithm {
            Algorithm::Dqn => (dqn::DEFAULTS, dqn::params()),
            Algorithm::Rainbow => (rainbow::DEFAULTS, rainbow::params()),
            a @ (Algorithm::DrqEps | Algorithm::Der) => return atari100k::params(a),
        };
        [common::leading(defaults), own, common::trailing()].concat()
    }

    fn outputs(&self, params: &Params) -> Vec<String> {
        training_outputs(params)
    }

    fn resources(&self, params: &Params) -> Resources {
        let gpu = matches!(params.str("device"), Ok("cuda"));
        let env = params.str("env").unwrap_or("");
        let memory_mb = match Family::of(env) {
            // 1M frames of 84×84 bytes plus networks.
            Family::Atari => 12_000,
            _ => 2_000,
        };
        Resources {
            cpus: 1,
            gpus: gpu as u32,
            memory_mb,
            time_s: None,
        }
    }

    /// Measured rates by family, network and device ([`cost`]), for planning.
    fn estimate_secs(&self, params: &Params) -> Option<f64> {
        cost::estimate_secs(self.algorithm, params)
    }

    /// The parameters as [`Setup::new`] reads them, short of building the environment.
    fn validate(&self, params: &Params) -> Result<(), StageError> {
        Settings::from_params(self.algorithm, params).map(drop)
    }

    fn run(&self, ctx: &Context) -> Result<(), StageError> {
        let gpu = ctx.gpus.first().copied().unwrap_or(0);
        let setup = Setup::new(self.algorithm, self.env_factory, &ctx.params, gpu)?;
        ctx.log(format!(
            "resolved settings: {}",
            serde_json::to_string(&setup.resolved).unwrap_or_default()
        ));
        run_training(&setup, ctx)
    }
}
