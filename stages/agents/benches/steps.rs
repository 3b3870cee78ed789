//! Agent steps per second, learning included (replay ratio 0.25, batch 32), on one CPU core
//! (burn's Flex backend is single-threaded here) or on a GPU with `--features cuda` and
//! `PRUNUS_BENCH_DEVICE=cuda`. The agents and the frame generator standing in for the
//! environment are `prunus_agents::device_check`'s (what `prunus device --bench` times).
//!
//! `cargo bench -p prunus-agents --bench steps [-- FILTER]`
//!
//! Measured on the shared 2-core CI machine (Flex backend, one core, other builds running),
//! `PRUNUS_BENCH_QUICK=1`: MinAtar DQN 1,050-1,410 steps/s, MinAtar Rainbow 325-400,
//! Atari DQN Nature CNN 12.9, Impala ResNet x1 2.9 (Atari needs the `cuda` build).

use prunus_agents::device_check::{cases, steps_per_sec};

fn main() {
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    let device_name = std::env::var("PRUNUS_BENCH_DEVICE").unwrap_or_else(|_| "cpu".into());
    let device = prunus_agents::device(&device_name).expect("device");
    let quick = std::env::var("PRUNUS_BENCH_QUICK").is_ok();
    let scale = |n: u64| if quick { (n / 10).max(20) } else { n };
    println!("agent steps/s with updates (replay ratio 0.25, batch 32), device {device_name}");
    for case in cases().iter().filter(|c| c.name.contains(filter.as_str())) {
        let steps = scale(match case.name {
            "minatar/dqn/minatar-cnn" => 20_000,
            "minatar/rainbow/minatar-cnn" => 10_000,
            "atari/dqn/nature-cnn" => 2_000,
            "atari/dqn/impala-x1" => 1_000,
            _ => 400,
        });
        let rate = steps_per_sec(case, &device, steps);
        println!(
            "{:32} {:>10.1} steps/s  ({steps} timed steps)",
            case.name, rate
        );
    }
}
