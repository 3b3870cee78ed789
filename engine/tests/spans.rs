//! Diagnostics point at the right line and column although the parser sees the text with its
//! comments cut out and in chunks of top-level nodes (see the engine's `prescan`).

use std::path::Path;

use miette::{GraphicalReportHandler, GraphicalTheme};
use prunus_engine::{Error, Registry, load_str};

/// The rendered report of a pipeline that must not lower.
fn rendered(text: &str) -> String {
    match load_str("test", text, &Registry::builtin(Path::new("."))) {
        Ok(_) => panic!("lowered without errors"),
        Err(Error::Pipeline(e)) => {
            let mut out = String::new();
            GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
                .with_width(200)
                .render_report(&mut out, &e)
                .unwrap();
            out
        }
        Err(other) => panic!("not a pipeline error: {other}"),
    }
}

/// `[test:LINE:COL]` of the first occurrence of `needle` in `text` (1-based, as miette).
fn place(text: &str, needle: &str) -> String {
    let at = text.find(needle).expect("needle in text");
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |n| n + 1) + 1;
    format!("[test:{line}:{col}]")
}

#[test]
fn errors_after_comments_point_at_their_line_and_column() {
    let text = "// a pipeline\n/* a block\n   comment */ pipeline \"p\" // named\n\
                stage a {\n    // what it runs:\n    kind /* inline */ \"nope\"\n}\n";
    let out = rendered(text);
    assert!(out.contains(&place(text, "kind /* inline")), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains('│') && l.contains("kind /* inline */ \"nope\"")),
        "{out}"
    );
}

#[test]
fn errors_deep_in_a_large_file_point_at_their_line() {
    let mut text = String::from("pipeline \"big\"\n");
    for i in 0..9000 {
        text.push_str(&format!(
            "// stage {i}\nstage s{i} {{\n    kind \"test/echo\" /* echo */\n    value \"v{i}\"\n}}\n"
        ));
    }
    assert!(text.len() > 512 << 10, "spans several chunks");
    let semantic = format!("{text}stage late {{\n    kind \"test/echo\"\n    needs nowhere\n}}\n");
    let out = rendered(&semantic);
    assert!(out.contains(&place(&semantic, "needs nowhere")), "{out}");
    let syntax = format!("{text}stage broken {{\n    value \"unclosed\n}}\n");
    let out = rendered(&syntax);
    let line = syntax[..syntax.find("value \"unclosed").unwrap()]
        .matches('\n')
        .count()
        + 1;
    assert!(
        out.contains(&format!("[test:{line}:")),
        "line {line}:\n{out}"
    );
}
