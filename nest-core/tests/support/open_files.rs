//! The open-file limit of a test process that opens many sockets (shared by test binaries).

/// Raises this process's soft open-file limit as far as the hard limit allows (the default is
/// often 1,024) and returns how many of `wanted` streams fit in it, at two sockets each (client
/// and server in one process) plus room for the tests that run alongside.
pub(crate) fn streams_within_the_open_file_limit(wanted: u64) -> u64 {
    use rlimit::Resource;
    const ROOM: u64 = 256;
    let needed = wanted * 2 + ROOM;
    let (soft, hard) = Resource::NOFILE.get().expect("getrlimit");
    if soft < needed {
        let _ = Resource::NOFILE.set(needed.min(hard), hard);
    }
    let (soft, _) = Resource::NOFILE.get().expect("getrlimit");
    let fits = soft.saturating_sub(ROOM) / 2;
    if fits < wanted {
        eprintln!("open-file limit {soft} (hard {hard}): {fits} streams instead of {wanted}");
    }
    wanted.min(fits)
}
