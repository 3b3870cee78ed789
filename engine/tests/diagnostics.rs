//! Every pipeline error is a diagnostic with the offending span and a hint, all problems of a
//! file are reported in one pass, and no input makes parsing or lowering panic.

use std::path::Path;

use miette::{GraphicalReportHandler, GraphicalTheme};
use proptest::prelude::*;
use prunus_engine::{Error, Registry, load_str};

fn registry() -> Registry {
    Registry::builtin(Path::new("."))
}

/// The problems of a pipeline that must not lower, and its rendering as a user sees it.
fn errors(text: &str) -> (Vec<String>, String) {
    match load_str("test", text, &registry()) {
        Ok(_) => panic!("lowered without errors:\n{text}"),
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

/// Asserts one problem whose message contains `message`, shown at a line containing `line`,
/// with a hint containing `help`.
fn assert_problem(text: &str, message: &str, line: &str, help: &str) {
    let (messages, rendered) = errors(text);
    assert!(
        messages.iter().any(|m| m.contains(message)),
        "no `{message}` in {messages:#?}\n{rendered}"
    );
    let shown = rendered
        .lines()
        .any(|l| l.contains('│') && l.contains(line));
    assert!(shown, "`{line}` not shown in\n{rendered}");
    assert!(rendered.contains(help), "no hint `{help}` in\n{rendered}");
}

const SWEEP: &str = "sweep \"grid\" {\n    game \"breakout\" \"asterix\"\n    seed 0 1 2\n}\n";

#[test]
fn malformed_kdl_points_at_the_syntax_error() {
    let (messages, rendered) =
        errors("stage \"a\" {\n    kind \"test/echo\"\n    value \"unterminated\n}\n");
    assert!(
        messages.iter().all(|m| m.starts_with("KDL syntax error")),
        "{messages:?}"
    );
    assert!(rendered.contains("[test:3:"), "{rendered}");
}

#[test]
fn unknown_kind_suggests_the_nearest() {
    assert_problem(
        "stage \"a\" {\n    kind \"test/echoo\"\n}\n",
        "unknown stage kind `test/echoo`",
        "kind \"test/echoo\"",
        "did you mean `test/echo`?",
    );
}

#[test]
fn unknown_key_suggests_the_nearest() {
    assert_problem(
        "stage \"a\" {\n    kind \"test/echo\"\n    vlaue \"x\"\n}\n",
        "`vlaue` is not a parameter of kind `test/echo`",
        "vlaue \"x\"",
        "did you mean `value`?",
    );
}

#[test]
fn wrong_type_names_the_expected_type() {
    assert_problem(
        "stage \"a\" {\n    kind \"test/echo\"\n    sleep-ms \"fast\"\n}\n",
        "sleep-ms",
        "sleep-ms \"fast\"",
        "an integer",
    );
}

#[test]
fn unknown_stage_in_needs() {
    assert_problem(
        "stage \"gen\" { kind \"test/echo\"; }\nstage \"a\" {\n    kind \"test/echo\"\n    needs \"gne\"\n}\n",
        "needs unknown stage `gne`",
        "needs \"gne\"",
        "did you mean `gen`?",
    );
}

#[test]
fn cycles_are_reported_with_their_path() {
    let text = "stage \"x\" {\n    kind \"test/echo\"\n    needs \"y\"\n}\nstage \"y\" {\n    kind \"test/echo\"\n    needs \"z\"\n}\nstage \"z\" {\n    kind \"test/echo\"\n    needs \"x\"\n}\n";
    let (messages, _) = errors(text);
    let cycle = messages
        .iter()
        .find(|m| m.contains("cycle"))
        .expect("a cycle");
    for s in ["x", "y", "z"] {
        assert!(cycle.contains(s), "{cycle}");
    }
}

#[test]
fn axis_not_in_the_sweep() {
    assert_problem(
        &format!(
            "{SWEEP}stage \"gen\" {{\n    kind \"test/echo\"\n    over \"grid\"\n}}\nstage \"a\" {{\n    kind \"test/echo\"\n    needs \"gen\" colour=\"red\"\n}}\n"
        ),
        "axis `colour` is not in the sweep of stage `gen`",
        "colour=\"red\"",
        "game, seed",
    );
    assert_problem(
        &format!(
            "{SWEEP}stage \"gen\" {{\n    kind \"test/echo\"\n    over \"grid\"\n    value \"{{gmae}}\"\n}}\n"
        ),
        "`{gmae}` names no axis of stage `gen`",
        "value \"{gmae}\"",
        "game, seed",
    );
}

#[test]
fn unknown_sweep() {
    assert_problem(
        &format!("{SWEEP}stage \"gen\" {{\n    kind \"test/echo\"\n    over \"gird\"\n}}\n"),
        "unknown sweep `gird`",
        "over \"gird\"",
        "did you mean `grid`?",
    );
}

#[test]
fn duplicates_are_errors() {
    let (messages, _) =
        errors("stage \"a\" { kind \"test/echo\"; }\nstage \"a\" { kind \"test/echo\"; }\n");
    assert!(
        messages.iter().any(|m| m.contains("duplicate stage `a`")),
        "{messages:?}"
    );
    let (messages, _) = errors(
        "sweep \"s\" {\n    seed 0 1 0\n}\nstage \"a\" {\n    kind \"test/echo\"\n    over \"s\"\n}\n",
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("axis `seed` lists `0` twice")),
        "{messages:?}"
    );
}

#[test]
fn missing_required_parameter() {
    assert_problem(
        "stage \"a\" {\n    kind \"command\"\n}\n",
        "stage `a` must set `run`",
        "stage \"a\"",
        "the program and its arguments",
    );
}

#[test]
fn every_problem_is_reported_in_one_pass() {
    let text = format!(
        "{SWEEP}stage \"gen\" {{\n    kind \"test/echoo\"\n    over \"grid\"\n}}\n\
         stage \"x\" {{\n    kind \"test/echo\"\n    over \"gird\"\n    vlaue 3\n    sleep-ms \"fast\"\n    needs \"y\"\n}}\n\
         stage \"y\" {{\n    kind \"test/echo\"\n    needs \"x\" colour=\"red\"\n    needs \"nope\"\n}}\n"
    );
    let (messages, rendered) = errors(&text);
    for expected in [
        "test/echoo",
        "gird",
        "vlaue",
        "sleep-ms",
        "cycle",
        "colour",
        "nope",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(expected)),
            "`{expected}` missing from {messages:#?}"
        );
    }
    assert!(
        rendered.contains(&format!("{} errors", messages.len())),
        "{rendered}"
    );
}

#[test]
fn a_value_the_kind_rejects_is_reported_at_plan_time_where_it_is_set() {
    // Before: lowered fine and failed only when the instance ran, without a line.
    assert_problem(
        "stage \"a\" {\n    kind \"test/echo\"\n    sleep-ms -5\n}\n",
        "invalid `sleep-ms` for kind `test/echo`: must not be negative, got -5",
        "sleep-ms -5",
        "sleep this long",
    );
    assert_problem(
        "stage \"c\" {\n    kind \"command\"\n    run \"\"\n}\n",
        "invalid `run` for kind `command`: names no program",
        "run \"\"",
        "the program and its arguments",
    );
}

#[test]
fn a_rejected_value_from_a_sweep_points_at_the_axis_or_the_template() {
    let sweep = "sweep \"s\" {\n    sleep-ms 0 -5\n}\n";
    assert_problem(
        &format!("{sweep}stage \"a\" {{\n    kind \"test/echo\"\n    over \"s\"\n}}\n"),
        "must not be negative, got -5",
        "sleep-ms 0 -5",
        "in instance a/sleep-ms-5",
    );
    let sweep = "sweep \"s\" {\n    ms 0 -7\n}\n";
    assert_problem(
        &format!(
            "{sweep}stage \"a\" {{\n    kind \"test/echo\"\n    over \"s\"\n    sleep-ms \"{{ms}}\"\n}}\n"
        ),
        "must not be negative, got -7",
        "sleep-ms \"{ms}\"",
        "in instance a/ms-7",
    );
}

#[test]
fn resources_this_machine_cannot_give_are_reported_at_their_line() {
    use prunus_engine::executor::fit;
    use prunus_engine::executor::local::Slots;
    let text = "stage \"a\" {\n    kind \"test/echo\"\n    resources cpus=1000 memory=\"1000G\"\n}\n\
                stage \"g\" {\n    kind \"test/echo\"\n    resources gpus=1\n}\n";
    let graph = load_str("test", text, &registry()).unwrap();
    let room = Slots {
        cpus: 2,
        gpus: 0,
        memory_mb: 8 * 1024,
    };
    let all: Vec<usize> = (0..graph.instances.len()).collect();
    let e = fit::check(&graph, &room, &all).unwrap_err();
    let messages = e.messages();
    for expected in [
        "stage `a` asks for 1000 cpus, but this machine has 2 cores",
        "stage `a` asks for 1024000 MB of memory, but this machine has 8192 MB",
        "stage `g` asks for 1 GPU(s), but this run has 0",
    ] {
        assert!(
            messages.iter().any(|m| m == expected),
            "no `{expected}` in {messages:#?}"
        );
    }
    let mut rendered = String::new();
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .render_report(&mut rendered, &e)
        .unwrap();
    assert!(rendered.contains("[test:3:"), "{rendered}");
    assert!(rendered.contains("[test:7:"), "{rendered}");
    // Instances that will not run (cached, or not targeted) are not checked.
    fit::check(&graph, &room, &[]).unwrap();
    // What fits is fine, and the machine's own limits are at least what the run was given.
    let room = Slots::this_machine(1000, 1, 1024 * 1024);
    fit::check(&graph, &room, &all).unwrap();
}

#[test]
fn a_stage_that_sets_something_twice_is_an_error() {
    // Before: the last `kind` silently won, and `value` was then "not a parameter of command".
    let text = "stage \"a\" {\n    kind \"test/echo\"\n    kind \"command\"\n    value \"x\"\n    value \"y\"\n}\n";
    let (messages, rendered) = errors(text);
    assert!(
        messages.contains(&"stage `a` sets `kind` twice".to_string()),
        "{messages:#?}"
    );
    assert!(
        messages.contains(&"stage `a` sets `value` twice".to_string()),
        "{messages:#?}"
    );
    assert!(rendered.contains("first set here"), "{rendered}");
}

#[test]
fn an_upstream_stage_written_as_a_parameter_points_to_needs() {
    assert_problem(
        "stage \"a\" {\n    kind \"test/echo\"\n}\nstage \"b\" {\n    kind \"test/echo\"\n    after \"a\"\n}\n",
        "`after` is not a parameter of kind `test/echo`",
        "after \"a\"",
        "needs \"a\"",
    );
}

#[test]
fn top_level_settings_set_twice_are_errors() {
    for key in ["pipeline \"b\"", "results \"out\"", "remote \"lab\""] {
        let first = key
            .replace('b', "a")
            .replace("out", "res")
            .replace("lab", "nfs");
        let text = format!("{first}\n{key}\nstage \"e\" {{\n    kind \"test/echo\"\n}}\n");
        let name = key.split_whitespace().next().unwrap();
        assert_problem(&text, &format!("`{name}` is set twice"), key, "keep one");
    }
}

#[test]
fn a_missing_deps_file_points_at_its_line() {
    assert_problem(
        "stage \"plot\" {\n    kind \"command\"\n    run \"true\"\n    deps \"no-such-script.py\"\n}\n",
        "`no-such-script.py` (in `deps`) is not a file",
        "deps \"no-such-script.py\"",
        "create the file or fix the path",
    );
}

#[test]
fn a_pipeline_file_without_stages_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for text in ["", "// only a comment\n", "results \"out\"\n"] {
        let path = dir.path().join("empty.kdl");
        std::fs::write(&path, text).unwrap();
        let err = prunus_engine::load(&path, Registry::builtin)
            .err()
            .expect("an error");
        let Error::Pipeline(e) = err else {
            panic!("{err}")
        };
        assert!(
            e.messages().iter().any(|m| m.contains("has no stages")),
            "{:?}",
            e.messages()
        );
    }
}

#[test]
fn a_valid_pipeline_expands_its_sweep_and_joins_on_shared_axes() {
    let text = format!(
        "{SWEEP}stage \"gen\" {{\n    kind \"test/echo\"\n    over \"grid\"\n    value \"{{game}}\"\n}}\n\
         sweep \"games\" {{\n    game \"breakout\" \"asterix\"\n}}\n\
         stage \"per-game\" {{\n    kind \"test/echo\"\n    over \"games\"\n    needs \"gen\"\n}}\n\
         stage \"one\" {{\n    kind \"test/echo\"\n    needs \"gen\" seed=1\n}}\n"
    );
    let graph = load_str("test", &text, &registry()).unwrap();
    let names: Vec<&str> = graph.instances.iter().map(|i| i.name.as_str()).collect();
    assert!(names.contains(&"gen/asterix/seed2"), "{names:?}");
    let per_game = graph.find("per-game/breakout").unwrap();
    assert_eq!(graph.instances[per_game].inputs.len(), 3);
    let one = graph.find("one").unwrap();
    assert_eq!(graph.instances[one].inputs.len(), 2);
    // The seed axis binds to echo's `seed` parameter; the `{game}` reference takes the axis value.
    let gen0 = &graph.instances[graph.find("gen/asterix/seed2").unwrap()];
    assert_eq!(gen0.params.0["seed"], prunus_stage::Value::Int(2));
    assert_eq!(
        gen0.params.0["value"],
        prunus_stage::Value::Str("asterix".into())
    );
}

/// Pieces of pipeline text that mutations splice in.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "\"",
    ";",
    "=",
    "#true",
    "#null",
    "stage",
    "sweep",
    "needs",
    "over",
    "kind",
    "\"test/echo\"",
    "\"grid\"",
    "\"gen\"",
    "seed",
    "from=0 to=3",
    "\"{game}\"",
    "\"{seed}\"",
    "template",
    "from",
    "include \"x.kdl\"",
    "resources cpus=2",
    "exclude game=\"asterix\"",
    "\n",
    "-1",
    "1e400",
    "0x10",
    "\"a/b\"",
    "value",
    "r#\"raw\"#",
    "/*",
    "*/",
    "//",
    "\\",
    "(t)",
    "🦀",
];

const SEED: &str = "pipeline \"fuzz\"\nsweep \"grid\" {\n    game \"breakout\" \"asterix\"\n    seed from=0 to=2\n    exclude game=\"asterix\" seed=1\n}\n\
template \"echo\" {\n    kind \"test/echo\"\n    sleep-ms 0\n}\n\
stage \"gen\" {\n    from \"echo\"\n    over \"grid\"\n    value \"{game}-{seed}\"\n    resources cpus=1 memory=\"1G\"\n}\n\
stage \"all\" {\n    kind \"test/echo\"\n    needs \"gen\" game=\"breakout\"\n}\n\
stage \"cmd\" {\n    kind \"command\"\n    needs \"all\"\n    run \"sh\" \"-c\" \"true\"\n    outputs \"x\"\n}\n";

fn mutate(text: &str, edits: &[(usize, usize, usize, usize)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for &(op, pos, len, token) in edits {
        let at = pos % (chars.len() + 1);
        match op % 3 {
            0 => {
                let end = (at + len % 12).min(chars.len());
                chars.drain(at..end);
            }
            1 => {
                let t = TOKENS[token % TOKENS.len()];
                chars.splice(at..at, t.chars());
            }
            _ => {
                // Duplicate a line: duplicates, shadowing and repeated values.
                let s: String = chars.iter().collect();
                let lines: Vec<&str> = s.lines().collect();
                let l = lines[pos % lines.len().max(1)];
                let line_start: usize = lines[..pos % lines.len().max(1)]
                    .iter()
                    .map(|l| l.chars().count() + 1)
                    .sum();
                let dup: Vec<char> = format!("{l}\n").chars().collect();
                chars.splice(line_start..line_start, dup);
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// Parsing and lowering a mutated pipeline returns a graph or diagnostics, never panics,
    /// and every diagnostic renders.
    #[test]
    fn mutated_pipelines_never_panic(edits in prop::collection::vec((0usize..3, 0usize..2_000, 0usize..64, 0usize..64), 1..6)) {
        let text = mutate(SEED, &edits);
        match load_str("fuzz", &text, &registry()) {
            Ok(graph) => prop_assert!(graph.instances.len() <= 64),
            Err(Error::Pipeline(e)) => {
                let mut out = String::new();
                GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
                    .render_report(&mut out, &e)
                    .unwrap();
                prop_assert!(!e.messages().is_empty() || !out.is_empty());
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }
}

#[test]
fn the_unmutated_fuzz_seed_is_valid() {
    let graph = load_str("fuzz", SEED, &registry()).unwrap();
    assert_eq!(graph.instances.len(), 5 + 1 + 1);
}

/// Sweeps whose point count would overflow or exhaust memory are refused with a span and a
/// hint, before anything is expanded (20 axes of 10 values once panicked on "capacity
/// overflow"; 64 axes of 2 wrapped the count to zero).
#[test]
fn huge_sweeps_are_refused_before_expansion() {
    for (axes, values, count) in [
        (20, 10, "more than 2^64"),
        (64, 2, "more than 2^64"),
        (7, 10, "10000000"),
    ] {
        let lines: String = (0..axes)
            .map(|a| {
                let vals: Vec<String> = (0..values).map(|v| v.to_string()).collect();
                format!("    a{a} {}\n", vals.join(" "))
            })
            .collect();
        let text = format!(
            "pipeline \"huge\"\nsweep \"s\" {{\n{lines}}}\nstage \"e\" {{\n    kind \"test/echo\"\n    over \"s\"\n    value \"x\"\n}}\n"
        );
        let (messages, rendered) = errors(&text);
        assert!(
            messages.iter().any(|m| m.contains(&format!(
                "has {count} points, more than the limit of 1000000"
            ))),
            "{messages:#?}"
        );
        assert!(rendered.contains("PRUNUS_MAX_INSTANCES"), "{rendered}");
    }
}
