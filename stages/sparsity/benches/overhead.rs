//! CPU cost of pruning: one mask update (top-k over every kernel at a scheduled step) and one
//! application of the masks (re-zeroing after an optimizer step), for the MinAtar CNN, the Nature
//! CNN and the Impala ResNet x3. The per-step overhead is `apply + update / update_freq`; compare
//! it with the agent's training-step time (prunus-agents' `steps` bench).
//!
//! Run: `cargo bench -p prunus-sparsity --bench overhead`.

use std::hint::black_box;
use std::time::Instant;

use prunus_sparsity::{GmpSchedule, Pruner, PrunerConfig};

/// Kernel and bias shapes in network order (burn layouts), A = 6 actions.
fn networks() -> Vec<(&'static str, Vec<Vec<usize>>)> {
    let minatar = vec![vec![16, 4, 3, 3], vec![16], vec![1600, 6], vec![6]];
    let nature = vec![
        vec![32, 4, 8, 8],
        vec![32],
        vec![64, 32, 4, 4],
        vec![64],
        vec![64, 64, 3, 3],
        vec![64],
        vec![7744, 512],
        vec![512],
        vec![512, 6],
        vec![6],
    ];
    let mut impala = vec![];
    let mut cin = 4;
    for ch in [48, 96, 96] {
        impala.push(vec![ch, cin, 3, 3]);
        impala.push(vec![ch]);
        for _ in 0..4 {
            impala.push(vec![ch, ch, 3, 3]);
            impala.push(vec![ch]);
        }
        cin = ch;
    }
    impala.extend([vec![11 * 11 * 96, 512], vec![512], vec![512, 6], vec![6]]);
    vec![
        ("minatar_cnn", minatar),
        ("nature_cnn", nature),
        ("impala_resnet_x3", impala),
    ]
}

fn time_us(reps: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / reps as f64
}

fn main() {
    let schedule = GmpSchedule::paper_default(2_500_000).expect("valid schedule");
    println!(
        "{:<18} {:>10} {:>16} {:>14} {:>22}",
        "network", "weights", "mask update (us)", "apply (us)", "per step (us, freq 1000)"
    );
    for (name, shapes) in networks() {
        let names: Vec<String> = (0..shapes.len()).map(|i| format!("p{i}")).collect();
        let spec: Vec<(&str, &[usize])> = names
            .iter()
            .map(|n| n.as_str())
            .zip(shapes.iter().map(|s| s.as_slice()))
            .collect();
        let mut pruner = Pruner::new(PrunerConfig::new(schedule), &spec).expect("pruner");
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut params: Vec<Vec<f32>> = shapes
            .iter()
            .map(|s| {
                (0..s.iter().product::<usize>())
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                    })
                    .collect()
            })
            .collect();
        let weights: usize = params.iter().map(|p| p.len()).sum();
        let reps_update = if weights > 1_000_000 { 10 } else { 100 };
        // A mid-schedule update step (sparsity ~0.83 of the target) on unpruned weights: the
        // worst case, since later updates see many exact zeros.
        let update = time_us(reps_update, || {
            let views: Vec<&[f32]> = params.iter().map(|p| p.as_slice()).collect();
            black_box(pruner.update(1_250_000, &views).expect("update"));
        });
        let apply = time_us(200, || {
            let mut views: Vec<&mut [f32]> = params.iter_mut().map(|p| p.as_mut_slice()).collect();
            pruner.apply(&mut views).expect("apply");
            black_box(&views);
        });
        println!(
            "{name:<18} {weights:>10} {update:>16.1} {apply:>14.1} {:>22.1}",
            apply + update / schedule.update_freq as f64
        );
    }
}
