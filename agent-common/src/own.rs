//! This host's own addresses, as the anti-spoofing check reads them: the table
//! [`map_names::HOST_ADDRS`](crate::map_names::HOST_ADDRS) behind a filter of 256
//! bits ([`map_names::OWN_FILTER`](crate::map_names::OWN_FILTER)), one bit set per own
//! address, so that a source whose bit is clear (nearly every source) costs no hash
//! lookup. The filter may claim more than the table holds, never less: the agent
//! sets the bits of the addresses it is about to write before it writes them, and
//! clears the bits of the removed ones only after it removed them.
use crate::keys::Addr;

/// The filter in front of the own-address table: index 0 of
/// [`map_names::OWN_FILTER`](crate::map_names::OWN_FILTER).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OwnFilter {
    /// Bit [`own_filter_bit`] of each own address.
    pub bits: [u64; 4],
    /// 0 until the agent wrote the filter (then every source is looked up in the
    /// table); 1 once it did.
    pub valid: u32,
    /// Explicit padding.
    pub _pad: u32,
}

#[cfg(feature = "user")]
// SAFETY: `#[repr(C)]`, plain integers, explicit padding.
unsafe impl aya::Pod for OwnFilter {}

/// The filter bit (0–255) of `addr` of family `fam` (`family::*`; an IPv4 address in
/// its first word): a multiplicative hash of the words as they lie in memory.
#[inline(always)]
pub fn own_filter_bit(fam: u8, addr: &Addr) -> u32 {
    let folded =
        addr[0] ^ addr[1].rotate_left(8) ^ addr[2].rotate_left(16) ^ addr[3].rotate_left(24);
    (folded ^ u32::from(fam)).wrapping_mul(0x9e37_79b1) >> 24
}

impl OwnFilter {
    /// Whether the filter lets `addr` be an own address (and so must be looked up).
    #[inline(always)]
    pub fn may_hold(&self, fam: u8, addr: &Addr) -> bool {
        let bit = own_filter_bit(fam, addr);
        self.valid == 0 || self.bits[(bit >> 6) as usize & 3] & (1u64 << (bit & 63)) != 0
    }

    /// The filter of the own addresses `addrs` ((family, address) pairs).
    pub fn of<'a>(addrs: impl IntoIterator<Item = (u8, &'a Addr)>) -> Self {
        let mut filter = OwnFilter {
            valid: 1,
            ..Default::default()
        };
        for (fam, addr) in addrs {
            let bit = own_filter_bit(fam, addr);
            filter.bits[(bit >> 6) as usize] |= 1u64 << (bit & 63);
        }
        filter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family;

    #[test]
    fn the_filter_holds_each_address_it_was_made_of_and_an_unwritten_one_holds_all() {
        let v4: Vec<Addr> = (0..64u32)
            .map(|i| [u32::from_be(0xc612_1500 + i), 0, 0, 0])
            .collect();
        let v6: Vec<Addr> = (0..64u32)
            .map(|i| [u32::from_be(0x2001_0db8), 0, 0, i.to_be()])
            .collect();
        let filter = OwnFilter::of(
            v4.iter()
                .map(|a| (family::V4, a))
                .chain(v6.iter().map(|a| (family::V6, a))),
        );
        assert!(v4.iter().all(|a| filter.may_hold(family::V4, a)));
        assert!(v6.iter().all(|a| filter.may_hold(family::V6, a)));
        // 128 addresses set at most 128 of the 256 bits: some address is left out.
        let set: u32 = filter.bits.iter().map(|w| w.count_ones()).sum();
        assert!((40..=128).contains(&set), "{set} bits set");
        let outside = (0..1024u32)
            .map(|i| [u32::from_be(0xc612_2000 + i), 0, 0, 0])
            .filter(|a| !filter.may_hold(family::V4, a))
            .count();
        assert!(
            outside > 100,
            "{outside} of 1024 other addresses filtered out"
        );
        let unwritten = OwnFilter::default();
        assert!(v4.iter().all(|a| unwritten.may_hold(family::V4, a)));
    }
}
