//! Object stores behind one URL-shaped handle.
//!
//! Cohorts and artifacts live wherever the user keeps them: a local folder, S3,
//! GCS, Azure Blob Storage, or (for tests and the embedded mode) memory. A
//! [`Store`] is a handle on a *root* inside one of those stores; every path the
//! rest of Cohort uses is relative to a root and goes through
//! [`Store::resolve`], which refuses absolute paths and `..`, so a path built
//! from data (a patient id, a manifest entry) can never escape the root.
//!
//! Writes are whole objects: [`Store::put`] either stores the complete bytes or
//! nothing. On S3, GCS and Azure a single PUT is atomic by the service's
//! contract; on local disk `object_store` writes a staging file and renames it;
//! in memory the swap is a map insert. A reader therefore never sees a
//! half-written artifact.
//!
//! Credentials come from the usual environment variables, read by
//! `object_store`'s `from_env` builders: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT` (S3-compatible servers),
//! `AWS_ALLOW_HTTP`; `GOOGLE_SERVICE_ACCOUNT` / `GOOGLE_APPLICATION_CREDENTIALS`;
//! `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, and so on.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

/// Errors of [`Store`]. Each names the URL or path it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("unsafe path {path:?}: {reason}")]
    UnsafePath { path: String, reason: &'static str },
    #[error("not found: {url}")]
    NotFound { url: String },
    #[error("{op} {url}: {source}")]
    Backend {
        op: &'static str,
        url: String,
        #[source]
        source: object_store::Error,
    },
}

/// What a HEAD request tells about an object: enough to notice that it
/// changed without reading it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectInfo {
    pub size: u64,
    /// The store's version tag (S3/GCS/Azure ETag; size and mtime on disk).
    pub e_tag: Option<String>,
    pub last_modified_unix_ms: i64,
}

/// A handle on a root folder inside an object store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    root: Path,
    url: String,
}

/// `memory://NAME` stores live for the whole process, so that every
/// [`Store::open`] of the same name sees the same objects (as a bucket would).
fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    stores
        .entry(name.to_string())
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone()
}

fn invalid(url: &str, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidUrl {
        url: url.to_string(),
        reason: reason.into(),
    }
}

/// Turns a plain path (relative or absolute) into a `file://` URL.
fn plain_path_to_url(raw: &str) -> Result<Url, StoreError> {
    let absolute = std::path::absolute(raw).map_err(|e| invalid(raw, e.to_string()))?;
    Url::from_directory_path(&absolute).map_err(|()| invalid(raw, "not an absolute path"))
}

fn no_options(url: &str, options: &[(String, String)]) -> Result<(), StoreError> {
    match options.first() {
        None => Ok(()),
        Some((key, _)) => Err(invalid(
            url,
            format!("option {key:?} does not apply to this store"),
        )),
    }
}

fn backend(op: &'static str, url: String, source: object_store::Error) -> StoreError {
    match source {
        object_store::Error::NotFound { .. } => StoreError::NotFound { url },
        source => StoreError::Backend { op, url, source },
    }
}

/// Applies `options` to a cloud store builder (each builder has its own
/// config-key type, hence a macro) and builds it.
macro_rules! configure {
    ($builder:expr, $options:expr, $url:expr) => {{
        let mut builder = $builder;
        for (key, value) in $options {
            let parsed = key
                .to_ascii_lowercase()
                .parse()
                .map_err(|_| invalid($url, format!("unknown store option {key:?}")))?;
            builder = builder.with_config(parsed, value);
        }
        builder.build().map_err(|e| invalid($url, e.to_string()))?
    }};
}

impl Store {
    /// Opens the store root named by `url`: `file:///abs/dir`, a plain path
    /// (`./cohort`, `/data/cohort`), `s3://bucket/prefix`, `gs://bucket/prefix`,
    /// `az://container/prefix` (account from `AZURE_STORAGE_ACCOUNT_NAME`) or
    /// `memory://name/prefix`. Nothing is contacted until the first request.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, &[])
    }

    /// Like [`Store::open`], with explicit settings that override the
    /// environment: `object_store`'s configuration keys such as
    /// `aws_endpoint`, `aws_allow_http`, `aws_access_key_id`, `aws_region`,
    /// `google_service_account`, `azure_storage_account_name`. Local and
    /// memory stores take none.
    pub fn open_with(url: &str, options: &[(String, String)]) -> Result<Self, StoreError> {
        let parsed = if url.contains("://") {
            Url::parse(url).map_err(|e| invalid(url, e.to_string()))?
        } else if url.is_empty() {
            return Err(invalid(url, "empty URL"));
        } else {
            plain_path_to_url(url)?
        };
        let host = parsed.host_str().unwrap_or("").to_string();
        let url_path = parsed.path().trim_matches('/');
        let root = Path::from_url_path(url_path).map_err(|e| invalid(url, e.to_string()))?;
        let needs_host = |what: &str| {
            if host.is_empty() {
                Err(invalid(url, format!("missing {what} name")))
            } else {
                Ok(())
            }
        };
        let inner: Arc<dyn ObjectStore> = match parsed.scheme() {
            "file" => {
                if !host.is_empty() && host != "localhost" {
                    return Err(invalid(url, "file URLs must not name a host"));
                }
                no_options(url, options)?;
                Arc::new(LocalFileSystem::new())
            }
            "memory" => {
                no_options(url, options)?;
                memory_store(&host)
            }
            "s3" | "s3a" => {
                needs_host("bucket")?;
                let builder = AmazonS3Builder::from_env().with_bucket_name(&host);
                Arc::new(configure!(builder, options, url))
            }
            "gs" => {
                needs_host("bucket")?;
                let builder = GoogleCloudStorageBuilder::from_env().with_bucket_name(&host);
                Arc::new(configure!(builder, options, url))
            }
            "az" | "azure" | "abfs" | "abfss" => {
                needs_host("container")?;
                let builder = MicrosoftAzureBuilder::from_env().with_container_name(&host);
                Arc::new(configure!(builder, options, url))
            }
            other => return Err(invalid(url, format!("unsupported scheme {other:?}"))),
        };
        let display = match parsed.scheme() {
            "file" => format!("file:///{root}"),
            scheme => format!("{scheme}://{host}/{root}"),
        };
        Ok(Store {
            inner,
            root,
            url: display.trim_end_matches('/').to_string(),
        })
    }

    /// The root's URL, normalised (`file:///abs/dir`, `s3://bucket/prefix`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of `rel` under this root, for messages and manifests.
    pub fn url_of(&self, rel: &str) -> String {
        format!("{}/{}", self.url, rel.trim_start_matches('/'))
    }

    /// A store rooted at the sub-folder `rel`.
    pub fn child(&self, rel: &str) -> Result<Store, StoreError> {
        Ok(Store {
            inner: self.inner.clone(),
            root: self.resolve(rel)?,
            url: self.url_of(rel),
        })
    }

    /// Joins a relative path onto the root, refusing anything that could leave
    /// it: absolute paths, `..`, empty or `.` segments, backslashes and control
    /// characters.
    pub fn resolve(&self, rel: &str) -> Result<Path, StoreError> {
        let segments = safe_segments(rel)?;
        let root = self.root.as_ref();
        let joined = if root.is_empty() {
            segments.join("/")
        } else {
            format!("{root}/{}", segments.join("/"))
        };
        Path::parse(&joined).map_err(|_| StoreError::UnsafePath {
            path: rel.to_string(),
            reason: "not a valid object path",
        })
    }

    /// The whole object at `rel`.
    pub async fn get(&self, rel: &str) -> Result<Bytes, StoreError> {
        let path = self.resolve(rel)?;
        let result = self
            .inner
            .get(&path)
            .await
            .map_err(|e| backend("get", self.url_of(rel), e))?;
        result
            .bytes()
            .await
            .map_err(|e| backend("get", self.url_of(rel), e))
    }

    /// The bytes `range` of the object at `rel`.
    pub async fn get_range(&self, rel: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        let path = self.resolve(rel)?;
        self.inner
            .get_range(&path, range)
            .await
            .map_err(|e| backend("get range of", self.url_of(rel), e))
    }

    /// The size in bytes of the object at `rel`.
    pub async fn size(&self, rel: &str) -> Result<u64, StoreError> {
        Ok(self.meta(rel).await?.size)
    }

    /// Size and version identity of the object at `rel`, without reading it.
    pub async fn meta(&self, rel: &str) -> Result<ObjectInfo, StoreError> {
        let path = self.resolve(rel)?;
        let meta = self
            .inner
            .head(&path)
            .await
            .map_err(|e| backend("head", self.url_of(rel), e))?;
        Ok(ObjectInfo {
            size: meta.size,
            e_tag: meta.e_tag,
            last_modified_unix_ms: meta.last_modified.timestamp_millis(),
        })
    }

    /// Whether an object exists at `rel`.
    pub async fn exists(&self, rel: &str) -> Result<bool, StoreError> {
        match self.size(rel).await {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes the whole object at `rel`, atomically (see the module docs).
    pub async fn put(&self, rel: &str, bytes: impl Into<Bytes>) -> Result<(), StoreError> {
        let path = self.resolve(rel)?;
        self.inner
            .put(&path, PutPayload::from_bytes(bytes.into()))
            .await
            .map_err(|e| backend("put", self.url_of(rel), e))?;
        Ok(())
    }

    /// Deletes the object at `rel`; deleting a missing object is not an error.
    pub async fn delete(&self, rel: &str) -> Result<(), StoreError> {
        let path = self.resolve(rel)?;
        match self.inner.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(backend("delete", self.url_of(rel), e)),
        }
    }

    /// Every object under the root (recursively), as paths relative to the
    /// root, sorted. One listing is far cheaper than a HEAD per object when a
    /// manifest names thousands of volumes.
    pub async fn list(&self) -> Result<Vec<String>, StoreError> {
        let prefix = (!self.root.as_ref().is_empty()).then_some(&self.root);
        let metas: Vec<_> = self
            .inner
            .list(prefix)
            .try_collect()
            .await
            .map_err(|e| backend("list", self.url.clone(), e))?;
        let root_parts = self.root.parts().count();
        let mut out: Vec<String> = metas
            .into_iter()
            .map(|m| {
                m.location
                    .parts()
                    .skip(root_parts)
                    .map(|p| p.as_ref().to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

/// Splits a relative path into safe segments, or says why it is unsafe.
pub fn safe_segments(rel: &str) -> Result<Vec<&str>, StoreError> {
    let unsafe_path = |reason| StoreError::UnsafePath {
        path: rel.to_string(),
        reason,
    };
    if rel.is_empty() {
        return Err(unsafe_path("empty path"));
    }
    if rel.starts_with('/') || rel.starts_with('~') || rel.contains(":\\") {
        return Err(unsafe_path("absolute path"));
    }
    if rel.contains('\\') {
        return Err(unsafe_path("backslash in path"));
    }
    if rel.chars().any(char::is_control) {
        return Err(unsafe_path("control character in path"));
    }
    let segments: Vec<&str> = rel.split('/').collect();
    for s in &segments {
        match *s {
            ".." => return Err(unsafe_path("escapes the root with '..'")),
            "" | "." => return Err(unsafe_path("empty or '.' path segment")),
            _ => {}
        }
    }
    Ok(segments)
}

/// Splits a full object URL into its parent store and the object's name, so
/// that a single file anywhere can be read: `s3://b/x/y.nii.gz` gives the
/// store `s3://b/x` and `y.nii.gz`.
pub fn split_object_url(url: &str) -> Result<(Store, String), StoreError> {
    let trimmed = url.trim_end_matches('/');
    let (parent, name) = match trimmed.rfind('/') {
        Some(i) if !trimmed[..i].ends_with(':') && !trimmed[..i].ends_with(":/") => {
            (&trimmed[..i], &trimmed[i + 1..])
        }
        _ if !url.contains("://") => (".", trimmed),
        _ => return Err(invalid(url, "URL names no object")),
    };
    let parent = if parent.is_empty() { "/" } else { parent };
    Ok((Store::open(parent)?, name.to_string()))
}

/// Reads a whole object given its full URL or a plain file path.
pub async fn read_url(url: &str) -> Result<Bytes, StoreError> {
    let (store, name) = split_object_url(url)?;
    store.get(&name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../b",
            "a//b",
            "./a",
            "a\\b",
            "~/x",
        ] {
            assert!(safe_segments(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(safe_segments("a/b.nii.gz").unwrap(), vec!["a", "b.nii.gz"]);
    }

    #[tokio::test]
    async fn memory_round_trip_and_ranges() {
        let store = Store::open("memory://unit-rt/root").unwrap();
        store
            .put("a/b.bin", Bytes::from_static(b"0123456789"))
            .await
            .unwrap();
        assert_eq!(store.get("a/b.bin").await.unwrap().as_ref(), b"0123456789");
        assert_eq!(
            store.get_range("a/b.bin", 2..5).await.unwrap().as_ref(),
            b"234"
        );
        assert_eq!(store.size("a/b.bin").await.unwrap(), 10);
        assert!(store.exists("a/b.bin").await.unwrap());
        assert!(!store.exists("a/c.bin").await.unwrap());
        assert!(matches!(
            store.get("a/c.bin").await,
            Err(StoreError::NotFound { .. })
        ));
        // The same name in another handle sees the same objects.
        let again = Store::open("memory://unit-rt/root/a").unwrap();
        assert_eq!(again.list().await.unwrap(), vec!["b.bin".to_string()]);
        store.delete("a/b.bin").await.unwrap();
        assert!(!again.exists("b.bin").await.unwrap());
    }

    #[tokio::test]
    async fn local_plain_paths_and_file_urls() {
        let dir = tempfile::tempdir().unwrap();
        let plain = Store::open(dir.path().to_str().unwrap()).unwrap();
        plain
            .put("x/y.txt", Bytes::from_static(b"hi"))
            .await
            .unwrap();
        assert!(dir.path().join("x/y.txt").exists());
        let url = format!("file://{}", dir.path().display());
        let via_url = Store::open(&url).unwrap();
        assert_eq!(via_url.get("x/y.txt").await.unwrap().as_ref(), b"hi");
        assert_eq!(via_url.list().await.unwrap(), vec!["x/y.txt".to_string()]);
        let object = format!("{url}/x/y.txt");
        assert_eq!(read_url(&object).await.unwrap().as_ref(), b"hi");
        let plain_object = dir.path().join("x/y.txt");
        assert_eq!(
            read_url(plain_object.to_str().unwrap())
                .await
                .unwrap()
                .as_ref(),
            b"hi"
        );
        assert!(plain.put("../escape.txt", Bytes::new()).await.is_err());
    }

    #[test]
    fn bad_urls_are_named() {
        let err = Store::open("ftp://host/x").unwrap_err().to_string();
        assert!(
            err.contains("ftp://host/x") && err.contains("unsupported scheme"),
            "{err}"
        );
        assert!(Store::open("s3:///x").is_err());
        let option = [("no_such_option".to_string(), "1".to_string())];
        let err = Store::open_with("s3://b/x", &option)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown store option \"no_such_option\""),
            "{err}"
        );
        let err = Store::open_with("memory://m/x", &option)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not apply"), "{err}");
    }
}
