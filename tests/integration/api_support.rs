//! The API over real HTTP for tests: [`ApiServer`] serves `mailroom_api` in-process on a
//! loopback port for one test's prefix, verifying tokens signed by its own [`LocalKey`], and
//! calls it like any client would (a fresh HTTP/1.1 connection per call).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use mailroom_api::auth::{LocalKey, Verifier, LOCAL_AUDIENCE, LOCAL_ISSUER};
use mailroom_api::{Api, ApiSettings};
use serde_json::Value;

use crate::harness::{unique, TestEnv};

pub struct ApiServer {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub url: String,
    key: LocalKey,
    key_dir: PathBuf,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ApiServer {
    /// Serves the API for `env`'s prefix on 127.0.0.1 (a free port), configured as the local
    /// stack configures it: issuer and audience of [`LocalKey`], its JWKS read from the file.
    pub async fn start(env: &TestEnv) -> ApiServer {
        let adapters = mailroom_aws::Adapters::new(&env.ctx.clients, env.ctx.config().clone());
        ApiServer::start_on(adapters).await
    }

    /// Serves the API over the given adapters (the IAM test's recorded clients).
    pub async fn start_on(adapters: mailroom_aws::Adapters) -> ApiServer {
        let key_dir = std::env::temp_dir().join(format!("mailroom-api-{}", unique("key")));
        let key = LocalKey::load_or_create(&key_dir).expect("a local key in a temp dir");
        let jwks_file = LocalKey::jwks_path(&key_dir).display().to_string();
        let auth = Verifier::from_lookup(|name| match name {
            "MAILROOM_JWT_ISSUER" => Some(LOCAL_ISSUER.into()),
            "MAILROOM_JWT_AUDIENCE" => Some(LOCAL_AUDIENCE.into()),
            "MAILROOM_JWKS_FILE" => Some(jwks_file.clone()),
            _ => None,
        })
        .expect("the local verifier configuration");
        let api = Arc::new(Api::new(adapters, auth, ApiSettings::default()));
        let (addr, task) = mailroom_api::serve::spawn(api, "127.0.0.1:0")
            .await
            .expect("binds a loopback port");
        ApiServer {
            url: format!("http://{addr}"),
            key,
            key_dir,
            task,
        }
    }

    /// A token for `user`, valid for an hour.
    pub fn token(&self, user: &str) -> String {
        self.key.sign(user, 3600)
    }

    /// The key this server trusts, for tokens with chosen claims (expired, misaddressed).
    pub fn key(&self) -> &LocalKey {
        &self.key
    }

    /// Calls the API as `user` (a valid token): the status and the JSON body.
    pub async fn call(
        &self,
        user: &str,
        method: &str,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let auth = format!("Bearer {}", self.token(user));
        self.call_with_header(Some(&auth), method, path_and_query, body)
            .await
    }

    /// Calls the API with this `Authorization` header (or none). A body that is not JSON comes
    /// back as a JSON string, so a test can still show it.
    pub async fn call_with_header(
        &self,
        authorization: Option<&str>,
        method: &str,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let host = self.url.trim_start_matches("http://");
        let mut req = http::Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(http::header::HOST, host);
        if let Some(a) = authorization {
            req = req.header(http::header::AUTHORIZATION, a);
        }
        let payload = match body {
            Some(b) => {
                req = req.header(http::header::CONTENT_TYPE, "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(payload)).expect("a well-formed request");
        let exchange = async {
            let stream = tokio::net::TcpStream::connect(host).await?;
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(conn);
            let resp = send
                .send_request(req)
                .await
                .map_err(std::io::Error::other)?;
            let status = resp.status().as_u16();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(std::io::Error::other)?
                .to_bytes();
            Ok::<_, std::io::Error>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(Duration::from_secs(60), exchange)
            .await
            .unwrap_or_else(|_| panic!("{method} {path_and_query}: no answer within 60 s"))
            .unwrap_or_else(|e| panic!("{method} {path_and_query}: {e}"));
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, body)
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.key_dir);
    }
}
