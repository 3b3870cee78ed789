//! `prunus device`: is this machine's GPU (or CPU) fit for the paper's runs? Names it, checks
//! each value network's forward and gradient step against the CPU, and with `--bench` times
//! learner updates and agent steps, alone and with runs side by side (`run --runs-per-gpu`).

use std::io::Write;
use std::process::ExitCode;

use miette::{Result, miette};
use prunus_agents::device_check::{self, Agreement, Case, Device};

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
prunus device                       the GPU: name, driver, agreement with the CPU\n  \
prunus device --bench               and throughput of each network\n  \
prunus device --bench --runs 1,2,4,8 --only impala\n  \
prunus device cpu --bench --quick   the CPU (checked against burn's NdArray backend)")]
pub struct Args {
    /// cuda, cpu or ndarray (default: cuda in a build with --features cuda, else cpu).
    device: Option<String>,
    /// Which GPU (as the driver numbers them).
    #[arg(long, default_value_t = 0)]
    gpu: usize,
    /// Also time learner updates/s and agent steps/s (replay ratio 0.25, batch 32).
    #[arg(long)]
    bench: bool,
    /// With --bench: agents run side by side on the device, e.g. 1,2,4,8 (total steps/s).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    runs: Vec<usize>,
    /// Only networks whose name contains this (e.g. impala, atari).
    #[arg(long)]
    only: Option<String>,
    /// A tenth of the timed steps (a smoke test, not a measurement).
    #[arg(long)]
    quick: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let name = args.device.clone().unwrap_or_else(|| {
        if cfg!(feature = "cuda") {
            "cuda"
        } else {
            "cpu"
        }
        .into()
    });
    let device = prunus_agents::device_at(&name, args.gpu).map_err(|e| miette!("{e}"))?;
    let reference_name = if name == "cpu" { "ndarray" } else { "cpu" };
    let reference = prunus_agents::device(reference_name).map_err(|e| miette!("{e}"))?;
    println!("device {name}: {}", describe(&name, args.gpu));
    let cases: Vec<Case> = device_check::cases()
        .into_iter()
        .filter(|c| {
            args.only
                .as_ref()
                .is_none_or(|o| c.name.contains(o.as_str()))
        })
        .collect();
    let agree = agreement(&cases, &device, reference_name, &reference);
    if args.bench {
        throughput(&cases, &device, &args);
    }
    Ok(if agree {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(feature = "cuda")]
fn describe(name: &str, gpu: usize) -> String {
    match name {
        "cuda" => prunus_agents::gpu::describe(gpu).unwrap_or_else(|e| e),
        _ => format!("burn's {name} backend, one thread"),
    }
}

#[cfg(not(feature = "cuda"))]
fn describe(name: &str, _gpu: usize) -> String {
    format!("burn's {name} backend, one thread")
}

/// Prints each network's [`Agreement`] with the reference; true if all hold.
fn agreement(cases: &[Case], device: &Device, name: &str, reference: &Device) -> bool {
    println!(
        "\nagreement with {name} (max |difference| / max |value|; tolerance {:.0e})",
        Agreement::TOLERANCE
    );
    println!(
        "  {:30} {:>10} {:>10} {:>13}",
        "network", "forward", "loss", "after update"
    );
    let mut all = true;
    for case in cases {
        let a = device_check::compare(case, device, reference);
        let verdict = if a.holds() { "ok" } else { "DIFFERS" };
        println!(
            "  {:30} {:>10.1e} {:>10.1e} {:>13.1e}  {verdict}",
            case.name, a.forward, a.loss, a.after_update
        );
        all &= a.holds();
    }
    all
}

/// Timed steps per case: about the same wall time for each network on a GPU.
fn steps_for(case: &Case, quick: bool) -> (u32, u64) {
    let (updates, steps) = match case.name {
        n if n.contains("impala-x3") => (200, 1_000),
        n if n.contains("impala") => (300, 2_000),
        n if n.starts_with("atari") => (500, 3_000),
        _ => (1_000, 5_000),
    };
    if quick {
        (updates / 10, steps / 10)
    } else {
        (updates, steps)
    }
}

fn throughput(cases: &[Case], device: &Device, args: &Args) {
    let runs: Vec<usize> = args.runs.iter().copied().filter(|&r| r > 0).collect();
    print!(
        "\nthroughput (batch 32; agent steps: replay ratio 0.25, all runs together)\n  {:30} {:>10}",
        "network", "updates/s"
    );
    for r in &runs {
        print!(" {:>12}", format!("steps/s ×{r}"));
    }
    println!();
    for case in cases {
        let (updates, steps) = steps_for(case, args.quick);
        print!(
            "  {:30} {:>10.1}",
            case.name,
            device_check::updates_per_sec(case, device, updates)
        );
        for &r in &runs {
            let _ = std::io::stdout().flush();
            print!(" {:>12.1}", side_by_side(case, device, r, steps));
        }
        println!();
    }
}

/// Total agent steps/s of `runs` agents training at once on `device`, as `prunus run
/// --runs-per-gpu` runs them (threads of one process sharing the GPU).
fn side_by_side(case: &Case, device: &Device, runs: usize, steps: u64) -> f64 {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..runs)
            .map(|_| s.spawn(|| device_check::steps_per_sec(case, device, steps)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a run panicked"))
            .sum()
    })
}
