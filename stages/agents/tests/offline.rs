//! Offline RL: datasets (`collect`, [`prunus_agents::dataset`]) round-trip bit for bit, in
//! shards, as subsets and across a killed collection; CQL's losses on a fixed batch; `train/cql`
//! learns CartPole from a trained agent's dataset; every new parameter is checked.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::{Tensor, TensorData};
use prunus_agents::dataset::{self, Collector, FrameFormat, Manifest, Record, Selection};
use prunus_agents::kinds::{CollectKind, OfflineAlgorithm, OfflineKind};
use prunus_agents::objectives::{Categorical, Objective, TdLoss, cql};
use prunus_agents::replay::Batch;
use prunus_env::{ObsKind, Observation};
use prunus_stage::{Context, Input, Params, StageError, StageKind, Value};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use common::{CancelAt, cpu};

/// A kind's defaults with `overrides` (each must be a declared key).
fn params(kind: &dyn StageKind, overrides: &[(&str, Value)]) -> Params {
    common::kind_params(kind, overrides)
}

// ---- the dataset format --------------------------------------------------------------------

/// A pushed item, as the test remembers it.
#[derive(Clone, Debug)]
enum Item {
    Step(Vec<u8>, u8, f32, bool),
    End(Vec<u8>),
}

/// A random stream of `steps` transitions of `frame_len`-element frames of `kind`: episodes of
/// 1-40 steps, half of them ended by a terminal, half cut (truncated); rewards carry the
/// episode's number so that subsets can be checked.
fn stream(kind: ObsKind, frame_len: usize, steps: u64, seed: u64) -> Vec<Item> {
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut frame = || -> Vec<u8> {
        match kind {
            ObsKind::Binary => (0..frame_len).map(|_| rng.random_bool(0.2) as u8).collect(),
            ObsKind::Byte => (0..frame_len).map(|_| rng.random::<u8>()).collect(),
            ObsKind::Float => (0..frame_len)
                .flat_map(|_| rng.random::<f32>().to_le_bytes())
                .collect(),
        }
    };
    let mut lens = Pcg64::seed_from_u64(seed + 1);
    let mut items = Vec::new();
    let (mut done, mut episode) = (0u64, 0u32);
    while done < steps {
        let len = lens.random_range(1..=40u64).min(steps - done);
        let terminal = lens.random_bool(0.5);
        for t in 0..len {
            let last = t + 1 == len;
            let action = lens.random_range(0..6u8);
            items.push(Item::Step(
                frame(),
                action,
                episode as f32 + 0.5,
                last && terminal,
            ));
        }
        done += len;
        if done < steps || terminal {
            items.push(Item::End(frame()));
        }
        episode += 1;
    }
    items
}

fn obs<'a>(kind: ObsKind, bytes: &'a [u8], floats: &'a mut Vec<f32>) -> Observation<'a> {
    match kind {
        ObsKind::Binary => Observation::Binary(bytes),
        ObsKind::Byte => Observation::Byte(bytes),
        ObsKind::Float => {
            *floats = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            Observation::Float(floats)
        }
    }
}

/// Writes `items` into shards of `shard_size` in `dir`; the manifest and the shard paths.
fn write(
    dir: &Path,
    kind: ObsKind,
    frame_len: usize,
    shard_size: u64,
    items: &[Item],
) -> (Manifest, Vec<PathBuf>) {
    let format = FrameFormat::new(kind, frame_len);
    let mut c = Collector::new(dir, format, shard_size);
    let mut floats = Vec::new();
    for item in items {
        match item {
            Item::Step(f, a, r, t) => c.push_step(obs(kind, f, &mut floats), *a, *r, *t).unwrap(),
            Item::End(f) => c.end_episode(obs(kind, f, &mut floats)).unwrap(),
        }
        // (A full shard is closed by the next step: an episode's end record goes with it.)
    }
    let state = c.finish().unwrap();
    let manifest = Manifest {
        format: dataset::FORMAT,
        env: "test".into(),
        env_options: Default::default(),
        shape: vec![frame_len],
        frame_stack: 1,
        frame: format,
        num_actions: 6,
        source: dataset::Source {
            recipe: "test".into(),
            agent: serde_json::Value::Null,
            epsilon: None,
            seed: 0,
        },
        transitions: state.transitions,
        shard_size,
        shards: state.shards,
    };
    let paths = manifest.shards.iter().map(|s| dir.join(&s.file)).collect();
    (manifest, paths)
}

fn read_all(m: &Manifest, paths: &[PathBuf], selection: Selection) -> Vec<Record> {
    let mut out = Vec::new();
    dataset::read_records(m, paths, selection, |r| {
        out.push(r.clone());
        Ok(())
    })
    .unwrap();
    out
}

/// The stored form of a frame (bits packed for binary frames).
fn stored(kind: ObsKind, frame: &[u8]) -> Vec<u8> {
    match kind {
        ObsKind::Binary => {
            let mut packed = vec![0u8; frame.len().div_ceil(8)];
            for (i, &b) in frame.iter().enumerate() {
                packed[i / 8] |= b << (i % 8);
            }
            packed
        }
        _ => frame.to_vec(),
    }
}

#[test]
fn datasets_round_trip_bit_for_bit_across_shards() {
    // MinAtar-shaped bits (10x10x4), Atari-shaped bytes (84x84) and classic-control floats.
    for (kind, frame_len, steps, shard) in [
        (ObsKind::Binary, 400, 2_000, 300),
        (ObsKind::Byte, 84 * 84, 300, 128),
        (ObsKind::Float, 4, 1_000, 1_000),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let items = stream(kind, frame_len, steps, 7);
        let (m, paths) = write(dir.path(), kind, frame_len, shard, &items);
        assert_eq!(m.transitions, steps);
        assert_eq!(m.shards.len(), dataset::shard_count(steps, shard));
        assert!(
            m.shards[..m.shards.len() - 1]
                .iter()
                .all(|s| s.transitions == shard)
        );
        for s in &m.shards {
            let (bytes, digest) =
                prunus_agents::dataset::writer::digest_file(&dir.path().join(&s.file)).unwrap();
            assert_eq!((bytes, &digest), (s.bytes, &s.digest));
        }
        let records = read_all(&m, &paths, Selection::all());
        assert_eq!(records.len(), items.len(), "{kind:?}");
        let mut first = true;
        for (r, item) in records.iter().zip(&items) {
            match item {
                Item::Step(f, a, rew, t) => {
                    assert_eq!(
                        (r.action, r.reward, r.is_terminal(), r.is_last()),
                        (*a, *rew, *t, false)
                    );
                    assert_eq!(r.is_first(), first);
                    assert_eq!(r.frame, stored(kind, f));
                    first = false;
                }
                Item::End(f) => {
                    assert!(r.is_last() && !r.is_first());
                    assert_eq!(r.frame, stored(kind, f));
                    first = true;
                }
            }
        }
        // Written again: the same bytes.
        let again = tempfile::tempdir().unwrap();
        let (m2, _) = write(again.path(), kind, frame_len, shard, &items);
        assert_eq!(m.shards, m2.shards);
    }
}

#[test]
fn a_fraction_takes_the_first_episodes_of_each_shard_whole() {
    let dir = tempfile::tempdir().unwrap();
    let items = stream(ObsKind::Binary, 100, 3_000, 3);
    let (m, paths) = write(dir.path(), ObsKind::Binary, 100, 400, &items);
    let all = read_all(&m, &paths, Selection::all());
    // Episode number (from the reward of its steps) of each record, and which shard it starts in.
    let mut episode_of = Vec::new();
    let mut current = 0u32;
    for (i, r) in all.iter().enumerate() {
        if !r.is_last() {
            current = r.reward as u32;
        } else if i > 0 {
            current = episode_of[i - 1];
        }
        episode_of.push(current);
    }
    let mut start_shard: BTreeMap<u32, usize> = BTreeMap::new();
    let mut seen = 0u64;
    for (k, s) in m.shards.iter().enumerate() {
        for i in seen as usize..(seen + s.records) as usize {
            if all[i].is_first() {
                start_shard.insert(episode_of[i], k);
            }
        }
        seen += s.records;
    }
    for fraction in [0.05, 0.3, 0.5, 1.0] {
        let sel = Selection { fraction };
        let mut expect: Vec<u32> = Vec::new();
        for (k, s) in m.shards.iter().enumerate() {
            let take = ((fraction * s.episodes as f64).round() as usize).min(s.episodes as usize);
            expect.extend(
                start_shard
                    .iter()
                    .filter(|(_, sk)| **sk == k)
                    .map(|(e, _)| *e)
                    .take(take),
            );
        }
        let got = read_all(&m, &paths, sel);
        let want: Vec<&Record> = all
            .iter()
            .zip(&episode_of)
            .filter(|(_, e)| expect.contains(e))
            .map(|(r, _)| r)
            .collect();
        assert_eq!(got.len(), want.len(), "fraction {fraction}");
        assert!(
            got.iter().zip(want).all(|(a, b)| a == b),
            "fraction {fraction}"
        );
        // Episodes come whole: every selected episode's steps, then its end if it has one.
        assert!(got.first().is_some_and(Record::is_first));
    }
}

// ---- the collect kind ------------------------------------------------------------------------

fn collect_params(kind: &CollectKind, steps: i64, shard: i64) -> Params {
    params(
        kind,
        &[
            ("env", Value::Str("cartpole".into())),
            ("steps", Value::Int(steps)),
            ("iterations", Value::Int(3)),
            ("shard-size", Value::Int(shard)),
            ("network.hidden", Value::Int(64)),
            ("batch-size", Value::Int(64)),
        ],
    )
}

fn context(p: Params, inputs: Vec<Input>, out: &Path, scratch: &Path) -> Context {
    Context::for_test(p, inputs, out.to_path_buf(), scratch.to_path_buf())
}

fn input_of(stage: &str, out: &Path, names: &[String]) -> Input {
    Input {
        stage: stage.into(),
        instance: stage.into(),
        axes: BTreeMap::new(),
        outputs: names.iter().map(|n| (n.clone(), out.join(n))).collect(),
    }
}

#[test]
fn a_killed_collection_resumes_to_the_same_bytes() {
    let kind = CollectKind::default();
    let p = collect_params(&kind, 3_000, 500);
    let dir = tempfile::tempdir().unwrap();
    let straight = dir.path().join("straight");
    kind.run(&context(
        p.clone(),
        vec![],
        &straight,
        &dir.path().join("s1"),
    ))
    .unwrap();
    let outputs = kind.outputs(&p);
    assert_eq!(outputs.len(), 2 + 6);
    let m = Manifest::read(&straight.join(dataset::MANIFEST)).unwrap();
    assert_eq!(
        (m.transitions, m.shards.len(), m.env.as_str()),
        (3_000, 6, "cartpole")
    );

    let (out, scratch) = (dir.path().join("resumed"), dir.path().join("s2"));
    let mut ctx = context(p.clone(), vec![], &out, &scratch);
    let flag = ctx.cancel.clone();
    // Cancelled mid-way through the fourth shard: it resumes from the end of the third.
    ctx.reporter = Arc::new(CancelAt { at: 1_700, flag });
    assert!(matches!(kind.run(&ctx), Err(StageError::Cancelled)));
    assert!(
        scratch
            .join("shards")
            .join(dataset::shard_name(3))
            .is_file()
    );
    kind.run(&context(p.clone(), vec![], &out, &scratch))
        .unwrap();
    for name in &outputs {
        assert_eq!(
            std::fs::read(straight.join(name)).unwrap(),
            std::fs::read(out.join(name)).unwrap(),
            "{name} differs"
        );
    }
    // A damaged finished shard in the scratch is not resumed from.
    let (out3, scratch3) = (dir.path().join("third"), dir.path().join("s3"));
    let mut ctx = context(p.clone(), vec![], &out3, &scratch3);
    let flag = ctx.cancel.clone();
    ctx.reporter = Arc::new(CancelAt { at: 1_200, flag });
    assert!(matches!(kind.run(&ctx), Err(StageError::Cancelled)));
    std::fs::write(
        scratch3.join("shards").join(dataset::shard_name(0)),
        b"junk",
    )
    .unwrap();
    kind.run(&context(p.clone(), vec![], &out3, &scratch3))
        .unwrap();
    assert_eq!(
        std::fs::read(straight.join(dataset::MANIFEST)).unwrap(),
        std::fs::read(out3.join(dataset::MANIFEST)).unwrap()
    );
}

// ---- the losses ------------------------------------------------------------------------------

fn batch(actions: Vec<usize>, returns: Vec<f32>, discounts: Vec<f32>) -> Batch {
    Batch {
        actions,
        returns,
        discounts,
        ..Batch::default()
    }
}

fn losses(
    objective: Objective,
    out: Vec<f32>,
    cols: usize,
    next: &[f32],
    b: &Batch,
    actions: usize,
) -> Vec<f32> {
    let rows = b.actions.len();
    let out = Tensor::<2>::from_data(TensorData::new(out, [rows, cols]), &cpu());
    objective
        .per_sample_loss(out, next, b, actions, &cpu())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

#[test]
fn cql_loss_equals_the_hand_computed_value() {
    // Two samples, three actions. Sample 0: Q = (1, 2, 0), data action 1, target
    // 0.5 + 0.9·max(0, 1, 3) = 3.2, TD error 1.2 → Huber 1.2 − 0.5 = 0.7; CQL term
    // log(e + e² + 1) − 2 = 0.4076059644. Sample 1: Q = (0.5, −1, 3), action 0, terminal
    // target 1.0, error 0.5 → Huber 0.125; CQL log(e^0.5 + e^−1 + e³) − 0.5 = 2.5956743.
    let b = batch(vec![1, 0], vec![0.5, 1.0], vec![0.9, 0.0]);
    let next = [0.0, 1.0, 3.0, 9.0, 9.0, 9.0];
    let got = losses(
        Objective::Cql {
            td: TdLoss::Huber,
            alpha: 0.1,
        },
        vec![1.0, 2.0, 0.0, 0.5, -1.0, 3.0],
        3,
        &next,
        &b,
        3,
    );
    let want = [0.7 + 0.1 * 0.407_605_96, 0.125 + 0.1 * 2.595_674_3];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
    }
    // alpha 0 is plain DQN with the Huber loss.
    let plain = losses(
        Objective::Cql {
            td: TdLoss::Huber,
            alpha: 0.0,
        },
        vec![1.0, 2.0, 0.0, 0.5, -1.0, 3.0],
        3,
        &next,
        &b,
        3,
    );
    let dqn = losses(
        Objective::Dqn(TdLoss::Huber),
        vec![1.0, 2.0, 0.0, 0.5, -1.0, 3.0],
        3,
        &next,
        &b,
        3,
    );
    assert_eq!(plain, dqn);
}

#[test]
fn train_cqls_host_head_has_the_tensor_forms_values_and_gradients() {
    // `train/cql` computes its loss head on the host with its closed-form gradient; the
    // reference is the same loss written with burn's ops (the TD loss plus `cql::penalty`),
    // differentiated by autodiff. TD errors on both sides of Huber's kink.
    let mut rng = Pcg64::seed_from_u64(3);
    let (rows, actions) = (16, 5);
    let q: Vec<f32> = (0..rows * actions)
        .map(|_| rng.random_range(-3.0..3.0))
        .collect();
    let next: Vec<f32> = (0..rows * actions)
        .map(|_| rng.random_range(-3.0..3.0))
        .collect();
    let data: Vec<usize> = (0..rows).map(|_| rng.random_range(0..actions)).collect();
    let returns = (0..rows).map(|_| rng.random_range(-1.0..1.0)).collect();
    let discounts = (0..rows)
        .map(|i| if i % 4 == 0 { 0.0 } else { 0.99 })
        .collect();
    let b = batch(data.clone(), returns, discounts);
    let device = cpu().autodiff();
    let loss_and_grad = |loss: &dyn Fn(Tensor<2>) -> Tensor<1>| {
        let out = Tensor::<2>::from_data(TensorData::new(q.clone(), [rows, actions]), &device)
            .require_grad();
        let per_sample = loss(out.clone());
        let values = per_sample.clone().into_data().try_to_vec::<f32>().unwrap();
        let grads = per_sample.mean().backward();
        let grad = out
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        (values, grad)
    };
    for td in [TdLoss::Huber, TdLoss::Mse] {
        let alpha = 0.7;
        let objective = Objective::Cql { td, alpha };
        let (got, got_grad) =
            loss_and_grad(&|out| objective.per_sample_loss(out, &next, &b, actions, &device));
        let (want, want_grad) = loss_and_grad(&|out| {
            let dqn = Objective::Dqn(td).per_sample_loss(out.clone(), &next, &b, actions, &device);
            dqn + cql::penalty(out, &data).mul_scalar(alpha)
        });
        for (g, w) in got.iter().zip(&want).chain(got_grad.iter().zip(&want_grad)) {
            assert!((g - w).abs() < 1e-5, "{td:?}: {g} vs {w}");
        }
        assert!(got_grad.iter().any(|&g| g != 0.0));
    }
}

#[test]
fn cql_c51_loss_equals_the_hand_computed_value() {
    // One sample, two actions, three atoms on [-1, 1]. Online logits: action 0 (0, 0, 0),
    // action 1 (ln 2, 0, 0) → p1 = (1/2, 1/4, 1/4). Target logits uniform for action 0,
    // (0, 0, ln 3) for action 1 (p = (.2, .2, .6), Q .4 > 0): the target is action 1's
    // distribution shifted by r = 0.5, γ = 0.5: atoms −1, 0, 1 go to 0, .5, 1 → m = (0, .4, .6).
    // Data action 1: cross-entropy −(.4 ln 1/4 + .6 ln 1/4) = ln 4 = 1.3862944.
    // Expected Q: action 0 → 0, action 1 → −1/2 + 1/4 = −0.25; CQL term
    // log(e^0 + e^−0.25) + 0.25 = 0.8259394.
    let c = Categorical {
        atoms: 3,
        vmin: -1.0,
        vmax: 1.0,
    };
    let b = batch(vec![1], vec![0.5], vec![0.5]);
    let ln2 = 2f32.ln();
    let ln3 = 3f32.ln();
    let got = losses(
        Objective::CqlC51 { c51: c, alpha: 0.1 },
        vec![0.0, 0.0, 0.0, ln2, 0.0, 0.0],
        6,
        &[0.0, 0.0, 0.0, 0.0, 0.0, ln3],
        &b,
        2,
    );
    let want = 1.386_294_4 + 0.1 * 0.825_939_4;
    assert!((got[0] - want).abs() < 1e-5, "{got:?} vs {want}");
}

#[test]
fn the_cql_term_vanishes_only_at_a_one_hot_q_with_infinite_margin() {
    let q = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [1, 3]), &cpu());
    let term = |v: Vec<f32>, a: usize| {
        cql::penalty(q(v), &[a])
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()[0]
    };
    // One-hot at the data action with a margin too large for f32 to see the rest: 0.
    assert_eq!(term(vec![0.0, 1e4, 0.0], 1), 0.0);
    // Otherwise positive: finite margins, another action's favourite, equal values.
    assert!(term(vec![0.0, 5.0, 0.0], 1) > 0.0);
    assert!(term(vec![0.0, 1e4, 0.0], 0) > 1e3);
    assert!((term(vec![2.0, 2.0, 2.0], 2) - 3f32.ln()).abs() < 1e-6);
    // Values whose exponential overflows f32 stay finite (the row maximum is taken out).
    assert!((term(vec![100.0, 100.0, 0.0], 0) - 2f32.ln()).abs() < 1e-4);
}

// ---- learning --------------------------------------------------------------------------------

fn mean_eval(returns_csv: &Path, last: usize) -> f64 {
    let rows: Vec<prunus_results::ReturnsRow> = prunus_results::read_csv(returns_csv).unwrap();
    let tail = &rows[rows.len() - last..];
    tail.iter().map(|r| r.eval_return.unwrap()).sum::<f64>() / tail.len() as f64
}

#[test]
fn cql_learns_cartpole_from_a_trained_agents_dataset() {
    // Budget: a 15k-step DQN run recorded in 3 shards (Dopamine's CartPole settings: Adam
    // 1e-3, target every 100 steps, batch 128; 2x128 MLP), then 3,000 CQL gradient steps
    // (batch 128, Adam 1e-3, target every 100) on the whole dataset, evaluated on 2,000
    // agent steps: about 30 s of one core. A uniform-random CartPole policy returns ~22.
    let collect = CollectKind::default();
    let cp = params(
        &collect,
        &[
            ("env", Value::Str("cartpole".into())),
            ("steps", Value::Int(15_000)),
            ("iterations", Value::Int(3)),
            ("shard-size", Value::Int(5_000)),
            ("network.hidden", Value::Int(128)),
            ("batch-size", Value::Int(128)),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    collect
        .run(&context(cp.clone(), vec![], &data, &dir.path().join("s1")))
        .unwrap();
    let behaviour = {
        let rows: Vec<prunus_results::ReturnsRow> =
            prunus_results::read_csv(&data.join("returns.csv")).unwrap();
        rows.iter()
            .map(|r| r.train_return.unwrap_or(0.0))
            .collect::<Vec<_>>()
    };
    let cql = OfflineKind::new(OfflineAlgorithm::Cql);
    let p = params(
        &cql,
        &[
            ("steps", Value::Int(3_000)),
            ("iterations", Value::Int(3)),
            ("eval-steps", Value::Int(2_000)),
            ("batch-size", Value::Int(128)),
            ("learning-rate", Value::Float(1e-3)),
            ("target-update", Value::Int(100)),
            ("network.hidden", Value::Int(128)),
            ("dataset.fraction", Value::Float(1.0)),
            ("clip-rewards", Value::Bool(false)),
            ("probe-batch", Value::Int(32)),
        ],
    );
    let out = dir.path().join("cql");
    let input = input_of("collect", &data, &collect.outputs(&cp));
    cql.run(&context(p, vec![input], &out, &dir.path().join("s2")))
        .unwrap();
    let score = mean_eval(&out.join("returns.csv"), 1);
    assert!(
        score > 100.0,
        "offline CQL evaluation return {score} (behaviour agent's training returns {behaviour:?})"
    );
}

#[test]
fn an_offline_run_resumes_bit_identically_and_prunes() {
    let collect = CollectKind::default();
    let cp = collect_params(&collect, 1_500, 1_000);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    collect
        .run(&context(cp.clone(), vec![], &data, &dir.path().join("s0")))
        .unwrap();
    for algorithm in [OfflineAlgorithm::Cql, OfflineAlgorithm::CqlC51] {
        let kind = OfflineKind::new(algorithm);
        let p = params(
            &kind,
            &[
                ("steps", Value::Int(1_200)),
                ("iterations", Value::Int(2)),
                ("eval-steps", Value::Int(100)),
                ("network.hidden", Value::Int(32)),
                ("dataset.fraction", Value::Float(0.5)),
                ("prune", Value::Str("gmp".into())),
                ("prune.sparsity", Value::Float(0.9)),
                ("prune.frequency", Value::Int(100)),
                ("probe-batch", Value::Int(16)),
            ],
        );
        let input = || input_of("collect", &data, &collect.outputs(&cp));
        let straight = dir
            .path()
            .join(format!("{}-a", algorithm.name().replace('/', "_")));
        kind.run(&context(
            p.clone(),
            vec![input()],
            &straight,
            &dir.path().join("sa"),
        ))
        .unwrap();
        let (out, scratch) = (
            dir.path()
                .join(format!("{}-b", algorithm.name().replace('/', "_"))),
            dir.path()
                .join(format!("sb-{}", algorithm.name().replace('/', "_"))),
        );
        let mut ctx = context(p.clone(), vec![input()], &out, &scratch);
        let flag = ctx.cancel.clone();
        ctx.reporter = Arc::new(CancelAt { at: 700, flag });
        assert!(matches!(kind.run(&ctx), Err(StageError::Cancelled)));
        kind.run(&context(p.clone(), vec![input()], &out, &scratch))
            .unwrap();
        for name in kind.outputs(&p) {
            assert_eq!(
                std::fs::read(straight.join(&name)).unwrap(),
                std::fs::read(out.join(&name)).unwrap(),
                "{} {name} differs",
                algorithm.name()
            );
        }
        let rows: Vec<prunus_results::ReturnsRow> =
            prunus_results::read_csv(&out.join("returns.csv")).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(
            (rows[1].sparsity - 0.9).abs() < 0.01,
            "{}",
            rows[1].sparsity
        );
        let _ = std::fs::remove_dir_all(dir.path().join("sa"));
    }
}

// ---- parameters ------------------------------------------------------------------------------

fn rejects(kind: &dyn StageKind, key: &str, value: Value, base: &[(&str, Value)]) {
    let mut o: Vec<(&str, Value)> = base.to_vec();
    o.push((key, value.clone()));
    match kind.validate(&params(kind, &o)) {
        Err(StageError::Param { key: k, message }) => {
            assert_eq!(k, key, "{key}={value}: reported `{k}`: {message}");
            assert!(!message.is_empty());
        }
        other => panic!("{} {key}={value}: {other:?}", kind.name()),
    }
}

#[test]
fn bad_parameters_are_explained() {
    let collect = CollectKind::default();
    let env = [("env", Value::Str("minatar/breakout".into()))];
    assert!(collect.validate(&params(&collect, &env)).is_ok());
    rejects(&collect, "source", Value::Str("replay".into()), &env);
    rejects(&collect, "checkpoint", Value::Str("".into()), &env);
    rejects(&collect, "epsilon", Value::Float(1.5), &env);
    rejects(&collect, "shard-size", Value::Int(0), &env);
    // The training run's own parameters are train/dqn's, checked the same way.
    rejects(&collect, "replay-ratio", Value::Float(0.0), &env);
    rejects(&collect, "env", Value::Str("minatar/tetris".into()), &[]);

    for algorithm in [OfflineAlgorithm::Cql, OfflineAlgorithm::CqlC51] {
        let kind = OfflineKind::new(algorithm);
        assert!(kind.validate(&params(&kind, &[])).is_ok());
        for (key, value) in [
            ("dataset.fraction", Value::Float(0.0)),
            ("dataset.fraction", Value::Float(1.5)),
            ("alpha", Value::Float(-1.0)),
            ("iterations", Value::Int(0)),
            ("steps", Value::Int(1_001)),
            ("network", Value::Str("transformer".into())),
            ("network.width", Value::Float(0.0)),
            ("target-update", Value::Int(0)),
            ("batch-size", Value::Int(0)),
            ("learning-rate", Value::Float(0.0)),
            ("gamma", Value::Float(1.5)),
            ("epsilon.eval", Value::Float(2.0)),
            ("prune", Value::Str("random".into())),
            ("checkpoints", Value::List(vec![Value::Float(1.5)])),
            ("device", Value::Str("tpu".into())),
        ] {
            rejects(&kind, key, value, &[]);
        }
        if algorithm == OfflineAlgorithm::CqlC51 {
            rejects(&kind, "atoms", Value::Int(1), &[]);
            rejects(&kind, "vmax", Value::Float(-1.0), &[]);
        } else {
            assert!(!kind.params().iter().any(|s| s.key == "atoms"));
        }
    }
    // A train/cql stage needs exactly one dataset.
    let kind = OfflineKind::new(OfflineAlgorithm::Cql);
    let dir = tempfile::tempdir().unwrap();
    let err = kind
        .run(&context(params(&kind, &[]), vec![], dir.path(), dir.path()))
        .unwrap_err();
    assert!(
        err.to_string().contains("exactly one upstream collect"),
        "{err}"
    );
}
