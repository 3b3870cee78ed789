//! The Atari-100k agents' parts (DrQ's augmentation, noisy layers, the dueling head, double
//! DQN) and the `train/drq-eps` / `train/der` kinds' parameters; training on Pong through the
//! binary is in `tests/tests/atari.rs`.

mod common;

use burn::module::Param;
use burn::nn::LinearConfig;
use burn::tensor::{Tensor, TensorData};
use prunus_agents::agent::{Agent, AgentConfig};
use prunus_agents::augment::{self, Draw, PAD};
use prunus_agents::kinds::{Algorithm, TrainKind};
use prunus_agents::networks::noisy::{self, LayerNoise, NoisySigma};
use prunus_agents::networks::{Architecture, FullRainbowHead, HeadConfig, NetworkConfig};
use prunus_agents::objectives::{Categorical, FullRainbow, Objective, TdLoss, Values};
use prunus_agents::replay::Batch;
use prunus_stage::{StageKind, Value};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// The augmentation written out the other way round: build the edge-padded image whole
/// (`np.pad(img, 4, mode='edge')`), cut the window at the offsets, scale it.
fn reference(img: &[f32], h: usize, w: usize, d: &Draw) -> Vec<f32> {
    let (ph, pw) = (h + 2 * PAD, w + 2 * PAD);
    let mut padded = vec![0f32; ph * pw];
    for i in 0..ph {
        for j in 0..pw {
            let si = i.clamp(PAD, PAD + h - 1) - PAD;
            let sj = j.clamp(PAD, PAD + w - 1) - PAD;
            padded[i * pw + j] = img[si * w + sj];
        }
    }
    let mut out = Vec::with_capacity(h * w);
    for i in 0..h {
        for j in 0..w {
            out.push(padded[(i + d.row) * pw + j + d.col] * d.intensity);
        }
    }
    out
}

#[test]
fn augmentation_matches_an_independent_reference() {
    let shape = [4, 84, 84];
    let batch = 6;
    let plane = 84 * 84;
    let original: Vec<f32> = (0..batch * 4 * plane)
        .map(|i| ((i * 7919) % 256) as f32)
        .collect();
    let mut states = original.clone();
    let draws = augment::augment(&mut states, shape, &mut Pcg64::seed_from_u64(7));
    // The corners force edge replication on both sides.
    let mut fixed = draws.clone();
    fixed[0] = Draw {
        row: 0,
        col: 0,
        intensity: 0.9,
    };
    fixed[1] = Draw {
        row: 7,
        col: 7,
        intensity: 1.1,
    };
    let mut corners = original.clone();
    augment::apply(&mut corners, shape, &fixed);
    for (out, draws) in [(&states, &draws), (&corners, &fixed)] {
        for (b, d) in draws.iter().enumerate() {
            for c in 0..4 {
                let at = (b * 4 + c) * plane;
                let expected = reference(&original[at..at + plane], 84, 84, d);
                assert_eq!(
                    &out[at..at + plane],
                    &expected[..],
                    "state {b} channel {c} {d:?}"
                );
            }
        }
    }
    // Same key, same augmentation; another key, another.
    let mut again = original.clone();
    assert_eq!(
        augment::augment(&mut again, shape, &mut Pcg64::seed_from_u64(7)),
        draws
    );
    assert_eq!(again, states);
}

#[test]
fn augmentation_offsets_are_0_to_7_and_intensity_is_clipped() {
    let mut rng = Pcg64::seed_from_u64(1);
    let draws: Vec<Draw> = (0..20_000).map(|_| Draw::sample(&mut rng)).collect();
    for axis in [|d: &Draw| d.row, |d: &Draw| d.col] {
        let mut seen = [0usize; 9];
        draws.iter().for_each(|d| seen[axis(d).min(8)] += 1);
        assert!(seen[..8].iter().all(|&n| n > 2_000), "{seen:?}");
        assert_eq!(
            seen[8], 0,
            "offset 8 never occurs (randint's bound is exclusive)"
        );
    }
    let (lo, hi) = (1.0 - 2.0 * 0.05, 1.0 + 2.0 * 0.05);
    assert!(draws.iter().all(|d| (lo..=hi).contains(&d.intensity)));
    // |N(0,1)| > 2 about 4.6% of the time: clipped to exactly the bounds.
    let clipped = draws
        .iter()
        .filter(|d| d.intensity == lo || d.intensity == hi)
        .count();
    assert!((600..1_300).contains(&clipped), "{clipped}");
}

#[test]
fn noisy_layer_is_its_mean_without_noise_and_seeded_noise_is_reproducible() {
    let device = common::cpu();
    let (din, dout) = (5, 3);
    let mut rng = Pcg64::seed_from_u64(2);
    let mut mu = LinearConfig::new(din, dout).init(&device);
    mu.weight = Param::from_data(
        TensorData::new(noisy::mu_init(&mut rng, din * dout, din), [din, dout]),
        &device,
    );
    let sigma = NoisySigma::new(&device, din, dout);
    let s = common_values(sigma.weight.val());
    assert!(
        s.iter()
            .all(|&v| (v - 0.1 / (din as f32).sqrt()).abs() < 1e-7)
    );
    let bound = 1.0 / (din as f32).sqrt();
    assert!(
        common_values(mu.weight.val())
            .iter()
            .all(|v| v.abs() <= bound)
    );
    let x = Tensor::<2>::from_data(
        TensorData::new((0..2 * din).map(|i| i as f32 / 3.0).collect(), [2, din]),
        &device,
    );
    let plain = common_values(mu.forward(x.clone()));
    let eval = common_values(noisy::forward(&mu, &sigma, x.clone(), None));
    assert_eq!(plain, eval, "evaluation (no noise) is the mean layer");
    let n1 = LayerNoise::sample(&mut Pcg64::seed_from_u64(9), din, dout);
    let n2 = LayerNoise::sample(&mut Pcg64::seed_from_u64(9), din, dout);
    assert_eq!(n1, n2);
    assert_eq!((n1.input.len(), n1.output.len()), (din, dout));
    let noisy_out = noisy::forward(&mu, &sigma, x, Some(&n1));
    assert_eq!(noisy_out.dims(), [2, dout]);
    assert_ne!(common_values(noisy_out), plain);
}

fn common_values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

#[test]
fn dueling_head_is_value_plus_centred_advantage() {
    let device = common::cpu();
    let (features, actions, atoms) = (6, 3, 4);
    let mut rng = Pcg64::seed_from_u64(3);
    let config = HeadConfig {
        dueling: true,
        noisy: false,
        atoms,
    };
    let head = FullRainbowHead::new(&config, features, &[], &mut rng, &device);
    let adv = LinearConfig::new(features, actions * atoms).init(&device);
    let x = Tensor::<2>::from_data(
        TensorData::new(
            (0..2 * features).map(|i| (i as f32).sin()).collect(),
            [2, features],
        ),
        &device,
    );
    let out = common_values(head.forward(&adv, x.clone(), 0, None));
    let a = common_values(adv.forward(x.clone()));
    let v = common_values(head.value.as_ref().unwrap().forward(x));
    for b in 0..2 {
        for k in 0..atoms {
            let mean: f32 = (0..actions)
                .map(|i| a[b * actions * atoms + i * atoms + k])
                .sum::<f32>()
                / 3.0;
            for i in 0..actions {
                let at = b * actions * atoms + i * atoms + k;
                let expected = v[b * atoms + k] + a[at] - mean;
                assert!(
                    (out[at] - expected).abs() < 1e-5,
                    "{} vs {expected}",
                    out[at]
                );
            }
        }
    }
}

/// A small image agent with the Atari-100k objective.
fn agent_config(values: Values, noisy: bool, augment: bool) -> AgentConfig {
    AgentConfig {
        network: NetworkConfig {
            architecture: Architecture::MinAtarCnn { hidden: vec![32] },
            width: 0.5,
            input: vec![2, 12, 12],
            outputs: 3,
            input_scale: 1.0 / 255.0,
            normalize_features: false,
        },
        num_actions: 3,
        objective: Objective::FullRainbow(FullRainbow {
            values,
            double_dqn: true,
            dueling: true,
            noisy,
            augment,
        }),
        learning_rate: 1e-4,
        adam_epsilon: 1.5e-4,
        weight_decay: 0.0,
    }
}

fn batch(rng: &mut impl Rng) -> Batch {
    let n = 8;
    let state = |rng: &mut dyn rand::RngCore| -> Vec<f32> {
        (0..n * 2 * 144)
            .map(|_| rng.random_range(0..256) as f32)
            .collect()
    };
    Batch {
        states: state(rng),
        actions: (0..n).map(|i| i % 3).collect(),
        action_values: Vec::new(),
        returns: (0..n).map(|i| i as f32 / 4.0 - 1.0).collect(),
        next_states: state(rng),
        discounts: (0..n).map(|i| if i == 3 { 0.0 } else { 0.9 }).collect(),
        indices: (0..n).collect(),
        priorities: vec![1.0; n],
    }
}

/// DrQ(ε) (augmentation, Huber) and DER (noisy C51, prioritized weights) learn on synthetic
/// batches, identically from the same seeds; DER's noise is off in evaluation.
#[test]
fn atari100k_agents_learn_and_a_seeded_run_is_deterministic() {
    let device = common::cpu();
    let drq = agent_config(Values::Q(TdLoss::Huber), false, true);
    let c51 = Categorical {
        atoms: 51,
        vmin: -10.0,
        vmax: 10.0,
    };
    let der = agent_config(Values::C51(c51), true, false);
    for (config, prioritized) in [(drq, false), (der, true)] {
        let run = || {
            let mut agent = Agent::new(config.clone(), &mut Pcg64::seed_from_u64(5), &device);
            let mut rng = Pcg64::seed_from_u64(6);
            let losses: Vec<f32> = (0..4)
                .map(|_| {
                    let b = batch(&mut rng);
                    agent.learn_with(&b, prioritized, &mut rng).loss
                })
                .collect();
            let weights = agent.network().kernel_values();
            (losses, weights, agent)
        };
        let (l1, w1, agent) = run();
        let (l2, w2, _) = run();
        assert!(l1.iter().all(|l| l.is_finite()), "{l1:?}");
        assert_eq!((l1, w1), (l2, w2), "seeded runs agree bit for bit");
        let names: Vec<String> = agent
            .network()
            .kernels()
            .into_iter()
            .map(|k| k.name)
            .collect();
        assert_eq!(names, ["conv1", "dense1", "head", "value"]);
        let state = batch(&mut Pcg64::seed_from_u64(8)).states[..288].to_vec();
        let eval: Vec<usize> = (0..8)
            .map(|k| agent.act_eval(&state, 0.0, &mut Pcg64::seed_from_u64(k)))
            .collect();
        assert!(
            eval.iter().all(|&a| a == eval[0]),
            "no noise in evaluation: {eval:?}"
        );
        assert_eq!(agent.is_noisy(), prioritized);
    }
}

fn kind_params(algorithm: Algorithm, overrides: &[(&str, Value)]) -> prunus_stage::Params {
    let mut all = vec![("env", Value::Str("atari/pong".into()))];
    all.extend_from_slice(overrides);
    common::kind_params(&TrainKind::new(algorithm), &all)
}

#[test]
fn atari100k_kinds_validate_their_parameters_by_name() {
    let check = |algorithm, overrides: &[(&str, Value)]| {
        TrainKind::new(algorithm)
            .validate(&kind_params(algorithm, overrides))
            .map_err(|e| e.to_string())
    };
    assert!(check(Algorithm::DrqEps, &[]).is_ok());
    assert!(check(Algorithm::Der, &[]).is_ok());
    let err = |algorithm, overrides: &[(&str, Value)]| check(algorithm, overrides).unwrap_err();
    let e = err(
        Algorithm::DrqEps,
        &[("env", Value::Str("minatar/breakout".into()))],
    );
    assert!(e.contains("env") && e.contains("not an Atari game"), "{e}");
    let e = err(Algorithm::DrqEps, &[("env.noops", Value::Int(20_000))]);
    assert!(e.contains("env.noops"), "{e}");
    let e = err(Algorithm::DrqEps, &[("loss", Value::Str("l1".into()))]);
    assert!(e.contains("loss") && e.contains("huber"), "{e}");
    let e = err(Algorithm::Der, &[("atoms", Value::Int(1))]);
    assert!(e.contains("atoms"), "{e}");
    let e = err(Algorithm::Der, &[("vmax", Value::Float(0.0))]);
    assert!(e.contains("vmax"), "{e}");
    let e = err(Algorithm::Der, &[("replay-ratio", Value::Float(0.0))]);
    assert!(e.contains("replay-ratio"), "{e}");
}

/// The defaults are the gins' (`prunus kinds` shows them), and the baselines are not offered.
#[test]
fn atari100k_kinds_declare_the_gins_defaults_and_no_baselines() {
    let default = |algorithm, key: &str| {
        TrainKind::new(algorithm)
            .params()
            .into_iter()
            .find(|p| p.key == key)
            .and_then(|p| p.default)
    };
    use Algorithm::{Der, DrqEps};
    for (key, drq, der) in [
        ("n-step", Value::Int(10), Value::Int(10)),
        ("target-update", Value::Int(1), Value::Int(2_000)),
        ("epsilon.decay", Value::Int(5_000), Value::Int(2_000)),
        ("min-replay", Value::Int(1_600), Value::Int(1_600)),
        ("replay-ratio", Value::Float(1.0), Value::Float(1.0)),
        ("learning-rate", Value::Float(1e-4), Value::Float(1e-4)),
        ("env.sticky", Value::Float(0.0), Value::Float(0.0)),
        ("steps", Value::Int(100_000), Value::Int(100_000)),
        ("replay.prioritized", Value::Bool(false), Value::Bool(true)),
        ("noisy", Value::Bool(false), Value::Bool(true)),
        ("augment", Value::Bool(true), Value::Bool(false)),
        ("env.noops", Value::Int(30), Value::Int(30)),
    ] {
        assert_eq!(default(DrqEps, key), Some(drq), "{key}");
        assert_eq!(default(Der, key), Some(der), "{key}");
    }
    for key in ["reset.period", "redo.period", "weight-decay", "l2"] {
        assert!(
            default(DrqEps, key).is_none() && default(Der, key).is_none(),
            "{key}"
        );
    }
}
