//! The IMAP session of one poll: reopened when the server closes it in answer to a command
//! (Dovecot answers BYE to a FETCH it cannot serve), and FETCH commands split down to single
//! messages when the server refuses them, so one unreadable message never blocks the rest.

use std::collections::{BTreeMap, HashMap};

use crate::model::{ErrorKind, ImapSettings, Secret};
use crate::ports::{
    FetchedMessage, Mailbox, MailboxError, MailboxResult, MailboxSession, MessageMeta, Refusal,
};

/// How many times one poll may reopen a session the server closed (Dovecot answers a FETCH it
/// cannot serve with BYE): enough to single out several unreadable messages, and bounded so a
/// server that closes every session ends the poll (the next one goes on from the watermark).
pub(super) const MAX_REOPENS: u32 = 24;

/// The IMAP session of one poll, reopened (and its folder examined again) when the server
/// closed it in answer to a command.
pub(super) struct Conn<'m, M: Mailbox> {
    mailbox: &'m M,
    settings: &'m ImapSettings,
    password: Secret,
    session: Option<M::Session>,
    /// The folder being read and its UIDVALIDITY: a reopened session must see the same UIDs.
    folder: Option<(String, u32)>,
    reopens: u32,
}

impl<'m, M: Mailbox> Conn<'m, M> {
    /// A poll's session, freshly logged in.
    pub(super) fn new(
        mailbox: &'m M,
        settings: &'m ImapSettings,
        password: Secret,
        session: M::Session,
    ) -> Self {
        Conn {
            mailbox,
            settings,
            password,
            session: Some(session),
            folder: None,
            reopens: 0,
        }
    }
}

impl<M: Mailbox> Conn<'_, M> {
    pub(super) async fn session(&mut self) -> Result<&mut M::Session, MailboxError> {
        if self.session.is_none() {
            if self.reopens >= MAX_REOPENS {
                return Err(MailboxError::new(
                    ErrorKind::Protocol,
                    format!(
                        "the server closed the session {} times in one poll",
                        self.reopens
                    ),
                ));
            }
            self.reopens += 1;
            let mut session = self.mailbox.connect(self.settings, &self.password).await?;
            if let Some((folder, uidvalidity)) = &self.folder {
                let info = session.examine(folder).await?;
                if info.uidvalidity != *uidvalidity {
                    return Err(MailboxError::new(
                        ErrorKind::Protocol,
                        format!("the UIDVALIDITY of {folder:?} changed during the poll"),
                    ));
                }
            }
            self.session = Some(session);
        }
        Ok(self.session.as_mut().expect("opened above"))
    }

    /// A session the server closed, or one that failed mid-command, is not used again; one
    /// that answered NO (a refused FETCH, a missing folder) still is.
    pub(super) fn check<T>(&mut self, result: MailboxResult<T>) -> MailboxResult<T> {
        if let Err(e) = &result {
            if e.refusal != Some(Refusal::Answered) && e.kind != ErrorKind::Folder {
                self.session = None;
            }
        }
        result
    }

    pub(super) async fn examine(
        &mut self,
        folder: &str,
    ) -> MailboxResult<crate::ports::FolderInfo> {
        self.folder = None;
        let r = self.session().await?.examine(folder).await;
        let info = self.check(r)?;
        self.folder = Some((folder.to_string(), info.uidvalidity));
        Ok(info)
    }

    pub(super) async fn search_since(
        &mut self,
        since: Option<chrono::NaiveDate>,
    ) -> MailboxResult<Vec<u32>> {
        let r = self.session().await?.search_since(since).await;
        self.check(r)
    }

    pub(super) async fn search_above(&mut self, uid: u32) -> MailboxResult<Vec<u32>> {
        let r = self.session().await?.search_above(uid).await;
        self.check(r)
    }

    pub(super) async fn metadata(&mut self, uids: &[u32]) -> MailboxResult<Vec<MessageMeta>> {
        let r = self.session().await?.metadata(uids).await;
        self.check(r)
    }

    pub(super) async fn read(
        &mut self,
        part: Part,
        uids: &[u32],
    ) -> MailboxResult<Vec<FetchedMessage>> {
        let session = self.session().await?;
        let r = match part {
            Part::Header => session.fetch_headers(uids).await,
            Part::Whole => session.fetch(uids).await,
        };
        self.check(r)
    }

    pub(super) async fn fetch_head(
        &mut self,
        uid: u32,
        max_bytes: u64,
    ) -> MailboxResult<Option<FetchedMessage>> {
        let r = self.session().await?.fetch_head(uid, max_bytes).await;
        self.check(r)
    }

    pub(super) async fn logout(mut self) {
        if let Some(session) = self.session.take() {
            session.logout().await;
        }
    }
}

/// The byte-returning FETCH stages.
#[derive(Debug, Clone, Copy)]
pub(super) enum Part {
    Header,
    Whole,
}

impl Part {
    pub(super) fn item(self) -> &'static str {
        match self {
            Part::Header => "BODY.PEEK[HEADER]",
            Part::Whole => "BODY.PEEK[]",
        }
    }
}

pub(super) fn no_content(uid: u32, part: Part, refusal: Option<&str>) -> String {
    let item = part.item();
    match refusal {
        None => format!(
            "the server returned no content for UID {uid} ({item}; expunged during the poll, or unreadable)"
        ),
        // A server may expunge what it could not read: its first words are all there will be.
        Some(words) => format!(
            "the server returned no content for UID {uid} ({item}) after refusing it with others: {words}"
        ),
    }
}

pub(super) fn refused(uid: u32, item: &str, words: &str) -> String {
    format!("the server refused UID FETCH {item} of UID {uid}: {words}")
}

/// A refused command is split in two until each refusal is down to one message; the stack
/// keeps UID order, and each half carries the words of the refusal that split it.
pub(super) type Work = Vec<(Vec<u32>, Option<String>)>;

pub(super) fn split(work: &mut Work, set: &[u32], words: String) {
    let (first, second) = set.split_at(set.len() / 2);
    work.push((second.to_vec(), Some(words.clone())));
    work.push((first.to_vec(), Some(words)));
}

/// Size and arrival of each UID. A UID the server says nothing about, or gives no size for,
/// gets an unknown size (the body stage then decides); one it refuses on its own is returned
/// apart with the server's words.
pub(super) async fn read_sizes<M: Mailbox>(
    conn: &mut Conn<'_, M>,
    uids: &[u32],
) -> Result<(Vec<MessageMeta>, Vec<(MessageMeta, String)>), MailboxError> {
    let mut metas = Vec::with_capacity(uids.len());
    let mut unreadable = Vec::new();
    let mut work: Work = vec![(uids.to_vec(), None)];
    while let Some((set, _)) = work.pop() {
        match conn.metadata(&set).await {
            Ok(got) => {
                let got: HashMap<u32, MessageMeta> = got.into_iter().map(|m| (m.uid, m)).collect();
                for &uid in &set {
                    let mut meta = got.get(&uid).copied().unwrap_or(MessageMeta {
                        uid,
                        size: None,
                        arrived: None,
                    });
                    meta.size = meta.size.filter(|&s| s > 0);
                    metas.push(meta);
                }
            }
            Err(e) if e.refusal.is_some() => match set[..] {
                [uid] => unreadable.push((
                    MessageMeta {
                        uid,
                        size: None,
                        arrived: None,
                    },
                    refused(uid, "RFC822.SIZE", &e.message),
                )),
                _ => split(&mut work, &set, e.message),
            },
            Err(e) => return Err(e),
        }
    }
    Ok((metas, unreadable))
}

/// Reads `part` of every UID, splitting a refused command down to single messages. Every UID
/// gets an answer: its bytes, or why the server gave none (in its own words where it said any).
pub(super) async fn read_split<M: Mailbox>(
    conn: &mut Conn<'_, M>,
    part: Part,
    uids: &[u32],
) -> Result<BTreeMap<u32, Result<Vec<u8>, String>>, MailboxError> {
    let mut out = BTreeMap::new();
    let mut work: Work = vec![(uids.to_vec(), None)];
    while let Some((set, refusal)) = work.pop() {
        match conn.read(part, &set).await {
            Ok(got) => {
                let mut got: HashMap<u32, Vec<u8>> =
                    got.into_iter().map(|m| (m.uid, m.raw)).collect();
                for &uid in &set {
                    let answer = match got.remove(&uid) {
                        Some(raw) if !raw.is_empty() => Ok(raw),
                        Some(_) => Err(format!(
                            "the server returned {} of UID {uid} empty",
                            part.item()
                        )),
                        None => Err(no_content(uid, part, refusal.as_deref())),
                    };
                    out.insert(uid, answer);
                }
            }
            Err(e) if e.refusal.is_some() => match set[..] {
                [uid] => {
                    out.insert(uid, Err(refused(uid, part.item(), &e.message)));
                }
                _ => split(&mut work, &set, e.message),
            },
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The first `max_bytes` of one message, or why the server gave none.
pub(super) async fn read_head<M: Mailbox>(
    conn: &mut Conn<'_, M>,
    uid: u32,
    max_bytes: u64,
) -> Result<Result<Vec<u8>, String>, MailboxError> {
    let item = format!("BODY.PEEK[]<0.{max_bytes}>");
    match conn.fetch_head(uid, max_bytes).await {
        Ok(Some(m)) if !m.raw.is_empty() => Ok(Ok(m.raw)),
        Ok(Some(_)) => Ok(Err(format!(
            "the server returned {item} of UID {uid} empty"
        ))),
        Ok(None) => Ok(Err(no_content(uid, Part::Whole, None))),
        Err(e) if e.refusal.is_some() => Ok(Err(refused(uid, &item, &e.message))),
        Err(e) => Err(e),
    }
}
