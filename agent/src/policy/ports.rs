//! Sets of ports as merged, readable ranges, for comparing what two policies allow.
use std::fmt;

use super::PortRange;

/// A set of ports: sorted ranges that neither overlap nor touch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortSet(Vec<PortRange>);

impl PortSet {
    /// The union of `ranges`, merged into the fewest ranges.
    pub fn from_ranges(ranges: impl IntoIterator<Item = PortRange>) -> Self {
        let mut sorted: Vec<PortRange> = ranges.into_iter().collect();
        sorted.sort_unstable();
        let mut merged: Vec<PortRange> = Vec::with_capacity(sorted.len());
        for r in sorted {
            match merged.last_mut() {
                Some(m) if u32::from(r.first) <= u32::from(m.last) + 1 => {
                    m.last = m.last.max(r.last)
                }
                _ => merged.push(r),
            }
        }
        PortSet(merged)
    }

    /// The merged ranges, in order.
    pub fn ranges(&self) -> &[PortRange] {
        &self.0
    }

    /// Whether the set has no port.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The ports of `self` that are not in `other`.
    pub fn minus(&self, other: &PortSet) -> PortSet {
        let mut out = Vec::new();
        let mut skip = 0;
        for r in &self.0 {
            let (mut lo, hi) = (u32::from(r.first), u32::from(r.last));
            while other.0.get(skip).is_some_and(|o| u32::from(o.last) < lo) {
                skip += 1;
            }
            for o in other.0[skip..]
                .iter()
                .take_while(|o| u32::from(o.first) <= hi)
            {
                if u32::from(o.first) > lo {
                    out.push(range(lo, u32::from(o.first) - 1));
                }
                lo = lo.max(u32::from(o.last) + 1);
            }
            if lo <= hi {
                out.push(range(lo, hi));
            }
        }
        PortSet(out)
    }
}

/// `first..=last`, both known to be ports.
fn range(first: u32, last: u32) -> PortRange {
    let port = |p: u32| u16::try_from(p).expect("a port");
    PortRange {
        first: port(first),
        last: port(last),
    }
}

/// `104,11112-11115`.
impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}
