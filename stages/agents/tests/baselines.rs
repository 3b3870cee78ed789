//! The paper's baselines wired into real agents: coupled weight decay, the L2 feature
//! normalisation of Kumar et al., Reset and ReDo (as Dopamine's ReDo lab, `dopamine/labs/redo`),
//! and their composition with GMP through checkpoint and resume.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use burn::tensor::{Tensor, TensorData};
use prunus_agents::agent::{Agent, AgentConfig};
use prunus_agents::baselines::{RedoHook, ResetHook};
use prunus_agents::hooks::Surgery;
use prunus_agents::hooks::UpdateHook;
use prunus_agents::kinds::{Algorithm, TrainKind};
use prunus_agents::networks::{Architecture, NetworkConfig, QNetwork};
use prunus_agents::objectives::Objective;
use prunus_agents::objectives::TdLoss;
use prunus_agents::replay::{Batch, Replay};
use prunus_agents::train::Trainer;
use prunus_sparsity::{RedoConfig, ResetConfig};
use prunus_stage::{Context, Params, Reporter, StageError, StageKind, Value};
use rand::SeedableRng;
use rand_pcg::Pcg64;

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A CartPole DQN trained for `steps` agent steps (learning starts after 1,000), so that
/// weights and Adam moments are those of real training.
fn trained(steps: u64, configure: impl FnOnce(&mut AgentConfig)) -> Trainer {
    let (mut agent, replay, config) = common::cartpole_parts(3, 1, 100_000);
    agent.network.architecture = Architecture::Mlp {
        hidden: vec![32, 32],
    };
    configure(&mut agent);
    let agent = Agent::new(agent, &mut Pcg64::seed_from_u64(3), &common::cpu());
    let mut trainer = Trainer::new(config, agent, Replay::new(replay), common::cartpole());
    trainer.train_steps(steps).unwrap();
    assert!(trainer.state.grad_steps > 50, "learning must have started");
    trainer
}

/// One learning step of a linear Q-network with weight decay equals a hand-computed Adam step
/// on `g + wd * w` (biases included): first step, so `m_hat = g'` and `v_hat = g'^2`.
#[test]
fn weight_decay_is_added_to_the_gradient_before_adam() {
    let (lr, eps, wd) = (0.01f64, 0.5f64, 0.1f64);
    let config = AgentConfig {
        network: NetworkConfig {
            architecture: Architecture::Mlp { hidden: vec![] },
            width: 1.0,
            input: vec![3],
            outputs: 2,
            input_scale: 1.0,
            normalize_features: false,
        },
        num_actions: 2,
        objective: Objective::Dqn(TdLoss::Mse),
        learning_rate: lr,
        adam_epsilon: eps as f32,
        weight_decay: wd,
    };
    let device = common::cpu();
    let mut agent = Agent::new(config, &mut Pcg64::seed_from_u64(1), &device);
    // Non-zero biases, so that decaying them shows (parameter 1 is the head's bias).
    let mut surgery = Surgery::default();
    surgery.values.insert(1, vec![0.3, -0.2]);
    agent.operate(&surgery);
    agent.sync_target();
    let w: Vec<f64> = agent.network().kernel_values()[0]
        .iter()
        .map(|&x| x as f64)
        .collect(); // [in 3, out 2]
    let b = [0.3f64, -0.2];
    let states = [
        [1.0, -0.5, 0.25],
        [0.0, 2.0, -1.0],
        [-1.5, 0.5, 0.5],
        [0.3, 0.3, -0.7],
    ];
    let next = [
        [0.5, 0.5, 0.5],
        [-1.0, 0.0, 1.0],
        [2.0, -1.0, 0.0],
        [0.0, 0.0, 0.0],
    ];
    let actions = [0usize, 1, 1, 0];
    let returns = [1.0f64, 0.0, -0.5, 0.25];
    let discounts = [0.99f64, 0.99, 0.0, 0.99];
    let q = |s: &[f64; 3], a: usize| b[a] + (0..3).map(|i| s[i] * w[i * 2 + a]).sum::<f64>();
    // dL/dq_b for L = mean (y - q)^2.
    let dq: Vec<f64> = (0..4)
        .map(|k| {
            let y = returns[k] + discounts[k] * q(&next[k], 0).max(q(&next[k], 1));
            -2.0 * (y - q(&states[k], actions[k])) / 4.0
        })
        .collect();
    let mut gw = [0f64; 6];
    let mut gb = [0f64; 2];
    for k in 0..4 {
        for i in 0..3 {
            gw[i * 2 + actions[k]] += dq[k] * states[k][i];
        }
        gb[actions[k]] += dq[k];
    }
    let adam_first_step = |p: f64, g: f64, wd: f64| {
        let g = g + wd * p;
        p - lr * g / (g.abs() + eps)
    };
    let batch = Batch {
        states: states.iter().flatten().map(|&x| x as f32).collect(),
        actions: actions.to_vec(),
        returns: returns.iter().map(|&x| x as f32).collect(),
        next_states: next.iter().flatten().map(|&x| x as f32).collect(),
        discounts: discounts.iter().map(|&x| x as f32).collect(),
        indices: (0..4).collect(),
        priorities: vec![1.0; 4],
        action_values: Vec::new(),
    };
    agent.learn(&batch, false);
    let new_w = &agent.network().kernel_values()[0];
    let new_b = &agent.network().bias_values()[0];
    let mut differs_from_plain_adam = 0;
    for (i, &got) in new_w.iter().enumerate() {
        let want = adam_first_step(w[i], gw[i], wd);
        assert!((got as f64 - want).abs() < 2e-6, "w[{i}]: {got} vs {want}");
        if (adam_first_step(w[i], gw[i], 0.0) - want).abs() > 1e-4 {
            differs_from_plain_adam += 1;
        }
    }
    for a in 0..2 {
        let want = adam_first_step(b[a], gb[a], wd);
        assert!(
            (new_b[a] as f64 - want).abs() < 2e-6,
            "b[{a}]: {} vs {want}",
            new_b[a]
        );
        if (adam_first_step(b[a], gb[a], 0.0) - want).abs() > 1e-4 {
            differs_from_plain_adam += 1;
        }
    }
    assert!(
        differs_from_plain_adam >= 3,
        "the test must be able to tell weight decay from none"
    );
    assert_eq!(agent.optimizer().count(), 1);
}

/// With `l2`, the features fed to the head have unit L2 norm per sample (or are all zero), the
/// Q-values are the head applied to them, and a zero feature row yields finite gradients.
#[test]
fn l2_normalizes_the_features_fed_to_the_head() {
    let trainer = trained(2_500, |c| c.network.normalize_features = true);
    let net = trainer.agent.network();
    let device = common::cpu();
    let mut rng = Pcg64::seed_from_u64(9);
    let batch = trainer.replay.sample(64, &mut rng).unwrap();
    let x = Tensor::<2>::from_data(TensorData::new(batch.states.clone(), [64, 4]), &device);
    let f = net.features(x).into_data().try_to_vec::<f32>().unwrap();
    let dim = f.len() / 64;
    assert_eq!(dim, 32);
    let mut units = 0;
    for row in f.chunks(dim) {
        let norm = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
        assert!(norm == 0.0 || (norm - 1.0).abs() < 1e-5, "row norm {norm}");
        units += (norm > 0.0) as usize;
    }
    assert!(units > 0);
    // The same as prunus-sparsity's reference applied to the last hidden layer's activations.
    let (_, acts) = net.forward_with_activations(Tensor::<2>::from_data(
        TensorData::new(batch.states.clone(), [64, 4]),
        &device,
    ));
    let mut reference = acts
        .layers
        .last()
        .unwrap()
        .values
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    prunus_sparsity::l2::normalize_features(&mut reference, dim);
    for (a, b) in f.iter().zip(&reference) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    // Q = head(features).
    let head_w = net.kernel_values().pop().unwrap(); // [32, 2]
    let head_b = net.bias_values().pop().unwrap();
    let q = trainer.agent.q_values(&batch.states, 64);
    for (k, row) in f.chunks(dim).enumerate() {
        for a in 0..2 {
            let want: f32 = head_b[a] + (0..dim).map(|i| row[i] * head_w[i * 2 + a]).sum::<f32>();
            assert!(
                (q[k * 2 + a] - want).abs() < 1e-4,
                "{} vs {want}",
                q[k * 2 + a]
            );
        }
    }
    // Without normalisation the same network gives other Q-values (the norms are not 1).
    let plain = {
        let mut config = trainer.agent.config().clone();
        config.network.normalize_features = false;
        let mut agent = Agent::new(config, &mut Pcg64::seed_from_u64(0), &device);
        let state = trainer.agent.save().unwrap();
        agent = Agent::load(agent.config().clone(), &state, &device).unwrap();
        agent.q_values(&batch.states, 64)
    };
    assert!(plain.iter().zip(&q).any(|(a, b)| (a - b).abs() > 1e-3));

    // A fresh agent (zero biases): the all-zero state has all-zero features; learning on it
    // keeps every weight finite.
    let mut config = trainer.agent.config().clone();
    config.network.normalize_features = true;
    let mut agent = Agent::new(config, &mut Pcg64::seed_from_u64(2), &device);
    let zero = Tensor::<2>::zeros([1, 4], &device);
    let f0 = agent
        .network()
        .features(zero)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(f0.iter().all(|&v| v == 0.0));
    let batch = Batch {
        states: vec![0.0; 8],
        actions: vec![0, 1],
        returns: vec![1.0, -1.0],
        next_states: vec![0.0; 8],
        discounts: vec![0.99, 0.99],
        indices: vec![0, 1],
        priorities: vec![1.0; 2],
        action_values: Vec::new(),
    };
    let out = agent.learn(&batch, false);
    assert!(out.loss.is_finite());
    assert!(
        agent
            .network()
            .parameter_values()
            .iter()
            .flatten()
            .all(|v| v.is_finite())
    );
}

/// A reset re-initialises exactly the last `layers` layers (kernels re-drawn, biases 0) and
/// zeroes their Adam moments; earlier layers and their moments are untouched.
#[test]
fn reset_reinitialises_the_last_layers_and_their_moments() {
    let mut trainer = trained(3_000, |_| {});
    let config = ResetConfig {
        last_layers: 2,
        period: 100,
        start: 0,
        end: u64::MAX,
    };
    let net = trainer.agent.network();
    assert_eq!(net.num_layers(), 3); // dense1, dense2, head
    let (kernels, biases) = (net.kernel_values(), net.bias_values());
    let moments: Vec<_> = (0..6)
        .map(|p| trainer.agent.optimizer().moments(p).unwrap())
        .collect();
    let count = trainer.agent.optimizer().count();
    assert!(
        moments
            .iter()
            .all(|(m, v)| m.iter().any(|&x| x != 0.0) && v.iter().any(|&x| x != 0.0))
    );
    let mut hook = ResetHook::new(config, 0, 3).unwrap();
    // Not a reset step: nothing happens.
    hook.after_update(99, &mut trainer.agent, &trainer.replay);
    assert_eq!(trainer.agent.network().kernel_values(), kernels);
    hook.after_update(100, &mut trainer.agent, &trainer.replay);
    let net = trainer.agent.network();
    let (k2, b2) = (net.kernel_values(), net.bias_values());
    assert_eq!(bits(&k2[0]), bits(&kernels[0]), "dense1 must be untouched");
    assert_eq!(bits(&b2[0]), bits(&biases[0]));
    for layer in [1, 2] {
        let changed = k2[layer]
            .iter()
            .zip(&kernels[layer])
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(changed, k2[layer].len(), "layer {layer} must be re-drawn");
        assert!(b2[layer].iter().all(|&b| b == 0.0));
        // Xavier uniform bounds of a [32, 32] or [32, 2] kernel.
        let (fan_in, fan_out) = net.fans(layer);
        let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
        assert!(k2[layer].iter().all(|w| w.abs() <= limit));
    }
    let adam = trainer.agent.optimizer();
    for (p, (m_before, v_before)) in moments.iter().enumerate() {
        let (m, v) = adam.moments(p).unwrap();
        if p < 2 {
            assert_eq!((bits(&m), bits(&v)), (bits(m_before), bits(v_before)));
        } else {
            assert!(m.iter().chain(&v).all(|&x| x == 0.0), "param {p}");
        }
    }
    assert_eq!(adam.count(), count, "Adam's step count is kept");
    assert!(hook.report().unwrap().contains("1 times"));
    // Too many layers is an error that says what to change.
    assert!(
        ResetHook::new(
            ResetConfig {
                last_layers: 4,
                ..config
            },
            0,
            3
        )
        .err()
        .unwrap()
        .contains("reset.layers")
    );
}

/// A dead neuron planted in dense1 of a trained agent is found and recycled: its incoming
/// weights re-drawn, its bias 0, its outgoing weights (dense2's row) 0, the Adam moments of
/// all of these 0; live neurons are untouched.
#[test]
fn redo_recycles_a_planted_dead_neuron() {
    let mut trainer = trained(3_000, |_| {});
    let dead = 5;
    // dense1 kernel [4, 32]: column 5 zero, bias -1, so ReLU(x·0 - 1) = 0 for every state.
    let net = trainer.agent.network();
    let mut k0 = net.kernel_values()[0].clone();
    let mut b0 = net.bias_values()[0].clone();
    for i in 0..4 {
        k0[i * 32 + dead] = 0.0;
    }
    b0[dead] = -1.0;
    let mut plant = Surgery::default();
    plant.values.insert(0, k0.clone());
    plant.values.insert(1, b0.clone());
    trainer.agent.operate(&plant);
    let before_k = trainer.agent.network().kernel_values();
    let before_b = trainer.agent.network().bias_values();
    let before_m: Vec<_> = (0..6)
        .map(|p| trainer.agent.optimizer().moments(p).unwrap())
        .collect();

    let config = RedoConfig {
        tau: 0.0,
        period: 1000,
        start: 0,
        end: u64::MAX,
    };
    let saved = trainer.agent.save().unwrap();
    let mut hook = RedoHook::new(config, 256, 0);
    hook.after_update(999, &mut trainer.agent, &trainer.replay);
    assert_eq!(
        trainer.agent.network().kernel_values(),
        before_k,
        "not a ReDo step"
    );
    hook.after_update(1000, &mut trainer.agent, &trainer.replay);
    let report = hook.report().unwrap();
    assert!(report.contains("recycled"), "{report}");

    // Which neurons it recycled: the same recycle (same seed, same network) on a copy.
    let mut copy = Agent::load(trainer.agent.config().clone(), &saved, &common::cpu()).unwrap();
    let outcome = RedoHook::new(config, 256, 0)
        .recycle(&mut copy, &trainer.replay)
        .unwrap();
    assert_eq!(
        copy.network().kernel_values(),
        trainer.agent.network().kernel_values(),
        "recycling is deterministic"
    );
    let dormant1 = &outcome.layer("dense1").unwrap().dormant;
    assert!(dormant1.contains(&dead), "{outcome:?}");

    let net = trainer.agent.network();
    let (k, b) = (net.kernel_values(), net.bias_values());
    let limit = (6.0f64 / (4 + 32) as f64).sqrt() as f32;
    for i in 0..4 {
        for j in 0..32 {
            let (now, was) = (k[0][i * 32 + j], before_k[0][i * 32 + j]);
            if j == dead {
                assert!(now != 0.0 && now.abs() <= limit, "incoming re-drawn: {now}");
            } else if !dormant1.contains(&j) {
                assert_eq!(now.to_bits(), was.to_bits(), "live neuron {j} touched");
            }
        }
    }
    assert_eq!(b[0][dead], 0.0);
    // Outgoing: dense2 kernel [32, 32], row `dead` (except where dense2's own dormant neurons
    // had their incoming weights re-drawn after, as in Dopamine's layer-by-layer loop).
    let dormant2 = &outcome.layer("dense2").unwrap().dormant;
    for j in 0..32 {
        if !dormant2.contains(&j) {
            assert_eq!(k[1][dead * 32 + j], 0.0);
        }
    }
    let live_row = (0..32).find(|j| !dormant1.contains(j)).unwrap();
    for j in 0..32 {
        if !dormant2.contains(&j) {
            assert_eq!(
                k[1][live_row * 32 + j].to_bits(),
                before_k[1][live_row * 32 + j].to_bits()
            );
        }
    }
    let adam = trainer.agent.optimizer();
    let (m0, v0) = adam.moments(0).unwrap();
    let (m1, v1) = adam.moments(1).unwrap();
    let (m2, v2) = adam.moments(2).unwrap();
    for i in 0..4 {
        assert_eq!((m0[i * 32 + dead], v0[i * 32 + dead]), (0.0, 0.0));
        assert_eq!(
            m0[i * 32 + live_row].to_bits(),
            before_m[0].0[i * 32 + live_row].to_bits()
        );
    }
    assert_eq!((m1[dead], v1[dead]), (0.0, 0.0));
    assert!(m2[dead * 32..(dead + 1) * 32].iter().all(|&x| x == 0.0));
    assert!(v2[dead * 32..(dead + 1) * 32].iter().all(|&x| x == 0.0));
    assert_eq!(v1[live_row].to_bits(), before_m[1].1[live_row].to_bits());
    let _ = before_b;
}

/// conv -> flatten -> head (the MinAtar network): a dead feature map's kernel slice is re-drawn
/// and every head row reading any of its spatial positions is zeroed.
#[test]
fn redo_recycles_a_dead_conv_channel_into_the_dense_head() {
    let device = common::cpu();
    let config = AgentConfig {
        network: NetworkConfig {
            architecture: Architecture::MinAtarCnn { hidden: vec![] },
            width: 1.0,
            input: vec![4, 10, 10],
            outputs: 6,
            input_scale: 1.0,
            normalize_features: false,
        },
        num_actions: 6,
        objective: Objective::Dqn(TdLoss::Mse),
        learning_rate: 2.5e-4,
        adam_epsilon: 3.125e-4,
        weight_decay: 0.0,
    };
    let mut agent = Agent::new(config, &mut Pcg64::seed_from_u64(4), &device);
    let (c, spatial) = (3usize, 100usize);
    let mut k = agent.network().kernel_values()[0].clone(); // [16, 4, 3, 3]
    k[c * 36..(c + 1) * 36].fill(0.0);
    let mut b = vec![0.0f32; 16];
    b[c] = -1.0;
    let mut plant = Surgery::default();
    plant.values.insert(0, k.clone());
    plant.values.insert(1, b);
    agent.operate(&plant);
    let head_before = agent.network().kernel_values()[1].clone();
    let states: Vec<f32> = (0..32 * 400)
        .map(|i| ((i * 7919) % 13 == 0) as u8 as f32)
        .collect();
    let x = Tensor::<2>::from_data(TensorData::new(states, [32, 400]), &device);
    let outcome = RedoHook::new(RedoConfig::default(), 32, 0).recycle_on(&mut agent, x);
    assert_eq!(outcome.layer("conv1").unwrap().dormant, vec![c]);
    assert_eq!(outcome.neurons(), 16);
    let net = agent.network();
    let (k2, h2) = (&net.kernel_values()[0], &net.kernel_values()[1]); // head [1600, 6]
    assert!(k2[c * 36..(c + 1) * 36].iter().all(|&w| w != 0.0));
    assert_eq!(k2[..c * 36], k[..c * 36]);
    for row in 0..1600 {
        let reads_c = row / spatial == c;
        for a in 0..6 {
            let (now, was) = (h2[row * 6 + a], head_before[row * 6 + a]);
            if reads_c {
                assert_eq!(now, 0.0);
            } else {
                assert_eq!(now.to_bits(), was.to_bits());
            }
        }
    }
    assert_eq!(net.bias_values()[0][c], 0.0);
    assert_eq!(QNetwork::kernel_param(1), 2);
}

/// Collects log lines; cancels once training passes `cancel_at` steps.
struct Recorder {
    lines: Mutex<Vec<String>>,
    cancel_at: Option<(u64, Arc<AtomicBool>)>,
}

impl Reporter for Recorder {
    fn progress(&self, done: u64, _: u64, _: &str) {
        if let Some((at, flag)) = &self.cancel_at
            && done >= *at
        {
            flag.store(true, Ordering::Relaxed);
        }
    }
    fn log(&self, line: &str) {
        self.lines.lock().unwrap().push(line.to_string());
    }
}

fn run(
    kind: &TrainKind,
    p: &Params,
    out: &Path,
    scratch: &Path,
    cancel_at: Option<u64>,
) -> (Result<(), StageError>, Vec<String>) {
    let mut ctx = Context::for_test(
        p.clone(),
        Vec::new(),
        out.to_path_buf(),
        scratch.to_path_buf(),
    );
    let recorder = Arc::new(Recorder {
        lines: Mutex::new(Vec::new()),
        cancel_at: cancel_at.map(|at| (at, ctx.cancel.clone())),
    });
    ctx.reporter = recorder.clone();
    let result = kind.run(&ctx);
    let lines = recorder.lines.lock().unwrap().clone();
    (result, lines)
}

/// Reset, ReDo, weight decay and GMP together through the `train/dqn` kind: a run cancelled
/// mid-iteration and resumed writes the same bytes as one never interrupted, and the log says
/// that neurons were recycled and layers reset.
#[test]
fn all_baselines_with_gmp_resume_bit_identically() {
    let kind = TrainKind::new(Algorithm::Dqn);
    let p = params(
        &kind,
        &[
            ("env", Value::Str("cartpole".into())),
            ("steps", Value::Int(4_000)),
            ("iterations", Value::Int(2)),
            ("eval-episodes", Value::Int(2)),
            ("network.hidden", Value::Int(64)),
            ("prune", Value::Str("gmp".into())),
            ("prune.sparsity", Value::Float(0.9)),
            ("prune.frequency", Value::Int(50)),
            ("weight-decay", Value::Float(1e-3)),
            ("reset.period", Value::Int(300)),
            ("reset.layers", Value::Int(1)),
            ("redo.period", Value::Int(100)),
            ("redo.tau", Value::Float(0.1)),
            ("redo.batch", Value::Int(64)),
            (
                "checkpoints",
                Value::List(vec![Value::Float(0.5), Value::Float(1.0)]),
            ),
            ("probe-batch", Value::Int(32)),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let straight = dir.path().join("straight");
    let (result, log) = run(&kind, &p, &straight, &dir.path().join("s1"), None);
    result.unwrap();
    let text = log.join("\n");
    assert!(text.contains("redo: recycled"), "{text}");
    assert!(
        text.contains("reset: re-initialised the last 1 layers"),
        "{text}"
    );

    let (out, scratch) = (dir.path().join("resumed"), dir.path().join("s2"));
    let (result, _) = run(&kind, &p, &out, &scratch, Some(1_000));
    assert!(matches!(result, Err(StageError::Cancelled)));
    let (result, log) = run(&kind, &p, &out, &scratch, None);
    result.unwrap();
    assert!(
        log.iter()
            .any(|l| l.contains("resuming at agent step 1000")),
        "{log:?}"
    );
    for name in kind.outputs(&p) {
        assert_eq!(
            std::fs::read(straight.join(&name)).unwrap(),
            std::fs::read(out.join(&name)).unwrap(),
            "{name} differs"
        );
    }
    // Pruning still holds after the recycles: the final sparsity is reached.
    let returns = std::fs::read_to_string(straight.join("returns.csv")).unwrap();
    let last = returns.lines().last().unwrap();
    let overall: f64 = last.rsplit(',').next().unwrap().parse().unwrap();
    assert!((overall - 0.9).abs() < 0.01, "overall sparsity {overall}");
}

fn params(kind: &TrainKind, overrides: &[(&str, Value)]) -> Params {
    common::kind_params(kind, overrides)
}

/// The baselines default to off, and bad values are explained.
#[test]
fn baseline_parameters_default_off_and_are_checked() {
    let kind = TrainKind::new(Algorithm::Dqn);
    let defaults: BTreeMap<&str, Value> = kind
        .params()
        .into_iter()
        .filter_map(|p| p.default.map(|d| (p.key, d)))
        .collect();
    assert_eq!(defaults["weight-decay"], Value::Float(0.0));
    assert_eq!(defaults["l2"], Value::Bool(false));
    assert_eq!(defaults["reset.period"], Value::Int(0));
    assert_eq!(defaults["reset.layers"], Value::Int(2));
    assert_eq!(defaults["redo.period"], Value::Int(0));
    assert_eq!(defaults["redo.tau"], Value::Float(0.025));
    assert_eq!(defaults["redo.batch"], Value::Int(256));
    let dir = tempfile::tempdir().unwrap();
    let error = |overrides: &[(&str, Value)]| {
        let mut all = vec![("env", Value::Str("cartpole".into()))];
        all.extend_from_slice(overrides);
        kind.run(&Context::for_test(
            params(&kind, &all),
            Vec::new(),
            dir.path().join("out"),
            dir.path().join("scratch"),
        ))
        .unwrap_err()
        .to_string()
    };
    assert!(error(&[("weight-decay", Value::Float(-1.0))]).contains("weight-decay"));
    assert!(
        error(&[
            ("redo.period", Value::Int(10)),
            ("redo.tau", Value::Float(-0.1))
        ])
        .contains("redo.tau")
    );
    // The MLP has 3 layers (dense1, dense2, head).
    let e = error(&[
        ("reset.period", Value::Int(10)),
        ("reset.layers", Value::Int(4)),
    ]);
    assert!(
        e.contains("reset.layers must be between 1 and the network's 3 layers"),
        "{e}"
    );
}

/// `reset.start`/`reset.end` (and ReDo's) bound the gradient steps at which they fire, as
/// Dopamine's `reset_start_step <= step < reset_end_step`; an end not after the start is an
/// error.
#[test]
fn baselines_fire_only_inside_their_window() {
    let kind = TrainKind::new(Algorithm::Dqn);
    let dir = tempfile::tempdir().unwrap();
    let train = |overrides: &[(&str, Value)]| {
        let mut all = vec![
            ("env", Value::Str("cartpole".into())),
            ("steps", Value::Int(1_200)),
            ("iterations", Value::Int(1)),
            ("eval-episodes", Value::Int(1)),
            ("network.hidden", Value::Int(16)),
            ("replay-ratio", Value::Float(1.0)),
            ("min-replay", Value::Int(100)),
            ("checkpoints", Value::List(vec![Value::Float(1.0)])),
            ("probe-batch", Value::Int(8)),
        ];
        all.extend_from_slice(overrides);
        let out = tempfile::tempdir_in(dir.path()).unwrap();
        let (result, log) = run(
            &kind,
            &params(&kind, &all),
            &out.path().join("out"),
            &out.path().join("scratch"),
            None,
        );
        result.map(|()| log.join("\n"))
    };
    let log = train(&[
        ("reset.period", Value::Int(100)),
        ("reset.layers", Value::Int(1)),
        ("reset.start", Value::Int(200)),
        ("reset.end", Value::Int(500)),
        ("redo.period", Value::Int(100)),
        ("redo.start", Value::Int(700)),
    ])
    .unwrap();
    // 1,100 grad steps: resets after steps 200, 300 and 400; recycles after 700, 800 .. 1100.
    assert!(
        log.contains("3 times (latest after grad step 400; 3 resets so far)"),
        "{log}"
    );
    assert!(log.contains("in 5 recycles"), "{log}");
    let e = train(&[
        ("redo.period", Value::Int(100)),
        ("redo.start", Value::Int(500)),
        ("redo.end", Value::Int(500)),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("redo.end") && e.contains("after redo.start"),
        "{e}"
    );
}

/// Rainbow (C51, prioritized replay) with L2 features, ReDo and Reset trains and writes finite
/// returns; the network it saves normalises its features.
#[test]
fn rainbow_trains_with_l2_redo_and_reset() {
    let kind = TrainKind::new(Algorithm::Rainbow);
    let p = params(
        &kind,
        &[
            ("env", Value::Str("cartpole".into())),
            ("steps", Value::Int(3_000)),
            ("iterations", Value::Int(1)),
            ("network.hidden", Value::Int(32)),
            ("l2", Value::Bool(true)),
            ("weight-decay", Value::Float(1e-4)),
            ("redo.period", Value::Int(100)),
            ("redo.tau", Value::Float(0.1)),
            ("reset.period", Value::Int(250)),
            ("reset.layers", Value::Int(1)),
            ("checkpoints", Value::List(vec![Value::Float(1.0)])),
            ("probe-batch", Value::Int(16)),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (result, log) = run(&kind, &p, &out, &dir.path().join("s"), None);
    result.unwrap();
    let text = log.join("\n");
    assert!(
        text.contains("redo: recycled") && text.contains("reset:"),
        "{text}"
    );
    let snap = prunus_agents::checkpoint::Snapshot::read(&out.join("final.ckpt")).unwrap();
    assert!(snap.agent.network.normalize_features);
    assert_eq!(snap.agent.weight_decay, 1e-4);
    let net = snap.network(&common::cpu()).unwrap();
    let x = Tensor::<2>::from_data(
        TensorData::new(vec![0.1f32, -0.2, 0.03, 0.4, 1.0, 0.5, -0.5, 0.0], [2, 4]),
        &common::cpu(),
    );
    let f = net.features(x).into_data().try_to_vec::<f32>().unwrap();
    for row in f.chunks(32) {
        let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!(norm == 0.0 || (norm - 1.0).abs() < 1e-5, "{norm}");
    }
    let returns = std::fs::read_to_string(out.join("returns.csv")).unwrap();
    let row: Vec<&str> = returns.lines().nth(1).unwrap().split(',').collect();
    assert!(row[3].parse::<f64>().unwrap().is_finite(), "{returns}");
}
