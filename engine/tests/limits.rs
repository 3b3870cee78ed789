//! The instance limit (`PRUNUS_MAX_INSTANCES`) covers the whole pipeline: many stages over
//! one sweep add up. Its own test binary, so setting the variable affects no other test.

use std::path::Path;

use prunus_engine::{Error, Registry, load_str};

#[test]
fn the_total_instance_count_is_limited() {
    // SAFETY: the only test of this binary, before any thread reads the environment.
    unsafe { std::env::set_var("PRUNUS_MAX_INSTANCES", "1_000") };
    let stage = |i: usize| {
        format!("stage \"e{i}\" {{\n    kind \"test/echo\"\n    over \"s\"\n    value \"x\"\n}}\n")
    };
    let pipeline = |stages: usize| {
        let stages: String = (0..stages).map(stage).collect();
        format!("pipeline \"many\"\nsweep \"s\" {{\n    a from=0 to=399\n}}\n{stages}")
    };
    let registry = Registry::builtin(Path::new("."));
    assert_eq!(
        load_str("ok", &pipeline(2), &registry)
            .unwrap()
            .instances
            .len(),
        800
    );
    match load_str("many", &pipeline(3), &registry) {
        Err(Error::Pipeline(e)) => {
            let messages = e.messages();
            assert!(
                messages
                    .iter()
                    .any(|m| m.contains("the pipeline has more than 1000 instances once stage `e")),
                "{messages:#?}"
            );
        }
        other => panic!("not refused: {:?}", other.map(|g| g.instances.len())),
    }
    let sweep =
        "pipeline \"big\"\nsweep \"s\" {\n    a from=0 to=1000\n}\n".to_string() + &stage(0);
    match load_str("big", &sweep, &registry) {
        Err(Error::Pipeline(e)) => assert!(
            e.messages()
                .iter()
                .any(|m| m.contains("has 1001 points, more than the limit of 1000")),
            "{:#?}",
            e.messages()
        ),
        other => panic!("not refused: {:?}", other.map(|g| g.instances.len())),
    }
}
