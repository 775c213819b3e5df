//! IMAP adapter (async-imap over tokio, TLS by rustls) implementing the core's `Mailbox` port.
//!
//! Read-only by construction (R-F4): folders are opened with EXAMINE and bodies fetched with
//! BODY.PEEK, so no flag changes and nothing is moved or deleted. Errors are classified into
//! the account status kinds (connect, TLS, auth, folder, protocol) and never carry credentials.
//! A FETCH the server refuses (NO, BAD, or BYE in answer to it) is reported as a
//! [`Refusal`] with the server's words, apart from network failures: the poller then splits it
//! down to the message the server cannot read and quarantines that one alone.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::imap_proto::{AttributeValue, MessageSection, Response, SectionPath, Status};
use async_imap::{Client, Session};
use chrono::{NaiveDate, Utc};
use mailroom_core::model::{ErrorKind, ImapSettings, Secret, Security};
use mailroom_core::ports::{
    FetchedMessage, FolderInfo, Mailbox, MailboxError, MailboxResult, MailboxSession, MessageMeta,
    Refusal,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::{client::TlsStream, TlsConnector};

pub mod tools;

/// Settings of the connector, from the deployment configuration.
#[derive(Debug, Clone, Default)]
pub struct ImapOptions {
    /// R-F8b: refuse hosts that resolve to private, loopback or link-local addresses unless set.
    pub allow_private_hosts: bool,
    /// Refuse `Security::Plain` (the password would cross the network in clear) unless set.
    pub allow_plaintext: bool,
    /// PEM file with extra trusted certificates (a private CA, the local stack's certificate).
    pub extra_ca_file: Option<String>,
    pub connect_timeout: Option<Duration>,
    pub command_timeout: Option<Duration>,
}

/// Opens sessions; cheap to clone, built once per process.
#[derive(Clone)]
pub struct ImapConnector {
    tls: TlsConnector,
    options: ImapOptions,
}

impl ImapConnector {
    pub fn new(options: ImapOptions) -> Result<Self, String> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &options.extra_ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("MAILROOM_IMAP_CA_FILE: cannot read {path}: {e}"))?;
            let mut found = 0;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert =
                    cert.map_err(|e| format!("MAILROOM_IMAP_CA_FILE: bad PEM in {path}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("MAILROOM_IMAP_CA_FILE: unusable certificate: {e}"))?;
                found += 1;
            }
            if found == 0 {
                return Err(format!("MAILROOM_IMAP_CA_FILE: no certificate in {path}"));
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(ImapConnector {
            tls: TlsConnector::from(Arc::new(config)),
            options,
        })
    }

    fn connect_timeout(&self) -> Duration {
        self.options
            .connect_timeout
            .unwrap_or(Duration::from_secs(15))
    }

    fn command_timeout(&self) -> Duration {
        self.options
            .command_timeout
            .unwrap_or(Duration::from_secs(120))
    }

    /// Resolves the host and applies R-F8b before any packet is sent to it.
    pub async fn resolve(&self, host: &str, port: u16) -> MailboxResult<Vec<std::net::SocketAddr>> {
        let addrs: Vec<_> = tokio::time::timeout(
            self.connect_timeout(),
            tokio::net::lookup_host((host, port)),
        )
        .await
        .map_err(|_| MailboxError::new(ErrorKind::Connect, format!("resolving {host} timed out")))?
        .map_err(|e| MailboxError::new(ErrorKind::Connect, format!("cannot resolve {host}: {e}")))?
        .collect();
        if addrs.is_empty() {
            return Err(MailboxError::new(
                ErrorKind::Connect,
                format!("{host} has no address"),
            ));
        }
        if !self.options.allow_private_hosts {
            if let Some(a) = addrs.iter().find(|a| is_private(a.ip())) {
                return Err(MailboxError::new(
                    ErrorKind::Connect,
                    format!(
                        "{host} resolves to the private address {}; refused (set MAILROOM_ALLOW_PRIVATE_HOSTS=true to allow)",
                        a.ip()
                    ),
                ));
            }
        }
        Ok(addrs)
    }

    /// Whether this deployment connects with `security`: plaintext only when allowed.
    pub fn permits(&self, security: Security) -> MailboxResult<()> {
        if security == Security::Plain && !self.options.allow_plaintext {
            return Err(MailboxError::new(
                ErrorKind::Tls,
                "security plain (IMAP without TLS, the password in clear) is refused by this \
                 deployment (set MAILROOM_ALLOW_PLAINTEXT=true to allow it)",
            ));
        }
        Ok(())
    }

    async fn open_stream(&self, settings: &ImapSettings) -> MailboxResult<Stream> {
        // Before any packet: a refused account never reaches its server.
        self.permits(settings.security)?;
        let addrs = self.resolve(&settings.host, settings.port).await?;
        let tcp = tokio::time::timeout(self.connect_timeout(), TcpStream::connect(&addrs[..]))
            .await
            .map_err(|_| {
                MailboxError::new(
                    ErrorKind::Connect,
                    format!(
                        "connecting to {}:{} timed out",
                        settings.host, settings.port
                    ),
                )
            })?
            .map_err(|e| {
                MailboxError::new(
                    ErrorKind::Connect,
                    format!("cannot connect to {}:{}: {e}", settings.host, settings.port),
                )
            })?;
        let _ = tcp.set_nodelay(true);
        match settings.security {
            Security::ImplicitTls => Ok(Stream::Tls(Box::new(self.tls(settings, tcp).await?))),
            Security::Plain | Security::Starttls => Ok(Stream::Plain(tcp)),
        }
    }

    async fn tls(
        &self,
        settings: &ImapSettings,
        tcp: TcpStream,
    ) -> MailboxResult<TlsStream<TcpStream>> {
        let name = ServerName::try_from(settings.host.clone()).map_err(|_| {
            MailboxError::new(
                ErrorKind::Tls,
                format!("{} is not a valid TLS name", settings.host),
            )
        })?;
        tokio::time::timeout(self.connect_timeout(), self.tls.connect(name, tcp))
            .await
            .map_err(|_| MailboxError::new(ErrorKind::Tls, "TLS handshake timed out"))?
            .map_err(|e| MailboxError::new(ErrorKind::Tls, format!("TLS handshake failed: {e}")))
    }

    async fn greet(&self, client: &mut Client<Stream>) -> MailboxResult<()> {
        let greeting = tokio::time::timeout(self.connect_timeout(), client.read_response())
            .await
            .map_err(|_| MailboxError::new(ErrorKind::Protocol, "no server greeting"))?
            .map_err(|e| MailboxError::new(ErrorKind::Connect, format!("reading greeting: {e}")))?;
        if greeting.is_none() {
            return Err(MailboxError::new(
                ErrorKind::Connect,
                "connection closed before the greeting",
            ));
        }
        Ok(())
    }
}

/// Loopback, RFC 1918, link-local, unique-local, CGNAT, unspecified, multicast, reserved and
/// similar addresses; and IPv6 forms that carry such an IPv4 address inside them.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast() // 224.0.0.0/4
                || o[0] >= 240 // 240.0.0.0/4, reserved
                || (o[0] == 100 && (64..128).contains(&o[1])) // CGNAT
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_ipv4(v6) {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast() // ff00::/8
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated, still routed inside sites)
        }
    }
}

/// The IPv4 address an IPv6 address stands for, where the network delivers it there:
/// IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`)
/// and 6to4 (`2002:AABB:CCDD::/48`).
fn embedded_ipv4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        std::net::Ipv4Addr::new(a, b, c, d)
    };
    if let Some(mapped) = v6.to_ipv4_mapped() {
        return Some(mapped);
    }
    // `::` and `::1` are IPv6's own unspecified and loopback, not IPv4-compatible forms.
    if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
        return Some(v4(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(v4(s[1], s[2]));
    }
    None
}

impl mailroom_core::ports::HostPolicy for ImapConnector {
    fn permits(&self, security: Security) -> MailboxResult<()> {
        ImapConnector::permits(self, security)
    }
    async fn check_host(&self, host: &str, port: u16) -> MailboxResult<()> {
        self.resolve(host, port).await.map(|_| ())
    }
}

impl Mailbox for ImapConnector {
    type Session = ImapSession;

    async fn connect(
        &self,
        settings: &ImapSettings,
        password: &Secret,
    ) -> MailboxResult<ImapSession> {
        let stream = self.open_stream(settings).await?;
        let mut client = Client::new(stream);
        self.greet(&mut client).await?;
        if settings.security == Security::Starttls {
            tokio::time::timeout(
                self.command_timeout(),
                client.run_command_and_check_ok("STARTTLS", None),
            )
            .await
            .map_err(|_| MailboxError::new(ErrorKind::Tls, "STARTTLS timed out"))?
            .map_err(|e| MailboxError::new(ErrorKind::Tls, format!("STARTTLS refused: {e}")))?;
            let Stream::Plain(tcp) = client.into_inner() else {
                unreachable!("STARTTLS starts from plaintext")
            };
            client = Client::new(Stream::Tls(Box::new(self.tls(settings, tcp).await?)));
        }
        let session = tokio::time::timeout(
            self.command_timeout(),
            client.login(&settings.user, password.expose()),
        )
        .await
        .map_err(|_| MailboxError::new(ErrorKind::Auth, "login timed out"))?
        .map_err(|(e, _)| {
            // The server's text only: the command (with the password) is never echoed.
            let kind = match e {
                async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_) => {
                    ErrorKind::Auth
                }
                _ => ErrorKind::Connect,
            };
            MailboxError::new(kind, format!("login as {} failed: {e}", settings.user))
        })?;
        tracing::debug!(host = %settings.host, user = %settings.user, "IMAP login accepted");
        Ok(ImapSession {
            session,
            timeout: self.command_timeout(),
        })
    }
}

/// A logged-in, read-only session.
pub struct ImapSession {
    session: Session<Stream>,
    timeout: Duration,
}

fn protocol(what: &str, e: async_imap::error::Error) -> MailboxError {
    MailboxError::new(ErrorKind::Protocol, format!("{what}: {e}"))
}

impl ImapSession {
    async fn uid_search(&mut self, query: &str) -> MailboxResult<Vec<u32>> {
        let timeout = self.timeout;
        let set = tokio::time::timeout(timeout, self.session.uid_search(query))
            .await
            .map_err(|_| MailboxError::new(ErrorKind::Protocol, "UID SEARCH timed out"))?
            .map_err(|e| protocol("UID SEARCH", e))?;
        let mut uids: Vec<u32> = set.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// One UID FETCH of `item` for every UID; `pick` reads that item from each response.
    /// A UID whose item came back NIL, or that got no response, is left out.
    async fn fetch_section(
        &mut self,
        uids: &[u32],
        item: &str,
        pick: fn(Fetched) -> Option<Vec<u8>>,
    ) -> MailboxResult<Vec<FetchedMessage>> {
        if uids.is_empty() {
            return Ok(vec![]);
        }
        let fetches = self
            .uid_fetch_all(&sequence_set(uids), &format!("(UID {item})"))
            .await?;
        Ok(fetches
            .into_iter()
            .filter_map(|f| {
                let uid = f.uid?;
                Some(FetchedMessage { uid, raw: pick(f)? })
            })
            .collect())
    }

    /// One UID FETCH, read response by response. async-imap's own `uid_fetch` stream ends at
    /// the tagged reply without saying whether it was OK, NO or BAD, which would make a
    /// refused batch look like one whose messages had vanished; and Dovecot answers a message
    /// it cannot read with BYE. Both come back as a [`Refusal`] with the server's words.
    async fn uid_fetch_all(&mut self, set: &str, query: &str) -> MailboxResult<Vec<Fetched>> {
        let timeout = self.timeout;
        let session = &mut self.session;
        let fut = async move {
            let tag = session
                .run_command(format!("UID FETCH {set} {query}"))
                .await
                .map_err(|e| protocol("UID FETCH", e))?;
            let mut out = Vec::new();
            let mut bye: Option<String> = None;
            loop {
                let response = session
                    .read_response()
                    .await
                    .map_err(|e| protocol("UID FETCH", e.into()))?;
                let Some(response) = response else {
                    return Err(match bye {
                        Some(words) => MailboxError::refused(
                            Refusal::Closed,
                            format!("UID FETCH: the server closed the session: {words}"),
                        ),
                        None => MailboxError::new(
                            ErrorKind::Protocol,
                            "UID FETCH: connection closed by the server",
                        ),
                    });
                };
                match response.parsed() {
                    Response::Fetch(_, attrs) => out.push(Fetched::from_attrs(attrs)),
                    Response::Done {
                        tag: done,
                        status,
                        outcome,
                    } if *done == tag => {
                        let words = outcome_words(outcome);
                        return match status {
                            Status::Ok => Ok(out),
                            Status::No => Err(MailboxError::refused(
                                Refusal::Answered,
                                format!("UID FETCH answered NO: {words}"),
                            )),
                            _ => Err(MailboxError::refused(
                                Refusal::Answered,
                                format!("UID FETCH answered BAD: {words}"),
                            )),
                        };
                    }
                    Response::Data {
                        status: Status::Bye,
                        outcome,
                    } => bye = Some(outcome_words(outcome)),
                    _ => {} // unilateral EXISTS, EXPUNGE, flags: nothing the poller needs
                }
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| MailboxError::new(ErrorKind::Protocol, "UID FETCH timed out"))?
    }
}

fn outcome_words(outcome: &async_imap::imap_proto::Outcome<'_>) -> String {
    let code = outcome
        .code
        .as_ref()
        .map(|c| format!("[{c:?}] "))
        .unwrap_or_default();
    let text = outcome.information.as_deref().unwrap_or("(no text)");
    format!("{code}{text}")
}

/// What one FETCH response carried, copied out of the connection's buffer.
#[derive(Debug, Default)]
struct Fetched {
    uid: Option<u32>,
    size: Option<u32>,
    internal_date: Option<String>,
    header: Option<Vec<u8>>,
    body: Option<Vec<u8>>,
}

impl Fetched {
    fn from_attrs(attrs: &[AttributeValue<'_>]) -> Fetched {
        let mut f = Fetched::default();
        for attr in attrs {
            match attr {
                AttributeValue::Uid(u) => f.uid = Some(*u),
                AttributeValue::Rfc822Size(s) => f.size = Some(*s),
                AttributeValue::InternalDate(d) => f.internal_date = Some(d.to_string()),
                AttributeValue::BodySection {
                    section: Some(SectionPath::Full(MessageSection::Header)),
                    data,
                    ..
                }
                | AttributeValue::Rfc822Header(data) => {
                    f.header = data.as_ref().map(|d| d.to_vec());
                }
                AttributeValue::BodySection {
                    section: None,
                    data,
                    ..
                }
                | AttributeValue::Rfc822(data) => f.body = data.as_ref().map(|d| d.to_vec()),
                _ => {}
            }
        }
        f
    }

    fn arrived(&self) -> Option<chrono::DateTime<Utc>> {
        let d = self.internal_date.as_deref()?;
        chrono::DateTime::parse_from_str(d, "%d-%b-%Y %H:%M:%S %z")
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }
}

impl MailboxSession for ImapSession {
    async fn examine(&mut self, folder: &str) -> MailboxResult<FolderInfo> {
        let timeout = self.timeout;
        let mailbox = tokio::time::timeout(timeout, self.session.examine(encode_mailbox(folder)))
            .await
            .map_err(|_| MailboxError::new(ErrorKind::Protocol, "EXAMINE timed out"))?
            .map_err(|e| match e {
                async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_) => {
                    MailboxError::new(
                        ErrorKind::Folder,
                        format!("cannot open folder {folder:?}: {e}"),
                    )
                }
                other => protocol("EXAMINE", other),
            })?;
        let uidvalidity = mailbox.uid_validity.ok_or_else(|| {
            MailboxError::new(
                ErrorKind::Protocol,
                format!("no UIDVALIDITY for {folder:?}"),
            )
        })?;
        Ok(FolderInfo {
            uidvalidity,
            uidnext: mailbox.uid_next,
            exists: mailbox.exists,
        })
    }

    async fn search_since(&mut self, since: Option<NaiveDate>) -> MailboxResult<Vec<u32>> {
        let query = match since {
            Some(d) => format!("SINCE {}", d.format("%-d-%b-%Y")),
            None => "ALL".to_string(),
        };
        self.uid_search(&query).await
    }

    async fn search_above(&mut self, uid: u32) -> MailboxResult<Vec<u32>> {
        // `n:*` always matches the highest UID even when it is below n: filter it out.
        let mut uids = self
            .uid_search(&format!("UID {}:*", uid.saturating_add(1)))
            .await?;
        uids.retain(|&u| u > uid);
        Ok(uids)
    }

    async fn metadata(&mut self, uids: &[u32]) -> MailboxResult<Vec<MessageMeta>> {
        if uids.is_empty() {
            return Ok(vec![]);
        }
        let fetches = self
            .uid_fetch_all(&sequence_set(uids), "(UID RFC822.SIZE INTERNALDATE)")
            .await?;
        Ok(fetches
            .iter()
            .filter_map(|f| {
                Some(MessageMeta {
                    uid: f.uid?,
                    // 0 is no real message's size: some servers say it for one they cannot
                    // convert. Unknown, then, like a size left out.
                    size: f.size.filter(|&s| s > 0).map(u64::from),
                    arrived: f.arrived(),
                })
            })
            .collect())
    }

    async fn fetch_headers(&mut self, uids: &[u32]) -> MailboxResult<Vec<FetchedMessage>> {
        self.fetch_section(uids, "BODY.PEEK[HEADER]", |f| f.header)
            .await
    }

    async fn fetch(&mut self, uids: &[u32]) -> MailboxResult<Vec<FetchedMessage>> {
        self.fetch_section(uids, "BODY.PEEK[]", |f| f.body).await
    }

    async fn fetch_head(
        &mut self,
        uid: u32,
        max_bytes: u64,
    ) -> MailboxResult<Option<FetchedMessage>> {
        let fetches = self
            .uid_fetch_all(
                &uid.to_string(),
                &format!("(UID BODY.PEEK[]<0.{max_bytes}>)"),
            )
            .await?;
        Ok(fetches
            .into_iter()
            .find(|f| f.uid == Some(uid))
            .and_then(|f| f.body)
            .map(|raw| FetchedMessage { uid, raw }))
    }

    async fn logout(mut self) {
        // Best effort: the work is done; a slow or failed LOGOUT changes nothing.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}

/// Mailbox names travel in IMAP's modified UTF-7 (RFC 3501 5.1.3): `Entwürfe` is sent as
/// `Entw&APw-rfe`, `&` as `&-`; printable ASCII passes through.
pub fn encode_mailbox(name: &str) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            let chars = chunk.len() + 1;
            for i in 0..chars {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// `1,2,3,5,7,8` -> `1:3,5,7:8`: one short command for hundreds of UIDs.
pub fn sequence_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// Plain TCP or TLS, behind one type so a STARTTLS upgrade keeps the same client type.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_names_use_modified_utf7() {
        assert_eq!(encode_mailbox("INBOX"), "INBOX");
        assert_eq!(encode_mailbox("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(encode_mailbox("A&B"), "A&-B");
        assert_eq!(encode_mailbox("日本語"), "&ZeVnLIqe-");
        assert_eq!(
            encode_mailbox("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
    }

    #[test]
    fn sequence_sets_compress_runs() {
        assert_eq!(sequence_set(&[5, 1, 2, 3, 7, 8, 10]), "1:3,5,7:8,10");
        assert_eq!(sequence_set(&[4]), "4");
    }

    #[test]
    fn private_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "0.0.0.0",
            // IPv4-compatible, NAT64 and 6to4 forms of private IPv4 addresses
            "::10.0.0.1",
            "::127.0.0.1",
            "::192.168.1.1",
            "64:ff9b::10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:c0a8:0101::1",
            "2002:0a00:0001:1::5",
            "2002:7f00:1::",
            // site-local
            "fec0::1",
            "feff:1::2",
            // multicast
            "224.0.0.1",
            "239.255.255.250",
            "ff02::1",
            "ff0e::101",
            "::ffff:224.0.0.251",
            // reserved 240/4
            "240.0.0.1",
            "254.1.2.3",
            "255.255.255.254",
            "::ffff:250.1.1.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        // Public addresses, also inside the same IPv6 forms.
        for ip in [
            "93.184.216.34",
            "2606:4700::1111",
            "1.1.1.1",
            "223.255.255.255",
            "::ffff:93.184.216.34",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
            "::93.184.216.34",
            "2001:4860:4860::8888",
            "2001:db8:ff00::1",
        ] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }
}
