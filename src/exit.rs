//! Process exit codes, one place for all of them (a nightly job relies on these).

/// Everything went as planned and every threshold held.
pub const OK: u8 = 0;
/// The run finished but a threshold failed.
pub const THRESHOLD_FAILED: u8 = 1;
/// The scenario or the command line is invalid.
pub const INVALID: u8 = 2;
/// The run could not happen: target unreachable, auth rejected, a file unwritable.
pub const CANNOT_RUN: u8 = 3;
/// Interrupted by SIGINT/SIGTERM (the partial report is still written).
pub const INTERRUPTED: u8 = 130;
