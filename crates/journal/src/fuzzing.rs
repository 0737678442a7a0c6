//! Entry points for the fuzz targets (`fuzz/fuzz_targets/`) and the corpus replay test
//! (`tests/fuzz_corpus.rs`): arbitrary bytes through the batch decoder and the applier.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::apply::{Applier, ApplyTarget, StateStore};
use crate::format::{decode_batch, encode_record, RecordKind};

/// A target that accepts everything (bounds-checked against a small volume) and keeps
/// nothing: the fuzzer looks for panics, not for wrong bytes.
struct NullTarget;

impl ApplyTarget for NullTarget {
    fn write(&self, _offset: u64, _data: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn write_zeroes(&self, _offset: u64, _len: u64, _punch: bool) -> io::Result<()> {
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}

/// An in-memory state store.
#[derive(Default)]
struct MemStore(Mutex<Vec<u8>>);

impl StateStore for MemStore {
    fn read(&self) -> io::Result<Vec<u8>> {
        Ok(self.0.lock().map_err(|_| io::Error::other("poisoned"))?.clone())
    }
    fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut v = self.0.lock().map_err(|_| io::Error::other("poisoned"))?;
        let end = offset as usize + bytes.len();
        if v.len() < end {
            v.resize(end, 0);
        }
        if let Some(dst) = v.get_mut(offset as usize..end) {
            dst.copy_from_slice(bytes);
        }
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Decodes `data` as a batch; if it decodes, also feeds it (twice: the second time
/// everything is a duplicate) to an applier with volumes 0 and 1 and a 1 MiB window.
/// Must never panic.
pub fn feed_batch(data: &[u8]) {
    let Ok(recs) = decode_batch(data) else {
        return;
    };
    // Re-encoding what decoded must give back the same bytes: the format has one form.
    let mut again = Vec::with_capacity(data.len());
    for r in &recs {
        encode_record(&mut again, r);
        assert!(r.kind != RecordKind::Write || r.data.len() as u64 == r.len);
    }
    assert_eq!(again, data, "decode/encode round trip");
    let t: Arc<dyn ApplyTarget> = Arc::new(NullTarget);
    let Ok(a) = Applier::open_with_store(Arc::new(MemStore::default()), Path::new("fuzz"), vec![(0, Arc::clone(&t)), (1, t)], 1 << 20)
    else {
        return;
    };
    let first = a.receive(data);
    let second = a.receive(data);
    if let (Ok(x), Ok(y)) = (first, second) {
        assert_eq!(x, y, "a duplicate batch changes nothing");
    }
    let _ = a.commit();
}
