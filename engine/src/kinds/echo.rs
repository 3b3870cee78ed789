//! `test/echo`: writes its `value`, its axes and its inputs' `out.txt` into `out.txt`.
//!
//! Deterministic and instant, so it exercises the engine alone (caching, early cutoff,
//! fan-in, failures) without any science; `sleep-ms`, `fail`, `panic` and `skip-output`
//! simulate slow, failing, crashing and misbehaving stages.

use std::fmt::Write as _;

use prunus_stage::{Context, ParamSpec, ParamType, Params, StageError, StageKind, Value};

pub struct Echo;

impl StageKind for Echo {
    fn name(&self) -> &'static str {
        "test/echo"
    }

    fn version(&self) -> u32 {
        1
    }

    fn doc(&self) -> &'static str {
        "Writes `value`, the instance's axes and the concatenated `out.txt` of its inputs to \
         `out.txt`. For tests and the engine benchmark."
    }

    fn deterministic(&self, _params: &Params) -> bool {
        true
    }

    fn params(&self) -> Vec<ParamSpec> {
        vec![
            ParamSpec::new(
                "value",
                ParamType::Str,
                Some(Value::Str(String::new())),
                "text written to out.txt",
            ),
            ParamSpec::new(
                "seed",
                ParamType::Int,
                Some(Value::Int(0)),
                "written to out.txt (binds to a `seed` axis)",
            ),
            ParamSpec::new(
                "sleep-ms",
                ParamType::Int,
                Some(Value::Int(0)),
                "sleep this long, in steps of 10 ms with progress",
            ),
            ParamSpec::new(
                "fail",
                ParamType::Bool,
                Some(Value::Bool(false)),
                "return an error",
            ),
            ParamSpec::new("panic", ParamType::Bool, Some(Value::Bool(false)), "panic"),
            ParamSpec::new(
                "skip-output",
                ParamType::Bool,
                Some(Value::Bool(false)),
                "succeed without writing out.txt",
            ),
        ]
    }

    fn outputs(&self, _: &Params) -> Vec<String> {
        vec!["out.txt".into()]
    }

    fn validate(&self, params: &Params) -> Result<(), StageError> {
        params.u64("sleep-ms").map(drop)
    }

    fn run(&self, ctx: &Context) -> Result<(), StageError> {
        let p = &ctx.params;
        let sleep = p.u64("sleep-ms")?;
        let ticks = sleep.div_ceil(10);
        for t in 0..ticks {
            if ctx.cancelled() {
                return Err(StageError::Cancelled);
            }
            ctx.progress(t, ticks, "ticks");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        ctx.log(format!("{} echoes {:?}", ctx.instance, p.str("value")?));
        if p.bool("panic")? {
            panic!("test/echo was asked to panic");
        }
        if p.bool("fail")? {
            return Err(StageError::Failed("test/echo was asked to fail".into()));
        }
        if p.bool("skip-output")? {
            return Ok(());
        }
        let mut text = format!("{} seed={}", p.str("value")?, p.i64("seed")?);
        for (k, v) in &ctx.axes {
            let _ = write!(text, " {k}={v}");
        }
        text.push('\n');
        for input in &ctx.inputs {
            text.push_str(&std::fs::read_to_string(input.output("out.txt")?)?);
        }
        std::fs::write(ctx.output("out.txt"), text)?;
        Ok(())
    }
}
