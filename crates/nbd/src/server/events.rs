//! What the server reports: one [`Event`] per connection milestone or failure, each
//! rendered as one line of JSON for structured logs.

use crate::export::Peer;
use std::fmt::Write as _;

/// Receives server events; called from connection threads, so it must be quick and must
/// not block on the server.
pub trait Events: Send + Sync {
    /// One event.
    fn event(&self, e: Event);
}

/// Discards every event.
pub struct NoEvents;

impl Events for NoEvents {
    fn event(&self, _e: Event) {}
}

/// A connection milestone or failure. `id` numbers connections from 1; 0 is the server itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A client connected.
    Connected {
        /// Connection id.
        id: u64,
        /// Who.
        peer: Peer,
    },
    /// A client entered transmission.
    Negotiated {
        /// Connection id.
        id: u64,
        /// Export name.
        export: String,
        /// Structured replies in use.
        structured: bool,
        /// Metadata contexts selected.
        contexts: Vec<String>,
    },
    /// A client was refused an export (unknown, admission policy, TLS required).
    Refused {
        /// Connection id.
        id: u64,
        /// Who.
        peer: Peer,
        /// Export asked for.
        export: String,
        /// Why.
        reason: String,
    },
    /// A client broke the protocol; its connection is closed.
    ProtocolError {
        /// Connection id.
        id: u64,
        /// What it did.
        detail: String,
    },
    /// An export operation failed (the client got an error reply).
    IoError {
        /// Connection id (0: the shutdown flush).
        id: u64,
        /// Export name.
        export: String,
        /// What failed.
        detail: String,
    },
    /// A connection ended.
    Disconnected {
        /// Connection id.
        id: u64,
        /// Why.
        reason: String,
    },
    /// A client was turned away because `max_connections` were open.
    TooManyConnections {
        /// Who.
        peer: Peer,
    },
}

impl Event {
    /// The event as one line of JSON, e.g. `{"event":"connected","id":1,"peer":"tcp:127.0.0.1:5000"}`.
    pub fn to_json(&self) -> String {
        let mut j = Json::new(self.name());
        match self {
            Event::Connected { id, peer } => j.num("id", *id).str("peer", &peer.to_string()),
            Event::Negotiated { id, export, structured, contexts } => {
                j.num("id", *id).str("export", export).bool("structured", *structured).list("contexts", contexts)
            }
            Event::Refused { id, peer, export, reason } => {
                j.num("id", *id).str("peer", &peer.to_string()).str("export", export).str("reason", reason)
            }
            Event::ProtocolError { id, detail } => j.num("id", *id).str("detail", detail),
            Event::IoError { id, export, detail } => j.num("id", *id).str("export", export).str("detail", detail),
            Event::Disconnected { id, reason } => j.num("id", *id).str("reason", reason),
            Event::TooManyConnections { peer } => j.str("peer", &peer.to_string()),
        };
        j.finish()
    }

    fn name(&self) -> &'static str {
        match self {
            Event::Connected { .. } => "connected",
            Event::Negotiated { .. } => "negotiated",
            Event::Refused { .. } => "refused",
            Event::ProtocolError { .. } => "protocol_error",
            Event::IoError { .. } => "io_error",
            Event::Disconnected { .. } => "disconnected",
            Event::TooManyConnections { .. } => "too_many_connections",
        }
    }
}

struct Json(String);

impl Json {
    fn new(event: &str) -> Self {
        let mut j = Json(String::from("{"));
        j.str("event", event);
        j
    }
    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        quote(&mut self.0, k);
        self.0.push(':');
    }
    fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        quote(&mut self.0, v);
        self
    }
    fn num(&mut self, k: &str, v: u64) -> &mut Self {
        self.key(k);
        let _ = write!(self.0, "{v}");
        self
    }
    fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.0.push_str(if v { "true" } else { "false" });
        self
    }
    fn list(&mut self, k: &str, v: &[String]) -> &mut Self {
        self.key(k);
        self.0.push('[');
        for (i, s) in v.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            quote(&mut self.0, s);
        }
        self.0.push(']');
        self
    }
    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// Appends `s` as a JSON string. Names and reasons come from clients and exports, so
/// every control character is escaped: a log line can never be split or forged.
fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // U+2028/2029 end lines in JavaScript, which reads these logs.
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines() {
        let e = Event::Connected { id: 3, peer: Peer::Unix };
        assert_eq!(e.to_json(), r#"{"event":"connected","id":3,"peer":"unix"}"#);
        let e = Event::Negotiated { id: 1, export: "d".into(), structured: true, contexts: vec!["base:allocation".into(), "a\"b".into()] };
        assert_eq!(e.to_json(), r#"{"event":"negotiated","id":1,"export":"d","structured":true,"contexts":["base:allocation","a\"b"]}"#);
        let addr = "127.0.0.1:10809".parse().expect("address");
        let e = Event::TooManyConnections { peer: Peer::Tcp(addr) };
        assert_eq!(e.to_json(), r#"{"event":"too_many_connections","peer":"tcp:127.0.0.1:10809"}"#);
    }

    #[test]
    fn hostile_strings_stay_on_one_line() {
        let e = Event::Refused { id: 2, peer: Peer::Unix, export: "x\n{\"event\":\"fake\"}\u{1}\u{2028}\\".into(), reason: "r\t".into() };
        let j = e.to_json();
        assert!(!j.contains('\n') && !j.contains('\u{2028}'));
        assert!(j.contains(r#""export":"x\n{\"event\":\"fake\"}\u0001\u2028\\""#), "{j}");
        assert!(j.ends_with(r#""reason":"r\t"}"#));
    }
}
