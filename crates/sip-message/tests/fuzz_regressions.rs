//! Replays every input the fuzzer found (`tests/fixtures/fuzz/`) through both fuzz checks.
//! File names say what each one broke.

#[path = "support/checks.rs"]
mod checks;

#[test]
fn fuzz_findings_stay_fixed() {
    let dir = format!("{}/tests/fixtures/fuzz", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        checks::exercise_any(&data);
        checks::edit_invariant(&data);
        n += 1;
    }
    assert!(n > 0, "no fixtures in {dir}");
}
