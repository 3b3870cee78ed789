//! `prunus exec`: one stage instance saved as a job in the store, run from the store alone (as
//! a cluster job does), then found cached by `prunus run`.

use prunus_tests::Project;

const PIPE: &str = r#"
pipeline "jobs"
sweep "s" {
    seed 0 1
}
stage "gen" {
    kind "test/echo"
    over "s"
    value "seed {seed}"
}
stage "all" {
    kind "test/echo"
    needs "gen"
    value "fan-in"
}
"#;

#[test]
fn a_saved_job_runs_from_the_store_and_run_then_finds_it_cached() {
    let p = Project::new();
    p.write("jobs.kdl", PIPE);
    let saved = p.prunus(&["exec", "--save", "jobs.kdl", "gen/seed0"]).ok();
    let digest = saved.stdout.trim().to_string();
    assert_eq!(digest.len(), 64, "{}", saved.stdout);
    // The job runs from the store alone: from another directory, without the pipeline file.
    std::fs::remove_file(p.path().join("jobs.kdl")).unwrap();
    let store = p.path().join(".prunus");
    let ran = p
        .prunus(&["--store", store.to_str().unwrap(), "exec", &digest])
        .ok();
    assert!(ran.stderr.contains("✓ gen/seed0"), "{}", ran.stderr);
    // Running it again finds it published.
    let again = p.prunus(&["exec", &digest]).ok();
    assert!(
        again.stderr.contains("published by another prunus run"),
        "{}",
        again.stderr
    );
    p.write("jobs.kdl", PIPE);
    assert_eq!(p.prunus(&["run", "jobs.kdl"]).ok().counts(), (2, 1, 0));
    let shown = p.prunus(&["show", "gen/seed0"]).ok();
    assert!(shown.stdout.contains("out.txt"), "{}", shown.stdout);
}

#[test]
fn a_job_whose_inputs_have_not_run_is_refused_with_a_hint() {
    let p = Project::new();
    p.write("jobs.kdl", PIPE);
    let r = p.prunus(&["exec", "--save", "jobs.kdl", "all"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("all cannot run yet"), "{}", r.stderr);
    assert!(r.stderr.contains("run its upstream first"), "{}", r.stderr);
}

#[test]
fn an_altered_job_file_is_refused() {
    let p = Project::new();
    p.write("jobs.kdl", PIPE);
    let digest = p
        .prunus(&["exec", "--save", "jobs.kdl", "gen/seed1"])
        .ok()
        .stdout;
    let store = p.path().join(".prunus");
    // Print the job, change a parameter but not the key, and run it from a file.
    let blob = find_job_blob(&store, digest.trim());
    let altered = blob.replace("seed 1", "seed 9");
    assert_ne!(altered, blob);
    p.write("job.json", &altered);
    let r = p.prunus(&["exec", "--file", "job.json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    // The report is wrapped and framed for the terminal: compare its words.
    let letters: String = r
        .stderr
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    let flat = letters.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("does not match its key components"),
        "{}",
        r.stderr
    );
}

/// The job's JSON, as `prunus exec --show` prints it.
fn find_job_blob(store: &std::path::Path, digest: &str) -> String {
    let out = std::process::Command::new(prunus_tests::prunus_bin())
        .args(["--store", store.to_str().unwrap(), "exec", "--show", digest])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}
