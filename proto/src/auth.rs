//! Bearer tokens and TLS for every Cohort channel.
//!
//! It lives in the proto crate, beside the generated services, because every
//! side that speaks gRPC — the coordinator, the worker (as a server for its
//! ring neighbours and as a client of the coordinator), the CLI — already
//! depends on this crate and on tonic, while `cohort-common` must stay free of
//! networking dependencies. One module means one definition of the header, the
//! environment variables and the comparison, so the sides cannot drift apart.
//!
//! - **Token.** A shared secret, read from the file named by
//!   [`TOKEN_FILE_ENV`] (a mounted Kubernetes Secret) or else from
//!   [`TOKEN_ENV`]. Clients send it as `authorization: Bearer <token>`
//!   ([`ClientAuth`]); servers check it on every call of every service
//!   ([`server_layer`], a tower layer over the whole server, so a service
//!   added later cannot be forgotten).
//! - **Comparison in constant time.** The server compares SHA-256 digests of
//!   the expected and the presented token with `subtle`, so neither the
//!   content nor the length of the secret leaks through timing.
//! - **TLS** (rustls with ring) when certificate files are given:
//!   [`ServerTls`] (certificate chain + key, optionally a client CA for mutual
//!   TLS) and [`ClientTls`] (a CA to trust, optionally a client identity).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::{Interceptor, InterceptorLayer};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};
use tonic::{Request, Status};

/// Environment variable naming a file that holds the token (preferred: a
/// mounted Secret never appears in `ps` or in the process environment dump).
pub const TOKEN_FILE_ENV: &str = "COHORT_TOKEN_FILE";
/// Environment variable holding the token itself.
pub const TOKEN_ENV: &str = "COHORT_TOKEN";
/// Environment variables for TLS files (PEM).
pub const TLS_CERT_ENV: &str = "COHORT_TLS_CERT";
pub const TLS_KEY_ENV: &str = "COHORT_TLS_KEY";
pub const TLS_CA_ENV: &str = "COHORT_TLS_CA";

const AUTHORIZATION: &str = "authorization";
const BEARER: &str = "bearer ";

/// What can go wrong setting up authentication or TLS.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token from {origin} is empty")]
    EmptyToken { origin: String },
    #[error(
        "the token from {origin} has characters outside visible ASCII (it must fit an HTTP header)"
    )]
    BadToken { origin: String },
    #[error("no token: set {TOKEN_FILE_ENV} (a file) or {TOKEN_ENV}")]
    NoToken,
    #[error("{0} is set but {1} is not; TLS needs both a certificate and a key")]
    HalfTls(&'static str, &'static str),
    #[error("invalid endpoint {url}: {source}")]
    Endpoint {
        url: String,
        source: tonic::transport::Error,
    },
}

/// The shared secret. `Debug` does not print it.
#[derive(Clone)]
pub struct Token(Arc<str>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// A token from its text; refuses empty tokens and characters that cannot
    /// travel in an HTTP header.
    pub fn new(text: &str, origin: &str) -> Result<Self, AuthError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AuthError::EmptyToken {
                origin: origin.to_string(),
            });
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AuthError::BadToken {
                origin: origin.to_string(),
            });
        }
        Ok(Self(text.into()))
    }

    /// Reads a token file; surrounding whitespace (the newline editors and
    /// `kubectl create secret --from-file` leave) is not part of the token.
    pub fn from_file(path: &Path) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            what: "token file",
            path: path.to_path_buf(),
            source,
        })?;
        Self::new(&text, &path.display().to_string())
    }

    /// `COHORT_TOKEN_FILE` if set, else `COHORT_TOKEN`, else `None`.
    pub fn from_env() -> Result<Option<Self>, AuthError> {
        if let Some(path) = std::env::var_os(TOKEN_FILE_ENV).filter(|p| !p.is_empty()) {
            return Self::from_file(Path::new(&path)).map(Some);
        }
        match std::env::var(TOKEN_ENV) {
            Ok(text) => Self::new(&text, TOKEN_ENV).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Like [`Token::from_env`], but a missing token is an error: servers
    /// refuse to start without one rather than run open.
    pub fn require_env() -> Result<Self, AuthError> {
        Self::from_env()?.ok_or(AuthError::NoToken)
    }

    /// The secret itself (for handing to a child process).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The `authorization` header that carries this token: `Bearer <token>`.
    /// For clients that build their HTTP/2 requests themselves (the
    /// collectives' data path); tonic clients use [`ClientAuth`].
    pub fn bearer_header(&self) -> tonic::codegen::http::HeaderValue {
        let mut value: tonic::codegen::http::HeaderValue = self
            .bearer()
            .parse()
            .expect("Token::new admits only visible ASCII, which is a valid header value");
        value.set_sensitive(true);
        value
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }

    fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

/// Server side: refuses every call whose `authorization` header is not
/// `Bearer <token>` with `Unauthenticated`.
#[derive(Clone)]
pub struct ServerAuth {
    expected: [u8; 32],
}

impl ServerAuth {
    pub fn new(token: &Token) -> Self {
        Self {
            expected: token.digest(),
        }
    }

    /// Checks a request's metadata; the `Err` is what the caller gets.
    pub fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let presented = request
            .metadata()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(strip_bearer);
        let Some(presented) = presented else {
            tracing::warn!(peer = ?request.remote_addr(), "call without a bearer token refused");
            return Err(Status::unauthenticated("missing bearer token"));
        };
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        if bool::from(digest.ct_eq(&self.expected)) {
            Ok(())
        } else {
            tracing::warn!(peer = ?request.remote_addr(), "call with a wrong bearer token refused");
            Err(Status::unauthenticated("invalid bearer token"))
        }
    }
}

fn strip_bearer(value: &str) -> Option<&str> {
    let scheme = value.get(..BEARER.len())?;
    scheme
        .eq_ignore_ascii_case(BEARER)
        .then(|| value[BEARER.len()..].trim())
}

impl Interceptor for ServerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.check(&request)?;
        Ok(request)
    }
}

/// The layer to put on a whole tonic server:
/// `Server::builder().layer(auth::server_layer(&token))`; it guards every
/// service added to that server.
pub fn server_layer(token: &Token) -> InterceptorLayer<ServerAuth> {
    InterceptorLayer::new(ServerAuth::new(token))
}

/// Client side: attaches `authorization: Bearer <token>` to every call, e.g.
/// `JobServiceClient::with_interceptor(channel, ClientAuth::new(&token))`.
#[derive(Clone)]
pub struct ClientAuth {
    header: MetadataValue<Ascii>,
}

impl ClientAuth {
    pub fn new(token: &Token) -> Self {
        let header = token
            .bearer()
            .parse()
            .expect("Token::new admits only visible ASCII, which is a valid header value");
        Self { header }
    }
}

impl Interceptor for ClientAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert(AUTHORIZATION, self.header.clone());
        Ok(request)
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, AuthError> {
    std::fs::read(path).map_err(|source| AuthError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// A server's TLS files (PEM).
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

impl ServerTls {
    /// From `COHORT_TLS_CERT` + `COHORT_TLS_KEY` (+ `COHORT_TLS_CA` for mutual
    /// TLS); `None` when neither is set (plain HTTP/2).
    pub fn from_env() -> Result<Option<Self>, AuthError> {
        let cert = std::env::var_os(TLS_CERT_ENV).filter(|v| !v.is_empty());
        let key = std::env::var_os(TLS_KEY_ENV).filter(|v| !v.is_empty());
        match (cert, key) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(AuthError::HalfTls(TLS_CERT_ENV, TLS_KEY_ENV)),
            (None, Some(_)) => Err(AuthError::HalfTls(TLS_KEY_ENV, TLS_CERT_ENV)),
            (Some(cert), Some(key)) => Ok(Some(Self {
                cert: cert.into(),
                key: key.into(),
                client_ca: std::env::var_os(TLS_CA_ENV)
                    .filter(|v| !v.is_empty())
                    .map(Into::into),
            })),
        }
    }

    /// Reads the files into tonic's configuration: `Server::builder().tls_config(..)`.
    pub fn config(&self) -> Result<ServerTlsConfig, AuthError> {
        install_crypto_provider();
        let identity = Identity::from_pem(
            read("TLS certificate", &self.cert)?,
            read("TLS key", &self.key)?,
        );
        let mut config = ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.client_ca {
            config = config.client_ca_root(Certificate::from_pem(read("TLS client CA", ca)?));
        }
        Ok(config)
    }
}

/// A client's TLS settings (PEM).
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// The CA that signed the server's certificate (a self-signed certificate
    /// is its own CA); `None` trusts nothing beyond what is given here.
    pub ca: Option<PathBuf>,
    /// The name to verify the server's certificate against, when it differs
    /// from the host in the URL (e.g. connecting to an IP address).
    pub domain: Option<String>,
    /// Client certificate and key, for servers that require mutual TLS.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl ClientTls {
    /// From `COHORT_TLS_CA` (and `COHORT_TLS_CERT` + `COHORT_TLS_KEY` as the
    /// client identity when both are set); `None` when no CA is set.
    pub fn from_env() -> Result<Option<Self>, AuthError> {
        let Some(ca) = std::env::var_os(TLS_CA_ENV).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let identity = match (
            std::env::var_os(TLS_CERT_ENV),
            std::env::var_os(TLS_KEY_ENV),
        ) {
            (Some(c), Some(k)) if !c.is_empty() && !k.is_empty() => Some((c.into(), k.into())),
            _ => None,
        };
        Ok(Some(Self {
            ca: Some(ca.into()),
            domain: None,
            identity,
        }))
    }

    pub fn config(&self) -> Result<ClientTlsConfig, AuthError> {
        install_crypto_provider();
        let mut config = ClientTlsConfig::new();
        if let Some(ca) = &self.ca {
            config = config.ca_certificate(Certificate::from_pem(read("TLS CA", ca)?));
        }
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(
                read("TLS certificate", cert)?,
                read("TLS key", key)?,
            ));
        }
        Ok(config)
    }
}

/// An endpoint for `url` with TLS applied when `tls` is given. A URL without a
/// scheme is taken as `http://` (or `https://` with TLS), so `host:port` from
/// a command line or a peer list works as is.
pub fn endpoint(url: &str, tls: Option<&ClientTls>) -> Result<Endpoint, AuthError> {
    install_crypto_provider();
    let full = if url.contains("://") {
        url.to_string()
    } else if tls.is_some() {
        format!("https://{url}")
    } else {
        format!("http://{url}")
    };
    let bad = |source| AuthError::Endpoint {
        url: url.to_string(),
        source,
    };
    let mut endpoint = Endpoint::from_shared(full).map_err(bad)?;
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls.config()?).map_err(bad)?;
    }
    Ok(endpoint)
}

/// Makes ring the process's rustls crypto provider, once.
///
/// rustls picks a provider from its crate features only when exactly one is compiled in;
/// this workspace also links aws-lc-rs (object_store's HTTP client), so without an explicit
/// choice the first TLS handshake panics. Installing fails harmlessly when some other part
/// of the process already chose.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_exact() {
        assert_eq!(strip_bearer("Bearer abc"), Some("abc"));
        assert_eq!(strip_bearer("bearer abc"), Some("abc"));
        assert_eq!(strip_bearer("Basic abc"), None);
        assert_eq!(strip_bearer("Bear"), None);
    }

    #[test]
    fn tokens_are_trimmed_and_validated() {
        assert_eq!(Token::new(" s3cret\n", "t").unwrap().expose(), "s3cret");
        assert!(matches!(
            Token::new(" \n", "t"),
            Err(AuthError::EmptyToken { .. })
        ));
        assert!(matches!(
            Token::new("a b", "t"),
            Err(AuthError::BadToken { .. })
        ));
        assert_eq!(
            format!("{:?}", Token::new("s3cret", "t").unwrap()),
            "Token(<redacted>)"
        );
    }

    #[test]
    fn server_check() {
        let token = Token::new("right", "t").unwrap();
        let auth = ServerAuth::new(&token);
        let mut request = Request::new(());
        assert_eq!(
            auth.check(&request).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        request
            .metadata_mut()
            .insert(AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert_eq!(
            auth.check(&request).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let mut request = ClientAuth::new(&token).call(Request::new(())).unwrap();
        assert!(auth.check(&request).is_ok());
        request
            .metadata_mut()
            .insert(AUTHORIZATION, "Bearer rightx".parse().unwrap());
        assert!(auth.check(&request).is_err());
    }

    #[test]
    fn token_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "from-file\n").unwrap();
        assert_eq!(Token::from_file(&path).unwrap().expose(), "from-file");
        assert!(matches!(
            Token::from_file(&dir.path().join("missing")),
            Err(AuthError::Read { .. })
        ));
    }
}
