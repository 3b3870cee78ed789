//! The issue's own reproductions, with the binary: a `command` stage cannot name an output
//! outside its folder, and `show --export` writes only inside the folder it is given, even
//! for a manifest edited to name `../` paths.

use prunus_tests::Project;

#[test]
fn absolute_and_parent_output_names_are_refused_at_plan_time() {
    let p = Project::new();
    for (i, name) in ["/tmp/prunus-escape-x", "../../etc/x", "/etc/hostname"]
        .iter()
        .enumerate()
    {
        let file = format!("e{i}.kdl");
        p.write(
            &file,
            &format!("stage \"e\" {{\n    kind \"command\"\n    run \"true\"\n    outputs \"{name}\"\n}}\n"),
        );
        let ran = p.prunus(&["plan", &file]);
        assert_ne!(ran.code, 0, "{name}: {}", ran.stdout);
        assert!(ran.stderr.contains("output name"), "{name}: {}", ran.stderr);
        assert!(
            ran.stderr.contains(&format!("{i}.kdl:4")),
            "{name}: the line: {}",
            ran.stderr
        );
    }
}

#[test]
fn show_export_stays_inside_its_folder() {
    let p = Project::new();
    p.write(
        "e.kdl",
        "stage \"e\" {\n    kind \"command\"\n    run \"sh\" \"-c\" \"echo hi > $PRUNUS_OUT/x\"\n    outputs \"x\"\n}\n",
    );
    p.prunus(&["run", "e.kdl"]).ok();
    let actions = p.path().join(".prunus/actions");
    let manifest = walk(&actions)
        .into_iter()
        .find(|f| f.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("\"x\"", "\"../../escaped\"")).unwrap();
    let ran = p.prunus(&["show", "e", "--export", "out/a"]);
    assert_ne!(ran.code, 0, "{}", ran.stdout);
    assert!(
        ran.stderr.contains("output name \"../../escaped\""),
        "{}",
        ran.stderr
    );
    assert!(!p.path().join("escaped").exists());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
