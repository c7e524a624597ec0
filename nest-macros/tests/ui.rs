//! Compile-time behaviour of the macros: what builds, and the errors (checked in as `.stderr`) of
//! what does not. Regenerate the expected output with `TRYBUILD=overwrite` and review the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
