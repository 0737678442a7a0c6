use super::*;
use crate::testing::MemExport;

/// A client's view: the bytes it sends and the replies it parses.
fn opt(option: u32, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.put_u64(IHAVEOPT);
    v.put_u32(option);
    v.put_u32(data.len() as u32);
    v.extend_from_slice(data);
    v
}

fn go_data(name: &str, infos: &[u16]) -> Vec<u8> {
    let mut v = Vec::new();
    v.put_u32(name.len() as u32);
    v.extend_from_slice(name.as_bytes());
    v.put_u16(infos.len() as u16);
    for i in infos {
        v.put_u16(*i);
    }
    v
}

fn meta_data(name: &str, queries: &[&str]) -> Vec<u8> {
    let mut v = Vec::new();
    v.put_u32(name.len() as u32);
    v.extend_from_slice(name.as_bytes());
    v.put_u32(queries.len() as u32);
    for q in queries {
        v.put_u32(q.len() as u32);
        v.extend_from_slice(q.as_bytes());
    }
    v
}

#[derive(Debug, PartialEq)]
struct Reply {
    option: u32,
    kind: u32,
    data: Vec<u8>,
}

fn replies(mut bytes: &[u8]) -> Vec<Reply> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let mut c = Cursor::new(bytes);
        assert_eq!(c.u64(), Some(REPLY_MAGIC), "reply magic");
        let option = c.u32().expect("option");
        let kind = c.u32().expect("type");
        let len = c.u32().expect("length") as usize;
        let data = c.take(len).expect("data").to_vec();
        out.push(Reply { option, kind, data });
        bytes = &bytes[20 + len..];
    }
    out
}

fn exports() -> Arc<Exports> {
    let exports = Arc::new(Exports::new());
    let disk = Arc::new(MemExport::new(1 << 20));
    disk.add_dirty_bitmap("b1");
    disk.add_dirty_bitmap("b2");
    exports.add("disk", "the disk", disk);
    let ro = Arc::new(MemExport::new(4096));
    ro.set_read_only(true);
    exports.add("ro", "", ro);
    let no = Arc::new(MemExport::new(4096));
    no.set_refusal(Some("not from there"));
    exports.add("no", "", no);
    exports
}

fn start(tls: TlsMode) -> Handshake {
    let mut hs = Handshake::new(HandshakeConfig { tls, max_request: 1 << 20 }, exports(), Peer::Unix);
    let greeting = hs.take_output();
    assert_eq!(&greeting[..8], b"NBDMAGIC");
    assert_eq!(&greeting[8..16], b"IHAVEOPT");
    assert_eq!(&greeting[16..], &(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
    assert_eq!(hs.step(), Step::Read(4));
    hs.receive(&(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES).to_be_bytes());
    hs
}

/// Sends `input` and returns the replies to it.
fn send(hs: &mut Handshake, input: &[u8]) -> Vec<Reply> {
    let used = hs.receive(input);
    assert_eq!(used, input.len(), "all input consumed");
    replies(&hs.take_output())
}

#[test]
fn byte_at_a_time_matches_all_at_once() {
    let mut input = (FLAG_C_FIXED_NEWSTYLE).to_be_bytes().to_vec();
    input.extend(opt(OPT_STRUCTURED_REPLY, &[]));
    input.extend(opt(OPT_LIST, &[]));
    input.extend(opt(OPT_GO, &go_data("disk", &[INFO_NAME])));
    let mut whole = Handshake::new(HandshakeConfig { tls: TlsMode::Off, max_request: 1 << 20 }, exports(), Peer::Unix);
    assert_eq!(whole.receive(&input), input.len());
    let mut bytes = Handshake::new(HandshakeConfig { tls: TlsMode::Off, max_request: 1 << 20 }, exports(), Peer::Unix);
    for b in &input {
        match bytes.step() {
            Step::Read(n) => assert!(n >= 1),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(bytes.receive(std::slice::from_ref(b)), 1);
    }
    assert_eq!(whole.take_output(), bytes.take_output());
    assert_eq!(whole.step(), Step::Ready);
    assert_eq!(bytes.step(), Step::Ready);
}

#[test]
fn client_flags_are_checked() {
    let mut hs = Handshake::new(HandshakeConfig { tls: TlsMode::Off, max_request: 1 << 20 }, exports(), Peer::Unix);
    hs.receive(&4u32.to_be_bytes());
    assert_eq!(hs.step(), Step::Close);
    assert!(matches!(hs.close_reason(), Some(CloseReason::Protocol(_))));
    let mut forced = Handshake::new(HandshakeConfig { tls: TlsMode::Required, max_request: 1 << 20 }, exports(), Peer::Unix);
    forced.receive(&0u32.to_be_bytes());
    assert_eq!(forced.step(), Step::Close);
}

#[test]
fn bad_option_magic_closes() {
    let mut hs = start(TlsMode::Off);
    let mut bad = opt(OPT_LIST, &[]);
    bad[0] ^= 1;
    hs.receive(&bad);
    assert_eq!(hs.step(), Step::Close);
    assert!(hs.take_output().is_empty());
}

#[test]
fn export_name_enters_transmission() {
    let mut hs = start(TlsMode::Off);
    hs.receive(&opt(OPT_EXPORT_NAME, b"disk"));
    assert_eq!(hs.step(), Step::Ready);
    let out = hs.take_output();
    // NO_ZEROES was negotiated: size and flags only.
    assert_eq!(out.len(), 10);
    assert_eq!(&out[..8], &(1u64 << 20).to_be_bytes());
    let n = hs.into_negotiated().expect("negotiated");
    assert_eq!(n.flags & FLAG_SEND_DF, 0);
    assert!(!n.structured);

    let mut zeroes = Handshake::new(HandshakeConfig { tls: TlsMode::Off, max_request: 1 << 20 }, exports(), Peer::Unix);
    zeroes.receive(&FLAG_C_FIXED_NEWSTYLE.to_be_bytes());
    zeroes.take_output();
    zeroes.receive(&opt(OPT_EXPORT_NAME, b"ro"));
    assert_eq!(zeroes.take_output().len(), 10 + 124);
    let flags = zeroes.into_negotiated().map(|n| n.flags).unwrap_or(0);
    assert_ne!(flags & FLAG_READ_ONLY, 0);
    assert_eq!(flags & (FLAG_SEND_TRIM | FLAG_SEND_WRITE_ZEROES), 0);
}

#[test]
fn export_name_refusals_close() {
    for (name, why) in [("nope", "no export named \"nope\""), ("no", "not from there")] {
        let mut hs = start(TlsMode::Off);
        hs.receive(&opt(OPT_EXPORT_NAME, name.as_bytes()));
        assert_eq!(hs.step(), Step::Close);
        assert_eq!(hs.close_reason(), Some(&CloseReason::Refused { export: name.into(), reason: why.into() }));
        assert!(hs.take_output().is_empty());
    }
    let mut hs = start(TlsMode::Off);
    hs.receive(&opt(OPT_EXPORT_NAME, &[0xff]));
    assert!(matches!(hs.close_reason(), Some(CloseReason::Protocol(_))));
}

#[test]
fn abort_acks_then_closes() {
    let mut hs = start(TlsMode::Off);
    let r = send(&mut hs, &opt(OPT_ABORT, b"ignored"));
    assert_eq!(r, vec![Reply { option: OPT_ABORT, kind: REP_ACK, data: vec![] }]);
    assert_eq!(hs.close_reason(), Some(&CloseReason::Aborted));
    // Nothing after the abort is consumed.
    assert_eq!(hs.receive(&[1, 2, 3]), 0);
}

#[test]
fn list_names_and_describes() {
    let mut hs = start(TlsMode::Off);
    let r = send(&mut hs, &opt(OPT_LIST, &[]));
    assert_eq!(r.len(), 4);
    assert_eq!(r[0].kind, REP_SERVER);
    assert_eq!(r[0].data, [&4u32.to_be_bytes()[..], b"disk", b"the disk"].concat());
    assert_eq!(r[3].kind, REP_ACK);
    let r = send(&mut hs, &opt(OPT_LIST, b"x"));
    assert_eq!(r[0].kind, REP_ERR_INVALID);
    assert_eq!(hs.step(), Step::Read(OPTION_HEADER_LEN));
}

#[test]
fn go_and_info_reply_with_information() {
    let mut hs = start(TlsMode::Off);
    let r = send(&mut hs, &opt(OPT_INFO, &go_data("disk", &[INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE, 999])));
    let kinds: Vec<u16> = r.iter().filter(|r| r.kind == REP_INFO).map(|r| u16::from_be_bytes([r.data[0], r.data[1]])).collect();
    assert_eq!(kinds, vec![INFO_EXPORT, INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE]);
    let export = &r[0].data;
    assert_eq!(export.len(), 12);
    assert_eq!(&export[2..10], &(1u64 << 20).to_be_bytes());
    let flags = u16::from_be_bytes([export[10], export[11]]);
    let want = FLAG_HAS_FLAGS | FLAG_SEND_FLUSH | FLAG_SEND_FUA | FLAG_SEND_TRIM | FLAG_SEND_WRITE_ZEROES;
    assert_eq!(flags & want, want);
    assert_ne!(flags & FLAG_CAN_MULTI_CONN, 0);
    assert_eq!(&r[2].data[2..], b"the disk");
    assert_eq!(&r[3].data[2..], &[0, 0, 0, 1, 0, 0, 0x10, 0, 0, 0x10, 0, 0]);
    assert_eq!(r.last().map(|r| r.kind), Some(REP_ACK));
    assert!(matches!(hs.step(), Step::Read(_)), "INFO stays in negotiation");
    let r = send(&mut hs, &opt(OPT_GO, &go_data("disk", &[])));
    assert_eq!(r.iter().map(|r| r.kind).collect::<Vec<_>>(), vec![REP_INFO, REP_INFO, REP_ACK]);
    assert_eq!(hs.step(), Step::Ready);
}

#[test]
fn go_errors() {
    let mut hs = start(TlsMode::Off);
    let cases: Vec<(Vec<u8>, u32)> = vec![
        (go_data("nope", &[]), REP_ERR_UNKNOWN),
        (go_data("no", &[]), REP_ERR_POLICY),
        (vec![0, 0, 0, 9, b'd'], REP_ERR_INVALID),
        (vec![0, 0, 0], REP_ERR_INVALID),
        (vec![0, 0, 0, 4, b'd', b'i', b's', b'k'], REP_ERR_INVALID),
        (vec![0, 0, 0, 4, b'd', b'i', b's', b'k', 0, 2, 0, 1], REP_ERR_INVALID),
        ([go_data("disk", &[]), vec![0]].concat(), REP_ERR_INVALID),
        (vec![0, 0, 0, 1, 0xff, 0, 0], REP_ERR_INVALID),
        (vec![0xff, 0xff, 0xff, 0xff], REP_ERR_INVALID),
    ];
    for (data, want) in cases {
        let r = send(&mut hs, &opt(OPT_GO, &data));
        assert_eq!(r.len(), 1, "{data:?}");
        assert_eq!(r[0].kind, want, "{data:?}");
        assert!(matches!(hs.step(), Step::Read(_)));
    }
    let events = hs.take_events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], HandshakeEvent::Refused { export: "no".into(), reason: "not from there".into() });
    // The policy's reason is what the client reads.
    let r = send(&mut hs, &opt(OPT_GO, &go_data("no", &[])));
    assert_eq!(r[0].data, b"not from there");
}

#[test]
fn unknown_and_oversize_options() {
    let mut hs = start(TlsMode::Off);
    let r = send(&mut hs, &opt(OPT_EXTENDED_HEADERS, &[]));
    assert_eq!(r[0].kind, REP_ERR_UNSUP);
    let r = send(&mut hs, &opt(0x7fff_0000, b"whatever"));
    assert_eq!((r[0].option, r[0].kind), (0x7fff_0000, REP_ERR_UNSUP));
    // A 1 MiB option is skipped without being stored, then refused.
    let mut header = Vec::new();
    header.put_u64(IHAVEOPT);
    header.put_u32(OPT_GO);
    header.put_u32(1 << 20);
    assert!(send(&mut hs, &header).is_empty());
    assert_eq!(hs.step(), Step::Read(MAX_OPTION_LEN as usize));
    let junk = vec![7u8; 1 << 20];
    let r = send(&mut hs, &junk);
    assert_eq!(r[0].kind, REP_ERR_TOO_BIG);
    assert!(hs.buf.capacity() < 4096, "nothing buffered for the oversize option");
    let r = send(&mut hs, &opt(OPT_GO, &go_data("disk", &[])));
    assert_eq!(r.last().map(|r| r.kind), Some(REP_ACK));
    // EXPORT_NAME cannot be answered with an error: oversize closes.
    let mut hs = start(TlsMode::Off);
    let mut header = Vec::new();
    header.put_u64(IHAVEOPT);
    header.put_u32(OPT_EXPORT_NAME);
    header.put_u32(MAX_OPTION_LEN + 1);
    hs.receive(&header);
    assert_eq!(hs.step(), Step::Close);
}

#[test]
fn structured_reply_option() {
    let mut hs = start(TlsMode::Off);
    assert_eq!(send(&mut hs, &opt(OPT_STRUCTURED_REPLY, b"x"))[0].kind, REP_ERR_INVALID);
    assert_eq!(send(&mut hs, &opt(OPT_STRUCTURED_REPLY, &[]))[0].kind, REP_ACK);
    send(&mut hs, &opt(OPT_GO, &go_data("disk", &[])));
    let n = hs.into_negotiated().expect("negotiated");
    assert!(n.structured);
    assert_ne!(n.flags & FLAG_SEND_DF, 0);
}

#[test]
fn set_meta_context_selects_several() {
    let mut hs = start(TlsMode::Off);
    let q = meta_data("disk", &["base:allocation", "qemu:dirty-bitmap:b2", "qemu:dirty-bitmap:zz", "x-unknown:thing"]);
    assert_eq!(send(&mut hs, &opt(OPT_SET_META_CONTEXT, &q))[0].kind, REP_ERR_INVALID, "needs structured replies");
    send(&mut hs, &opt(OPT_STRUCTURED_REPLY, &[]));
    let r = send(&mut hs, &opt(OPT_SET_META_CONTEXT, &q));
    assert_eq!(r.len(), 3);
    let ids: Vec<u32> = r[..2].iter().map(|r| u32::from_be_bytes([r.data[0], r.data[1], r.data[2], r.data[3]])).collect();
    assert_ne!(ids[0], ids[1]);
    assert!(ids.iter().all(|&id| id != 0));
    assert_eq!(&r[0].data[4..], b"base:allocation");
    assert_eq!(&r[1].data[4..], b"qemu:dirty-bitmap:b2");
    assert_eq!(r[2].kind, REP_ACK);
    send(&mut hs, &opt(OPT_GO, &go_data("disk", &[])));
    let n = hs.into_negotiated().expect("negotiated");
    let names: Vec<&str> = n.contexts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["base:allocation", "qemu:dirty-bitmap:b2"]);
    assert_eq!(n.contexts.iter().map(|c| c.id).collect::<Vec<_>>(), ids);
}

#[test]
fn contexts_are_dropped_for_another_export_or_a_failed_set() {
    let mut hs = start(TlsMode::Off);
    send(&mut hs, &opt(OPT_STRUCTURED_REPLY, &[]));
    send(&mut hs, &opt(OPT_SET_META_CONTEXT, &meta_data("disk", &["base:allocation"])));
    send(&mut hs, &opt(OPT_GO, &go_data("ro", &[])));
    assert!(hs.into_negotiated().is_some_and(|n| n.contexts.is_empty()));

    let mut hs = start(TlsMode::Off);
    send(&mut hs, &opt(OPT_STRUCTURED_REPLY, &[]));
    send(&mut hs, &opt(OPT_SET_META_CONTEXT, &meta_data("disk", &["base:allocation"])));
    let r = send(&mut hs, &opt(OPT_SET_META_CONTEXT, &meta_data("gone", &["base:allocation"])));
    assert_eq!(r[0].kind, REP_ERR_UNKNOWN);
    send(&mut hs, &opt(OPT_GO, &go_data("disk", &[])));
    assert!(hs.into_negotiated().is_some_and(|n| n.contexts.is_empty()));
}

#[test]
fn list_meta_context_queries() {
    let mut hs = start(TlsMode::Off);
    let names = |r: &[Reply]| -> Vec<String> {
        r.iter().filter(|r| r.kind == REP_META_CONTEXT).map(|r| String::from_utf8_lossy(&r.data[4..]).into_owned()).collect()
    };
    let all = send(&mut hs, &opt(OPT_LIST_META_CONTEXT, &meta_data("disk", &[])));
    assert_eq!(names(&all), vec!["base:allocation", "qemu:dirty-bitmap:b1", "qemu:dirty-bitmap:b2"]);
    assert!(all.iter().filter(|r| r.kind == REP_META_CONTEXT).all(|r| r.data[..4] == [0, 0, 0, 0]));
    assert_eq!(all.last().map(|r| r.kind), Some(REP_ACK));
    let base = send(&mut hs, &opt(OPT_LIST_META_CONTEXT, &meta_data("disk", &["base:"])));
    assert_eq!(names(&base), vec!["base:allocation"]);
    let bitmaps = send(&mut hs, &opt(OPT_LIST_META_CONTEXT, &meta_data("disk", &["qemu:dirty-bitmap:"])));
    assert_eq!(names(&bitmaps), vec!["qemu:dirty-bitmap:b1", "qemu:dirty-bitmap:b2"]);
    let none = send(&mut hs, &opt(OPT_LIST_META_CONTEXT, &meta_data("disk", &["x-other:"])));
    assert_eq!(none.len(), 1);
    let bad = send(&mut hs, &opt(OPT_LIST_META_CONTEXT, &meta_data("disk", &["nocolon"])));
    assert_eq!(bad[0].kind, REP_ERR_INVALID);
    let mut truncated = meta_data("disk", &["base:allocation"]);
    truncated.pop();
    assert_eq!(send(&mut hs, &opt(OPT_LIST_META_CONTEXT, &truncated))[0].kind, REP_ERR_INVALID);
}

#[test]
fn starttls_off_refused() {
    let mut hs = start(TlsMode::Off);
    assert_eq!(send(&mut hs, &opt(OPT_STARTTLS, &[]))[0].kind, REP_ERR_POLICY);
    assert!(matches!(hs.step(), Step::Read(_)));
}

#[test]
fn starttls_upgrade_forgets_state() {
    let mut hs = start(TlsMode::Optional);
    send(&mut hs, &opt(OPT_STRUCTURED_REPLY, &[]));
    assert_eq!(send(&mut hs, &opt(OPT_STARTTLS, b"x"))[0].kind, REP_ERR_INVALID);
    let mut input = opt(OPT_STARTTLS, &[]);
    input.extend_from_slice(b"tls bytes");
    // Stops right after STARTTLS: what follows is TLS, not options.
    assert_eq!(hs.receive(&input), OPTION_HEADER_LEN);
    assert_eq!(replies(&hs.take_output())[0].kind, REP_ACK);
    assert_eq!(hs.step(), Step::StartTls);
    hs.tls_started();
    assert_eq!(send(&mut hs, &opt(OPT_STARTTLS, &[]))[0].kind, REP_ERR_INVALID, "already running");
    send(&mut hs, &opt(OPT_GO, &go_data("disk", &[])));
    assert!(hs.into_negotiated().is_some_and(|n| !n.structured), "structured reply forgotten");
}

#[test]
fn tls_required_refuses_until_upgrade() {
    let mut hs = start(TlsMode::Required);
    for option in [OPT_LIST, OPT_GO, OPT_INFO, OPT_STRUCTURED_REPLY, OPT_SET_META_CONTEXT, 77] {
        let r = send(&mut hs, &opt(option, &go_data("disk", &[])));
        assert_eq!(r[0].kind, REP_ERR_TLS_REQD, "option {option}");
    }
    send(&mut hs, &opt(OPT_STARTTLS, &[]));
    hs.tls_started();
    let r = send(&mut hs, &opt(OPT_LIST, &[]));
    assert_eq!(r.last().map(|r| r.kind), Some(REP_ACK));
    // Before TLS, EXPORT_NAME can only be answered by closing.
    let mut hs = start(TlsMode::Required);
    hs.receive(&opt(OPT_EXPORT_NAME, b"disk"));
    assert!(matches!(hs.close_reason(), Some(CloseReason::Refused { .. })));
    // ABORT is always allowed.
    let mut hs = start(TlsMode::Required);
    assert_eq!(send(&mut hs, &opt(OPT_ABORT, &[]))[0].kind, REP_ACK);
}
