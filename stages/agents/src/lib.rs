//! Agents on burn: Q-networks, replay, DQN and compact Rainbow, Dopamine's training loop with
//! gradual magnitude pruning, checkpoints that resume bit for bit, and the `train/dqn` /
//! `train/rainbow` stage kinds.

pub mod agent;
pub mod checkpoint;
pub mod dqn;
pub mod networks;
pub mod prune;
pub mod rainbow;
pub mod replay;
pub mod schedule;
pub mod sum_tree;
pub mod train;

/// The device named by the `device` parameter: `cpu` (burn's NdArray backend, deterministic)
/// or `cuda` (GPU 0; needs a build with `--features cuda`).
pub fn device(name: &str) -> Result<burn::tensor::Device, String> {
    match name {
        #[allow(deprecated)] // NdArray is the CPU backend this crate is pinned to (bit-reproducible).
        "cpu" => Ok(burn::tensor::Device::ndarray()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(burn::tensor::Device::cuda(0)),
        #[cfg(not(feature = "cuda"))]
        "cuda" => Err("this prunus was built without CUDA; rebuild with `--features cuda` or use device \"cpu\"".into()),
        other => Err(format!("unknown device `{other}`; use cpu or cuda")),
    }
}

/// The stage kinds this crate contributes to the engine's registry.
pub fn kinds() -> prunus_stage::Kinds {
    let kinds: prunus_stage::Kinds = Vec::new();
    kinds
}
