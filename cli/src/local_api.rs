//! The local API: `mailroom local up` runs the `api` function's handler on loopback for a
//! prefix, from this same binary (`mailroom api serve`), and restarts it when the binary
//! changed; `mailroom local down` stops it. Tokens come from the stack's own signing key
//! (`mailroom local token <user>`), which the served API trusts.
//!
//! State lives under the stack's directory: `jwt/` (the key and its JWKS), `api/<prefix>.json`
//! (the server's pid, port and the identity of the binary it runs) and `api/<prefix>.log`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use mailroom_api::auth::{LocalKey, LOCAL_AUDIENCE, LOCAL_ISSUER};
use serde::{Deserialize, Serialize};

use crate::local::local_dir;

/// How long `mailroom local token` tokens last: a working day.
pub const TOKEN_SECONDS: u64 = 12 * 3600;

pub fn key_dir() -> PathBuf {
    local_dir().join("jwt")
}

pub fn local_key() -> Result<LocalKey> {
    LocalKey::load_or_create(&key_dir()).map_err(|e| anyhow!("the local signing key: {e}"))
}

/// A token the local API accepts for `user`.
pub fn token(user: &str) -> Result<String> {
    Ok(local_key()?.sign(user, TOKEN_SECONDS))
}

/// The settings under which `mailroom api serve` verifies local tokens.
pub fn verifier_env() -> Vec<(&'static str, String)> {
    vec![
        ("MAILROOM_JWT_ISSUER", LOCAL_ISSUER.to_string()),
        ("MAILROOM_JWT_AUDIENCE", LOCAL_AUDIENCE.to_string()),
        (
            "MAILROOM_JWKS_FILE",
            key_dir().join("jwks.json").display().to_string(),
        ),
    ]
}

/// What a running local API wrote about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiState {
    pub pid: u32,
    pub port: u16,
    pub binary: BinaryId,
}

impl ApiState {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A binary as the file system shows it: a rebuild changes its size or modification time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BinaryId {
    pub path: String,
    pub len: u64,
    pub modified_ns: u128,
}

impl BinaryId {
    pub fn current() -> Result<BinaryId> {
        let path = std::env::current_exe().context("finding this binary")?;
        // A rebuilt binary replaces the file: /proc's link then ends in " (deleted)".
        let path = PathBuf::from(
            path.display()
                .to_string()
                .trim_end_matches(" (deleted)")
                .to_string(),
        );
        let meta =
            std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Ok(BinaryId {
            path: path.display().to_string(),
            len: meta.len(),
            modified_ns,
        })
    }
}

fn api_dir() -> PathBuf {
    local_dir().join("api")
}

pub fn state_file(prefix: &str) -> PathBuf {
    api_dir().join(format!("{prefix}.json"))
}

fn log_file(prefix: &str) -> PathBuf {
    api_dir().join(format!("{prefix}.log"))
}

pub fn read_state(path: &Path) -> Option<ApiState> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}

fn answers(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    )
    .is_ok()
}

fn stop(state: &ApiState) {
    if alive(state.pid) {
        // SIGTERM, then SIGKILL if it lingers; the server holds no state worth a grace period.
        let _ = Command::new("kill").arg(state.pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while alive(state.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive(state.pid) {
            let _ = Command::new("kill")
                .args(["-9", &state.pid.to_string()])
                .status();
        }
    }
}

/// A port to prefer for a prefix, so a prefix's API keeps its URL across restarts (18100 to
/// 18999); taken, the server falls back to any free port.
pub fn preferred_port(prefix: &str) -> u16 {
    let h = prefix
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    18100 + (h % 900) as u16
}

/// Starts the prefix's API unless one is running from this same binary; returns its state.
pub fn ensure(prefix: &str) -> Result<ApiState> {
    let path = state_file(prefix);
    let me = BinaryId::current()?;
    if let Some(state) = read_state(&path) {
        if alive(state.pid) && state.binary == me && answers(state.port) {
            return Ok(state);
        }
        stop(&state);
    }
    std::fs::create_dir_all(api_dir()).context("creating the local API's directory")?;
    let _ = std::fs::remove_file(&path);
    // The key exists before the server reads its JWKS.
    local_key()?;
    let log = std::fs::File::create(log_file(prefix)).context("creating the API log")?;
    let mut cmd = Command::new(&me.path);
    cmd.args(["api", "serve", "--prefix", prefix, "--state-file"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // Its own process group: the server outlives `local up` and the terminal's signals.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().context("starting the local API")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(state) = read_state(&path) {
            if answers(state.port) {
                return Ok(state);
            }
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "the local API exited ({status}); see {}",
                log_file(prefix).display()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!(
                "the local API did not start within 60 s; see {}",
                log_file(prefix).display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops a prefix's local API, if one runs.
pub fn stop_prefix(prefix: &str) {
    let path = state_file(prefix);
    if let Some(state) = read_state(&path) {
        stop(&state);
    }
    let _ = std::fs::remove_file(&path);
}

/// Stops every prefix's local API (`local down`).
pub fn stop_all() {
    let Ok(dir) = std::fs::read_dir(api_dir()) else {
        return;
    };
    for f in dir.flatten() {
        let p = f.path();
        if p.extension().is_some_and(|e| e == "json") {
            if let Some(state) = read_state(&p) {
                stop(&state);
            }
            let _ = std::fs::remove_file(&p);
        }
    }
}
