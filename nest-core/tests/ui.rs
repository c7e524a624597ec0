//! Compile-time behaviour of the trait API: handlers that are not handlers, SSE routes whose
//! handler does not return an SSE body, and typed streams written an event of another type. The
//! errors are checked in as `.stderr`; regenerate them
//! with `TRYBUILD=overwrite` and review the diff.

#[test]
fn ui() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
