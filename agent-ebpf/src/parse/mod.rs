//! Bounds-checked header parsing, as `docs/dataplane.md` specifies.
//!
//! Every read of packet memory goes through [`Frame::load`], the one place that checks
//! an offset against the readable bytes; the layers build on it:
//! [`l2`] (Ethernet and VLAN tags), [`l3`] (IPv4, IPv6 and its extension headers),
//! [`l4`] (TCP, UDP, ICMP and the packet an ICMP error quotes).
pub mod l2;
pub mod l3;
pub mod l4;

use ward_common::Addr;

/// Offsets past this are refused, so the verifier can bound every packet offset.
pub const MAX_L4_OFFSET: usize = 1024;

/// Plain data that [`Frame::load`] may read from a packet.
///
/// # Safety
/// Every bit pattern must be a valid value of the type (integers and arrays of them).
pub unsafe trait Plain: Copy {}

// SAFETY: integers and arrays of integers: every bit pattern is a valid value.
unsafe impl Plain for u32 {}
// SAFETY: as above.
unsafe impl<const N: usize> Plain for [u8; N] {}
// SAFETY: as above.
unsafe impl<const N: usize> Plain for [u32; N] {}

/// The packet bytes: `data..data_end` is readable, `len` is the whole frame's length.
#[derive(Clone, Copy)]
pub struct Frame {
    /// First byte.
    pub data: usize,
    /// One past the last readable byte.
    pub data_end: usize,
    /// Length of the frame (greater than `data_end - data` for a non-linear skb).
    pub len: usize,
}

impl Frame {
    /// The `T` at `off`, if it lies within the readable bytes: the one checked read of
    /// packet memory. Offsets past [`MAX_L4_OFFSET`] (plus a header) are refused first,
    /// so that the verifier can bound the pointer; `data` and `data_end` are read from
    /// the frame at each call, never carried across a loop in a variable of their own.
    #[inline(always)]
    pub fn load<T: Plain>(&self, off: usize) -> Option<T> {
        if off > MAX_L4_OFFSET + 64 {
            return None;
        }
        let start = self.data + off;
        if start + core::mem::size_of::<T>() > self.data_end {
            return None;
        }
        // SAFETY: `start..start + size_of::<T>()` lies within `data..data_end`, which
        // the kernel keeps readable for the whole program run (the check above is the
        // one the verifier sees); `T: Plain` has no invalid bit patterns. The load may
        // be unaligned: the BPF instruction set allows it on packet memory on the
        // architectures Ward supports, and word loads keep the verifier's work small.
        Some(unsafe { *(start as *const T) })
    }

    /// The byte at `off`. The bounds check covers two bytes: LLVM turns a one-byte
    /// check into `ptr >= data_end`, from which the verifier learns no range. Every
    /// byte read here is followed by more bytes that the header must have anyway.
    #[inline(always)]
    pub fn u8_at(&self, off: usize) -> Option<u8> {
        self.load::<[u8; 2]>(off).map(|b| b[0])
    }

    /// The big-endian 16-bit word at `off`.
    #[inline(always)]
    pub fn be16_at(&self, off: usize) -> Option<u16> {
        self.load::<[u8; 2]>(off).map(u16::from_be_bytes)
    }

    /// The big-endian 32-bit word at `off`.
    #[inline(always)]
    pub fn be32_at(&self, off: usize) -> Option<u32> {
        self.load::<[u8; 4]>(off).map(u32::from_be_bytes)
    }

    /// The IPv4 address at `off`, as an [`Addr`] (one word load).
    #[inline(always)]
    pub fn addr4_at(&self, off: usize) -> Option<Addr> {
        let w = self.load::<u32>(off)?;
        Some([w, 0, 0, 0])
    }

    /// The IPv6 address at `off`, as an [`Addr`] (word loads).
    #[inline(always)]
    pub fn addr6_at(&self, off: usize) -> Option<Addr> {
        self.load::<[u32; 4]>(off)
    }

    /// Whether the 8 bytes at `off` are readable (a header checked as a whole).
    #[inline(always)]
    pub fn has8(&self, off: usize) -> bool {
        self.load::<[u8; 8]>(off).is_some()
    }
}
