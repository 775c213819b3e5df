//! [`Outbox`]: a user's message through the ports, from the access check to the stream entry.
//!
//! Order, so a deny leaks nothing and changes nothing: the account and whether the caller may
//! send from it (R-S2: 403 before the parent is even read, so a hidden parent cannot be probed),
//! then the parent (404 when it does not exist), then the message's fields (422 naming the
//! field), then the send. Only a sent message is stored: its record (R-S4, with the Message-ID
//! SES gave it as the recipient sees it), both its ids in the message index marked ours on the
//! thread, and an `email_sent` entry in the parent's stream, so the customer's answer threads
//! (R-L1) even without the `[#N]` tag. A store failure after SES accepted the message is
//! answered 503 with the mail sent and unrecorded: the one window where a retry sends twice.

use chrono::{DateTime, Utc};

use super::recipients::{candidates, reply_recipients, reply_subject};
use super::request::{check_count, content, mailboxes, Content, ReplyRequest, SendRequest};
use crate::access::Caller;
use crate::dispatch::mime::{self, Draft, ExtraHeader, Mailbox};
use crate::dispatch::records::{SentKind, SentRecord};
use crate::dispatch::template::tag_subject;
use crate::error::{describe, Invalid, StoreError};
use crate::model::{Account, AccountKind, EmailRecord, SendAs};
use crate::ports::{AccountStore, Crm, DispatchStore, EmailStore, IdentityStatus, Mailer, Streams};
use crate::records::{normalize_address, RecordKind, RecordRef};
use crate::types::{CaseNumber, EmailAddress, MessageId};
use crate::SCHEMA_VERSION;

/// The ports a send works through. In the API all but `mailer` are the one table.
pub struct Outbox<'a, S, D, C, M> {
    pub store: &'a S,
    pub dispatch: &'a D,
    pub crm: &'a C,
    pub mailer: &'a M,
}

/// Why nothing was sent. The API answers 403, 404, 422 and 5xx.
#[derive(Debug)]
pub enum SendError {
    /// The caller may not send from the account (R-S2).
    Forbidden(String),
    /// `what` does not exist (or may not be read by the caller: the same answer); `field`
    /// names the request field that named it (`parent`), none for the path's id.
    NotFound {
        field: Option<String>,
        what: String,
    },
    Invalid(Invalid),
    Store(StoreError),
}

impl From<Invalid> for SendError {
    fn from(e: Invalid) -> Self {
        SendError::Invalid(e)
    }
}

impl From<StoreError> for SendError {
    fn from(e: StoreError) -> Self {
        SendError::Store(e)
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Forbidden(m) => write!(f, "forbidden: {m}"),
            SendError::NotFound { what, .. } => write!(f, "{what} not found"),
            SendError::Invalid(e) => write!(f, "{e}"),
            SendError::Store(e) => write!(f, "{e}"),
        }
    }
}

pub type SendResult<T> = Result<T, SendError>;

/// Where a message goes in its thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Thread {
    in_reply_to: Option<MessageId>,
    references: Vec<MessageId>,
    /// The message index's thread key; none for a new thread (our own id starts it).
    key: Option<String>,
    case: Option<CaseNumber>,
}

/// A reply prepared from the email it answers: what `GET /v1/emails/{id}/reply-draft` shows,
/// and what a reply sends.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyPlan {
    pub account: Account,
    pub email_id: String,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub subject: String,
    pub in_reply_to: Option<MessageId>,
    pub references: Vec<MessageId>,
    pub parent: Option<RecordRef>,
    pub case: Option<CaseNumber>,
    thread_key: String,
}

/// Everything one send needs, checked.
struct Outgoing {
    account: Account,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    bcc: Vec<Mailbox>,
    subject: String,
    content: Content,
    thread: Thread,
    parent: Option<RecordRef>,
    email_id: Option<String>,
}

/// A send's id (its `SentRecord` key and `X-Mailroom-Id`): the time and a random `nonce`
/// from the caller, in the header's alphabet.
pub fn send_id(now: DateTime<Utc>, nonce: u64) -> String {
    format!("api:{}:{nonce:016x}", now.format("%Y%m%dT%H%M%S%3fZ"))
}

impl<S, D, C, M> Outbox<'_, S, D, C, M>
where
    S: AccountStore + EmailStore,
    D: DispatchStore,
    C: Crm + Streams,
    M: Mailer,
{
    /// `POST /v1/emails`: a new message, with an optional parent. `id` from [`send_id`].
    pub async fn send(
        &self,
        caller: &Caller,
        req: &SendRequest,
        id: &str,
        now: DateTime<Utc>,
    ) -> SendResult<SentRecord> {
        let account = self.sendable_account(caller, &req.account).await?;
        let parent = req.parent.as_ref().map(|p| p.record()).transpose()?;
        let thread = match &parent {
            Some(p) => self.parent_thread(p).await?,
            None => Thread::default(),
        };
        let message = req.message()?;
        let subject = match thread.case {
            Some(n) => tag_subject(&message.subject, n),
            None => message.subject,
        };
        let out = Outgoing {
            account,
            to: message.to,
            cc: message.cc,
            bcc: message.bcc,
            subject,
            content: message.content,
            thread,
            parent,
            email_id: None,
        };
        self.deliver(caller, out, id, now).await
    }

    /// The reply (or reply-all) to stored email `email_id`, prepared, not sent. 404 when the
    /// caller may not read the email (R-P4), 403 when they may not send from the account.
    pub async fn reply_plan(
        &self,
        caller: &Caller,
        email_id: &str,
        account: Option<&str>,
        all: bool,
    ) -> SendResult<ReplyPlan> {
        let missing = || SendError::NotFound {
            field: None,
            what: format!("email {email_id}"),
        };
        // An id no email can have is not looked up: a key has bounds of its own.
        if email_id.is_empty() || email_id.len() > 256 || email_id.chars().any(char::is_control) {
            return Err(missing());
        }
        let email = self.store.get_email(email_id).await?.ok_or_else(missing)?;
        let accounts = self.store.get_accounts(&email.accounts).await?;
        let case = match email.case {
            Some(n) => self.crm.get_case(n).await?,
            None => None,
        };
        if !accounts
            .iter()
            .any(|a| caller.may_read(&email, a, case.as_ref()))
        {
            return Err(missing());
        }
        let account = match account {
            Some(name) => self.sendable_account(caller, name).await?,
            None => {
                // The case's account, else the first the caller may send from, else the first
                // (which answers 403 below).
                let by_case = case
                    .as_ref()
                    .and_then(|c| accounts.iter().find(|a| a.name == c.mail_account));
                let chosen = by_case
                    .or_else(|| accounts.iter().find(|a| caller.may_send_from(a)))
                    .or(accounts.first())
                    .cloned()
                    .ok_or_else(missing)?;
                if !caller.may_send_from(&chosen) {
                    return Err(forbidden(&chosen.name));
                }
                chosen
            }
        };
        let excluded = self.excluded(caller, &account, &email).await?;
        let recipients = reply_recipients(&email, all, &excluded);
        let thread = self.email_thread(&email).await?;
        let parent = match email.case {
            Some(n) => Some(RecordRef::case(n.get())),
            None => email.parent.clone(),
        };
        Ok(ReplyPlan {
            email_id: email.email_id.clone(),
            to: recipients.to,
            cc: recipients.cc,
            subject: reply_subject(email.subject.as_deref(), email.case),
            in_reply_to: thread.in_reply_to,
            references: thread.references,
            parent,
            case: email.case,
            thread_key: thread.key.unwrap_or_else(|| email.message_id.clone()),
            account,
        })
    }

    /// `POST /v1/emails/{id}/reply`: the prepared reply, with the request's body, extra Cc
    /// and Bcc, and attachments, sent.
    pub async fn reply(
        &self,
        caller: &Caller,
        email_id: &str,
        req: &ReplyRequest,
        id: &str,
        now: DateTime<Utc>,
    ) -> SendResult<SentRecord> {
        let plan = self
            .reply_plan(caller, email_id, req.account.as_deref(), req.all)
            .await?;
        let mut cc = plan.cc;
        for m in mailboxes("cc", &req.cc)? {
            let known = plan.to.iter().chain(&cc).any(|o| o.address == m.address);
            if !known {
                cc.push(m);
            }
        }
        let bcc = mailboxes("bcc", &req.bcc)?;
        if plan.to.is_empty() {
            return Err(Invalid::new(
                "all",
                "nobody to answer: every address on the email is Mailroom's or yours",
            )
            .into());
        }
        check_count(&[("to", &plan.to), ("cc", &cc), ("bcc", &bcc)])?;
        let content = content(&req.text, req.html.as_deref(), &req.attachments)?;
        let out = Outgoing {
            account: plan.account,
            to: plan.to,
            cc,
            bcc,
            subject: plan.subject,
            content,
            thread: Thread {
                in_reply_to: plan.in_reply_to,
                references: plan.references,
                key: Some(plan.thread_key),
                case: plan.case,
            },
            parent: plan.parent,
            email_id: Some(plan.email_id),
        };
        self.deliver(caller, out, id, now).await
    }

    /// The account, if the caller may send from it (R-S2); an unknown one is the request's
    /// fault (422 `account`).
    async fn sendable_account(&self, caller: &Caller, name: &str) -> SendResult<Account> {
        let unknown = || Invalid::new("account", format!("there is no account {name:?}"));
        // A name no account can have is not looked up (the store refuses empty keys).
        if crate::model::validate_account_name(name).is_err() {
            return Err(unknown().into());
        }
        let account = self.store.get_account(name).await?.ok_or_else(unknown)?;
        if !caller.may_send_from(&account) {
            return Err(forbidden(&account.name));
        }
        Ok(account)
    }

    /// A parent's place in a thread: a case's thread is its stream's messages (received and
    /// sent, oldest first), answered at its last (R-S3); other records start a new thread.
    async fn parent_thread(&self, parent: &RecordRef) -> SendResult<Thread> {
        let missing = || SendError::NotFound {
            field: Some("parent".into()),
            what: parent.to_string(),
        };
        if parent.kind != RecordKind::Case {
            return match self.crm.record_name(parent).await? {
                Some(_) => Ok(Thread::default()),
                None => Err(missing()),
            };
        }
        let n = parent.case_number().ok_or_else(missing)?;
        let case = self.crm.get_case(n).await?.ok_or_else(missing)?;
        let mut ids: Vec<MessageId> = Vec::new();
        for e in self.crm.stream(parent).await? {
            if let Some(id) = e
                .message_id
                .as_deref()
                .and_then(|m| MessageId::parse(m).ok())
            {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        Ok(Thread {
            in_reply_to: ids.last().cloned(),
            references: ids,
            key: Some(case.thread_key),
            case: Some(n),
        })
    }

    /// An answer to `email`: In-Reply-To its id, References its thread then its id (RFC 5322
    /// 3.6.4), on the thread the message index has for it.
    async fn email_thread(&self, email: &EmailRecord) -> SendResult<Thread> {
        let entry = self
            .crm
            .messages(std::slice::from_ref(&email.message_id))
            .await?
            .into_iter()
            .find(|e| e.message_id == email.message_id);
        // A synthetic id is ours alone: no other client has it to thread by.
        let own = (!email.synthetic_id)
            .then(|| MessageId::parse(&email.message_id).ok())
            .flatten();
        let mut references: Vec<MessageId> = email
            .references
            .iter()
            .filter_map(|r| MessageId::parse(r).ok())
            .collect();
        references.extend(own.clone());
        Ok(Thread {
            in_reply_to: own,
            references,
            key: entry.map(|e| e.thread_key),
            case: email.case,
        })
    }

    /// Addresses a prepared reply never goes to: the sending account's, every other Mailroom
    /// account's on the email (the address index), the caller's own.
    async fn excluded(
        &self,
        caller: &Caller,
        account: &Account,
        email: &EmailRecord,
    ) -> SendResult<Vec<String>> {
        let mut out = self.store.own_addresses(&candidates(email)).await?;
        out.extend(account.address.iter().map(|a| normalize_address(a)));
        out.extend(caller.user.emails.iter().map(|a| normalize_address(a)));
        Ok(out)
    }

    /// Who the message is From, and its Reply-To (R-S1, R-S3): a group account's address
    /// (From, or Reply-To when it sends as the user), a personal account's own verified one.
    async fn sender(
        &self,
        caller: &Caller,
        account: &Account,
    ) -> SendResult<(Mailbox, Vec<Mailbox>)> {
        let own = account
            .address
            .as_deref()
            .and_then(|a| EmailAddress::parse(a).ok())
            .ok_or_else(|| {
                Invalid::new(
                    "account",
                    format!("account {} has no address to send from", account.name),
                )
            })?;
        match account.kind {
            AccountKind::Group => {
                let name = account
                    .auto_reply
                    .as_ref()
                    .and_then(|a| a.from_name.clone())
                    .unwrap_or_default();
                let group = Mailbox::new(name, own);
                match account.send_as {
                    SendAs::From => Ok((group.clone(), vec![group])),
                    SendAs::ReplyTo => {
                        let mine = caller
                            .user
                            .emails
                            .iter()
                            .find_map(|e| EmailAddress::parse(e).ok())
                            .ok_or_else(|| {
                                Invalid::new(
                                    "account",
                                    format!(
                                        "account {} sends From its users' own addresses, and \
                                         you have none",
                                        account.name
                                    ),
                                )
                            })?;
                        self.verified(&mine).await?;
                        Ok((Mailbox::bare(mine), vec![group]))
                    }
                }
            }
            AccountKind::Personal => {
                self.verified(&own).await?;
                Ok((Mailbox::bare(own), Vec::new()))
            }
        }
    }

    /// Refuses an address SES does not let send yet (422 `account`).
    async fn verified(&self, address: &EmailAddress) -> SendResult<()> {
        match self.mailer.verify_identity(address).await {
            Ok(IdentityStatus::Verified) => Ok(()),
            Ok(IdentityStatus::Pending) => Err(Invalid::new(
                "account",
                format!(
                    "{address} is not a verified sending identity yet: follow the link SES \
                     mailed to it"
                ),
            )
            .into()),
            Err(e) if !e.is_retryable() => Err(Invalid::new("account", describe(&e)).into()),
            Err(e) => Err(e.into()),
        }
    }

    /// Composes, sends, then records (R-S4): the record first, then the index and stream.
    async fn deliver(
        &self,
        caller: &Caller,
        o: Outgoing,
        id: &str,
        now: DateTime<Utc>,
    ) -> SendResult<SentRecord> {
        let (from, reply_to) = self.sender(caller, &o.account).await?;
        let message_id = mime::message_id(id, &from.address);
        let draft = Draft {
            message_id,
            from,
            to: o.to,
            cc: o.cc,
            bcc: o.bcc,
            reply_to,
            subject: o.subject,
            text: o.content.text,
            html: o.content.html,
            in_reply_to: o.thread.in_reply_to,
            references: o.thread.references,
            date: now,
            // Human mail: no Auto-Submitted. The id lets a copy coming back be known (R-I3).
            headers: vec![ExtraHeader::MailroomId(id.to_string())],
            attachments: o.content.attachments,
        };
        let outgoing = draft.outgoing()?;
        let service_id = match self.mailer.send_raw(&outgoing).await {
            Ok(id) => id,
            // SES refused this message for good (an unverified identity, a paused account).
            Err(e) if !e.is_retryable() => {
                return Err(Invalid::new("account", describe(&e)).into());
            }
            Err(e) => return Err(e.into()),
        };
        let record = SentRecord {
            v: SCHEMA_VERSION,
            id: id.to_string(),
            kind: SentKind::Api,
            account: o.account.name.clone(),
            from: draft.from.address.to_string(),
            to: draft.recipients().iter().map(|a| a.to_string()).collect(),
            subject: draft.subject.clone(),
            in_reply_to: draft.in_reply_to.as_ref().map(|m| m.as_str().to_string()),
            message_id: draft.message_id.as_str().to_string(),
            ses_message_id: self.mailer.delivered_message_id(&service_id),
            email_id: o.email_id,
            parent: o.parent,
            case: o.thread.case,
            sent_at: now,
            user: Some(caller.name().to_string()),
        };
        self.dispatch.put_sent(&record).await?;
        let thread_key = o.thread.key.unwrap_or_else(|| record.message_id.clone());
        self.crm.index_sent(&record, &thread_key).await?;
        Ok(record)
    }
}

fn forbidden(account: &str) -> SendError {
    SendError::Forbidden(format!("you may not send from account {account}"))
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
