use super::*;

use std::sync::OnceLock;

/// RSA key generation takes a while; most tests share one key.
fn key() -> &'static LocalKey {
    static KEY: OnceLock<LocalKey> = OnceLock::new();
    KEY.get_or_init(|| LocalKey::generate().unwrap())
}

fn other_key() -> &'static LocalKey {
    static KEY: OnceLock<LocalKey> = OnceLock::new();
    KEY.get_or_init(|| LocalKey::generate().unwrap())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(user: &str, exp: i64) -> Value {
    json!({"iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "sub": user, "username": user,
           "iat": now(), "exp": exp})
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The refusal's reason, asserting it is a 401 that does not echo the token.
fn refused(v: &Verifier, header: Option<&str>) -> String {
    let e = v.verify(header, now()).expect_err("refused");
    assert_eq!((e.status, e.code), (401, "unauthorized"), "{e:?}");
    if let Some(h) = header {
        let token = h.trim_start_matches("Bearer ");
        if token.len() > 8 {
            assert!(!e.message.contains(token), "the token is not echoed");
        }
    }
    e.message
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[test]
fn a_valid_token_verifies_and_names_its_user() {
    let v = key().verifier();
    let t = key().sign("ann", 3600);
    let c = v.verify(Some(&bearer(&t)), now()).unwrap();
    assert_eq!(c.user, "ann");
    // The scheme is case-insensitive (RFC 7235).
    assert_eq!(
        v.verify(Some(&format!("bearer {t}")), now()).unwrap().user,
        "ann"
    );
}

#[test]
fn an_expired_token_is_refused_within_the_leeway_only() {
    let v = key().verifier();
    let n = now();
    let t = key().sign_claims(&claims("ann", n - 60));
    assert_eq!(refused(&v, Some(&bearer(&t))), "token expired");
    // Ten seconds past exp is inside the leeway: clocks differ a little.
    let t = key().sign_claims(&claims("ann", n - 10));
    assert!(v.verify(Some(&bearer(&t)), n).is_ok());
    assert_eq!(
        v.verify(Some(&bearer(&t)), n + LEEWAY_SECONDS)
            .unwrap_err()
            .message,
        "token expired"
    );
}

#[test]
fn a_token_without_expiry_or_not_yet_valid_is_refused() {
    let v = key().verifier();
    let mut c = claims("ann", 0);
    c.as_object_mut().unwrap().remove("exp");
    let t = key().sign_claims(&c);
    assert_eq!(refused(&v, Some(&bearer(&t))), "token has no expiry (exp)");
    let mut c = claims("ann", now() + 3600);
    c["nbf"] = json!(now() + 600);
    let t = key().sign_claims(&c);
    assert_eq!(refused(&v, Some(&bearer(&t))), "token not valid yet (nbf)");
    c["nbf"] = json!(now() - 1);
    assert!(v
        .verify(Some(&bearer(&key().sign_claims(&c))), now())
        .is_ok());
}

#[test]
fn a_wrong_issuer_is_refused() {
    let v = key().verifier();
    let mut c = claims("ann", now() + 3600);
    c["iss"] = json!("https://evil.example");
    assert_eq!(
        refused(&v, Some(&bearer(&key().sign_claims(&c)))),
        "token issuer not accepted"
    );
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        refused(&v, Some(&bearer(&key().sign_claims(&c)))),
        "token issuer not accepted"
    );
}

#[test]
fn the_audience_may_be_a_list_or_a_cognito_client_id_and_else_is_refused() {
    let v = key().verifier();
    let mut c = claims("ann", now() + 3600);
    c["aud"] = json!("someone-else");
    assert_eq!(
        refused(&v, Some(&bearer(&key().sign_claims(&c)))),
        "token audience not accepted"
    );
    c["aud"] = json!(["someone-else", LOCAL_AUDIENCE]);
    assert!(v
        .verify(Some(&bearer(&key().sign_claims(&c))), now())
        .is_ok());
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        refused(&v, Some(&bearer(&key().sign_claims(&c)))),
        "token audience not accepted"
    );
    c["client_id"] = json!(LOCAL_AUDIENCE);
    assert!(v
        .verify(Some(&bearer(&key().sign_claims(&c))), now())
        .is_ok());
}

#[test]
fn a_token_signed_by_another_key_is_refused() {
    let v = key().verifier();
    // Its own kid is unknown here.
    let t = other_key().sign("ann", 3600);
    assert_eq!(
        refused(&v, Some(&bearer(&t))),
        "token key id is not in the configured key set"
    );
    // Claiming our kid does not help: the signature is checked against our key.
    let forged = other_key().sign_parts(
        &json!({"alg": "RS256", "kid": key().kid()}),
        &claims("ann", now() + 3600),
    );
    assert_eq!(
        refused(&v, Some(&bearer(&forged))),
        "token signature does not verify"
    );
}

#[test]
fn a_tampered_payload_or_signature_is_refused() {
    let v = key().verifier();
    let t = key().sign("ann", 3600);
    let parts: Vec<&str> = t.split('.').collect();
    let admin = b64(&claims("root", now() + 3600));
    let tampered = format!("{}.{admin}.{}", parts[0], parts[2]);
    assert_eq!(
        refused(&v, Some(&bearer(&tampered))),
        "token signature does not verify"
    );
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(
        refused(&v, Some(&bearer(&flipped))),
        "token signature does not verify"
    );
}

#[test]
fn alg_none_and_hmac_are_refused() {
    let v = key().verifier();
    let c = b64(&claims("ann", now() + 3600));
    let none = format!("{}.{c}.", b64(&json!({"alg": "none", "kid": key().kid()})));
    assert_eq!(
        refused(&v, Some(&bearer(&none))),
        "token algorithm not accepted (RS256 or ES256 only)"
    );
    // The classic confusion: HS256 keyed with the public key's bytes.
    let hs = format!(
        "{}.{c}.c2ln",
        b64(&json!({"alg": "HS256", "kid": key().kid()}))
    );
    assert_eq!(
        refused(&v, Some(&bearer(&hs))),
        "token algorithm not accepted (RS256 or ES256 only)"
    );
    // An RSA key is not used for ES256.
    let es = key().sign_parts(
        &json!({"alg": "ES256", "kid": key().kid()}),
        &claims("ann", now() + 3600),
    );
    assert_eq!(
        refused(&v, Some(&bearer(&es))),
        "token algorithm does not match its key"
    );
}

#[test]
fn missing_and_malformed_headers_are_refused_with_their_reason() {
    let v = key().verifier();
    assert_eq!(refused(&v, None), "missing bearer token");
    assert_eq!(refused(&v, Some("")), "missing bearer token");
    assert_eq!(refused(&v, Some("Bearer   ")), "missing bearer token");
    assert_eq!(
        refused(&v, Some("Basic YW5uOnB3")),
        "the Authorization header is not a bearer token"
    );
    assert_eq!(
        refused(&v, Some(&key().sign("ann", 60))),
        "the Authorization header is not a bearer token"
    );
    assert_eq!(
        refused(&v, Some("Bearer not-a-jwt")),
        "malformed token: not three dot-separated parts"
    );
    assert_eq!(
        refused(&v, Some("Bearer a.b.c.d")),
        "malformed token: not three dot-separated parts"
    );
    assert_eq!(
        refused(&v, Some("Bearer %%%.e30.AA")),
        "malformed token header"
    );
    let no_kid = format!("{}.e30.AA", b64(&json!({"alg": "RS256"})));
    assert_eq!(
        refused(&v, Some(&bearer(&no_kid))),
        "token has no key id (kid)"
    );
    let crit = format!(
        "{}.e30.AA",
        b64(&json!({"alg": "RS256", "kid": key().kid(), "crit": ["exp"]}))
    );
    assert_eq!(
        refused(&v, Some(&bearer(&crit))),
        "token has critical header extensions, which are not supported"
    );
}

#[test]
fn the_user_comes_from_the_configured_claim_or_the_default_chain() {
    let jwks = key().jwks();
    let v = key().verifier();
    let exp = now() + 3600;
    let base = json!({"iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "exp": exp});
    let with = |extra: Value| {
        let mut c = base.clone();
        for (k, val) in extra.as_object().unwrap() {
            c[k] = val.clone();
        }
        bearer(&key().sign_claims(&c))
    };
    let user = |v: &Verifier, t: &str| v.verify(Some(t), now()).map(|c| c.user);
    let all = with(json!({"username": "u", "cognito:username": "c", "sub": "s", "email": "e"}));
    assert_eq!(user(&v, &all).unwrap(), "u");
    let cognito_id = with(json!({"cognito:username": "c", "sub": "s"}));
    assert_eq!(user(&v, &cognito_id).unwrap(), "c");
    assert_eq!(user(&v, &with(json!({"sub": "s"}))).unwrap(), "s");
    assert_eq!(
        user(&v, &with(json!({}))).unwrap_err().message,
        "token names no user"
    );
    let by_email = Verifier::new(LOCAL_ISSUER, LOCAL_AUDIENCE, jwks)
        .unwrap()
        .with_user_claim("email");
    assert_eq!(user(&by_email, &all).unwrap(), "e");
    assert!(user(&by_email, &cognito_id).is_err(), "no fallback");
}

#[test]
fn es256_tokens_verify_against_an_ec_key() {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 =
        signature::EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
    let pair = signature::EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8.as_ref(),
    )
    .unwrap();
    let point = pair.public_key().as_ref();
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "ec1",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])}]});
    let v = Verifier::new("https://idp.example", "app", &jwks.to_string()).unwrap();
    let signed = format!(
        "{}.{}",
        b64(&json!({"alg": "ES256", "kid": "ec1"})),
        b64(
            &json!({"iss": "https://idp.example", "client_id": "app", "sub": "ann",
                    "exp": now() + 60})
        )
    );
    let sig = pair.sign(&rng, signed.as_bytes()).unwrap();
    let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()));
    assert_eq!(v.verify(Some(&bearer(&token)), now()).unwrap().user, "ann");
    let other = format!("{signed}.{}", URL_SAFE_NO_PAD.encode([7u8; 64]));
    assert_eq!(
        v.verify(Some(&bearer(&other)), now()).unwrap_err().message,
        "token signature does not verify"
    );
}

#[test]
fn configuration_names_the_variable_at_fault() {
    let jwks = key().jwks().to_string();
    let from = |vars: &[(&str, &str)]| {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Verifier::from_lookup(|k| vars.get(k).cloned())
    };
    let full = [
        ("MAILROOM_JWT_ISSUER", LOCAL_ISSUER),
        ("MAILROOM_JWT_AUDIENCE", LOCAL_AUDIENCE),
        ("MAILROOM_JWKS", jwks.as_str()),
    ];
    let v = from(&full).unwrap();
    assert!(v
        .verify(Some(&bearer(&key().sign("ann", 60))), now())
        .is_ok());
    for missing in 0..3 {
        let vars: Vec<_> = full
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != missing)
            .map(|(_, kv)| *kv)
            .collect();
        assert_eq!(from(&vars).unwrap_err().field, full[missing].0);
    }
    let bad = [
        ("MAILROOM_JWT_ISSUER", LOCAL_ISSUER),
        ("MAILROOM_JWT_AUDIENCE", LOCAL_AUDIENCE),
        ("MAILROOM_JWKS", r#"{"keys": []}"#),
    ];
    assert_eq!(from(&bad).unwrap_err().field, "MAILROOM_JWKS");
    let gone = [
        ("MAILROOM_JWT_ISSUER", LOCAL_ISSUER),
        ("MAILROOM_JWT_AUDIENCE", LOCAL_AUDIENCE),
        ("MAILROOM_JWKS_FILE", "/nonexistent/jwks.json"),
    ];
    let e = from(&gone).unwrap_err();
    assert_eq!(e.field, "MAILROOM_JWKS_FILE");
    assert!(e.reason.contains("/nonexistent/jwks.json"), "{e:?}");
}

#[test]
fn jwks_parsing_skips_unusable_keys_and_refuses_short_rsa() {
    let good: Value = serde_json::from_str(key().jwks()).unwrap();
    let mut keys = vec![
        json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"}),
        json!({"kty": "RSA", "use": "enc", "kid": "enc", "n": good["keys"][0]["n"], "e": "AQAB"}),
        json!({"kty": "RSA", "kid": "ps", "alg": "PS256", "n": good["keys"][0]["n"], "e": "AQAB"}),
    ];
    assert!(parse_jwks(&json!({ "keys": keys }).to_string()).is_err());
    keys.push(good["keys"][0].clone());
    let parsed = parse_jwks(&json!({ "keys": keys }).to_string()).unwrap();
    assert_eq!(
        parsed.keys().collect::<Vec<_>>(),
        [&key().kid().to_string()]
    );
    let short = json!({"keys": [{"kty": "RSA", "kid": "s",
        "n": URL_SAFE_NO_PAD.encode([0xffu8; 128]), "e": "AQAB"}]});
    assert!(parse_jwks(&short.to_string())
        .unwrap_err()
        .contains("under 2048 bits"));
}

#[test]
fn a_local_key_is_kept_in_its_directory_and_reloads_the_same() {
    let dir = std::env::temp_dir().join(format!(
        "mailroom-localkey-{}-{:x}",
        std::process::id(),
        rand_suffix()
    ));
    let a = LocalKey::load_or_create(&dir).unwrap();
    let b = LocalKey::load_or_create(&dir).unwrap();
    assert_eq!(a.kid(), b.kid(), "the same key reloads");
    assert_eq!(
        std::fs::read_to_string(LocalKey::jwks_path(&dir)).unwrap(),
        a.jwks()
    );
    // A token from the first verifies with the reloaded key's set.
    assert!(b
        .verifier()
        .verify(Some(&bearer(&a.sign("ann", 60))), now())
        .is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the private key is private");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn rand_suffix() -> u64 {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

#[test]
fn processes_starting_at_once_end_up_with_one_key() {
    let dir = std::env::temp_dir().join(format!("mailroom-localkey-race-{:x}", rand_suffix()));
    let kids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| LocalKey::load_or_create(&dir).unwrap().kid().to_string()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let on_disk = LocalKey::load_or_create(&dir).unwrap();
    assert!(kids.iter().all(|k| k == on_disk.kid()), "{kids:?}");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no temporary files left: {leftovers:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn vars(list: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = list
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    move |k| map.get(k).cloned()
}

fn local_with(source: (&'static str, String)) -> Vec<(&'static str, String)> {
    vec![
        ("MAILROOM_JWT_ISSUER", LOCAL_ISSUER.to_string()),
        ("MAILROOM_JWT_AUDIENCE", LOCAL_AUDIENCE.to_string()),
        source,
    ]
}

#[test]
fn one_key_set_source_is_required_and_a_url_needs_the_async_load() {
    let mut two = local_with(("MAILROOM_JWKS", key().jwks().to_string()));
    two.push(("MAILROOM_JWKS_URL", "https://idp.example/jwks".into()));
    let e = Verifier::from_lookup(vars(&two)).unwrap_err();
    assert_eq!(e.field, "MAILROOM_JWKS");
    assert!(e.reason.contains("one of"), "{e:?}");
    let url = local_with(("MAILROOM_JWKS_URL", "https://idp.example/jwks".into()));
    let e = Verifier::from_lookup(vars(&url)).unwrap_err();
    assert_eq!(e.field, "MAILROOM_JWKS_URL");
    assert!(e.reason.contains("Verifier::load"), "{e:?}");
}

/// One HTTP answer on a loopback port: the JWKS a URL serves.
async fn serve_once(status: &'static str, body: String) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        let resp = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(resp.as_bytes()).await.unwrap();
    });
    format!("http://127.0.0.1:{}/.well-known/jwks.json", addr.port())
}

#[tokio::test]
async fn a_key_set_url_is_fetched_once_at_load() {
    let url = serve_once("200 OK", key().jwks().to_string()).await;
    let v = Verifier::load(vars(&local_with(("MAILROOM_JWKS_URL", url))))
        .await
        .unwrap();
    assert_eq!(
        v.verify(Some(&bearer(&key().sign("ann", 60))), now())
            .unwrap()
            .user,
        "ann"
    );
    // Inline and file sources load the same way.
    let inline = local_with(("MAILROOM_JWKS", key().jwks().to_string()));
    assert!(Verifier::load(vars(&inline)).await.is_ok());
}

#[tokio::test]
async fn a_key_set_url_that_fails_or_is_not_https_names_the_variable() {
    let url = serve_once("404 Not Found", "{}".into()).await;
    let e = Verifier::load(vars(&local_with(("MAILROOM_JWKS_URL", url))))
        .await
        .unwrap_err();
    assert_eq!(e.field, "MAILROOM_JWKS_URL");
    assert!(e.reason.contains("404"), "{e:?}");
    let url = serve_once("200 OK", r#"{"keys": []}"#.into()).await;
    let e = Verifier::load(vars(&local_with(("MAILROOM_JWKS_URL", url))))
        .await
        .unwrap_err();
    assert!(e.reason.contains("no RS256 or ES256"), "{e:?}");
    let plain = local_with(("MAILROOM_JWKS_URL", "http://idp.example/jwks".into()));
    let e = Verifier::load(vars(&plain)).await.unwrap_err();
    assert_eq!(e.field, "MAILROOM_JWKS_URL");
    assert!(e.reason.contains("https:// URL is required"), "{e:?}");
}
