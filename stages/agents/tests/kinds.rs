//! The `train/dqn` and `train/rainbow` stage kinds end to end: outputs, pruning, cancel and
//! resume from the scratch checkpoint.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use prunus_agents::checkpoint::{ProbeBatch, Snapshot};
use prunus_agents::kinds::ProbeKind;
use prunus_agents::kinds::{Algorithm, TrainKind};
use prunus_stage::{Context, Input, Params, Reporter, StageError, StageKind, Value};

use common::CancelAt;

fn kind(algorithm: Algorithm) -> TrainKind {
    TrainKind::new(algorithm)
}

fn params(kind: &TrainKind, overrides: &[(&str, Value)]) -> Params {
    common::kind_params(kind, overrides)
}

/// 4,000 CartPole steps in 2 iterations, GMP to 90% between 20% and 80% of the ~875 updates.
fn small_run(kind: &TrainKind) -> Params {
    params(
        kind,
        &[
            ("env", Value::Str("cartpole".into())),
            ("steps", Value::Int(4_000)),
            ("iterations", Value::Int(2)),
            ("eval-episodes", Value::Int(2)),
            ("network.hidden", Value::Int(64)),
            ("prune", Value::Str("gmp".into())),
            ("prune.sparsity", Value::Float(0.9)),
            ("prune.frequency", Value::Int(50)),
            (
                "checkpoints",
                Value::List(vec![Value::Float(0.5), Value::Float(1.0)]),
            ),
            ("probe-batch", Value::Int(64)),
        ],
    )
}

fn context(params: Params, out: &Path, scratch: &Path) -> Context {
    Context::for_test(params, Vec::new(), out.to_path_buf(), scratch.to_path_buf())
}

#[test]
fn dqn_kind_writes_every_output_and_prunes() {
    let kind = kind(Algorithm::Dqn);
    let p = small_run(&kind);
    let dir = tempfile::tempdir().unwrap();
    let (out, scratch) = (dir.path().join("out"), dir.path().join("scratch"));
    kind.run(&context(p.clone(), &out, &scratch)).unwrap();
    for name in kind.outputs(&p) {
        assert!(out.join(&name).is_file(), "missing output {name}");
    }
    let returns = std::fs::read_to_string(out.join("returns.csv")).unwrap();
    let lines: Vec<&str> = returns.lines().collect();
    assert_eq!(
        lines[0],
        "iteration,env_steps,grad_steps,train_return,train_episodes,eval_return,eval_episodes,sparsity"
    );
    assert_eq!(lines.len(), 3);
    assert!(lines[2].starts_with("1,4000,"), "{}", lines[2]);
    let overall: f64 = lines[2].rsplit(',').next().unwrap().parse().unwrap();
    assert!((overall - 0.9).abs() < 0.01, "overall sparsity {overall}");

    let snap = Snapshot::read(&out.join("final.ckpt")).unwrap();
    let net = snap.network(&common::cpu()).unwrap();
    for (values, mask) in net.kernel_values().iter().zip(&snap.masks) {
        let mask = mask
            .as_ref()
            .expect("every kernel has a mask after pruning");
        assert!(
            values.iter().zip(mask).all(|(w, m)| *m != 0.0 || *w == 0.0),
            "pruned weights must be zero"
        );
    }
    let sparsity = std::fs::read_to_string(out.join("sparsity.csv")).unwrap();
    assert!(sparsity.starts_with("grad_steps,layer,sparsity\n"));
    assert!(sparsity.contains(",dense1,") && sparsity.contains(",head,"));
    let entries: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out.join("checkpoints.json")).unwrap()).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["env_steps"], 2000);
    let probe = ProbeBatch::read(&out.join("probe_batch.bin")).unwrap();
    assert_eq!(
        (probe.len(), probe.state_len, probe.states.len()),
        (64, 4, 256)
    );

    // The probe kind over this run's checkpoints.
    let input = Input {
        stage: "train".into(),
        instance: "train/cartpole".into(),
        axes: BTreeMap::new(),
        outputs: kind
            .outputs(&p)
            .into_iter()
            .map(|n| (n.clone(), out.join(n)))
            .collect(),
    };
    let probe_kind = ProbeKind;
    let probe_params = Params(
        probe_kind
            .params()
            .into_iter()
            .map(|s| (s.key.to_string(), s.default.unwrap()))
            .collect(),
    );
    let probe_out = dir.path().join("probe");
    let ctx = Context::for_test(
        probe_params,
        vec![input],
        probe_out.clone(),
        dir.path().join("s3"),
    );
    probe_kind.run(&ctx).unwrap();
    let csv = std::fs::read_to_string(probe_out.join("probes.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let names = [
        "q_target_variance",
        "param_norm",
        "q_norm",
        "srank",
        "dormant_tau0",
        "dormant_tau0.025",
        "dormant_tau0.1",
    ];
    assert_eq!(rows.len(), 2 * names.len(), "{csv}");
    for (row, name) in rows.iter().zip(names.iter().cycle()) {
        assert_eq!(row[1], *name);
        let v: f64 = row[2].parse().unwrap();
        assert!(v.is_finite() && v >= 0.0, "{name} = {v}");
    }
    assert_eq!(rows[0][0], "2000");
    let srank: f64 = rows[3][2].parse().unwrap();
    assert!(
        (1.0..=64.0).contains(&srank),
        "srank {srank} of 64 features"
    );
    let covs: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(probe_out.join("grad_cov.json")).unwrap()).unwrap();
    assert_eq!(covs.len(), 2);
    let m = &covs[1]["matrix"];
    assert_eq!(m.as_array().unwrap().len(), 32);
    assert!(
        (m[0][0].as_f64().unwrap() - 1.0).abs() < 1e-6,
        "a gradient's cosine with itself is 1"
    );
    assert!(m[0][1].as_f64().unwrap().abs() <= 1.0 + 1e-9);
}

#[test]
fn cancelled_run_resumes_bit_identically() {
    let kind = kind(Algorithm::Rainbow);
    let p = small_run(&kind);
    let dir = tempfile::tempdir().unwrap();
    let straight = dir.path().join("straight");
    kind.run(&context(p.clone(), &straight, &dir.path().join("s1")))
        .unwrap();

    let (out, scratch) = (dir.path().join("resumed"), dir.path().join("s2"));
    let mut ctx = context(p.clone(), &out, &scratch);
    let flag = ctx.cancel.clone();
    ctx.reporter = Arc::new(CancelAt { at: 1_000, flag });
    assert!(matches!(kind.run(&ctx), Err(StageError::Cancelled)));
    assert!(scratch.join("resume.ckpt").is_file());
    // A new process: fresh context, same scratch.
    kind.run(&context(p.clone(), &out, &scratch)).unwrap();
    for name in kind.outputs(&p) {
        assert_eq!(
            std::fs::read(straight.join(&name)).unwrap(),
            std::fs::read(out.join(&name)).unwrap(),
            "{name} differs"
        );
    }
}

#[test]
fn a_run_cancelled_mid_pruning_resumes_with_its_masks() {
    // The MinAtar ResNet, pruned to 95% between gradient steps 125 and 500 of 625 (masks
    // updated every 50), cancelled at agent step 2,400 (gradient step ~475, in the third of
    // three iterations: masks at ~90%).
    let kind = kind(Algorithm::Dqn);
    let p = params(
        &kind,
        &[
            ("env", Value::Str("minatar/breakout".into())),
            ("network", Value::Str("minatar-resnet".into())),
            ("steps", Value::Int(3_000)),
            ("iterations", Value::Int(3)),
            ("min-replay", Value::Int(500)),
            ("prune", Value::Str("gmp".into())),
            ("prune.frequency", Value::Int(50)),
            ("checkpoints", Value::List(vec![Value::Float(1.0)])),
            ("probe-batch", Value::Int(32)),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let straight = dir.path().join("straight");
    kind.run(&context(p.clone(), &straight, &dir.path().join("s1")))
        .unwrap();
    let (out, scratch) = (dir.path().join("resumed"), dir.path().join("s2"));
    let mut ctx = context(p.clone(), &out, &scratch);
    let flag = ctx.cancel.clone();
    ctx.reporter = Arc::new(CancelAt { at: 2_400, flag });
    assert!(matches!(kind.run(&ctx), Err(StageError::Cancelled)));
    kind.run(&context(p.clone(), &out, &scratch)).unwrap();
    // Masks were in force before the cancel (sparsity.csv's row for the end of the second
    // iteration, gradient step 384), and the resumed run ends where the straight one does.
    let csv = std::fs::read_to_string(out.join("sparsity.csv")).unwrap();
    let early = csv.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split(',').collect();
        f[0].parse::<u64>().unwrap() < 450 && f[2].parse::<f64>().unwrap() > 0.5
    });
    assert!(early, "no mask before the cancel in {csv}");
    for name in kind.outputs(&p) {
        assert_eq!(
            std::fs::read(straight.join(&name)).unwrap(),
            std::fs::read(out.join(&name)).unwrap(),
            "{name} differs from the uninterrupted run's"
        );
    }
}

/// Keeps every log line.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

impl Reporter for Recorder {
    fn progress(&self, _: u64, _: u64, _: &str) {}
    fn log(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_string());
    }
}

#[test]
fn a_damaged_scratch_checkpoint_is_set_aside_and_training_restarts() {
    let kind = kind(Algorithm::Dqn);
    let p = small_run(&kind);
    let dir = tempfile::tempdir().unwrap();
    let straight = dir.path().join("straight");
    kind.run(&context(p.clone(), &straight, &dir.path().join("s1")))
        .unwrap();

    // Interrupted after its first iteration, as a killed run is.
    let (out, scratch) = (dir.path().join("resumed"), dir.path().join("s2"));
    let mut ctx = context(p.clone(), &out, &scratch);
    let flag = ctx.cancel.clone();
    ctx.reporter = Arc::new(CancelAt { at: 2_500, flag });
    assert!(matches!(kind.run(&ctx), Err(StageError::Cancelled)));
    // One bit of its replay buffer, networks or counters flipped on disk.
    let ckpt = scratch.join("resume.ckpt");
    let mut bytes = std::fs::read(&ckpt).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&ckpt, &bytes).unwrap();

    let log = Arc::new(Recorder::default());
    let mut ctx = context(p.clone(), &out, &scratch);
    ctx.reporter = log.clone();
    kind.run(&ctx).unwrap();
    let lines = log.0.lock().unwrap().clone();
    let said = lines
        .iter()
        .find(|l| l.contains("cannot resume"))
        .unwrap_or_else(|| panic!("no word of the damaged checkpoint in {lines:#?}"));
    assert!(
        said.contains(&ckpt.display().to_string())
            && said.contains("corrupt")
            && said.contains("starting afresh"),
        "{said}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("resuming")),
        "{lines:#?}"
    );
    // Set aside under a name nothing reads, the damaged bytes kept for inspection.
    let aside: Vec<_> = std::fs::read_dir(&scratch)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("resume.ckpt.corrupt-"))
        .collect();
    assert_eq!(
        aside.len(),
        1,
        "{:?}",
        std::fs::read_dir(&scratch).unwrap().collect::<Vec<_>>()
    );
    assert_eq!(std::fs::read(&aside[0]).unwrap(), bytes);
    assert!(said.contains(&aside[0].display().to_string()), "{said}");
    // What it published is what an uninterrupted run publishes.
    for name in kind.outputs(&p) {
        assert_eq!(
            std::fs::read(straight.join(&name)).unwrap(),
            std::fs::read(out.join(&name)).unwrap(),
            "{name} differs from the uninterrupted run's"
        );
    }
}

#[test]
fn bad_parameters_are_explained() {
    let kind = kind(Algorithm::Dqn);
    let dir = tempfile::tempdir().unwrap();
    // Planning (`validate`) rejects exactly what running would, with the same message.
    let run = |overrides: &[(&str, Value)]| {
        let mut all = vec![("env", Value::Str("cartpole".into()))];
        all.extend_from_slice(overrides);
        let p = params(&kind, &all);
        let planned = kind.validate(&p).unwrap_err().to_string();
        let ran = kind
            .run(&context(p, dir.path(), dir.path()))
            .unwrap_err()
            .to_string();
        assert_eq!(planned, ran);
        ran
    };
    assert!(kind.validate(&small_run(&kind)).is_ok());
    // Counts of 0 were silently taken as 1.
    for key in ["batch-size", "n-step", "probe-batch", "prune.frequency"] {
        assert!(
            run(&[("prune", Value::Str("gmp".into())), (key, Value::Int(0))])
                .contains("must be at least 1, got 0"),
            "{key}"
        );
    }
    assert!(run(&[("env", Value::Str("pong".into()))]).contains("unknown game `pong`"));
    assert!(run(&[("network", Value::Str("nature".into()))]).contains("vector observations"));
    assert!(
        run(&[("steps", Value::Int(1001)), ("iterations", Value::Int(2))])
            .contains("multiple of `iterations`")
    );
    assert!(run(&[("prune", Value::Str("gmpp".into()))]).contains("use none or gmp"));
}

/// Each kind declares only the parameters it uses: the objective's own keys are not shared, so
/// the engine reports `loss` on `train/rainbow` (or `atoms` on `train/dqn`) as an unknown key.
#[test]
fn each_kind_declares_only_its_own_objective_parameters() {
    let keys = |algorithm| -> Vec<&'static str> {
        kind(algorithm)
            .params()
            .into_iter()
            .map(|p| p.key)
            .collect()
    };
    let (dqn, rainbow) = (keys(Algorithm::Dqn), keys(Algorithm::Rainbow));
    assert!(dqn.contains(&"loss") && !dqn.contains(&"atoms") && !dqn.contains(&"vmax"));
    assert!(rainbow.contains(&"atoms") && rainbow.contains(&"vmax") && !rainbow.contains(&"loss"));
    let shared = |keys: Vec<&'static str>| -> Vec<&'static str> {
        keys.into_iter()
            .filter(|k| !["loss", "atoms", "vmax"].contains(k))
            .collect()
    };
    assert_eq!(shared(dqn), shared(rainbow));
}
