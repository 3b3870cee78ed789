//! The MinAtar networks' cost: agent steps per second with learning (replay ratio 0.25, batch
//! 32, DQN) on one CPU core, at widths 1, 2, 4 and 8, dense and pruned to 95% (GMP's masks
//! applied after every gradient step), for Dopamine's one-conv `minatar`, MinAtar's own DQN
//! with a 128-unit hidden layer (`minatar128`) and the MinAtar ResNet (`minatar-resnet`).
//! Frames come from a generator with MinAtar's spec, so the figures are the agent's alone.
//!
//! `cargo bench -p prunus-agents --bench minatar_networks [-- FILTER]`
//! (`PRUNUS_BENCH_QUICK=1`: a tenth of the timed steps).

use prunus_agents::device_check::{Case, minatar, steps_per_sec};
use prunus_agents::networks::Architecture;

fn main() {
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    let device = prunus_agents::device("cpu").expect("cpu device");
    let quick = std::env::var("PRUNUS_BENCH_QUICK").is_ok();
    let networks = [
        ("minatar", Architecture::MinAtarCnn { hidden: vec![] }),
        ("minatar128", Architecture::MinAtarCnn { hidden: vec![128] }),
        ("minatar-resnet", Architecture::MinAtarResNet),
    ];
    println!("agent steps/s with DQN updates (replay ratio 0.25, batch 32), one CPU core");
    println!("{:28} {:>12} {:>12}", "network", "dense", "95% GMP");
    for (name, architecture) in &networks {
        for width in [1.0, 2.0, 4.0, 8.0] {
            let label = format!("{name} x{width}");
            if !label.contains(filter.as_str()) {
                continue;
            }
            // Aim at ~10 s per figure: the ResNet at width 8 runs a few dozen steps a second.
            let budget: u64 = match (*name, width as u32) {
                ("minatar-resnet", w) => 8_000 / (w * w) as u64,
                (_, w) => 40_000 / w as u64,
            };
            let steps = if quick { (budget / 10).max(50) } else { budget };
            let rate = |sparsity| {
                let case = Case {
                    name: "minatar",
                    spec: minatar(),
                    architecture: architecture.clone(),
                    width,
                    rainbow: false,
                    sparsity,
                };
                steps_per_sec(&case, &device, steps)
            };
            let (dense, pruned) = (rate(0.0), rate(0.95));
            println!("{label:28} {dense:>12.1} {pruned:>12.1}   ({steps} timed steps)");
        }
    }
}
