//! What a filemark and the catalog record about a file's blocks as a whole: the file
//! CRC and the segment digest, both computed over the list of (length, CRC-32C) of the
//! blocks rather than over the bytes again.
//!
//! Every block's payload CRC is verified on every read, so hashing the payload a
//! second time would add a full pass over the data (a fifth of a restore's CPU time on
//! a two-core machine) to detect only what the block CRCs already detect. Hashing the
//! block list instead costs nothing and binds what the block CRCs alone do not: the
//! order, number and lengths of the blocks, so a wrong segment, a missing block or
//! blocks out of order never verify.

use xxhash_rust::xxh3::Xxh3;

/// The whole-segment digest: XXH3-128 of the segment's block list (see module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Digest(pub u128);

impl Digest {
    /// The digest `bytes` get when written in blocks of `block_size` bytes.
    pub fn of(bytes: &[u8], block_size: u32) -> Digest {
        let mut c = BlockChain::new();
        for b in bytes.chunks(block_size.max(1) as usize) {
            c.add(b.len() as u32, crc32c::crc32c(b));
        }
        c.digest()
    }
    /// 32 lower-case hex digits, most significant first.
    pub fn to_hex(&self) -> String {
        format!("{:032x}", self.0)
    }
    /// Parses 32 hex digits.
    pub fn from_hex(s: &str) -> Option<Digest> {
        (s.len() == 32).then(|| u128::from_str_radix(s, 16).ok()).flatten().map(Digest)
    }
}

/// The running file CRC and digest of a file's blocks, fed one block at a time.
#[derive(Clone)]
pub struct BlockChain {
    xxh: Xxh3,
    crc: u32,
}

impl std::fmt::Debug for BlockChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlockChain {{ crc: {:08x} }}", self.crc)
    }
}

impl Default for BlockChain {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockChain {
    /// The chain of an empty file.
    pub fn new() -> Self {
        BlockChain { xxh: Xxh3::new(), crc: 0 }
    }
    /// Adds a block of `len` bytes whose payload CRC-32C is `crc`.
    pub fn add(&mut self, len: u32, crc: u32) {
        let e = entry(len, crc);
        self.xxh.update(&e);
        self.crc = crc32c::crc32c_append(self.crc, &e);
    }
    /// Adds a hole record standing for `blocks` whole blocks: entry (0, blocks), which
    /// no data block has (a data block carries at least one byte).
    pub fn add_hole(&mut self, blocks: u32) {
        self.add(0, blocks);
    }
    /// The file CRC a filemark records.
    pub fn crc(&self) -> u32 {
        self.crc
    }
    /// The segment digest.
    pub fn digest(&self) -> Digest {
        Digest(self.xxh.digest128())
    }
}

/// Adds one block to a bare file CRC (what a scan checks a filemark against).
pub fn chain_crc(prev: u32, len: u32, crc: u32) -> u32 {
    crc32c::crc32c_append(prev, &entry(len, crc))
}

/// A block's entry in the list: its length then its CRC, each u32 little-endian.
fn entry(len: u32, crc: u32) -> [u8; 8] {
    let mut e = [0u8; 8];
    e[..4].copy_from_slice(&len.to_le_bytes());
    e[4..].copy_from_slice(&crc.to_le_bytes());
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_binds_order_and_lengths_and_round_trips_as_hex() {
        let a = Digest::of(b"0123456789abcdef", 8);
        let mut swapped = BlockChain::new();
        swapped.add(8, crc32c::crc32c(b"89abcdef"));
        swapped.add(8, crc32c::crc32c(b"01234567"));
        assert_ne!(a, swapped.digest());
        assert_ne!(a, Digest::of(b"0123456789abcdef", 4));
        assert_eq!(Digest::from_hex(&a.to_hex()), Some(a));
        assert_eq!(Digest::from_hex("xyz"), None);
    }
}
