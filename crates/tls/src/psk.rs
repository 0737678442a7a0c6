//! The pre-shared key file: one `username:hexkey` a line, as GnuTLS's `psktool` writes it and
//! as libnbd (client side) and nbdkit `--tls-psk` (server side) read it.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crate::error::{Result, TlsError};

/// OpenSSL 1.1.1's `PSK_MAX_PSK_LEN` (3.x allows 512): a longer key could never be handed to
/// the handshake, so it is refused when the file is loaded rather than at the first client.
pub(crate) const MAX_KEY_LEN: usize = 256;

/// Keys by identity, as loaded from a PSK file.
#[derive(Clone, Default)]
pub(crate) struct PskKeys {
    keys: HashMap<Vec<u8>, Vec<u8>>,
}

// Keys must never reach a log line through `{:?}`.
impl fmt::Debug for PskKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PskKeys").field("identities", &self.keys.len()).finish()
    }
}

impl PskKeys {
    /// Reads and parses `path`.
    pub(crate) fn load(path: &Path) -> Result<PskKeys> {
        let bytes = std::fs::read(path).map_err(TlsError::io(path, "read"))?;
        let text =
            String::from_utf8(bytes).map_err(|_| TlsError::invalid(path, "not a text file (PSK files hold username:hexkey lines)"))?;
        PskKeys::parse(path, &text)
    }

    /// Parses the text of a PSK file; `path` only names it in errors.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<PskKeys> {
        let mut keys = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let lineno = i + 1;
            let at = |detail: String| TlsError::invalid(&path.with_file_name(line_name(path, lineno)), detail);
            // `lines()` keeps a CR from CRLF files; psktool never writes one but editors do.
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.trim().is_empty() {
                continue;
            }
            let Some((user, hex)) = line.split_once(':') else {
                return Err(at("expected username:hexkey (no ':' on the line)".into()));
            };
            if user.is_empty() {
                return Err(at("empty username before ':'".into()));
            }
            let key = decode_hex(hex).map_err(|e| at(format!("key of {user:?}: {e}")))?;
            if keys.insert(user.as_bytes().to_vec(), key).is_some() {
                return Err(at(format!("username {user:?} appears twice")));
            }
        }
        if keys.is_empty() {
            return Err(TlsError::invalid(path, "no username:hexkey lines"));
        }
        Ok(PskKeys { keys })
    }

    /// The key for `identity`, if the file names it.
    pub(crate) fn get(&self, identity: &[u8]) -> Option<&[u8]> {
        self.keys.get(identity).map(Vec::as_slice)
    }
}

/// `FILE:LINE` as the last path component, so `Display` prints `/dir/keys.psk:3: ...`.
fn line_name(path: &Path, lineno: usize) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{name}:{lineno}")
}

fn decode_hex(hex: &str) -> std::result::Result<Vec<u8>, String> {
    let hex = hex.trim();
    if hex.is_empty() {
        return Err("empty key".into());
    }
    if !hex.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", hex.len()));
    }
    let digits: Vec<u8> = hex
        .bytes()
        .enumerate()
        .map(|(pos, c)| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!("{:?} at key position {} is not a hex digit", char::from(c), pos + 1)),
        })
        .collect::<std::result::Result<_, _>>()?;
    let key: Vec<u8> = digits.chunks_exact(2).map(|pair| pair.iter().fold(0u8, |acc, d| (acc << 4) | d)).collect();
    if key.len() > MAX_KEY_LEN {
        return Err(format!("{} bytes long, at most {MAX_KEY_LEN} are supported", key.len()));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PskKeys> {
        PskKeys::parse(Path::new("/etc/plexus/keys.psk"), text)
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("{text:?} parsed"),
            Err(e) => {
                assert_eq!(e.code(), "E_INVALID");
                e.to_string()
            }
        }
    }

    #[test]
    fn reads_psktool_lines() -> Result<()> {
        let keys = parse("alice:00ff10Ab\r\n\nbob:0102\n")?;
        assert_eq!(keys.get(b"alice"), Some(&[0x00, 0xff, 0x10, 0xab][..]));
        assert_eq!(keys.get(b"bob"), Some(&[1, 2][..]));
        assert_eq!(keys.get(b"carol"), None);
        assert_eq!(format!("{keys:?}"), "PskKeys { identities: 2 }");
        Ok(())
    }

    #[test]
    fn bad_lines_are_named_by_number() {
        assert_eq!(err("alice:0102\nbob\n"), "/etc/plexus/keys.psk:2: expected username:hexkey (no ':' on the line)");
        assert_eq!(err(":0102\n"), "/etc/plexus/keys.psk:1: empty username before ':'");
        assert_eq!(err("\n\nalice:01x2\n"), "/etc/plexus/keys.psk:3: key of \"alice\": 'x' at key position 3 is not a hex digit");
        assert_eq!(err("alice:012\n"), "/etc/plexus/keys.psk:1: key of \"alice\": odd number of hex digits (3)");
        assert_eq!(err("alice:\n"), "/etc/plexus/keys.psk:1: key of \"alice\": empty key");
        assert_eq!(err("alice:01\nalice:02\n"), "/etc/plexus/keys.psk:2: username \"alice\" appears twice");
        assert_eq!(err("\n  \n"), "/etc/plexus/keys.psk: no username:hexkey lines");
        let long = format!("alice:{}\n", "ab".repeat(MAX_KEY_LEN + 1));
        assert_eq!(err(&long), "/etc/plexus/keys.psk:1: key of \"alice\": 257 bytes long, at most 256 are supported");
    }
}
