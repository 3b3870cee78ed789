//! Every kind prunus ships checks its parameters while the pipeline is loaded (what `prunus
//! plan` and `prunus run` do first): a value the kind cannot use is a diagnostic at the
//! pipeline line that set it, not a failure of the instance once it runs.

use miette::{GraphicalReportHandler, GraphicalTheme};
use prunus_engine::Error;

/// Loads `text` as a pipeline file against every shipped kind; its problems and their
/// rendering (with `file:line:column` of each).
fn problems(text: &str) -> (Vec<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.kdl");
    std::fs::write(&file, text).unwrap();
    match prunus::registry::load(&file) {
        Ok(_) => panic!("loaded without errors:\n{text}"),
        Err(Error::Pipeline(e)) => {
            let mut rendered = String::new();
            GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
                .with_width(200)
                .render_report(&mut rendered, &e)
                .unwrap();
            (e.messages(), rendered)
        }
        Err(other) => panic!("not a pipeline error: {other}"),
    }
}

/// A `train/dqn` stage on MinAtar Breakout with `extra` lines.
fn train(name: &str, extra: &str) -> String {
    format!(
        "stage \"{name}\" {{\n    kind \"train/dqn\"\n    env \"minatar/breakout\"\n{extra}\n}}\n"
    )
}

#[test]
fn invalid_training_parameters_are_reported_at_their_line() {
    let text = [
        "pipeline \"bad\"\n".to_string(),                    // line 1
        train("steps", "    steps -5"),                      // lines 2-6, the value on 5
        train("sparsity", "    prune \"gmp\" sparsity=1.5"), // 7-11: 10
        train("width", "    network.width 0"),               // 12-16: 15
        train("batch", "    batch-size 0"),                  // 17-21: 20
        train("nstep", "    n-step 0"),                      // 22-26: 25
        "stage \"game\" {\n    kind \"train/dqn\"\n    // line 29\n    env \"minatar/pong\"\n}\n"
            .into(), // 27-31: 30
        train("eps", "    epsilon.train 2.0"),               // 32-36: 35
    ]
    .concat();
    let (messages, rendered) = problems(&text);
    for (message, line) in [
        (
            "invalid `steps` for kind `train/dqn`: must not be negative, got -5",
            5,
        ),
        (
            "invalid `prune.sparsity` for kind `train/dqn`: must be in [0, 1), got 1.5",
            10,
        ),
        (
            "invalid `network.width` for kind `train/dqn`: must be positive, got 0",
            15,
        ),
        (
            "invalid `batch-size` for kind `train/dqn`: must be at least 1, got 0",
            20,
        ),
        (
            "invalid `n-step` for kind `train/dqn`: must be at least 1, got 0",
            25,
        ),
        (
            "invalid `env` for kind `train/dqn`: unknown game `minatar/pong`",
            30,
        ),
        (
            "invalid `epsilon.train` for kind `train/dqn`: is a probability",
            35,
        ),
    ] {
        assert!(
            messages.iter().any(|m| m.starts_with(message)),
            "no `{message}` in {messages:#?}"
        );
        assert!(
            rendered.contains(&format!("p.kdl:{line}:")),
            "line {line} not shown in\n{rendered}"
        );
    }
    assert_eq!(messages.len(), 7, "{messages:#?}");
}

#[test]
fn a_bad_game_in_a_sweep_names_the_instance() {
    let text = "sweep \"runs\" {\n    game \"minatar/breakout\" \"minatar/pongg\"\n}\n\
                stage \"train\" {\n    kind \"train/dqn\"\n    over \"runs\"\n    env \"{game}\"\n}\n";
    let (messages, rendered) = problems(text);
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(
        messages[0].contains("unknown game `minatar/pongg`"),
        "{messages:#?}"
    );
    assert!(rendered.contains("p.kdl:7:"), "{rendered}");
    assert!(rendered.contains("in instance train/pongg"), "{rendered}");
}

#[test]
fn invalid_analysis_parameters_are_reported_at_their_line() {
    let text = "stage \"iqm\" {\n    kind \"aggregate/iqm\"\n    reps 10\n}\n\
                stage \"fig\" {\n    kind \"figure/schedule\"\n    update-period 0\n}\n\
                stage \"named\" {\n    kind \"figure/curves\"\n    name \"a/b\"\n}\n\
                stage \"probe\" {\n    kind \"probe\"\n    device \"gpu\"\n}\n";
    let (messages, rendered) = problems(text);
    for (message, line) in [
        (
            "invalid `reps` for kind `aggregate/iqm`: 10 repetitions are too few",
            3,
        ),
        (
            "invalid `update-period` for kind `figure/schedule`: must be at least 1",
            7,
        ),
        (
            "invalid `name` for kind `figure/curves`: `a/b` is not a file name",
            11,
        ),
        (
            "invalid `device` for kind `probe`: unknown device `gpu`",
            15,
        ),
    ] {
        assert!(
            messages.iter().any(|m| m.starts_with(message)),
            "no `{message}` in {messages:#?}"
        );
        assert!(
            rendered.contains(&format!("p.kdl:{line}:")),
            "line {line} not shown in\n{rendered}"
        );
    }
}
