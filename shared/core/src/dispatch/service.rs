//! [`Dispatch`]: what one dispatch event leads to, through the ports. The dispatch function's
//! handler only decodes queue records and calls [`Dispatch::handle`]; `mailroom poll` runs the
//! same code in-process after ingest.
//!
//! Exactly once in effect: every notification has a deterministic key and is created only if
//! absent; every send has an idempotency record (`SentRecord::id`) checked before and written
//! after the send. A crash between the mail service accepting a message and that record
//! being written is the one window in which a redelivery sends it again: at most one extra
//! copy per crash, and only for a crash inside that window (a few milliseconds per send).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::audience::{audience, Audience};
use super::feedback::Feedback;
use super::loops::{auto_reply_suppression, bounced_addresses, reply_address};
use super::mime::{self, AutoSubmitted, Draft, ExtraHeader, Mailbox};
use super::records::{
    FailingAddress, Notification, NotificationKind, SentKind, SentRecord, SuppressedRecord,
};
use super::settings::AutoReply;
use super::template::{tag_subject, Template, TemplateValues};
use crate::messages::{DispatchEvent, EventKind};
use crate::model::{Account, AccountKind, EmailRecord};
use crate::ports::{
    AccountStore, Crm, Directory, DispatchStore, EmailStore, Followers, Mailer, StoreError,
    StoreResult,
};
use crate::records::{normalize_address, Case, RecordRef, User};
use crate::types::{CaseNumber, EmailAddress, MessageId};
use crate::SCHEMA_VERSION;

/// Mail that arrived in its mailbox longer ago than this gets no auto-reply.
pub const STALE_AFTER_HOURS: i64 = 24;

/// Deployment settings of dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchSettings {
    /// How long a bounced or complained-about address gets no notification email.
    pub failing_for: Duration,
    /// The verified address notification emails come from; without it they come from the
    /// group address of the mail they tell of (and personal mail sends none).
    pub notify_from: Option<EmailAddress>,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            failing_for: Duration::days(7),
            notify_from: None,
        }
    }
}

/// The ports dispatch works through. In a Lambda all but `mailer` are the same table.
pub struct Dispatch<'a, S, D, C, F, M> {
    pub store: &'a S,
    pub dispatch: &'a D,
    pub crm: &'a C,
    pub followers: &'a F,
    pub mailer: &'a M,
    pub settings: &'a DispatchSettings,
}

/// What one event did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dispatched {
    pub sent: Vec<SentRecord>,
    pub suppressed: Vec<SuppressedRecord>,
    /// Notifications created now (a redelivery creates none).
    pub notified: usize,
    /// Sends found already done (a redelivery).
    pub already_sent: usize,
    /// Addresses marked failing.
    pub failing: Vec<String>,
}

/// A send to make unless done: its idempotency key, kind and the email it is about.
struct Send<'e> {
    id: String,
    kind: SentKind,
    account: &'e Account,
    email: &'e EmailRecord,
    case: Option<CaseNumber>,
    parent: Option<RecordRef>,
    thread_key: String,
}

impl<S, D, C, F, M> Dispatch<'_, S, D, C, F, M>
where
    S: AccountStore + EmailStore,
    D: DispatchStore,
    C: Crm + Directory,
    F: Followers,
    M: Mailer,
{
    pub async fn handle(
        &self,
        event: &DispatchEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<Dispatched> {
        match event.kind {
            EventKind::EmailLinked => self.on_linked(event, now).await,
            EventKind::EmailDelivered => self.on_delivered(event, now).await,
            EventKind::AccountFailing => self.on_failing(event, now).await,
            // What a new case leads to (the assignee's notification) comes with the email's
            // delivery, which knows the inbox users too, so each user is told once.
            EventKind::CaseCreated => Ok(Dispatched::default()),
        }
    }

    /// Loads what an email event is about. The email is written before its events are
    /// sent, so a missing one is a read racing the write: retried, never dropped.
    async fn load(&self, event: &DispatchEvent) -> StoreResult<Option<(Account, EmailRecord)>> {
        let Some(account) = self.store.get_account(&event.account).await? else {
            return Ok(None);
        };
        match self.store.get_email(&event.email_id).await? {
            Some(email) => Ok(Some((account, email))),
            None => Err(StoreError::backend(
                "dispatch",
                format!(
                    "email {} of event {} is not readable yet",
                    event.email_id, event.id
                ),
            )),
        }
    }

    /// `email.linked`: bounces mark their recipients failing (R-A4); other mail to a group
    /// account with auto-reply on is answered once (R-A1, R-A5) unless a loop rule or the
    /// per-sender limit says no (R-A2, R-A3).
    async fn on_linked(
        &self,
        event: &DispatchEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<Dispatched> {
        let mut done = Dispatched::default();
        let Some((account, email)) = self.load(event).await? else {
            return Ok(done);
        };
        for (address, permanent) in bounced_addresses(&email) {
            if permanent {
                let reason = format!("bounced (DSN {})", email.message_id);
                self.mark_failing(address, reason, now, &mut done).await?;
            }
        }
        let settings = match (&account.kind, &account.auto_reply) {
            (AccountKind::Group, Some(s)) if s.enabled => s.clone(),
            _ => return Ok(done),
        };
        let (thread_key, ours) = self.index_facts(&email).await?;
        let send = Send {
            id: format!(
                "{}:{}:{}",
                SentKind::AutoReply.as_str(),
                email.email_id,
                account.name
            ),
            kind: SentKind::AutoReply,
            account: &account,
            email: &email,
            case: event.case,
            parent: event.parent.clone(),
            thread_key,
        };
        self.auto_reply(&send, &settings, ours, now, &mut done)
            .await?;
        Ok(done)
    }

    async fn auto_reply(
        &self,
        send: &Send<'_>,
        settings: &AutoReply,
        ours: bool,
        now: DateTime<Utc>,
        done: &mut Dispatched,
    ) -> StoreResult<()> {
        if let Some(sent) = self.dispatch.sent(&send.id).await? {
            // Sent before: the index may be what a crash left undone (it is written second).
            self.crm.index_sent(&sent, &send.thread_key).await?;
            done.already_sent += 1;
            return Ok(());
        }
        let email = send.email;
        let own = self.own_addresses(email).await?;
        let to = reply_address(email);
        let reason = match (ours, auto_reply_suppression(email, &own)) {
            (true, _) => Some("own_mail".to_string()),
            (false, Some(r)) => Some(r.as_str().to_string()),
            (false, None) => None,
        };
        // Mail that reached the mailbox long before Mailroom read it (a first import from
        // `fetch_since`, a reset, a re-read) is history, not a customer waiting for an answer.
        let stale = email
            .arrived
            .is_some_and(|t| now - t > chrono::Duration::hours(STALE_AFTER_HOURS));
        let reason = reason.or_else(|| stale.then(|| "stale".to_string()));
        if let Some(reason) = reason {
            return self.suppress(send, to, &reason, None, now, done).await;
        }
        let to = to.expect("a reply address, or suppressed as no_sender");
        if !self
            .dispatch
            .failing(std::slice::from_ref(&to), now)
            .await?
            .is_empty()
        {
            return self
                .suppress(send, Some(to), "failing_address", None, now, done)
                .await;
        }
        // Fixed windows counted from the epoch, keyed by the email's arrival, so a
        // redelivery lands in the same window and counts the same email once.
        let window = i64::from(settings.window_minutes.max(1)) * 60;
        let start = email.received_at.timestamp().div_euclid(window);
        let bucket = format!("{}#{}#{start}", send.account.name, to);
        let expires = DateTime::<Utc>::from_timestamp((start + 2) * window, 0).unwrap_or(now);
        if !self
            .dispatch
            .take_allowance(&bucket, &email.email_id, settings.limit, expires)
            .await?
        {
            return self
                .suppress(send, Some(to), "rate_limit", None, now, done)
                .await;
        }
        let values = self.values(send).await?;
        let parse = |t: &str, f: fn(&str) -> Result<Template, crate::error::Invalid>| {
            f(t).map(|t| t.render(&values))
        };
        let rendered = (|| {
            let subject = parse(&settings.subject, Template::parse_subject)?;
            let text = parse(&settings.body, Template::parse)?;
            let html = match &settings.html {
                Some(h) => Some(parse(h, Template::parse_html)?),
                None => None,
            };
            Ok::<_, crate::error::Invalid>((subject, text, html))
        })();
        let (subject, text, html) = match rendered {
            Ok(r) => r,
            Err(e) => {
                let detail = Some(e.to_string());
                return self
                    .suppress(send, Some(to), "bad_template", detail, now, done)
                    .await;
            }
        };
        let subject = one_reply_prefix(&subject);
        let subject = match send.case {
            Some(n) => tag_subject(&subject, n),
            None => subject,
        };
        let Some(from) = group_address(send.account) else {
            return self
                .suppress(send, Some(to), "no_group_address", None, now, done)
                .await;
        };
        let to_address = EmailAddress::parse(&to).expect("reply_address gives addresses");
        let draft = Draft {
            from: Mailbox::new(settings.from_name.clone().unwrap_or_default(), from.clone()),
            to: vec![Mailbox::bare(to_address)],
            cc: Vec::new(),
            bcc: Vec::new(),
            attachments: Vec::new(),
            reply_to: settings
                .reply_to
                .iter()
                .cloned()
                .map(Mailbox::bare)
                .collect(),
            subject,
            text,
            html,
            message_id: mime::message_id(&send.id, &from),
            in_reply_to: MessageId::parse(&email.message_id).ok(),
            references: thread_references(email),
            date: now,
            headers: vec![
                ExtraHeader::AutoSubmitted(AutoSubmitted::AutoReplied),
                ExtraHeader::AutoResponseSuppressAll,
                ExtraHeader::MailroomId(mailroom_id(&send.id)),
            ],
        };
        self.deliver(send, draft, now, done).await
    }

    /// Sends a draft, then records it: the record is the idempotency key of the next try and
    /// the index that threads replies to it (R-S4, R-I3).
    async fn deliver(
        &self,
        send: &Send<'_>,
        draft: Draft,
        now: DateTime<Utc>,
        done: &mut Dispatched,
    ) -> StoreResult<()> {
        let to = draft.to.first().map(|m| m.address.to_string());
        let outgoing = match draft.outgoing() {
            Ok(o) => o,
            Err(e) => {
                let detail = Some(e.to_string());
                return self
                    .suppress(send, to, "unsendable", detail, now, done)
                    .await;
            }
        };
        let service_id = match self.mailer.send_raw(&outgoing).await {
            Ok(id) => id,
            // SES refused this message for good (an unverified identity, a paused account):
            // said on the record, never a silent drop; retrying cannot help.
            Err(e) if !e.is_retryable() => {
                let said = crate::error::describe(&e);
                self.store
                    .record_send_error(&send.account.name, &said, now)
                    .await?;
                return self
                    .suppress(send, to, "send_refused", Some(said), now, done)
                    .await;
            }
            Err(e) => return Err(e),
        };
        let record = SentRecord {
            v: SCHEMA_VERSION,
            id: send.id.clone(),
            kind: send.kind,
            account: send.account.name.clone(),
            from: draft.from.address.to_string(),
            to: draft.recipients().iter().map(|a| a.to_string()).collect(),
            subject: draft.subject.clone(),
            in_reply_to: draft.in_reply_to.as_ref().map(|m| m.as_str().to_string()),
            message_id: draft.message_id.as_str().to_string(),
            ses_message_id: self.mailer.delivered_message_id(&service_id),
            user: None,
            email_id: Some(send.email.email_id.clone()),
            parent: send.parent.clone(),
            case: send.case,
            sent_at: now,
        };
        // The idempotency record first: a failure after it only leaves the index to redo.
        self.dispatch.put_sent(&record).await?;
        self.crm.index_sent(&record, &send.thread_key).await?;
        done.sent.push(record);
        Ok(())
    }

    async fn suppress(
        &self,
        send: &Send<'_>,
        to: Option<String>,
        reason: &str,
        detail: Option<String>,
        now: DateTime<Utc>,
        done: &mut Dispatched,
    ) -> StoreResult<()> {
        let record = SuppressedRecord {
            v: SCHEMA_VERSION,
            id: send.id.clone(),
            kind: send.kind,
            account: send.account.name.clone(),
            email_id: send.email.email_id.clone(),
            message_id: send.email.message_id.clone(),
            to,
            reason: reason.to_string(),
            detail,
            at: now,
        };
        self.dispatch.put_suppressed(&record).await?;
        done.suppressed.push(record);
        Ok(())
    }

    /// Placeholder values (R-A1): the case, its contact, the customer's account.
    async fn values(&self, send: &Send<'_>) -> StoreResult<TemplateValues> {
        let email = send.email;
        let case = match send.case {
            Some(n) => self.crm.get_case(n).await?,
            None => None,
        };
        let contact = match case.as_ref().and_then(|c| c.contact.clone()) {
            Some(c) => Some(RecordRef::new(crate::records::RecordKind::Contact, c)),
            None => send
                .parent
                .clone()
                .filter(|p| p.kind == crate::records::RecordKind::Contact),
        };
        let contact_name = match &contact {
            Some(c) => self.crm.record_name(c).await?,
            None => None,
        }
        .or_else(|| email.from.as_ref().and_then(|f| f.name.clone()));
        let account = case
            .as_ref()
            .and_then(|c| c.account.clone())
            .map(|a| RecordRef::new(crate::records::RecordKind::Account, a))
            .or_else(|| {
                send.parent
                    .clone()
                    .filter(|p| p.kind == crate::records::RecordKind::Account)
            });
        let account_name = match &account {
            Some(a) => self.crm.record_name(a).await?,
            None => None,
        };
        Ok(TemplateValues {
            subject: email.subject.clone(),
            case_number: send.case,
            case_name: case.map(|c| c.name),
            contact_name,
            account_name,
        })
    }

    /// What the message index knows of the email, in one read: its thread (its own entry's,
    /// else its own id) and whether it is a copy of mail we sent (R-I3: its Message-ID is one
    /// we recorded; an `X-Mailroom-Id` header alone is the loop rule `own_mail`).
    async fn index_facts(&self, email: &EmailRecord) -> StoreResult<(String, bool)> {
        let entry = self
            .crm
            .messages(std::slice::from_ref(&email.message_id))
            .await?
            .into_iter()
            .find(|e| e.message_id == email.message_id);
        let ours = entry.as_ref().is_some_and(|e| e.ours);
        let thread = entry.map(|e| e.thread_key);
        Ok((thread.unwrap_or_else(|| email.message_id.clone()), ours))
    }

    /// Which of the addresses that could be answered are Mailroom's own.
    async fn own_addresses(&self, email: &EmailRecord) -> StoreResult<Vec<String>> {
        let candidates: Vec<String> = email
            .from
            .iter()
            .chain(&email.reply_to)
            .map(|a| normalize_address(&a.address))
            .collect();
        let mut own = self.store.own_addresses(&candidates).await?;
        own.extend(self.settings.notify_from.iter().map(|a| a.to_string()));
        Ok(own)
    }

    /// `email.delivered`: each user to be told gets one notification (R-N1, R-N2, R-N4),
    /// and one notification email if they asked for it (R-N3). The assignee of a new case
    /// follows it.
    async fn on_delivered(
        &self,
        event: &DispatchEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<Dispatched> {
        let mut done = Dispatched::default();
        let Some((account, email)) = self.load(event).await? else {
            return Ok(done);
        };
        // A copy of what we sent (an auto-reply in a Sent folder, a notification email reaching
        // a watched mailbox) tells nobody: telling of it would send another, forever.
        if email.signals.mailroom_id.is_some() {
            return Ok(done);
        }
        // One read of the index: whether it is ours, and its thread for notification emails.
        let (thread_key, ours) = self.index_facts(&email).await?;
        if ours {
            return Ok(done);
        }
        let case = match event.case {
            Some(n) => self.crm.get_case(n).await?,
            None => None,
        };
        if let (Some(user), Some(n)) = (&event.assigned_user, event.case) {
            self.followers
                .follow(user, &RecordRef::case(n.get()))
                .await?;
        }
        let mut following = BTreeMap::new();
        for record in self.followed(event, case.as_ref()).await? {
            for user in self.followers.followers(&record).await? {
                following.entry(user).or_insert(record.clone());
            }
        }
        // Only who could be told is read (by key), never the whole directory.
        let mut candidates: Vec<String> = following.keys().cloned().collect();
        candidates.extend(event.inbox.iter().cloned());
        candidates.extend(event.assigned_user.iter().cloned());
        candidates.sort();
        candidates.dedup();
        let users = match candidates.is_empty() {
            true => Vec::new(),
            false => self.crm.get_users(&candidates).await?,
        };
        let told = audience(&Audience {
            event,
            email: &email,
            account: &account,
            case: case.as_ref(),
            users: &users,
            following: &following,
        });
        let notifications: Vec<Notification> = told
            .iter()
            .map(|(user, kind)| Notification {
                v: SCHEMA_VERSION,
                user: user.name.clone(),
                key: email.email_id.clone(),
                kind: *kind,
                email: Some(email.message_id.clone()),
                email_id: Some(email.email_id.clone()),
                record: event.parent.clone(),
                account: account.name.clone(),
                summary: email.subject.clone().unwrap_or_default(),
                read: false,
                at: email.received_at,
            })
            .collect();
        if !notifications.is_empty() {
            done.notified = self.dispatch.put_notifications(&notifications).await?;
        }
        let emailed: Vec<&User> = told
            .iter()
            .filter(|(u, _)| u.notify_email)
            .map(|(u, _)| *u)
            .collect();
        if emailed.is_empty() {
            return Ok(done);
        }
        for user in emailed {
            let send = Send {
                id: format!(
                    "{}:{}:{}",
                    SentKind::Notification.as_str(),
                    user.name,
                    email.email_id
                ),
                kind: SentKind::Notification,
                account: &account,
                email: &email,
                case: event.case,
                parent: event.parent.clone(),
                thread_key: thread_key.clone(),
            };
            self.notification_email(&send, user, now, &mut done).await?;
        }
        Ok(done)
    }

    /// The records whose followers hear of the email: its parent, the parent's account (a
    /// contact's or a case's), and a case's contact.
    async fn followed(
        &self,
        event: &DispatchEvent,
        case: Option<&Case>,
    ) -> StoreResult<Vec<RecordRef>> {
        use crate::records::RecordKind;
        let Some(parent) = &event.parent else {
            return Ok(Vec::new());
        };
        let mut out = vec![parent.clone()];
        let account = match parent.kind {
            RecordKind::Contact => self.crm.contact_account(&parent.id).await?,
            RecordKind::Case => case.and_then(|c| c.account.clone()),
            _ => None,
        };
        out.extend(account.map(|a| RecordRef::new(RecordKind::Account, a)));
        // A case is its contact's too: who follows the customer hears of their cases' mail.
        if let Some(contact) = case.and_then(|c| c.contact.clone()) {
            out.push(RecordRef::new(RecordKind::Contact, contact));
        }
        Ok(out)
    }

    /// One notification email (R-N3): from the notification address (or the group address),
    /// Reply-To the group address for case mail so an answer joins the case.
    async fn notification_email(
        &self,
        send: &Send<'_>,
        user: &User,
        now: DateTime<Utc>,
        done: &mut Dispatched,
    ) -> StoreResult<()> {
        if let Some(sent) = self.dispatch.sent(&send.id).await? {
            // Sent before: the index may be what a crash left undone (it is written second).
            self.crm.index_sent(&sent, &send.thread_key).await?;
            done.already_sent += 1;
            return Ok(());
        }
        let Some(to) = user.emails.iter().find_map(|e| EmailAddress::parse(e).ok()) else {
            return self
                .suppress(send, None, "no_user_address", None, now, done)
                .await;
        };
        if !self
            .dispatch
            .failing(&[to.to_string()], now)
            .await?
            .is_empty()
        {
            let to = Some(to.to_string());
            return self
                .suppress(send, to, "failing_address", None, now, done)
                .await;
        }
        let group = group_address(send.account);
        let Some(from) = self.settings.notify_from.clone().or_else(|| group.clone()) else {
            let to = Some(to.to_string());
            return self
                .suppress(send, to, "no_sender_identity", None, now, done)
                .await;
        };
        let email = send.email;
        let subject = email.subject.clone().unwrap_or_default();
        let subject = match send.case {
            Some(n) => tag_subject(&subject, n),
            None => subject,
        };
        let sender = email
            .from
            .as_ref()
            .map(|f| match &f.name {
                Some(n) => format!("{n} <{}>", f.address),
                None => f.address.clone(),
            })
            .unwrap_or_default();
        let text = format!(
            "New email in {}{}\n\nFrom: {sender}\nSubject: {}\n",
            send.account.name,
            send.parent
                .as_ref()
                .map(|p| format!(" for {p}"))
                .unwrap_or_default(),
            email.subject.as_deref().unwrap_or("")
        );
        let reply_to = match (send.case, group) {
            (Some(_), Some(g)) => vec![Mailbox::bare(g)],
            _ => Vec::new(),
        };
        let draft = Draft {
            from: Mailbox::new("Mailroom", from.clone()),
            to: vec![Mailbox::new(user.name.clone(), to)],
            cc: Vec::new(),
            bcc: Vec::new(),
            attachments: Vec::new(),
            reply_to,
            subject,
            text,
            html: None,
            message_id: mime::message_id(&send.id, &from),
            in_reply_to: None,
            references: Vec::new(),
            date: now,
            headers: vec![
                ExtraHeader::AutoSubmitted(AutoSubmitted::AutoGenerated),
                ExtraHeader::AutoResponseSuppressAll,
                ExtraHeader::MailroomId(mailroom_id(&send.id)),
            ],
        };
        self.deliver(send, draft, now, done).await
    }

    /// SES's bounce or complaint notice (R-A4): its addresses get no notification email for
    /// a while. Marking again only moves the end of that while.
    pub async fn feedback(
        &self,
        feedback: &Feedback,
        now: DateTime<Utc>,
    ) -> StoreResult<Dispatched> {
        let mut done = Dispatched::default();
        for address in &feedback.addresses {
            let reason = format!("SES {}", feedback.reason);
            self.mark_failing(address.clone(), reason, now, &mut done)
                .await?;
        }
        Ok(done)
    }

    /// No notification email to `address` for the configured while (R-A4).
    async fn mark_failing(
        &self,
        address: String,
        reason: String,
        now: DateTime<Utc>,
        done: &mut Dispatched,
    ) -> StoreResult<()> {
        self.dispatch
            .mark_failing(&FailingAddress {
                v: SCHEMA_VERSION,
                address: address.clone(),
                reason,
                since: now,
                until: now + self.settings.failing_for,
            })
            .await?;
        done.failing.push(address);
        Ok(())
    }

    /// `account.failing` (R-F7): the admins of a group account, or a personal account's
    /// owner, get one notification a day while it fails.
    async fn on_failing(
        &self,
        event: &DispatchEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<Dispatched> {
        let mut done = Dispatched::default();
        let Some(account) = self.store.get_account(&event.account).await? else {
            return Ok(done);
        };
        let Some(since) = account.status.failing_since else {
            // Recovered before the event was handled: nothing to tell.
            return Ok(done);
        };
        let users = self.crm.list_users().await?;
        let day = now.date_naive();
        let notifications: Vec<Notification> = users
            .iter()
            .filter(|u| u.active)
            .filter(|u| match account.kind {
                AccountKind::Group => u.admin,
                AccountKind::Personal => account.owner.as_deref() == Some(u.name.as_str()),
            })
            .map(|u| Notification {
                v: SCHEMA_VERSION,
                user: u.name.clone(),
                key: format!("account-failing:{}:{day}", account.name),
                kind: NotificationKind::AccountFailing,
                email: None,
                email_id: None,
                record: None,
                account: account.name.clone(),
                summary: format!(
                    "{} has been failing since {}: {}",
                    account.name,
                    since.format("%Y-%m-%d %H:%M UTC"),
                    account
                        .status
                        .last_error
                        .as_deref()
                        .unwrap_or("unknown error")
                ),
                read: false,
                at: day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc(),
            })
            .collect();
        if !notifications.is_empty() {
            done.notified = self.dispatch.put_notifications(&notifications).await?;
        }
        Ok(done)
    }
}

/// A group account's address (a personal account's is its owner's, never a sender of ours).
fn group_address(account: &Account) -> Option<EmailAddress> {
    if account.kind != AccountKind::Group {
        return None;
    }
    account
        .address
        .as_deref()
        .and_then(|a| EmailAddress::parse(a).ok())
}

/// `Re: {{subject}}` on a subject that is already a reply reads `Re: Re: ...`: one `Re:` is
/// what mail clients write.
fn one_reply_prefix(subject: &str) -> String {
    let mut s = subject;
    while s
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("re: re: "))
    {
        s = &s[4..];
    }
    s.to_string()
}

/// The References of an answer: the thread's, then the email answered (RFC 5322 3.6.4).
fn thread_references(email: &EmailRecord) -> Vec<MessageId> {
    email
        .references
        .iter()
        .chain(std::iter::once(&email.message_id))
        .filter_map(|id| MessageId::parse(id).ok())
        .collect()
}

/// `X-Mailroom-Id` takes letters, digits and `._:@+=/-`: a send id with anything else (an
/// account or user name is plain already) is hashed into that alphabet.
fn mailroom_id(send_id: &str) -> String {
    let plain = send_id.len() <= mime::MAX_MAILROOM_ID_BYTES
        && send_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:@+=/-".contains(c));
    if plain {
        send_id.to_string()
    } else {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(send_id.as_bytes());
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("h:{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{test_account, FakeMailer, MemoryCrm, MemoryDispatch, MemoryStore};
    use crate::records::TeamMembership;

    /// A group account `support` with auto-reply on, a member `ann` who wants notification
    /// emails, and one stored email from a customer, on fakes.
    async fn world(
        email: serde_json::Value,
    ) -> (MemoryStore, MemoryDispatch, MemoryCrm, FakeMailer) {
        let store = MemoryStore::default();
        let mut account = test_account("support", Utc::now());
        account.address = Some("support@example.test".into());
        account.teams = vec!["l1".into()];
        account.auto_reply = Some(AutoReply {
            enabled: true,
            subject: "Re: {{subject}}".into(),
            body: "Thanks".into(),
            html: None,
            from_name: None,
            reply_to: None,
            limit: 5,
            window_minutes: 120,
        });
        store.create_account(&account).await.unwrap();
        let mut e = serde_json::json!({
            "email_id": "e1", "message_id": "m1@customer.example", "synthetic_id": false,
            "auto_submitted": false, "list": false, "bounce": false, "size": 1,
            "attachments_skipped": false, "raw_key": "k",
            "received_at": Utc::now(), "subject": "Help",
            "from": {"address": "carol@customer.example"}
        });
        e.as_object_mut()
            .unwrap()
            .extend(email.as_object().unwrap().clone());
        let email: EmailRecord = serde_json::from_value(e).unwrap();
        store.upsert_email(&email, "support").await.unwrap();
        let crm = MemoryCrm::default();
        crm.add_user(User {
            v: 1,
            name: "ann".into(),
            emails: vec!["ann@corp.example".into()],
            teams: vec![TeamMembership {
                team: "l1".into(),
                position: None,
            }],
            active: true,
            created_at: Utc::now(),
            admin: false,
            notify_email: true,
            role: None,
        })
        .unwrap();
        let mailer = FakeMailer::default();
        mailer
            .verify_identity(&EmailAddress::parse("support@example.test").unwrap())
            .await
            .unwrap();
        (store, MemoryDispatch::default(), crm, mailer)
    }

    async fn run(email: serde_json::Value, kind: EventKind) -> (Dispatched, usize) {
        let (store, dispatch_store, crm, mailer) = world(email).await;
        let settings = DispatchSettings::default();
        let d = Dispatch {
            store: &store,
            dispatch: &dispatch_store,
            crm: &crm,
            followers: &crm,
            mailer: &mailer,
            settings: &settings,
        };
        let mut event = DispatchEvent::about(kind, "e1", "m1@customer.example", "support");
        event.inbox = vec!["ann".into()];
        let done = d.handle(&event, Utc::now()).await.unwrap();
        let sent = mailer.sent.lock().unwrap().len();
        (done, sent)
    }

    #[tokio::test]
    async fn fresh_mail_is_answered_and_mail_that_arrived_days_ago_is_not() {
        let (done, sent) = run(
            serde_json::json!({"arrived": Utc::now()}),
            EventKind::EmailLinked,
        )
        .await;
        assert_eq!((done.sent.len(), sent), (1, 1));
        let old = Utc::now() - Duration::days(3);
        let (done, sent) = run(serde_json::json!({"arrived": old}), EventKind::EmailLinked).await;
        assert_eq!(sent, 0);
        assert_eq!(done.suppressed[0].reason, "stale");
    }

    #[tokio::test]
    async fn a_copy_of_our_own_mail_tells_nobody_so_notifications_cannot_loop() {
        let (done, sent) = run(serde_json::json!({}), EventKind::EmailDelivered).await;
        assert_eq!((done.notified, sent), (1, 1), "ann is told, by email too");
        let ours = serde_json::json!({"signals": {"mailroom_id": "notification:ann:e0"}});
        let (done, sent) = run(ours, EventKind::EmailDelivered).await;
        assert_eq!((done.notified, sent), (0, 0));
    }

    #[test]
    fn an_answer_to_a_reply_has_one_re() {
        assert_eq!(one_reply_prefix("Re: Re: RE: help"), "RE: help");
        assert_eq!(one_reply_prefix("Re: help"), "Re: help");
        assert_eq!(one_reply_prefix("Réunion"), "Réunion");
        assert_eq!(one_reply_prefix("Re:éééé"), "Re:éééé");
        assert_eq!(
            mailroom_id("auto-reply:e1:support"),
            "auto-reply:e1:support"
        );
        assert!(mailroom_id("auto-reply:e1:a b").starts_with("h:"));
    }
}
