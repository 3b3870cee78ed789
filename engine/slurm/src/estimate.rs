//! `prunus plan --executor slurm`: the arrays a run would submit (per stage and resources,
//! with their sbatch flags) and what they would cost, from each kind's
//! [`prunus_stage::StageKind::estimate_secs`]: GPU-hours for instances that ask for GPUs,
//! CPU-hours for the rest.

use std::fmt::Write;
use std::path::Path;

use prunus_engine::Graph;
use prunus_stage::Resources;

use crate::options::SlurmOptions;
use crate::sbatch;

/// The instances of one stage with the same resources: one array (or several past
/// `max_array`).
pub struct ArrayPlan {
    pub stage: String,
    pub resources: Resources,
    pub tasks: usize,
    pub gpu_hours: f64,
    pub cpu_hours: f64,
    /// Instances whose kind gives no estimate.
    pub unestimated: usize,
}

/// The arrays the instances `to_run` (graph indices) make.
pub fn arrays(graph: &Graph, to_run: &[usize]) -> Vec<ArrayPlan> {
    let mut plans: Vec<ArrayPlan> = Vec::new();
    for &i in to_run {
        let (inst, stage) = (&graph.instances[i], graph.stage_of(i));
        let r = inst.resources;
        let k = match plans
            .iter()
            .position(|p| p.stage == stage.name && p.resources == r)
        {
            Some(k) => k,
            None => {
                plans.push(ArrayPlan {
                    stage: stage.name.clone(),
                    resources: r,
                    tasks: 0,
                    gpu_hours: 0.0,
                    cpu_hours: 0.0,
                    unestimated: 0,
                });
                plans.len() - 1
            }
        };
        let p = &mut plans[k];
        p.tasks += 1;
        match stage.kind.estimate_secs(&inst.params) {
            Some(s) if r.gpus > 0 => p.gpu_hours += s * r.gpus as f64 / 3600.0,
            Some(s) => p.cpu_hours += s * r.cpus.max(1) as f64 / 3600.0,
            None => p.unestimated += 1,
        }
    }
    plans
}

/// The plan in words: one line per array with its flags, then the totals.
pub fn render(plans: &[ArrayPlan], opts: &SlurmOptions) -> String {
    let mut out = String::new();
    let tasks: usize = plans.iter().map(|p| p.tasks).sum();
    let _ = writeln!(
        out,
        "Slurm: {tasks} job(s) in {} array(s) (a stage's array is submitted once its inputs are done):",
        plans.len()
    );
    for p in plans {
        let flags: Vec<String> =
            sbatch::flags(opts, &p.stage, &p.resources, p.tasks, Path::new(""))
                .into_iter()
                .filter(|f| {
                    ![
                        "--parsable",
                        "--output",
                        "--open-mode",
                        "--requeue",
                        "--job-name",
                        "--array",
                    ]
                    .iter()
                    .any(|x| f.starts_with(x))
                })
                .collect();
        let cost = match (p.gpu_hours > 0.0, p.cpu_hours > 0.0) {
            (true, _) => format!("~{} GPU-h", hours(p.gpu_hours)),
            (false, true) => format!("~{} CPU-h", hours(p.cpu_hours)),
            _ => "no estimate".into(),
        };
        let _ = writeln!(
            out,
            "  {:<24} {:>6} tasks  {:<14} {}",
            p.stage,
            p.tasks,
            cost,
            flags.join(" ")
        );
    }
    let gpu: f64 = plans.iter().map(|p| p.gpu_hours).sum();
    let cpu: f64 = plans.iter().map(|p| p.cpu_hours).sum();
    let none: usize = plans.iter().map(|p| p.unestimated).sum();
    let _ = writeln!(
        out,
        "estimated: {} GPU-hours, {} CPU-hours (rough, from the kinds' estimates; {none} instance(s) of kinds without one)",
        hours(gpu),
        hours(cpu)
    );
    out
}

fn hours(h: f64) -> String {
    if h >= 100.0 {
        format!("{:.0}", h)
    } else {
        format!("{:.1}", h)
    }
}
