//! `ingest`: turns ingest pointers into stored emails (or quarantine records), links each to
//! its parent record and, for group accounts with email-to-case, to its case. Records run
//! concurrently; only those whose backing service failed are retried.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use mailroom_aws::Adapters;
use mailroom_core::cases::{LinkCache, LinkOutcome, LinkService};
use mailroom_core::ingest::{IngestOutcome, IngestService};
use mailroom_core::messages::{decode, IngestPointer};
use mailroom_core::ports::{AccountStore, FilterStore};
use mailroom_core::records::normalize_address;
use mailroom_runtime::{process_batch, RecordResult};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// What happened to one pointer.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub pointer: IngestPointer,
    pub outcome: IngestOutcome,
    pub link: Option<LinkOutcome>,
}

pub async fn handle(
    adapters: &Adapters,
    event: SqsEvent,
) -> (SqsBatchResponse, Vec<RecordResult<Ingested, Error>>) {
    // Read once per batch: accounts (email-to-case settings, our own addresses), filters,
    // and users (who receives a group account's mail).
    let loaded = async {
        Ok::<_, mailroom_core::ports::StoreError>((
            adapters.store.list_accounts().await?,
            adapters.store.filters().await?,
            adapters.store.list_users().await?,
        ))
    };
    let (accounts, filters, users) = match loaded.await {
        Ok(a) => a,
        Err(e) => {
            let message = e.to_string();
            return process_batch(event, 1, |_| {
                let message = message.clone();
                async move { Err::<Ingested, Error>(message.into()) }
            })
            .await;
        }
    };
    let ours: Vec<String> = accounts
        .iter()
        .filter_map(|a| a.address.as_deref().map(normalize_address))
        .collect();
    let service = IngestService {
        emails: &adapters.store,
        blobs: &adapters.blobs,
        limits: &adapters.config.limits,
        filters: &filters,
        skips: &adapters.store,
    };
    let linker = LinkService {
        crm: &adapters.store,
        events: &adapters.dispatch_queue,
        our_addresses: &ours,
        // The batch's users already hold every team's members.
        cache: LinkCache::with_users(&users),
    };
    let (service, linker, accounts) = (&service, &linker, &accounts);
    let (filters, users) = (&filters, &users);
    process_batch(event, 10, |record| async move {
        let pointer: IngestPointer = decode(record.body.as_deref().unwrap_or_default())?;
        let now = Utc::now();
        let (outcome, email) = service.ingest_with_record(&pointer, now).await?;
        // Linking runs on every delivery, duplicates too: it is idempotent, and a crash
        // between storing and linking must not leave an email without its case.
        let account = accounts.iter().find(|a| a.name == pointer.account);
        let link = match (&email, account) {
            (Some(email), Some(account)) => {
                let fresh = matches!(outcome, IngestOutcome::Imported { .. });
                Some(linker.link(email, account, now, fresh).await?)
            }
            _ => None,
        };
        if let (Some(email), Some(account)) = (&email, account) {
            deliver_copies(adapters, email, account, filters, users).await?;
        }
        // Ids and outcomes only: subjects and bodies stay out of the logs (R-Q5).
        tracing::info!(
            account = %pointer.account,
            uid = pointer.uid,
            outcome = ?outcome,
            parent = ?link.as_ref().and_then(|l| l.parent.as_ref()).map(|p| p.to_string()),
            case = ?link.as_ref().and_then(|l| l.case),
            "ingested"
        );
        Ok::<_, Error>(Ingested {
            pointer,
            outcome,
            link,
        })
    })
    .await
}

/// Puts the email in the inbox of each user who receives it (R-I4: a personal account's
/// owner; a group account's team members), with that user's filters applied to that copy
/// only (R-X2). A user's own skip filter hides it from that user alone.
async fn deliver_copies(
    adapters: &Adapters,
    email: &mailroom_core::model::EmailRecord,
    account: &mailroom_core::model::Account,
    filters: &[mailroom_core::filters::Filter],
    users: &[mailroom_core::records::User],
) -> Result<(), Error> {
    use mailroom_core::filters::{user_copy, FilterInput, InboxCopy};
    use mailroom_core::model::AccountKind;
    let recipients: Vec<String> = match account.kind {
        AccountKind::Personal => account.owner.iter().cloned().collect(),
        AccountKind::Group => users
            .iter()
            .filter(|u| u.active && u.teams.iter().any(|m| account.teams.contains(&m.team)))
            .map(|u| u.name.clone())
            .collect(),
    };
    if recipients.is_empty() {
        return Ok(());
    }
    let mut input = FilterInput::from_email(email);
    // A text body too large for the item lives in S3: read it only if a filter needs a body.
    if let Some(mailroom_core::model::Body::Stored { key, .. }) = &email.text {
        if filters.iter().any(|f| f.needs_body()) {
            use mailroom_core::ports::BlobStore;
            if let Some(bytes) = adapters.blobs.get(key).await? {
                input.body = Some(String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    }
    for user in recipients {
        let state = user_copy(filters, &account.name, &user, &input);
        if state.hidden {
            continue;
        }
        adapters
            .store
            .put_copy(&InboxCopy {
                v: mailroom_core::SCHEMA_VERSION,
                user,
                email_id: email.email_id.clone(),
                message_id: email.message_id.clone(),
                subject: email.subject.clone(),
                from: email.from.as_ref().map(|f| f.address.clone()),
                account: account.name.clone(),
                folder: state.folder,
                read: state.read,
                notify: state.notify,
                filters: state.filters,
                at: email.date.unwrap_or(email.received_at),
            })
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_events_parse() {
        let event: SqsEvent =
            serde_json::from_str(include_str!("../../../events/ingest/pointer.json")).unwrap();
        let p: IngestPointer = decode(event.records[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(p.account, "support");
        let poison: SqsEvent =
            serde_json::from_str(include_str!("../../../events/ingest/poison.json")).unwrap();
        let bodies: Vec<_> = poison
            .records
            .iter()
            .map(|r| r.body.clone().unwrap())
            .collect();
        assert!(decode::<IngestPointer>(&bodies[0]).is_ok());
        assert!(decode::<IngestPointer>(&bodies[1]).is_err());
    }

    #[test]
    fn dispatch_sample_events_parse() {
        for raw in [
            include_str!("../../../events/dispatch/case-created.json"),
            include_str!("../../../events/dispatch/email-linked.json"),
        ] {
            let event: SqsEvent = serde_json::from_str(raw).unwrap();
            let e: mailroom_core::messages::DispatchEvent =
                serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
            assert!(e.id.starts_with(e.kind.as_str()));
        }
    }
}
