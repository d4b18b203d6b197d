//! The pieces every metric family of a scrape is written with: a family with its label
//! sets, a single metric, zone-pair labels, reason filters and epoch seconds.
use std::{
    fmt,
    time::{SystemTime, UNIX_EPOCH},
};

use prometheus_client::{
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::TypedMetric,
    registry::Unit,
};
use ward_common::{Counter, Reason, Verdict};

/// Encodes one metric family: its descriptor, then one sample per label set.
pub(super) fn family<L, M>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    members: impl IntoIterator<Item = (L, M)>,
) -> fmt::Result
where
    L: EncodeLabelSet,
    M: EncodeMetric + TypedMetric,
{
    let mut family = e.encode_descriptor(name, help, unit, M::TYPE)?;
    for (labels, metric) in members {
        metric.encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Encodes one metric without labels.
pub(super) fn single<M>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric: M,
) -> fmt::Result
where
    M: EncodeMetric + TypedMetric,
{
    metric.encode(e.encode_descriptor(name, help, unit, M::TYPE)?)
}

/// Labels of a zone pair series.
pub(super) fn pair_labels(
    (src, dst, verdict): &(String, String, Verdict),
) -> [(&'static str, &str); 3] {
    [
        ("src_zone", src),
        ("dst_zone", dst),
        ("verdict", verdict.name()),
    ]
}

/// Packet counts dropped, for every reason that drops.
pub(super) fn denied(
    reasons: &[(Reason, Verdict, Counter)],
) -> impl Iterator<Item = (Reason, u64)> + '_ {
    reasons
        .iter()
        .filter(|(r, v, _)| r.verdict() == Verdict::Deny && *v == Verdict::Deny)
        .map(|(r, _, c)| (*r, c.packets))
}

/// Whether a reason can come with a verdict: an allowing reason is always allowed; a
/// denying reason is denied, or audited when audit mode passes it.
pub(super) fn possible(reason: Reason, verdict: Verdict) -> bool {
    match reason.verdict() {
        Verdict::Allow => verdict == Verdict::Allow,
        _ => verdict != Verdict::Allow,
    }
}

/// Seconds since the Unix epoch, 0 for none (or for a time before the epoch).
pub(super) fn seconds(at: Option<SystemTime>) -> f64 {
    at.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}
