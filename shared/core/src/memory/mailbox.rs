//! A scripted IMAP server behind the [`Mailbox`] port.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};

use crate::model::*;
use crate::ports::*;

/// A scripted IMAP server: folders of (uid, arrival, raw) and a UIDVALIDITY each. Cloning
/// shares the state, so a test keeps a handle while the poller holds another.
#[derive(Clone, Default)]
pub struct FakeMailbox {
    inner: Arc<FakeInner>,
}

#[derive(Default)]
struct FakeInner {
    folders: Mutex<BTreeMap<String, FakeFolder>>,
    password: Mutex<String>,
    log: Mutex<Vec<String>>,
    faults: Mutex<Vec<(u32, FakeStage, FakeFault)>>,
    expunge_refused: Mutex<bool>,
}

/// The FETCH stages a fault can be scripted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeStage {
    /// `RFC822.SIZE INTERNALDATE`
    Size,
    /// `BODY.PEEK[HEADER]`
    Header,
    /// `BODY.PEEK[]`, whole or partial
    Body,
}

/// What the fake server does when a stage asks for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeFault {
    /// Answers the whole command NO with these words (Exchange, a corrupt file).
    Refuse(String),
    /// Answers BYE with these words and closes the session (Dovecot, an unreadable file).
    Bye(String),
    /// Returns no content for it (NIL).
    Nil,
    /// Returns it empty.
    Empty,
    /// Leaves RFC822.SIZE out (only meaningful at [`FakeStage::Size`]).
    NoSize,
}

#[derive(Default, Clone)]
pub struct FakeFolder {
    pub uidvalidity: u32,
    pub messages: Vec<(u32, DateTime<Utc>, Vec<u8>)>,
}

impl FakeMailbox {
    pub fn new(password: &str) -> Self {
        let m = FakeMailbox::default();
        *m.inner.password.lock().unwrap() = password.to_string();
        m
    }
    pub fn append(&self, folder: &str, arrived: DateTime<Utc>, raw: &[u8]) -> u32 {
        let mut folders = self.inner.folders.lock().unwrap();
        let f = folders.entry(folder.to_string()).or_insert(FakeFolder {
            uidvalidity: 1,
            messages: vec![],
        });
        let uid = f.messages.last().map(|m| m.0 + 1).unwrap_or(1);
        f.messages.push((uid, arrived, raw.to_vec()));
        uid
    }
    /// Renumbers the folder under a new UIDVALIDITY, as a server rebuild would.
    pub fn renumber(&self, folder: &str, uidvalidity: u32) {
        let mut folders = self.inner.folders.lock().unwrap();
        let f = folders.get_mut(folder).expect("folder exists");
        f.uidvalidity = uidvalidity;
        for (i, m) in f.messages.iter_mut().enumerate() {
            m.0 = 1000 + i as u32;
        }
    }
    /// Commands issued so far (to assert what the poller asked for).
    pub fn log(&self) -> Vec<String> {
        self.inner.log.lock().unwrap().clone()
    }
    /// Scripts `fault` for every read of `uid` at `stage`.
    pub fn fault(&self, uid: u32, stage: FakeStage, fault: FakeFault) {
        self.inner.faults.lock().unwrap().push((uid, stage, fault));
    }
    /// After refusing a message once, the server expunges it (Dovecot may, for a lost file):
    /// the poller cannot count on a second read.
    pub fn expunge_refused(&self) {
        *self.inner.expunge_refused.lock().unwrap() = true;
    }
    /// The messages still in a folder.
    pub fn uids(&self, folder: &str) -> Vec<u32> {
        let folders = self.inner.folders.lock().unwrap();
        folders
            .get(folder)
            .map(|f| f.messages.iter().map(|m| m.0).collect())
            .unwrap_or_default()
    }
}

pub struct FakeSession {
    inner: Arc<FakeInner>,
    folder: Option<FakeFolder>,
    folder_name: Option<String>,
    closed: bool,
}

impl Mailbox for FakeMailbox {
    type Session = FakeSession;
    async fn connect(&self, _s: &ImapSettings, password: &Secret) -> MailboxResult<FakeSession> {
        if password.expose() != *self.inner.password.lock().unwrap() {
            return Err(MailboxError::new(ErrorKind::Auth, "authentication failed"));
        }
        self.inner.log.lock().unwrap().push("LOGIN".into());
        Ok(FakeSession {
            inner: self.inner.clone(),
            folder: None,
            folder_name: None,
            closed: false,
        })
    }
}

impl FakeSession {
    fn log(&self, s: String) {
        self.inner.log.lock().unwrap().push(s);
    }
    fn folder(&self) -> MailboxResult<&FakeFolder> {
        if self.closed {
            return Err(MailboxError::new(ErrorKind::Connect, "connection lost"));
        }
        self.folder
            .as_ref()
            .ok_or_else(|| MailboxError::new(ErrorKind::Protocol, "no folder selected"))
    }

    fn fault(&self, uid: u32, stage: FakeStage) -> Option<FakeFault> {
        let faults = self.inner.faults.lock().unwrap();
        faults
            .iter()
            .find(|f| f.0 == uid && f.1 == stage)
            .map(|f| f.2.clone())
    }

    /// A command reading `uids` at `stage` is refused as a whole if one of them is scripted
    /// to be: like a real server, it does not say which.
    fn refusal(&mut self, uids: &[u32], stage: FakeStage) -> MailboxResult<()> {
        self.folder()?;
        let refused = uids.iter().find_map(|&u| match self.fault(u, stage) {
            Some(FakeFault::Refuse(w)) => Some((u, Refusal::Answered, w)),
            Some(FakeFault::Bye(w)) => Some((u, Refusal::Closed, w)),
            _ => None,
        });
        let Some((uid, how, words)) = refused else {
            return Ok(());
        };
        if how == Refusal::Closed {
            self.closed = true;
        }
        if *self.inner.expunge_refused.lock().unwrap() {
            if let Some(name) = &self.folder_name {
                let mut folders = self.inner.folders.lock().unwrap();
                if let Some(f) = folders.get_mut(name) {
                    f.messages.retain(|m| m.0 != uid);
                }
            }
            self.inner.faults.lock().unwrap().retain(|f| f.0 != uid);
        }
        Err(MailboxError::refused(how, words))
    }

    /// The content a stage returns for one message, as scripted.
    fn content(&self, uid: u32, stage: FakeStage, raw: Vec<u8>) -> Option<FetchedMessage> {
        match self.fault(uid, stage) {
            Some(FakeFault::Nil) => None,
            Some(FakeFault::Empty) => Some(FetchedMessage { uid, raw: vec![] }),
            _ => Some(FetchedMessage { uid, raw }),
        }
    }
}

impl MailboxSession for FakeSession {
    async fn examine(&mut self, folder: &str) -> MailboxResult<FolderInfo> {
        self.log(format!("EXAMINE {folder}"));
        let f = self
            .inner
            .folders
            .lock()
            .unwrap()
            .get(folder)
            .cloned()
            .ok_or_else(|| MailboxError::new(ErrorKind::Folder, format!("no folder {folder}")))?;
        let info = FolderInfo {
            uidvalidity: f.uidvalidity,
            uidnext: Some(f.messages.last().map(|m| m.0 + 1).unwrap_or(1)),
            exists: f.messages.len() as u32,
        };
        self.folder = Some(f);
        self.folder_name = Some(folder.to_string());
        Ok(info)
    }
    async fn search_since(&mut self, since: Option<NaiveDate>) -> MailboxResult<Vec<u32>> {
        self.log(format!("SEARCH SINCE {since:?}"));
        Ok(self
            .folder()?
            .messages
            .iter()
            .filter(|m| since.is_none_or(|d| m.1.date_naive() >= d))
            .map(|m| m.0)
            .collect())
    }
    async fn search_above(&mut self, uid: u32) -> MailboxResult<Vec<u32>> {
        self.log(format!("SEARCH UID {}:*", uid + 1));
        Ok(self
            .folder()?
            .messages
            .iter()
            .filter(|m| m.0 > uid)
            .map(|m| m.0)
            .collect())
    }
    async fn metadata(&mut self, uids: &[u32]) -> MailboxResult<Vec<MessageMeta>> {
        self.log(format!("FETCH META {uids:?}"));
        self.refusal(uids, FakeStage::Size)?;
        Ok(self
            .folder()?
            .messages
            .iter()
            .filter(|m| uids.contains(&m.0))
            .filter(|m| self.fault(m.0, FakeStage::Size) != Some(FakeFault::Nil))
            .map(|m| MessageMeta {
                uid: m.0,
                size: (self.fault(m.0, FakeStage::Size) != Some(FakeFault::NoSize))
                    .then_some(m.2.len() as u64),
                arrived: Some(m.1),
            })
            .collect())
    }
    async fn fetch_headers(&mut self, uids: &[u32]) -> MailboxResult<Vec<FetchedMessage>> {
        self.log(format!("FETCH HEADER {uids:?}"));
        self.refusal(uids, FakeStage::Header)?;
        Ok(self
            .folder()?
            .messages
            .iter()
            .filter(|m| uids.contains(&m.0))
            .filter_map(|m| {
                let head = crate::ids::split_header_body(&m.2).0.to_vec();
                self.content(m.0, FakeStage::Header, head)
            })
            .collect())
    }
    async fn fetch(&mut self, uids: &[u32]) -> MailboxResult<Vec<FetchedMessage>> {
        self.log(format!("FETCH BODY {uids:?}"));
        self.refusal(uids, FakeStage::Body)?;
        Ok(self
            .folder()?
            .messages
            .iter()
            .filter(|m| uids.contains(&m.0))
            .filter_map(|m| self.content(m.0, FakeStage::Body, m.2.clone()))
            .collect())
    }
    async fn fetch_head(
        &mut self,
        uid: u32,
        max_bytes: u64,
    ) -> MailboxResult<Option<FetchedMessage>> {
        self.log(format!("FETCH HEAD {uid} {max_bytes}"));
        self.refusal(&[uid], FakeStage::Body)?;
        let raw = self
            .folder()?
            .messages
            .iter()
            .find(|m| m.0 == uid)
            .map(|m| m.2[..m.2.len().min(max_bytes as usize)].to_vec());
        Ok(raw.and_then(|raw| self.content(uid, FakeStage::Body, raw)))
    }
    async fn logout(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ImapSettings {
        ImapSettings {
            host: "h".into(),
            port: 993,
            user: "u".into(),
            security: Security::ImplicitTls,
        }
    }

    #[tokio::test]
    async fn a_session_reads_what_was_appended_without_changing_it() {
        let mailbox = FakeMailbox::new("pw");
        let t = DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(mailbox.append("INBOX", t, b"Subject: a\r\n\r\none"), 1);
        assert_eq!(mailbox.append("INBOX", t, b"Subject: b\r\n\r\ntwo"), 2);
        let wrong = mailbox.connect(&settings(), &Secret::new("nope")).await;
        assert!(matches!(wrong, Err(e) if e.kind == ErrorKind::Auth));
        let mut s = mailbox
            .connect(&settings(), &Secret::new("pw"))
            .await
            .unwrap();
        let info = s.examine("INBOX").await.unwrap();
        assert_eq!((info.uidvalidity, info.exists), (1, 2));
        assert_eq!(s.search_above(1).await.unwrap(), [2]);
        let got = s.fetch(&[1, 2]).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].raw, b"Subject: b\r\n\r\ntwo");
        let head = s.fetch_headers(&[1]).await.unwrap();
        assert!(head[0].raw.starts_with(b"Subject: a"));
        assert!(!String::from_utf8_lossy(&head[0].raw).contains("one"));
        assert!(s.examine("Missing").await.is_err());
        s.logout().await;
        // Renumbering models a UIDVALIDITY change; the messages stay.
        mailbox.renumber("INBOX", 7);
        let mut s = mailbox
            .connect(&settings(), &Secret::new("pw"))
            .await
            .unwrap();
        let info = s.examine("INBOX").await.unwrap();
        assert_eq!((info.uidvalidity, info.exists), (7, 2));
        assert!(!mailbox.log().is_empty());
    }
}
