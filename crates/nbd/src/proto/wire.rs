//! Big-endian field access that cannot run past the end of hostile input.

/// Reads fields in order from a byte slice; every read is `None` once the slice is short.
pub struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Cursor { rest: bytes }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).and_then(|b| b.try_into().ok())
    }

    /// The next big-endian u16.
    pub fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    /// The next big-endian u32.
    pub fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    /// The next big-endian u64.
    pub fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }

    /// A string of `len` bytes; `None` if short. Invalid UTF-8 is reported separately
    /// because the spec treats it as a malformed request, not a truncated one.
    pub fn string(&mut self, len: usize) -> Option<Result<&'a str, std::str::Utf8Error>> {
        self.take(len).map(std::str::from_utf8)
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }
}

/// Appends big-endian fields to an output buffer.
pub trait Put {
    /// Appends a u16.
    fn put_u16(&mut self, v: u16);
    /// Appends a u32.
    fn put_u32(&mut self, v: u32);
    /// Appends a u64.
    fn put_u64(&mut self, v: u64);
}

impl Put for Vec<u8> {
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
}

/// Length of `n` as a u32 for a length field, saturating: callers bound `n` well below
/// 4 GiB first, so saturation never reaches the wire.
pub fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Cuts `s` to at most `max` bytes on a character boundary, so messages built from
/// export-supplied text stay within the spec's string limit.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_stops_at_the_end() {
        let mut c = Cursor::new(&[0, 1, 0, 0, 0, 2, 9]);
        assert_eq!(c.u16(), Some(1));
        assert_eq!(c.u32(), Some(2));
        assert_eq!(c.u16(), None);
        assert_eq!(c.remaining(), 1);
        assert_eq!(c.take(1), Some(&[9][..]));
        assert_eq!(c.u64(), None);
    }

    #[test]
    fn clip_keeps_characters_whole() {
        assert_eq!(clip("héllo", 2), "h");
        assert_eq!(clip("abc", 10), "abc");
    }
}
