//! Agents on burn: Q-networks, replay, DQN, compact Rainbow and the Atari-100k agents DrQ(ε)
//! and DER, Dopamine's training loop with gradual magnitude pruning, checkpoints that resume
//! bit for bit, and the `train/dqn`, `train/rainbow`, `train/drq-eps`, `train/der` and `probe`
//! stage kinds.
//!
//! One concept per module: [`networks`] (MLP, MinAtar CNN, Nature CNN, Impala ResNet; width
//! multiplier; stable layer names), [`replay`] (frames stored once, stacking and n-step returns
//! at sampling, prioritized [`sum_tree`]), [`objectives`] (TD, C51 and the Atari-100k agents'
//! full-Rainbow switches), [`augment`] (DrQ's image augmentation), [`adam`] (optax's Adam),
//! [`agent`] (the value-based agent: networks + Adam + objective), [`schedule`] (ε), [`train`]
//! (the iteration loop), [`hooks`] (what pruning and the baselines see of a learner:
//! [`hooks::Prunable`] and [`parameters::ParameterSet`]), [`prune`] (GMP as a hook),
//! [`baselines`] (Reset and ReDo as hooks), [`checkpoint`] (snapshots, resume state, probe
//! batch), [`probes`] (the analysis probes on a snapshot), [`presets`] (defaults by environment
//! family) and [`kinds`] (the stage kinds).
//!
//! Deviations from Dopamine, on purpose (each documented where it lives): iterations are
//! exactly `training_steps` long (episodes carry over), the replay ratio generalises
//! `update_period`, episodes' final frames are stored so time-limit truncation bootstraps, and
//! CPU convolutions run as im2col + matmul (same values, much faster than burn's CPU kernels).

pub mod adam;
pub mod agent;
pub mod augment;
pub mod baselines;
pub mod checkpoint;
pub mod dataset;
pub mod device_check;
pub mod envs;
#[cfg(feature = "cuda")]
pub mod gpu;
pub mod hooks;
pub mod kinds;
pub mod malloc;
pub mod networks;
pub mod objectives;
pub mod parameters;
pub mod presets;
pub mod probes;
pub mod prune;
pub mod replay;
pub mod schedule;
pub mod sum_tree;
mod tensor;
pub mod train;

/// The device named by the `device` parameter: `cpu` (burn's Flex backend, deterministic),
/// `ndarray` (burn's older CPU backend) or `cuda` (GPU 0; needs a build with `--features cuda`).
pub fn device(name: &str) -> Result<burn::tensor::Device, String> {
    device_at(name, 0)
}

/// [`device`], on GPU `gpu` (the ordinal the executor gave the instance) for `cuda`.
pub fn device_at(name: &str, gpu: usize) -> Result<burn::tensor::Device, String> {
    match name {
        // burn's pure-Rust Flex backend, single-threaded here: bit-reproducible, and about 1.6×
        // faster than NdArray on these networks (benches/steps.rs).
        "cpu" => Ok(burn::tensor::Device::flex()),
        #[allow(deprecated)] // kept for comparison; burn deprecates NdArray in favour of Flex
        "ndarray" => Ok(burn::tensor::Device::ndarray()),
        #[cfg(feature = "cuda")]
        "cuda" => gpu::open(gpu),
        #[cfg(not(feature = "cuda"))]
        "cuda" => {
            let _ = gpu;
            Err("this prunus was built without CUDA; rebuild it with `scripts/cuda-build` (README, \"On a GPU\") or use device \"cpu\"".into())
        }
        other => Err(format!(
            "unknown device `{other}`; use cpu, ndarray or cuda"
        )),
    }
}

/// Whether `name` is a device [`device`] knows (whether this build has it is for `run` to say:
/// a pipeline for a CUDA machine still plans on a laptop).
pub fn check_device(name: &str) -> Result<(), String> {
    match name {
        "cpu" | "ndarray" | "cuda" => Ok(()),
        other => Err(format!(
            "unknown device `{other}`; use cpu, ndarray or cuda"
        )),
    }
}

/// Whether `device` is one of the CPU devices (with or without autodiff).
pub(crate) fn is_cpu(device: &burn::tensor::Device) -> bool {
    #[allow(deprecated)]
    let cpus = [
        burn::tensor::Device::ndarray(),
        burn::tensor::Device::flex(),
    ];
    let plain = device.clone().inner();
    cpus.contains(&plain)
}

/// The stage kinds this crate contributes to the engine's registry.
pub fn kinds() -> prunus_stage::Kinds {
    vec![
        std::sync::Arc::new(kinds::TrainKind::new(kinds::Algorithm::Dqn)),
        std::sync::Arc::new(kinds::TrainKind::new(kinds::Algorithm::Rainbow)),
        std::sync::Arc::new(kinds::TrainKind::new(kinds::Algorithm::DrqEps)),
        std::sync::Arc::new(kinds::TrainKind::new(kinds::Algorithm::Der)),
        std::sync::Arc::new(kinds::ProbeKind),
        std::sync::Arc::new(kinds::CollectKind::default()),
        std::sync::Arc::new(kinds::OfflineKind::new(kinds::OfflineAlgorithm::Cql)),
        std::sync::Arc::new(kinds::OfflineKind::new(kinds::OfflineAlgorithm::CqlC51)),
    ]
}
