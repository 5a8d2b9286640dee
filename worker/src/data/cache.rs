//! A content-addressed on-disk cache of preprocessed volumes.
//!
//! Decoding a `.nii.gz` and resampling it costs far more than reading the
//! result back, and every epoch needs every training volume again, so a
//! worker keeps each patient's preprocessed `[C, D, H, W]` tensor on local
//! disk. An entry's key is the SHA-256 of the source files' *contents* and of
//! the preprocessing settings: a changed volume, a changed pipeline or a new
//! cache format can never be served a stale entry, and two cohorts that share
//! files share entries.
//!
//! Knowing a file's content hash means reading it, so the cache also keeps a
//! small index from an object's URL and version identity (size, ETag,
//! modification time) to its content hash; an unchanged object is then served
//! from the cache without being fetched at all.
//!
//! Entries are written to a temporary file and renamed into place, so a
//! crash never leaves a half-written entry under a valid key; an entry that
//! fails its checks anyway (wrong magic or length) is treated as a miss and
//! rewritten.

use std::io::Write;
use std::path::{Path, PathBuf};

use cohort_common::preprocess::{Pipeline, Stacked};
use cohort_common::store::ObjectInfo;
use sha2::{Digest, Sha256};

/// Bumped whenever the entry layout or the preprocessing semantics change.
const FORMAT: &str = "cohort-volume-cache-v1";
const MAGIC: &[u8; 8] = b"COHORTV1";
const HEADER_LEN: usize = 8 + 4 * 8 + 3 * 4 + 16 * 8;

/// Why the cache could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("volume cache {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A SHA-256 digest.
pub type Digest32 = [u8; 32];

/// The SHA-256 of some bytes.
pub fn sha256(bytes: &[u8]) -> Digest32 {
    Sha256::digest(bytes).into()
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key of one patient's entry: the contents of its sequences, in channel
/// order, and the preprocessing settings.
pub fn entry_key(contents: &[Digest32], pipeline: &Pipeline) -> String {
    let mut h = Sha256::new();
    h.update(FORMAT.as_bytes());
    // Debug output names every field and value of the pipeline; a Rust
    // release that formats floats differently only causes misses.
    h.update(format!("{pipeline:?}").as_bytes());
    for c in contents {
        h.update(c);
    }
    hex(&h.finalize())
}

/// The on-disk cache rooted at one folder.
#[derive(Clone, Debug)]
pub struct VolumeCache {
    dir: PathBuf,
}

impl VolumeCache {
    /// Opens (creating if needed) the cache under `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, CacheError> {
        let dir = dir.into();
        for sub in ["entries", "index", "tmp"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
        Ok(VolumeCache { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        self.dir
            .join("entries")
            .join(&key[..2])
            .join(format!("{key}.vol"))
    }

    fn index_path(&self, url: &str) -> PathBuf {
        self.dir
            .join("index")
            .join(format!("{}.json", hex(&sha256(url.as_bytes()))))
    }

    /// Writes `bytes` to `path` atomically (temporary file, then rename).
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
        let parent = path.parent().expect("cache paths have a parent");
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let tmp_dir = self.dir.join("tmp");
        let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(io(&tmp_dir))?;
        tmp.write_all(bytes).map_err(io(path))?;
        tmp.persist(path).map_err(|e| CacheError::Io {
            path: path.to_path_buf(),
            source: e.error,
        })?;
        Ok(())
    }

    /// The entry under `key`, or `None` on a miss (including a damaged entry,
    /// which is removed).
    pub fn get(&self, key: &str) -> Result<Option<Stacked>, CacheError> {
        let path = self.entry_path(key);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        match decode_entry(&bytes) {
            Some(stacked) => Ok(Some(stacked)),
            None => {
                tracing::warn!(path = %path.display(), "damaged cache entry; recomputing");
                let _ = std::fs::remove_file(&path);
                Ok(None)
            }
        }
    }

    /// Stores `stacked` under `key`.
    pub fn put(&self, key: &str, stacked: &Stacked) -> Result<(), CacheError> {
        self.write_atomic(&self.entry_path(key), &encode_entry(stacked))
    }

    /// The content hash recorded for `url` if the object is unchanged.
    pub fn known_content(&self, url: &str, info: &ObjectInfo) -> Option<Digest32> {
        let bytes = std::fs::read(self.index_path(url)).ok()?;
        let record: IndexRecord = serde_json::from_slice(&bytes).ok()?;
        if record.url != url || &record.info != info {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, chunk) in record
            .content_sha256
            .as_bytes()
            .chunks(2)
            .enumerate()
            .take(32)
        {
            out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
        }
        Some(out)
    }

    /// Records the content hash of `url` at version `info`.
    pub fn remember_content(
        &self,
        url: &str,
        info: &ObjectInfo,
        content: &Digest32,
    ) -> Result<(), CacheError> {
        let record = IndexRecord {
            url: url.to_string(),
            info: info.clone(),
            content_sha256: hex(content),
        };
        let bytes = serde_json::to_vec(&record).expect("an index record serialises");
        self.write_atomic(&self.index_path(url), &bytes)
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct IndexRecord {
    url: String,
    info: ObjectInfo,
    content_sha256: String,
}

fn encode_entry(s: &Stacked) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 4 * s.data.len());
    out.extend_from_slice(MAGIC);
    for d in s.shape {
        out.extend_from_slice(&(d as u64).to_le_bytes());
    }
    for p in s.pixdim {
        out.extend_from_slice(&p.to_le_bytes());
    }
    for row in s.affine {
        for v in row {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    for v in &s.data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn decode_entry(bytes: &[u8]) -> Option<Stacked> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return None;
    }
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
    let mut shape = [0usize; 4];
    for (i, d) in shape.iter_mut().enumerate() {
        *d = usize::try_from(u64_at(8 + 8 * i)).ok()?;
    }
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))?;
    if bytes.len() != HEADER_LEN.checked_add(count.checked_mul(4)?)? {
        return None;
    }
    let mut pixdim = [0f32; 3];
    for (i, p) in pixdim.iter_mut().enumerate() {
        let o = 40 + 4 * i;
        *p = f32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
    }
    let mut affine = [[0f64; 4]; 4];
    for (r, row) in affine.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            let o = 52 + 8 * (4 * r + c);
            *v = f64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
        }
    }
    let data = bytes[HEADER_LEN..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    Some(Stacked {
        shape,
        data,
        pixdim,
        affine,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stacked() -> Stacked {
        Stacked {
            shape: [2, 1, 2, 3],
            data: (0..12).map(|i| i as f32 * 0.5 - 1.0).collect(),
            pixdim: [1.0, 1.5, 2.0],
            affine: [
                [1.0, 0.0, 0.0, -3.0],
                [0.0, 1.5, 0.0, 4.0],
                [0.0, 0.0, 2.0, 5.0],
                [0.0, 0.0, 0.0, 1.0],
            ],
        }
    }

    #[test]
    fn entries_round_trip_and_damage_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = VolumeCache::open(dir.path()).unwrap();
        let key = entry_key(&[sha256(b"a"), sha256(b"b")], &Pipeline::default());
        assert!(cache.get(&key).unwrap().is_none());
        cache.put(&key, &stacked()).unwrap();
        assert_eq!(cache.get(&key).unwrap(), Some(stacked()));
        // Truncate the entry: a miss, and the entry is gone.
        let path = cache.entry_path(&key);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(cache.get(&key).unwrap().is_none());
        assert!(!path.exists());
    }

    #[test]
    fn keys_depend_on_contents_order_and_pipeline() {
        let (a, b) = (sha256(b"a"), sha256(b"b"));
        let p = Pipeline::default();
        let k = entry_key(&[a, b], &p);
        assert_eq!(k, entry_key(&[a, b], &p));
        assert_ne!(k, entry_key(&[b, a], &p));
        let other = Pipeline {
            shape: Some([8, 8, 8]),
            ..Pipeline::default()
        };
        assert_ne!(k, entry_key(&[a, b], &other));
    }

    #[test]
    fn the_index_remembers_contents_of_unchanged_objects_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = VolumeCache::open(dir.path()).unwrap();
        let info = ObjectInfo {
            size: 10,
            e_tag: Some("abc".into()),
            last_modified_unix_ms: 1,
        };
        let digest = sha256(b"content");
        assert_eq!(cache.known_content("s3://b/x.nii.gz", &info), None);
        cache
            .remember_content("s3://b/x.nii.gz", &info, &digest)
            .unwrap();
        assert_eq!(cache.known_content("s3://b/x.nii.gz", &info), Some(digest));
        let changed = ObjectInfo {
            e_tag: Some("abd".into()),
            ..info.clone()
        };
        assert_eq!(cache.known_content("s3://b/x.nii.gz", &changed), None);
        assert_eq!(cache.known_content("s3://b/y.nii.gz", &info), None);
    }
}
