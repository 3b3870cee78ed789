//! The `probe` stage kind: the paper's analysis probes (section 5) at every checkpoint of one
//! training run, on the run's fixed probe batch. The math lives in `prunus-probes`; this module
//! runs the networks to feed it activations, Q-values, targets and per-sample gradients.
//!
//! Snapshots keep the online network only, so TD targets for `q_target_variance` and the
//! gradient covariance bootstrap from the online network of the checkpoint (Dopamine's target
//! network is a copy of it at most 8,000 agent steps old).

use std::fmt::Write as _;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use prunus_probes::{dormant, grad_cov, norms, q_variance, srank};
use prunus_stage::{Context, Input, ParamSpec, ParamType, Params, StageError, StageKind, Value};
use serde::{Deserialize, Serialize};

use crate::agent::Objective;
use crate::checkpoint::{CheckpointEntry, ProbeBatch, Snapshot};
use crate::networks::{QNetwork, to_vec};
use crate::{dqn, rainbow};

/// `probe`.
pub struct ProbeKind;

/// One matrix of `grad_cov.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GradCov {
    pub env_steps: u64,
    pub samples: usize,
    /// Row-major `samples × samples` cosine similarities.
    pub matrix: Vec<Vec<f64>>,
}

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

    fn deterministic(&self) -> bool {
        true
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
        vec!["probes.csv".into(), "grad_cov.json".into()]
    }

    fn run(&self, ctx: &Context) -> Result<(), StageError> {
        let [input] = ctx.inputs.as_slice() else {
            return Err(StageError::Failed(format!(
                "probe needs exactly one upstream train instance, got {}; run one probe stage per \
                 training instance (e.g. `over` the same sweep)",
                ctx.inputs.len()
            )));
        };
        let taus: Vec<f32> = ctx
            .params
            .f64s("taus")?
            .into_iter()
            .map(|t| t as f32)
            .collect();
        let samples = ctx.params.u64("grad-cov.samples")? as usize;
        let device = crate::device(ctx.params.str("device")?).map_err(|e| StageError::Param {
            key: "device".into(),
            message: e,
        })?;
        let batch =
            ProbeBatch::read(input.output("probe_batch.bin")?).map_err(StageError::Failed)?;
        let entries: Vec<CheckpointEntry> =
            serde_json::from_slice(&std::fs::read(input.output("checkpoints.json")?)?).map_err(
                |e| StageError::Failed(format!("{}: bad checkpoints.json: {e}", input.instance)),
            )?;
        let mut csv = String::from("env_steps,probe,value\n");
        let mut covs = Vec::new();
        for (done, entry) in entries.iter().enumerate() {
            let snap = read_snapshot(input, entry)?;
            let probes = probe(&snap, &batch, &taus, &device).map_err(StageError::Failed)?;
            for (name, value) in probes {
                writeln!(csv, "{},{name},{value}", snap.env_steps).expect("write to string");
            }
            covs.push(
                gradient_covariance(&snap, &batch, samples, &device).map_err(StageError::Failed)?,
            );
            ctx.progress(done as u64 + 1, entries.len() as u64, "checkpoints");
            if ctx.cancelled() {
                return Err(StageError::Cancelled);
            }
        }
        std::fs::create_dir_all(&ctx.out_dir)?;
        std::fs::write(ctx.output("probes.csv"), csv)?;
        std::fs::write(
            ctx.output("grad_cov.json"),
            serde_json::to_vec(&covs).map_err(StageError::failed)?,
        )?;
        Ok(())
    }
}

fn read_snapshot(input: &Input, entry: &CheckpointEntry) -> Result<Snapshot, StageError> {
    Snapshot::read(input.output(&entry.file)?).map_err(StageError::Failed)
}

fn states(values: &[f32], rows: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [rows, values.len() / rows]),
        device,
    )
}

/// TD targets on the batch, bootstrapping from `net` (C51: the mean of the projected target).
fn targets(snap: &Snapshot, net: &QNetwork, batch: &ProbeBatch, device: &Device) -> Vec<f32> {
    let next = to_vec(net.forward(states(&batch.next_states, batch.len(), device)));
    let a = snap.agent.num_actions;
    match snap.agent.objective {
        Objective::Dqn(_) => dqn::targets(&next, a, &batch.returns, &batch.discounts),
        Objective::C51(c) => {
            let z = c.support();
            c.target_distribution(&next, a, &batch.returns, &batch.discounts)
                .chunks(c.atoms)
                .map(|m| m.iter().zip(&z).map(|(p, z)| p * z).sum())
                .collect()
        }
    }
}

/// The scalar probes of one snapshot, as (name, value).
pub fn probe(
    snap: &Snapshot,
    batch: &ProbeBatch,
    taus: &[f32],
    device: &Device,
) -> Result<Vec<(String, f64)>, String> {
    let net = snap.network(device)?;
    let n = batch.len();
    let (out, acts) = net.forward_with_activations(states(&batch.states, n, device));
    let out = to_vec(out);
    let q = match snap.agent.objective {
        Objective::Dqn(_) => out,
        Objective::C51(c) => c.q_values(&out),
    };
    let mut rows = vec![
        (
            "q_target_variance".to_string(),
            q_variance::q_target_variance(&targets(snap, &net, batch, device)),
        ),
        (
            "param_norm".to_string(),
            norms::param_norm(
                &net.parameter_values()
                    .iter()
                    .map(Vec::as_slice)
                    .collect::<Vec<_>>(),
            ),
        ),
        (
            "q_norm".to_string(),
            norms::q_norm(&q, n, snap.agent.num_actions).map_err(|e| e.to_string())?,
        ),
    ];
    let layers: Vec<(Vec<f32>, Vec<usize>)> = acts
        .layers
        .into_iter()
        .map(|l| (to_vec(l.values), l.shape))
        .collect();
    if let Some((features, shape)) = layers.last() {
        let cols = features.len() / n;
        let rank = srank::srank(features, n, cols).map_err(|e| e.to_string())?;
        debug_assert_eq!(shape[0], n);
        rows.push(("srank".to_string(), rank as f64));
    }
    let views: Vec<dormant::Activations<'_>> = layers
        .iter()
        .map(|(values, shape)| dormant::Activations {
            values,
            shape,
            neuron_axis: 1,
        })
        .collect();
    let fractions = dormant::dormant_fractions(&views, taus).map_err(|e| e.to_string())?;
    rows.extend(
        taus.iter()
            .zip(fractions)
            .map(|(&t, f)| (dormant::probe_name(t), f)),
    );
    Ok(rows)
}

/// Collects the gradients of every parameter, flattened in visiting order.
struct Flatten<'a> {
    grads: &'a GradientsParams,
    out: Vec<f32>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        match self.grads.get::<D>(param.id) {
            Some(g) => self.out.extend(to_vec(g)),
            None => self
                .out
                .extend(std::iter::repeat_n(0.0, param.val().shape().num_elements())),
        }
    }
}

/// Cosine similarities of the per-sample loss gradients of the first `samples` transitions.
pub fn gradient_covariance(
    snap: &Snapshot,
    batch: &ProbeBatch,
    samples: usize,
    device: &Device,
) -> Result<GradCov, String> {
    let k = samples.min(batch.len());
    let net = snap.network(device)?;
    let y = targets(snap, &net, batch, device);
    let trained = snap.network(&device.clone().autodiff())?;
    let sl = batch.state_len;
    let mut flat = Vec::new();
    let mut dim = 0;
    #[allow(clippy::needless_range_loop)] // i indexes several parallel arrays of the batch
    for i in 0..k {
        let x = states(&batch.states[i * sl..(i + 1) * sl], 1, device);
        let out = trained.forward(x);
        let loss = match snap.agent.objective {
            Objective::Dqn(l) => {
                let a = Tensor::<2, Int>::from_data(
                    TensorData::new(vec![batch.actions[i] as i64], [1, 1]),
                    device,
                );
                let t = Tensor::<1>::from_data(TensorData::new(vec![y[i]], [1]), device);
                dqn::td_loss(out, a, t, l)
            }
            Objective::C51(c) => {
                let next = to_vec(net.forward(states(
                    &batch.next_states[i * sl..(i + 1) * sl],
                    1,
                    device,
                )));
                let m = c.target_distribution(
                    &next,
                    snap.agent.num_actions,
                    &batch.returns[i..=i],
                    &batch.discounts[i..=i],
                );
                let m = Tensor::<2>::from_data(TensorData::new(m, [1, c.atoms]), device);
                rainbow::cross_entropy(out, &batch.actions[i..=i], m, c.atoms)
            }
        };
        let grads = GradientsParams::from_grads(loss.sum().backward(), &trained);
        let mut v = Flatten {
            grads: &grads,
            out: Vec::new(),
        };
        trained.visit(&mut v);
        dim = v.out.len();
        flat.extend(v.out);
    }
    let m = grad_cov::grad_cov(&flat, k, dim).map_err(|e| e.to_string())?;
    Ok(GradCov {
        env_steps: snap.env_steps,
        samples: k,
        matrix: m.chunks(k.max(1)).map(<[f64]>::to_vec).collect(),
    })
}
