//! Metadata-context options: the request layout shared by `NBD_OPT_LIST_META_CONTEXT` and
//! `NBD_OPT_SET_META_CONTEXT`, and which contexts a query names.
//!
//! Query syntax (documented, as the spec asks servers to do):
//! - an exact context name (`base:allocation`, `qemu:dirty-bitmap:NAME`, or any name the
//!   export offers) selects or lists that context;
//! - a query ending in a colon (`base:`, `qemu:`, `qemu:dirty-bitmap:`) is a prefix
//!   wildcard: it lists every offered context starting with it, and selects nothing
//!   (the spec says SET "SHOULD NOT" select wildcards, and QEMU's server agrees);
//! - a query naming nothing offered is ignored, as the spec requires for unknown
//!   namespaces and unknown `base:` leaves.

use super::consts::{BASE_ALLOCATION, MAX_STRING};
use super::wire::Cursor;
use crate::export::Export;

/// A parsed LIST/SET_META_CONTEXT request.
#[derive(Debug, PartialEq, Eq)]
pub struct MetaRequest<'a> {
    /// The export the contexts are for.
    pub export: &'a str,
    /// The queries, in the client's order.
    pub queries: Vec<&'a str>,
}

/// Parses the option payload; the error says what is malformed (sent with `NBD_REP_ERR_INVALID`).
pub fn parse(data: &[u8]) -> Result<MetaRequest<'_>, &'static str> {
    let mut c = Cursor::new(data);
    let name_len = c.u32().ok_or("truncated export name length")?;
    let export = string(&mut c, name_len, "export name")?;
    let count = c.u32().ok_or("truncated query count")?;
    // `count` is the client's claim: never allocate by it, only by queries actually present.
    let mut queries = Vec::new();
    for _ in 0..count {
        let len = c.u32().ok_or("truncated query length")?;
        let query = string(&mut c, len, "query")?;
        match query.split_once(':') {
            Some((ns, _)) if !ns.is_empty() => queries.push(query),
            _ => return Err("query does not start with a namespace and a colon"),
        }
    }
    if c.remaining() != 0 {
        return Err("trailing bytes after the queries");
    }
    Ok(MetaRequest { export, queries })
}

fn string<'a>(c: &mut Cursor<'a>, len: u32, what: &'static str) -> Result<&'a str, &'static str> {
    let len = usize::try_from(len).map_err(|_| what)?;
    if len > MAX_STRING {
        return Err("string longer than 4096 bytes");
    }
    match c.string(len) {
        None => Err("length runs past the end of the option"),
        Some(Err(_)) => Err("string is not UTF-8"),
        Some(Ok(s)) => Ok(s),
    }
}

/// Every context `export` offers: `base:allocation` first, then the export's own, leaving
/// out names a client could not be sent (too long, no namespace) and duplicates.
pub fn offered(export: &dyn Export) -> Vec<String> {
    let mut all = vec![BASE_ALLOCATION.to_owned()];
    for name in export.meta_contexts() {
        let valid = name.len() <= MAX_STRING && name.split_once(':').is_some_and(|(ns, _)| !ns.is_empty());
        if valid && !all.contains(&name) {
            all.push(name);
        }
    }
    all
}

/// The contexts `NBD_OPT_LIST_META_CONTEXT` reports: all of them for no query, else
/// those an exact query or a prefix wildcard names.
pub fn list<'a>(offered: &'a [String], queries: &[&str]) -> Vec<&'a str> {
    if queries.is_empty() {
        return offered.iter().map(String::as_str).collect();
    }
    offered
        .iter()
        .map(String::as_str)
        .filter(|name| queries.iter().any(|q| if q.ends_with(':') { name.starts_with(q) } else { name == q }))
        .collect()
}

/// The contexts `NBD_OPT_SET_META_CONTEXT` selects: exact names only, each once, in the
/// order offered.
pub fn select<'a>(offered: &'a [String], queries: &[&str]) -> Vec<&'a str> {
    offered.iter().map(String::as_str).filter(|name| queries.contains(name)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wire::Put;
    use crate::testing::MemExport;

    fn request(export: &str, queries: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        v.put_u32(export.len() as u32);
        v.extend_from_slice(export.as_bytes());
        v.put_u32(queries.len() as u32);
        for q in queries {
            v.put_u32(q.len() as u32);
            v.extend_from_slice(q.as_bytes());
        }
        v
    }

    #[test]
    fn parses_and_rejects_malformed() {
        let data = request("disk", &["base:allocation", "qemu:dirty-bitmap:b"]);
        let r = parse(&data).ok();
        assert_eq!(r, Some(MetaRequest { export: "disk", queries: vec!["base:allocation", "qemu:dirty-bitmap:b"] }));
        // Every truncation of a valid request is malformed, never a panic.
        for cut in 0..data.len() {
            assert!(parse(&data[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = data.clone();
        trailing.push(0);
        assert!(parse(&trailing).is_err());
        assert!(parse(&request("d", &["nocolon"])).is_err());
        assert!(parse(&request("d", &[":leaf"])).is_err());
        // A huge claimed count with nothing behind it is caught without allocating for it.
        let mut huge = request("d", &[]);
        huge[5..9].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse(&huge).is_err());
        let mut bad_utf8 = request("d", &["x:y"]);
        let last = bad_utf8.len() - 1;
        bad_utf8[last] = 0xff;
        assert_eq!(parse(&bad_utf8), Err("string is not UTF-8"));
    }

    #[test]
    fn wildcards_list_but_do_not_select() {
        let export = MemExport::new(4096);
        export.add_dirty_bitmap("a");
        export.add_dirty_bitmap("b");
        let all = offered(&export);
        assert_eq!(all, vec!["base:allocation", "qemu:dirty-bitmap:a", "qemu:dirty-bitmap:b"]);
        assert_eq!(list(&all, &[]), all.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(list(&all, &["base:"]), vec!["base:allocation"]);
        assert_eq!(list(&all, &["qemu:dirty-bitmap:"]), vec!["qemu:dirty-bitmap:a", "qemu:dirty-bitmap:b"]);
        assert_eq!(list(&all, &["qemu:"]).len(), 2);
        assert_eq!(list(&all, &["x-other:"]), Vec::<&str>::new());
        assert_eq!(select(&all, &["base:", "qemu:"]), Vec::<&str>::new());
        let picked = select(&all, &["qemu:dirty-bitmap:b", "base:allocation", "base:allocation", "base:nope"]);
        assert_eq!(picked, vec!["base:allocation", "qemu:dirty-bitmap:b"]);
    }
}
