//! The `probe` stage kind: the paper's analysis probes (section 5) at every checkpoint of one
//! training run, on the run's fixed probe batch ([`crate::probes`] runs the networks).

use prunus_probes::dormant;
use prunus_results::{CheckpointEntry, GradCov, ProbeRow, ResultFile};
use prunus_stage::{
    Context, Input, ParamSpec, ParamType, Params, Resources, StageError, StageKind, Value,
};

use super::param_err;
use crate::checkpoint::{ProbeBatch, Snapshot};
use crate::probes::{gradient_covariance, probe};

/// `probe`.
pub struct ProbeKind;

impl StageKind for ProbeKind {
    fn name(&self) -> &'static str {
        "probe"
    }

    fn version(&self) -> u32 {
        1
    }

    fn doc(&self) -> &'static str {
        "Analysis probes of one training run (needs exactly one train/* instance): at each of its \
         checkpoints, on its fixed probe batch, Q-target variance, parameter norm, Q norm, srank \
         of the penultimate features, tau-dormant neuron fractions, and the cosine matrix of \
         per-sample gradients. Writes probes.csv (env_steps,probe,value) and grad_cov.json."
    }

    fn deterministic(&self, params: &Params) -> bool {
        // As training: bit-reproducible on the CPU; GPU kernels reorder float sums.
        !matches!(params.str("device"), Ok("cuda"))
    }

    fn resources(&self, params: &Params) -> Resources {
        Resources {
            gpus: matches!(params.str("device"), Ok("cuda")) as u32,
            ..Resources::default()
        }
    }

    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::new(
                "taus",
                ParamType::FloatList,
                Some(Value::List(
                    dormant::TAUS.iter().map(|&t| Value::Float(t)).collect(),
                )),
                "dormant thresholds tau (a neuron is dormant when its normalized score <= tau)",
            ),
            ParamSpec::new(
                "grad-cov.samples",
                ParamType::Int,
                Some(Value::Int(32)),
                "transitions of the probe batch whose per-sample gradients form the covariance matrix",
            ),
            ParamSpec::new(
                "device",
                ParamType::Str,
                Some(Value::Str("cpu".into())),
                "cpu | cuda",
            ),
        ]
    }

    fn outputs(&self, _params: &Params) -> Vec<String> {
        vec![ProbeRow::NAME.into(), GradCov::NAME.into()]
    }

    fn validate(&self, params: &Params) -> Result<(), StageError> {
        settings(params).map(drop)
    }

    fn run(&self, ctx: &Context) -> Result<(), StageError> {
        let [input] = ctx.inputs.as_slice() else {
            return Err(StageError::Failed(format!(
                "probe needs exactly one upstream train instance, got {}; run one probe stage per \
                 training instance (e.g. `over` the same sweep)",
                ctx.inputs.len()
            )));
        };
        let (taus, samples, device) = settings(&ctx.params)?;
        let gpu = ctx.gpus.first().copied().unwrap_or(0);
        let device = crate::device_at(device, gpu).map_err(|e| param_err("device", e))?;
        let batch =
            ProbeBatch::read(input.output("probe_batch.bin")?).map_err(StageError::Failed)?;
        let entries: Vec<CheckpointEntry> =
            prunus_results::read_json(input.output(CheckpointEntry::NAME)?).map_err(|e| {
                StageError::Failed(format!(
                    "{}: bad checkpoints.json: {}",
                    input.instance,
                    e.detail()
                ))
            })?;
        let mut rows = Vec::new();
        let mut covs = Vec::new();
        for (done, entry) in entries.iter().enumerate() {
            let snap = read_snapshot(input, entry)?;
            let probes = probe(&snap, &batch, &taus, &device).map_err(StageError::Failed)?;
            rows.extend(probes.into_iter().map(|(probe, value)| ProbeRow {
                env_steps: snap.env_steps,
                probe,
                value,
            }));
            covs.push(
                gradient_covariance(&snap, &batch, samples, &device).map_err(StageError::Failed)?,
            );
            ctx.progress(done as u64 + 1, entries.len() as u64, "checkpoints");
            if ctx.cancelled() {
                return Err(StageError::Cancelled);
            }
        }
        std::fs::create_dir_all(&ctx.out_dir)?;
        let failed = |e: prunus_results::Error| StageError::Failed(e.to_string());
        prunus_results::write_csv(&ctx.output(ProbeRow::NAME), &rows).map_err(failed)?;
        prunus_results::write_json(&ctx.output(GradCov::NAME), &covs).map_err(failed)
    }
}

/// The dormant thresholds, the gradient-covariance sample count and the device, checked.
fn settings(p: &Params) -> Result<(Vec<f32>, usize, &str), StageError> {
    let taus = p.f64s("taus")?;
    if let Some(bad) = taus.iter().find(|t| !(t.is_finite() && **t >= 0.0)) {
        return Err(param_err(
            "taus",
            format!("thresholds must be >= 0, got {bad}"),
        ));
    }
    let samples = p.u64("grad-cov.samples")? as usize;
    if samples == 0 {
        return Err(param_err("grad-cov.samples", "must be at least 1, got 0"));
    }
    let device = p.str("device")?;
    crate::check_device(device).map_err(|e| param_err("device", e))?;
    Ok((
        taus.into_iter().map(|t| t as f32).collect(),
        samples,
        device,
    ))
}

fn read_snapshot(input: &Input, entry: &CheckpointEntry) -> Result<Snapshot, StageError> {
    Snapshot::read(input.output(&entry.file)?).map_err(StageError::Failed)
}
