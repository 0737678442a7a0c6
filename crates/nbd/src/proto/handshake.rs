//! The server side of the fixed-newstyle handshake as a state machine without I/O: the
//! caller reads exactly the bytes [`Handshake::step`] asks for, passes them to
//! [`Handshake::receive`], and writes [`Handshake::take_output`]. Asking for exact byte
//! counts means the caller never reads past the end of the handshake (the rest belongs to
//! transmission) or past `NBD_OPT_STARTTLS` (the rest is TLS).
//!
//! Every transition happens in `complete` and `handle_option`; states:
//! ClientFlags → OptionHeader ⇄ (OptionData | Discard) → … → Ready | Closed, with
//! OptionHeader → AwaitTls → OptionHeader around a STARTTLS upgrade.

use super::consts::*;
use super::meta;
use super::wire::{clip, len32, Cursor, Put};
use crate::export::{Export, Exports, Peer};
use std::sync::Arc;

/// Largest option payload accepted; longer ones are skipped unread and answered with
/// `NBD_REP_ERR_TOO_BIG` (or, for `NBD_OPT_EXPORT_NAME`, which cannot fail politely, the
/// connection is closed). Nothing legitimate comes close: names are at most 4 KiB.
pub const MAX_OPTION_LEN: u32 = 64 * 1024;

/// Smallest maximum block size advertised: the spec wants it at least the preferred size.
const MIN_MAX_BLOCK: u32 = 4096;
/// Preferred block size advertised (NBD_INFO_BLOCK_SIZE).
const PREFERRED_BLOCK: u32 = 4096;

/// Whether and how TLS is offered (the spec's NOTLS, SELECTIVETLS without TLS-only
/// exports, and FORCEDTLS modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// No TLS: `NBD_OPT_STARTTLS` is refused with `NBD_REP_ERR_POLICY`.
    Off,
    /// The client may upgrade; nothing requires it.
    Optional,
    /// Everything but STARTTLS and ABORT is refused with `NBD_REP_ERR_TLS_REQD` until TLS runs.
    Required,
}

/// Fixed settings of one handshake.
#[derive(Clone, Copy, Debug)]
pub struct HandshakeConfig {
    /// TLS mode.
    pub tls: TlsMode,
    /// Longest READ/WRITE accepted, advertised as the maximum block size.
    pub max_request: u32,
}

/// One metadata context selected for transmission, with the id chosen for this connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaContext {
    /// The id block-status chunks carry.
    pub id: u32,
    /// The context's name.
    pub name: String,
}

/// What the handshake agreed on; everything transmission needs.
#[derive(Clone)]
pub struct Negotiated {
    /// The export's name as the client gave it.
    pub name: String,
    /// The export.
    pub export: Arc<dyn Export>,
    /// Size at negotiation; requests are checked against this.
    pub size: u64,
    /// Transmission flags sent to the client.
    pub flags: u16,
    /// Structured replies negotiated.
    pub structured: bool,
    /// Contexts selected by the last SET_META_CONTEXT for this export (empty: no BLOCK_STATUS).
    pub contexts: Vec<MetaContext>,
    /// Longest READ/WRITE accepted.
    pub max_request: u32,
}

impl Negotiated {
    /// Whether the export refuses writes.
    pub fn read_only(&self) -> bool {
        self.flags & FLAG_READ_ONLY != 0
    }
}

/// What the caller must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Read exactly this many bytes (at least 1) and pass them to `receive`.
    Read(usize),
    /// Write the output (it ends with the STARTTLS acknowledgement), upgrade the stream,
    /// then call `tls_started`.
    StartTls,
    /// Write the output, then take `into_negotiated` and enter transmission.
    Ready,
    /// Write the output, then close; `close_reason` says why.
    Close,
}

/// Why a handshake ended without transmission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent `NBD_OPT_ABORT`.
    Aborted,
    /// The client broke the protocol.
    Protocol(String),
    /// `NBD_OPT_EXPORT_NAME` named an export the client may not have; the spec leaves
    /// closing as the only answer.
    Refused {
        /// The export asked for.
        export: String,
        /// Why.
        reason: String,
    },
}

/// Something worth logging that did not end the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeEvent {
    /// INFO or GO was refused (unknown export, admission policy, TLS required).
    Refused {
        /// The export asked for.
        export: String,
        /// Why.
        reason: String,
    },
}

enum State {
    ClientFlags,
    OptionHeader,
    OptionData { option: u32, len: usize },
    Discard { option: u32, left: u64 },
    AwaitTls,
    Ready(Box<Negotiated>),
    Closed(CloseReason),
}

/// The server side of one connection's handshake.
pub struct Handshake {
    cfg: HandshakeConfig,
    exports: Arc<Exports>,
    peer: Peer,
    state: State,
    buf: Vec<u8>,
    out: Vec<u8>,
    events: Vec<HandshakeEvent>,
    no_zeroes: bool,
    tls_active: bool,
    structured: bool,
    meta: Option<(String, Vec<MetaContext>)>,
    next_context_id: u32,
}

impl Handshake {
    /// A handshake with the greeting already queued as output.
    pub fn new(cfg: HandshakeConfig, exports: Arc<Exports>, peer: Peer) -> Self {
        let cfg = HandshakeConfig { max_request: cfg.max_request.max(MIN_MAX_BLOCK), ..cfg };
        let mut out = Vec::with_capacity(GREETING_LEN);
        out.put_u64(NBD_MAGIC);
        out.put_u64(IHAVEOPT);
        out.put_u16(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
        Handshake {
            cfg,
            exports,
            peer,
            state: State::ClientFlags,
            buf: Vec::new(),
            out,
            events: Vec::new(),
            no_zeroes: false,
            tls_active: false,
            structured: false,
            meta: None,
            next_context_id: 1,
        }
    }

    /// What the caller must do next.
    pub fn step(&self) -> Step {
        match &self.state {
            State::ClientFlags => Step::Read(4 - self.buf.len()),
            State::OptionHeader => Step::Read(OPTION_HEADER_LEN - self.buf.len()),
            State::OptionData { len, .. } => Step::Read(len - self.buf.len()),
            State::Discard { left, .. } => Step::Read(usize::try_from(*left).unwrap_or(usize::MAX).min(MAX_OPTION_LEN as usize)),
            State::AwaitTls => Step::StartTls,
            State::Ready(_) => Step::Ready,
            State::Closed(_) => Step::Close,
        }
    }

    /// Consumes bytes from the client, as many as the handshake can use (stopping where
    /// TLS or transmission begins or the handshake closes); returns how many it used.
    pub fn receive(&mut self, bytes: &[u8]) -> usize {
        let mut used = 0;
        while let Some(rest) = bytes.get(used..).filter(|r| !r.is_empty()) {
            let target = match &mut self.state {
                State::ClientFlags => 4,
                State::OptionHeader => OPTION_HEADER_LEN,
                State::OptionData { len, .. } => *len,
                State::Discard { option, left } => {
                    let n = rest.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    used += n;
                    *left -= n as u64;
                    if *left == 0 {
                        let option = *option;
                        self.state = State::OptionHeader;
                        self.error(option, REP_ERR_TOO_BIG, "option payload longer than 64 KiB");
                    }
                    continue;
                }
                State::AwaitTls | State::Ready(_) | State::Closed(_) => break,
            };
            let n = rest.len().min(target - self.buf.len());
            self.buf.extend_from_slice(rest.get(..n).unwrap_or_default());
            used += n;
            if self.buf.len() == target {
                self.complete();
            }
        }
        used
    }

    /// Bytes to send to the client, in order; empties the queue.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Vec<HandshakeEvent> {
        std::mem::take(&mut self.events)
    }

    /// The stream now runs TLS: option haggling resumes, with earlier state forgotten as
    /// the spec requires.
    pub fn tls_started(&mut self) {
        if let State::AwaitTls = self.state {
            self.tls_active = true;
            self.state = State::OptionHeader;
        }
    }

    /// Why the handshake closed, once `step` is [`Step::Close`].
    pub fn close_reason(&self) -> Option<&CloseReason> {
        match &self.state {
            State::Closed(r) => Some(r),
            _ => None,
        }
    }

    /// The agreement, once `step` is [`Step::Ready`].
    pub fn into_negotiated(self) -> Option<Negotiated> {
        match self.state {
            State::Ready(n) => Some(*n),
            _ => None,
        }
    }

    fn close(&mut self, reason: CloseReason) {
        self.state = State::Closed(reason);
    }

    fn protocol_error(&mut self, detail: &str) {
        self.close(CloseReason::Protocol(detail.to_owned()));
    }

    fn complete(&mut self) {
        let msg = std::mem::take(&mut self.buf);
        match self.state {
            State::ClientFlags => {
                let flags = Cursor::new(&msg).u32().unwrap_or(u32::MAX);
                if flags & !(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES) != 0 {
                    return self.protocol_error("unknown client flags");
                }
                // TLS needs fixed newstyle (the spec); without it a FORCEDTLS server can only close.
                if flags & FLAG_C_FIXED_NEWSTYLE == 0 && self.cfg.tls == TlsMode::Required {
                    return self.protocol_error("client does not speak fixed newstyle and TLS is required");
                }
                self.no_zeroes = flags & FLAG_C_NO_ZEROES != 0;
                self.state = State::OptionHeader;
            }
            State::OptionHeader => {
                let mut c = Cursor::new(&msg);
                let (magic, option, len) = (c.u64(), c.u32().unwrap_or(0), c.u32().unwrap_or(0));
                if magic != Some(IHAVEOPT) {
                    return self.protocol_error("option does not start with IHAVEOPT");
                }
                if len > MAX_OPTION_LEN {
                    if option == OPT_EXPORT_NAME {
                        return self.protocol_error("export name longer than 64 KiB");
                    }
                    self.state = State::Discard { option, left: u64::from(len) };
                } else if len == 0 {
                    self.handle_option(option, &[]);
                } else {
                    self.buf.reserve_exact(len as usize);
                    self.state = State::OptionData { option, len: len as usize };
                }
            }
            State::OptionData { option, .. } => self.handle_option(option, &msg),
            State::Discard { .. } | State::AwaitTls | State::Ready(_) | State::Closed(_) => {}
        }
    }

    fn handle_option(&mut self, option: u32, data: &[u8]) {
        self.state = State::OptionHeader;
        if self.cfg.tls == TlsMode::Required && !self.tls_active && option != OPT_STARTTLS && option != OPT_ABORT {
            if option == OPT_EXPORT_NAME {
                let export = String::from_utf8_lossy(data).into_owned();
                return self.close(CloseReason::Refused { export, reason: "TLS is required".to_owned() });
            }
            return self.error(option, REP_ERR_TLS_REQD, "TLS is required: send NBD_OPT_STARTTLS first");
        }
        match option {
            OPT_EXPORT_NAME => self.export_name(data),
            OPT_ABORT => {
                // The spec asks servers to ignore data sent with ABORT.
                self.reply(option, REP_ACK, &[]);
                self.close(CloseReason::Aborted);
            }
            OPT_LIST if !data.is_empty() => self.error(option, REP_ERR_INVALID, "NBD_OPT_LIST takes no data"),
            OPT_LIST => self.list(),
            OPT_STARTTLS => self.starttls(data),
            OPT_INFO | OPT_GO => self.info_go(option, data),
            OPT_STRUCTURED_REPLY if !data.is_empty() => self.error(option, REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data"),
            OPT_STRUCTURED_REPLY => {
                self.structured = true;
                self.reply(option, REP_ACK, &[]);
            }
            OPT_LIST_META_CONTEXT | OPT_SET_META_CONTEXT => self.meta_context(option, data),
            _ => self.error(option, REP_ERR_UNSUP, "option not supported"),
        }
    }

    fn starttls(&mut self, data: &[u8]) {
        if !data.is_empty() {
            return self.error(OPT_STARTTLS, REP_ERR_INVALID, "NBD_OPT_STARTTLS takes no data");
        }
        if self.tls_active {
            return self.error(OPT_STARTTLS, REP_ERR_INVALID, "TLS is already running");
        }
        if self.cfg.tls == TlsMode::Off {
            return self.error(OPT_STARTTLS, REP_ERR_POLICY, "TLS is not configured on this server");
        }
        self.reply(OPT_STARTTLS, REP_ACK, &[]);
        self.structured = false;
        self.meta = None;
        self.state = State::AwaitTls;
    }

    fn list(&mut self) {
        for (name, entry) in self.exports.entries() {
            let mut data = Vec::with_capacity(4 + name.len() + entry.description.len());
            data.put_u32(len32(name.len()));
            data.extend_from_slice(name.as_bytes());
            data.extend_from_slice(clip(&entry.description, MAX_STRING).as_bytes());
            self.reply(OPT_LIST, REP_SERVER, &data);
        }
        self.reply(OPT_LIST, REP_ACK, &[]);
    }

    /// Looks `name` up and applies the admission policy; the error is the reply to send.
    fn admit(&self, name: &str) -> Result<crate::export::Entry, (u32, String)> {
        let Some(entry) = self.exports.get(name) else {
            return Err((REP_ERR_UNKNOWN, format!("no export named {name:?}")));
        };
        match entry.export.admit(&self.peer) {
            Ok(()) => Ok(entry),
            Err(reason) => Err((REP_ERR_POLICY, reason)),
        }
    }

    fn negotiated(&self, name: &str, export: Arc<dyn Export>) -> Negotiated {
        let mut flags = FLAG_HAS_FLAGS | FLAG_SEND_FLUSH | FLAG_SEND_FUA | FLAG_SEND_CACHE | FLAG_CAN_MULTI_CONN;
        if export.read_only() {
            flags |= FLAG_READ_ONLY;
        } else {
            flags |= FLAG_SEND_TRIM | FLAG_SEND_WRITE_ZEROES | FLAG_SEND_FAST_ZERO;
        }
        if self.structured {
            flags |= FLAG_SEND_DF;
        }
        let contexts = match &self.meta {
            Some((for_export, ctxs)) if for_export == name && self.structured => ctxs.clone(),
            _ => Vec::new(),
        };
        let size = export.size();
        Negotiated { name: name.to_owned(), export, size, flags, structured: self.structured, contexts, max_request: self.cfg.max_request }
    }

    fn export_name(&mut self, data: &[u8]) {
        let Ok(name) = std::str::from_utf8(data) else {
            return self.protocol_error("export name is not UTF-8");
        };
        let entry = match self.admit(name) {
            Ok(e) => e,
            Err((_, reason)) => return self.close(CloseReason::Refused { export: name.to_owned(), reason }),
        };
        let n = self.negotiated(name, entry.export);
        self.out.put_u64(n.size);
        self.out.put_u16(n.flags);
        if !self.no_zeroes {
            self.out.extend_from_slice(&[0; 124]);
        }
        self.state = State::Ready(Box::new(n));
    }

    fn info_go(&mut self, option: u32, data: &[u8]) {
        let mut c = Cursor::new(data);
        let name = match c.u32().and_then(|len| usize::try_from(len).ok()).and_then(|len| c.string(len)) {
            Some(Ok(name)) => name,
            Some(Err(_)) => return self.error(option, REP_ERR_INVALID, "export name is not UTF-8"),
            None => return self.error(option, REP_ERR_INVALID, "export name runs past the end of the option"),
        };
        let Some(count) = c.u16() else {
            return self.error(option, REP_ERR_INVALID, "missing information request count");
        };
        let mut wanted = Vec::new();
        for _ in 0..count {
            match c.u16() {
                Some(i) => wanted.push(i),
                None => return self.error(option, REP_ERR_INVALID, "information requests run past the end of the option"),
            }
        }
        if c.remaining() != 0 {
            return self.error(option, REP_ERR_INVALID, "trailing bytes after the information requests");
        }
        let entry = match self.admit(name) {
            Ok(e) => e,
            Err((code, reason)) => {
                self.events.push(HandshakeEvent::Refused { export: name.to_owned(), reason: reason.clone() });
                return self.error(option, code, &reason);
            }
        };
        let n = self.negotiated(name, entry.export);
        let mut info = Vec::with_capacity(12);
        info.put_u16(INFO_EXPORT);
        info.put_u64(n.size);
        info.put_u16(n.flags);
        self.reply(option, REP_INFO, &info);
        if wanted.contains(&INFO_NAME) {
            let mut info = vec![];
            info.put_u16(INFO_NAME);
            info.extend_from_slice(name.as_bytes());
            self.reply(option, REP_INFO, &info);
        }
        if wanted.contains(&INFO_DESCRIPTION) && !entry.description.is_empty() {
            let mut info = vec![];
            info.put_u16(INFO_DESCRIPTION);
            info.extend_from_slice(clip(&entry.description, MAX_STRING).as_bytes());
            self.reply(option, REP_INFO, &info);
        }
        // Sent even unasked: clients that did not ask may ignore it, and the default
        // constraints (minimum 1) are what is enforced either way.
        let mut info = Vec::with_capacity(14);
        info.put_u16(INFO_BLOCK_SIZE);
        info.put_u32(1);
        info.put_u32(PREFERRED_BLOCK);
        info.put_u32(self.cfg.max_request);
        self.reply(option, REP_INFO, &info);
        self.reply(option, REP_ACK, &[]);
        if option == OPT_GO {
            self.state = State::Ready(Box::new(n));
        }
    }

    fn meta_context(&mut self, option: u32, data: &[u8]) {
        if option == OPT_SET_META_CONTEXT {
            // The spec: SET replaces the selection even when it fails.
            self.meta = None;
            if !self.structured {
                return self.error(option, REP_ERR_INVALID, "negotiate structured replies first");
            }
        }
        let req = match meta::parse(data) {
            Ok(r) => r,
            Err(detail) => return self.error(option, REP_ERR_INVALID, detail),
        };
        let Some(entry) = self.exports.get(req.export) else {
            return self.error(option, REP_ERR_UNKNOWN, &format!("no export named {:?}", req.export));
        };
        let offered = meta::offered(&*entry.export);
        if option == OPT_LIST_META_CONTEXT {
            for name in meta::list(&offered, &req.queries) {
                self.meta_reply(option, 0, name);
            }
        } else {
            let mut selected = Vec::new();
            for name in meta::select(&offered, &req.queries) {
                let id = self.next_context_id;
                self.next_context_id = self.next_context_id.wrapping_add(1).max(1);
                self.meta_reply(option, id, name);
                selected.push(MetaContext { id, name: name.to_owned() });
            }
            self.meta = Some((req.export.to_owned(), selected));
        }
        self.reply(option, REP_ACK, &[]);
    }

    fn meta_reply(&mut self, option: u32, id: u32, name: &str) {
        let mut data = Vec::with_capacity(4 + name.len());
        data.put_u32(id);
        data.extend_from_slice(name.as_bytes());
        self.reply(option, REP_META_CONTEXT, &data);
    }

    fn reply(&mut self, option: u32, kind: u32, data: &[u8]) {
        self.out.put_u64(REPLY_MAGIC);
        self.out.put_u32(option);
        self.out.put_u32(kind);
        self.out.put_u32(len32(data.len()));
        self.out.extend_from_slice(data);
    }

    fn error(&mut self, option: u32, kind: u32, message: &str) {
        self.reply(option, kind, clip(message, MAX_STRING).as_bytes());
    }
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;
