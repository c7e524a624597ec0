//! What the hub records through the [`metrics`](https://docs.rs/metrics) facade, besides the
//! SSE series nest-core's body records for every subscriber stream (`nest_sse_events_total`,
//! `nest_sse_bytes_total`, `nest_sse_streams_ended_total`…, counted once per frame there):
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `nest_hub_gaps_total` | counter | `reason` (`lagged`, `unknown-id`) | gap events the hub sent |
//!
//! Both label values are exported at 0 when a [`Hub`](crate::Hub) is made (install the recorder
//! first), so a dashboard sees the series before the first gap.

use metrics::counter;

/// The `reason` labels of `nest_hub_gaps_total`.
const GAP_REASONS: [&str; 2] = ["lagged", "unknown-id"];

/// One gap event sent, for `reason` (one of [`GAP_REASONS`]).
pub(crate) fn gap(reason: &'static str) {
    debug_assert!(GAP_REASONS.contains(&reason));
    counter!("nest_hub_gaps_total", "reason" => reason).increment(1);
}

/// Exports the hub's series (at 0 when new: an increment by 0, so a second hub does not reset
/// what the first counted).
pub(crate) fn register() {
    for reason in GAP_REASONS {
        counter!("nest_hub_gaps_total", "reason" => reason).increment(0);
    }
}
