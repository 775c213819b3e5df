//! Bearer tokens: verified here (issuer, audience, expiry, signature against the configured
//! JWKS) whatever front door the request came through, so the handler is safe behind API
//! Gateway's JWT authorizer, a load balancer, or `cargo lambda watch`.
//!
//! Only asymmetric signatures are accepted (RS256, ES256), each against the JWKS key its `kid`
//! names: `alg: none` and HMAC are refused outright, so a public key can never be used as an
//! HMAC secret. Signatures use aws-lc-rs, the crypto rustls already links. Every refusal is a
//! 401 with a reason and never the token itself.
//!
//! [`LocalKey`] is the local stack's and the tests' issuer: an RSA key kept in a directory,
//! which signs tokens that a verifier configured with its JWKS accepts.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use mailroom_core::limits::ConfigError;
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};

/// The issuer of [`LocalKey`] tokens (the local stack's `MAILROOM_JWT_ISSUER`).
pub const LOCAL_ISSUER: &str = "mailroom-local";
/// The audience of [`LocalKey`] tokens (the local stack's `MAILROOM_JWT_AUDIENCE`).
pub const LOCAL_AUDIENCE: &str = "mailroom";
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: i64 = 30;
/// The user claims tried in order when `MAILROOM_JWT_USER_CLAIM` is not set: Cognito ID tokens
/// carry `cognito:username`, its access tokens `username`, any OIDC issuer `sub`.
pub const DEFAULT_USER_CLAIMS: &[&str] = &["username", "cognito:username", "sub"];

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The Mailroom user name the token is for.
    pub user: String,
}

/// A public key from the JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    /// RS256: modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// ES256: the uncompressed P-256 point (0x04 || x || y).
    P256 { point: Vec<u8> },
}

impl Key {
    fn alg(&self) -> &'static str {
        match self {
            Key::Rsa { .. } => "RS256",
            Key::P256 { .. } => "ES256",
        }
    }

    fn verifies(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            Key::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
            Key::P256 { point } => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
        }
    }
}

/// Parses a JWKS document into signing keys by `kid`. Keys of other types, encryption keys
/// and keys without a `kid` are skipped (a token must name its key); a set with no usable key
/// is refused, since it could verify nothing.
fn parse_jwks(text: &str) -> Result<HashMap<String, Key>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not a JSON key set: {e}"))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("a JSON key set needs a \"keys\" array")?;
    let mut out = HashMap::new();
    for k in keys {
        let s = |name: &str| k.get(name).and_then(Value::as_str);
        let b = |name: &str| -> Result<Vec<u8>, String> {
            let v = s(name).ok_or_else(|| format!("a key has no {name:?}"))?;
            URL_SAFE_NO_PAD
                .decode(v.trim_end_matches('='))
                .map_err(|_| format!("a key's {name:?} is not base64url"))
        };
        let Some(kid) = s("kid") else { continue };
        if s("use").is_some_and(|u| u != "sig") {
            continue;
        }
        let key = match (s("kty"), s("crv")) {
            (Some("RSA"), _) => {
                let n = strip_zeros(b("n")?);
                if n.len() < 256 {
                    return Err(format!("key {kid:?}: RSA keys under 2048 bits are refused"));
                }
                Key::Rsa {
                    n,
                    e: strip_zeros(b("e")?),
                }
            }
            (Some("EC"), Some("P-256")) => {
                let (x, y) = (b("x")?, b("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(format!("key {kid:?}: a P-256 coordinate is not 32 bytes"));
                }
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Key::P256 { point }
            }
            _ => continue,
        };
        // A key pinned to another algorithm is not one we verify with.
        if s("alg").is_some_and(|a| a != key.alg()) {
            continue;
        }
        out.insert(kid.to_string(), key);
    }
    if out.is_empty() {
        return Err("the key set has no RS256 or ES256 signing key with a kid".into());
    }
    Ok(out)
}

fn strip_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|b| **b == 0).count();
    v.drain(..zeros.min(v.len().saturating_sub(1)));
    v
}

enum JwksSource {
    Inline(String),
    File(String),
    Url(String),
}

/// The verifier's variables, read and checked before any key set is loaded.
struct VerifierConfig {
    issuer: String,
    audience: String,
    user_claim: Option<String>,
    source: JwksSource,
}

const JWKS_VARS: [&str; 3] = ["MAILROOM_JWKS", "MAILROOM_JWKS_FILE", "MAILROOM_JWKS_URL"];

impl VerifierConfig {
    fn read(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let set = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let required =
            |name: &'static str| set(name).ok_or_else(|| ConfigError::new(name, "required"));
        let issuer = required("MAILROOM_JWT_ISSUER")?;
        let audience = required("MAILROOM_JWT_AUDIENCE")?;
        let given: Vec<(&'static str, String)> = JWKS_VARS
            .iter()
            .filter_map(|name| set(name).map(|v| (*name, v)))
            .collect();
        let source = match given.as_slice() {
            [("MAILROOM_JWKS", v)] => JwksSource::Inline(v.clone()),
            [("MAILROOM_JWKS_FILE", v)] => JwksSource::File(v.clone()),
            [(_, v)] => JwksSource::Url(v.clone()),
            [] => {
                return Err(ConfigError::new(
                    "MAILROOM_JWKS",
                    "required (or MAILROOM_JWKS_FILE or MAILROOM_JWKS_URL): the key set \
                     tokens are verified with",
                ))
            }
            [(first, _), ..] => {
                return Err(ConfigError::new(
                    first,
                    "set one of MAILROOM_JWKS, MAILROOM_JWKS_FILE, MAILROOM_JWKS_URL",
                ))
            }
        };
        Ok(VerifierConfig {
            issuer,
            audience,
            user_claim: set("MAILROOM_JWT_USER_CLAIM"),
            source,
        })
    }

    fn field(&self) -> &'static str {
        match self.source {
            JwksSource::Inline(_) => "MAILROOM_JWKS",
            JwksSource::File(_) => "MAILROOM_JWKS_FILE",
            JwksSource::Url(_) => "MAILROOM_JWKS_URL",
        }
    }

    fn build(self, jwks: &str) -> Result<Verifier, ConfigError> {
        let field = self.field();
        let v = Verifier::new(self.issuer, self.audience, jwks)
            .map_err(|e| ConfigError::new(field, e))?;
        Ok(match self.user_claim {
            Some(c) => v.with_user_claim(c),
            None => v,
        })
    }
}

/// At most this much key set is read (a JWKS is a few kilobytes).
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// GETs a key set: HTTPS against the public web roots; plain HTTP only to a loopback host
/// (the local stack and tests), never across a network.
async fn fetch_jwks(url: &str) -> Result<String, String> {
    use http_body_util::BodyExt as _;
    let uri: http::Uri = url.parse().map_err(|_| "not a URL".to_string())?;
    let loopback = matches!(
        uri.host(),
        Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
    );
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if loopback => {}
        _ => return Err("an https:// URL is required".into()),
    }
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let tls = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, http_body_util::Empty<bytes::Bytes>>(connector);
    let get = async {
        let resp = client
            .get(uri)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if resp.status() != http::StatusCode::OK {
            return Err(format!("answered {}", resp.status()));
        }
        let body = http_body_util::Limited::new(resp.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the key set: {e}"))?
            .to_bytes();
        String::from_utf8(body.to_vec()).map_err(|_| "the key set is not UTF-8".to_string())
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), get)
        .await
        .map_err(|_| "no answer within 10 s".to_string())?
}

/// Verifies bearer tokens against one issuer, one audience and one key set.
#[derive(Clone)]
pub struct Verifier {
    issuer: String,
    audience: String,
    /// `None`: [`DEFAULT_USER_CLAIMS`] in order.
    user_claim: Option<String>,
    keys: HashMap<String, Key>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<_> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("user_claim", &self.user_claim)
            .field("kids", &kids)
            .finish()
    }
}

impl Verifier {
    /// A verifier for tokens from `issuer` for `audience`, signed by a key of `jwks` (a JWKS
    /// document). The error says what is wrong with the key set.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        jwks: &str,
    ) -> Result<Verifier, String> {
        Ok(Verifier {
            issuer: issuer.into(),
            audience: audience.into(),
            user_claim: None,
            keys: parse_jwks(jwks)?,
        })
    }

    /// Takes the user name from this claim only (`MAILROOM_JWT_USER_CLAIM`).
    pub fn with_user_claim(mut self, claim: impl Into<String>) -> Self {
        self.user_claim = Some(claim.into());
        self
    }

    /// From the environment: `MAILROOM_JWT_ISSUER`, `MAILROOM_JWT_AUDIENCE` (both required),
    /// the key set inline in `MAILROOM_JWKS` or in the file `MAILROOM_JWKS_FILE` (exactly one),
    /// and `MAILROOM_JWT_USER_CLAIM` (optional). The error names the variable at fault.
    /// `MAILROOM_JWKS_URL` needs a fetch: use [`Verifier::load`].
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Verifier, ConfigError> {
        let c = VerifierConfig::read(&get)?;
        let jwks = match &c.source {
            JwksSource::Inline(text) => text.clone(),
            JwksSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| ConfigError::new("MAILROOM_JWKS_FILE", format!("{path}: {e}")))?,
            JwksSource::Url(_) => {
                return Err(ConfigError::new(
                    "MAILROOM_JWKS_URL",
                    "a key set URL is fetched at start: load the verifier with Verifier::load",
                ))
            }
        };
        c.build(&jwks)
    }

    /// [`Verifier::from_lookup`], and also `MAILROOM_JWKS_URL` (e.g. a Cognito user pool's
    /// `https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/jwks.json`), fetched
    /// here once: call it once per process, at cold start. A key rotated in later needs a new
    /// process (Cognito publishes new keys well before signing with them).
    pub async fn load(get: impl Fn(&str) -> Option<String>) -> Result<Verifier, ConfigError> {
        let c = VerifierConfig::read(&get)?;
        match &c.source {
            JwksSource::Url(url) => {
                let jwks = fetch_jwks(url)
                    .await
                    .map_err(|e| ConfigError::new("MAILROOM_JWKS_URL", format!("{url}: {e}")))?;
                c.build(&jwks)
            }
            _ => Verifier::from_lookup(get),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Verifies an `Authorization` header's bearer token at `now` (Unix seconds).
    pub fn verify(&self, authorization: Option<&str>, now: i64) -> ApiResult<Claims> {
        let refuse = |reason: &str| Err(ApiError::unauthorized(reason));
        let Some(header) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
            return refuse("missing bearer token");
        };
        let token = match header.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            None if header.eq_ignore_ascii_case("bearer") => "",
            _ => return refuse("the Authorization header is not a bearer token"),
        };
        if token.is_empty() {
            return refuse("missing bearer token");
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return refuse("malformed token: not three dot-separated parts");
        };
        let Some(head) = decode_object(h64) else {
            return refuse("malformed token header");
        };
        let alg = head.get("alg").and_then(Value::as_str).unwrap_or("");
        if alg != "RS256" && alg != "ES256" {
            return refuse("token algorithm not accepted (RS256 or ES256 only)");
        }
        if head.contains_key("crit") {
            return refuse("token has critical header extensions, which are not supported");
        }
        let Some(kid) = head.get("kid").and_then(Value::as_str) else {
            return refuse("token has no key id (kid)");
        };
        let Some(key) = self.keys.get(kid) else {
            return refuse("token key id is not in the configured key set");
        };
        if key.alg() != alg {
            return refuse("token algorithm does not match its key");
        }
        let Ok(sig) = URL_SAFE_NO_PAD.decode(s64) else {
            return refuse("malformed token signature");
        };
        let signed = &token[..h64.len() + 1 + p64.len()];
        if !key.verifies(signed.as_bytes(), &sig) {
            return refuse("token signature does not verify");
        }
        // Claims are only looked at once the signature holds.
        let Some(claims) = decode_object(p64) else {
            return refuse("malformed token payload");
        };
        let time = |name: &str| claims.get(name).and_then(Value::as_f64).map(|t| t as i64);
        match time("exp") {
            None => return refuse("token has no expiry (exp)"),
            Some(exp) if now >= exp.saturating_add(LEEWAY_SECONDS) => {
                return refuse("token expired")
            }
            Some(_) => {}
        }
        if time("nbf").is_some_and(|nbf| now.saturating_add(LEEWAY_SECONDS) < nbf) {
            return refuse("token not valid yet (nbf)");
        }
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return refuse("token issuer not accepted");
        }
        if !self.audience_matches(&claims) {
            return refuse("token audience not accepted");
        }
        let user = match &self.user_claim {
            Some(c) => string_claim(&claims, c),
            None => DEFAULT_USER_CLAIMS
                .iter()
                .find_map(|c| string_claim(&claims, c)),
        };
        match user {
            Some(user) => Ok(Claims { user }),
            None => refuse("token names no user"),
        }
    }

    /// `aud` (a string or a list) contains the audience; Cognito access tokens carry no `aud`
    /// but the app client in `client_id`.
    fn audience_matches(&self, claims: &Map<String, Value>) -> bool {
        let want = self.audience.as_str();
        let aud = match claims.get("aud") {
            Some(Value::String(a)) => a == want,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(want)),
            _ => false,
        };
        aud || claims.get("client_id").and_then(Value::as_str) == Some(want)
    }
}

fn decode_object(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

fn string_claim(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The local stack's token issuer: an RSA-2048 key kept in a directory (`local-key.pk8`,
/// PKCS#8 DER, mode 0600) with its public half as `jwks.json`, which the local API is
/// configured with (`MAILROOM_JWKS_FILE`). Tokens it signs have issuer [`LOCAL_ISSUER`] and
/// audience [`LOCAL_AUDIENCE`].
pub struct LocalKey {
    pair: signature::RsaKeyPair,
    kid: String,
    jwks: String,
}

impl fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey").field("kid", &self.kid).finish()
    }
}

const KEY_FILE: &str = "local-key.pk8";
const JWKS_FILE: &str = "jwks.json";

impl LocalKey {
    /// A new key, kept in memory only.
    pub fn generate() -> io::Result<LocalKey> {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| io::Error::other("RSA key generation failed"))?;
        Ok(LocalKey::from_pair(pair))
    }

    /// The key kept in `dir`, created (with the directory) on first use. Safe when several
    /// processes start at once: the key file appears complete or not at all, and the first
    /// one written wins.
    pub fn load_or_create(dir: &Path) -> io::Result<LocalKey> {
        create_private_dir(dir)?;
        let path = dir.join(KEY_FILE);
        let key = match std::fs::read(&path) {
            Ok(der) => LocalKey::from_pkcs8(&der, &path)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key = LocalKey::generate()?;
                let der = key
                    .pair
                    .as_der()
                    .map_err(|_| io::Error::other("RSA key encoding failed"))?;
                // Written aside, then linked into place: a link fails when the name exists,
                // so a concurrent creator's key is taken instead of replaced.
                let tmp = dir.join(format!(".{KEY_FILE}.{}", temp_suffix()));
                write_private(&tmp, der.as_ref())?;
                let linked = std::fs::hard_link(&tmp, &path);
                let _ = std::fs::remove_file(&tmp);
                match linked {
                    Ok(()) => key,
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        LocalKey::from_pkcs8(&std::fs::read(&path)?, &path)?
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        let jwks_path = dir.join(JWKS_FILE);
        if std::fs::read_to_string(&jwks_path).ok().as_deref() != Some(key.jwks.as_str()) {
            let tmp = dir.join(format!(".{JWKS_FILE}.{}", temp_suffix()));
            std::fs::write(&tmp, &key.jwks)?;
            std::fs::rename(&tmp, &jwks_path)?;
        }
        Ok(key)
    }

    /// Where [`LocalKey::load_or_create`] keeps the JWKS for `dir`.
    pub fn jwks_path(dir: &Path) -> PathBuf {
        dir.join(JWKS_FILE)
    }

    fn from_pkcs8(der: &[u8], path: &Path) -> io::Result<LocalKey> {
        let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(der).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not an RSA PKCS#8 key: {e}", path.display()),
            )
        })?;
        Ok(LocalKey::from_pair(pair))
    }

    fn from_pair(pair: signature::RsaKeyPair) -> LocalKey {
        let (n, e) = rsa_public_numbers(pair.public_key().as_ref())
            .expect("aws-lc-rs serializes an RSA public key as PKCS#1 DER");
        let (n, e) = (URL_SAFE_NO_PAD.encode(n), URL_SAFE_NO_PAD.encode(e));
        // RFC 7638 thumbprint: the same key always gets the same kid.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ));
        let jwks = json!({"keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e,
        }]})
        .to_string();
        LocalKey { pair, kid, jwks }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key set (JWKS JSON) that verifies this key's tokens.
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    /// A verifier accepting this key's tokens: [`LOCAL_ISSUER`], [`LOCAL_AUDIENCE`].
    pub fn verifier(&self) -> Verifier {
        Verifier::new(LOCAL_ISSUER, LOCAL_AUDIENCE, &self.jwks).expect("our own key set parses")
    }

    /// A token for `user`, valid from now for `ttl_seconds`.
    pub fn sign(&self, user: &str, ttl_seconds: u64) -> String {
        let now = chrono::Utc::now().timestamp();
        self.sign_claims(&json!({
            "iss": LOCAL_ISSUER,
            "aud": LOCAL_AUDIENCE,
            "sub": user,
            "username": user,
            "iat": now,
            "exp": now.saturating_add(i64::try_from(ttl_seconds).unwrap_or(i64::MAX)),
        }))
    }

    /// A token carrying exactly `claims` (tests build expired or misaddressed ones with it).
    pub fn sign_claims(&self, claims: &Value) -> String {
        self.sign_parts(
            &json!({"alg": "RS256", "typ": "JWT", "kid": self.kid}),
            claims,
        )
    }

    /// A token with this header and these claims, signed RS256 whatever the header says.
    fn sign_parts(&self, header: &Value, claims: &Value) -> String {
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                signed.as_bytes(),
                &mut sig,
            )
            .expect("RSA signing with a valid key");
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

/// Modulus and exponent of a PKCS#1 `RSAPublicKey` (`SEQUENCE { INTEGER n, INTEGER e }`),
/// without leading zeros. Only ever given our own key's encoding; read here rather than
/// through aws-lc-rs's `ring-io` feature, which would link a second `untrusted` crate.
fn rsa_public_numbers(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    fn item(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&t, rest) = input.split_first()?;
        let (&l, rest) = rest.split_first()?;
        if t != tag {
            return None;
        }
        let (len, rest) = if l < 0x80 {
            (l as usize, rest)
        } else {
            let k = (l & 0x7f) as usize;
            if k == 0 || k > 4 || rest.len() < k {
                return None;
            }
            let len = rest[..k].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
            (len, &rest[k..])
        };
        (rest.len() >= len).then(|| rest.split_at(len))
    }
    let (seq, _) = item(der, 0x30)?;
    let (n, rest) = item(seq, 0x02)?;
    let (e, _) = item(rest, 0x02)?;
    Some((strip_zeros(n.to_vec()), strip_zeros(e.to_vec())))
}

/// A name part no other writer (process or thread) picks at the same time.
fn temp_suffix() -> String {
    let mut r = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut r);
    format!("{}-{:016x}", std::process::id(), u64::from_le_bytes(r))
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests;
