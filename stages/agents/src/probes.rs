//! The paper's analysis probes (section 5) on one snapshot: the math lives in `prunus-probes`;
//! this module runs the network to feed it activations, Q-values, targets and per-sample
//! gradients.
//!
//! Snapshots keep the online network only, so TD targets for `q_target_variance` and the
//! gradient covariance bootstrap from the online network of the checkpoint (Dopamine's target
//! network is a copy of it at most 8,000 agent steps old).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use prunus_probes::{dormant, grad_cov, norms, q_variance, srank};
use prunus_results::GradCov;

use crate::checkpoint::{ProbeBatch, Snapshot};
use crate::networks::QNetwork;
use crate::objectives::{Objective, c51, td};
use crate::tensor::to_vec;

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
    match snap.agent.objective.base() {
        Objective::Dqn(_) => td::targets(&next, a, &batch.returns, &batch.discounts),
        Objective::C51(c) => {
            let z = c.support();
            c.target_distribution(&next, a, &batch.returns, &batch.discounts)
                .chunks(c.atoms)
                .map(|m| m.iter().zip(&z).map(|(p, z)| p * z).sum())
                .collect()
        }
        Objective::Cql { .. } | Objective::CqlC51 { .. } | Objective::FullRainbow(_) => {
            unreachable!("base() is a plain objective")
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
    let q = snap.agent.objective.q_values(to_vec(out));
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
        let loss = match snap.agent.objective.base() {
            Objective::Dqn(l) => {
                let a = Tensor::<2, Int>::from_data(
                    TensorData::new(vec![batch.actions[i] as i64], [1, 1]),
                    device,
                );
                let t = Tensor::<1>::from_data(TensorData::new(vec![y[i]], [1]), device);
                td::td_loss(out, a, t, l)
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
                c51::cross_entropy(out, &batch.actions[i..=i], m, c.atoms)
            }
            Objective::Cql { .. } | Objective::CqlC51 { .. } | Objective::FullRainbow(_) => {
                unreachable!("base() is a plain objective")
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
