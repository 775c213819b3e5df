//! Creates the resources `template.yaml` declares, under a name prefix, on any endpoint (the
//! local emulator), and the credential data key. Idempotent: existing resources are kept. Tests
//! provision their own prefix so they run in parallel against one emulator without resetting it.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use mailroom_core::error::{StoreError, StoreResult};
use mailroom_core::keys::SCHEDULE_INDEX;

use crate::errors::sdk_error;
use crate::{Clients, Resources};

/// Resource names for a prefix; the same names `template.yaml` derives from the stack name.
pub struct Names {
    pub table: String,
    pub bucket: String,
    pub poll_queue: String,
    pub poll_dlq: String,
    pub ingest_queue: String,
    pub ingest_dlq: String,
    pub dispatch_queue: String,
    pub dispatch_dlq: String,
    pub key_alias: String,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        Names {
            table: format!("{prefix}-table"),
            bucket: format!("{prefix}-mail"),
            poll_queue: format!("{prefix}-poll.fifo"),
            poll_dlq: format!("{prefix}-poll-dlq.fifo"),
            ingest_queue: format!("{prefix}-ingest"),
            ingest_dlq: format!("{prefix}-ingest-dlq"),
            dispatch_queue: format!("{prefix}-dispatch"),
            dispatch_dlq: format!("{prefix}-dispatch-dlq"),
            key_alias: format!("alias/{prefix}"),
        }
    }
}

/// Validates a prefix: lowercase, so it is a valid bucket name part.
pub fn validate_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() < 3
        || prefix.len() > 40
        || !prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        || prefix.starts_with('-')
    {
        return Err(format!(
            "prefix {prefix:?} must be 3-40 characters of a-z, 0-9 and '-'"
        ));
    }
    Ok(())
}

pub async fn provision(clients: &Clients, prefix: &str) -> StoreResult<Resources> {
    validate_prefix(prefix).map_err(|e| StoreError::permanent("provision", e))?;
    let visibility = visibility_timeout(std::env::var(VISIBILITY_VAR).ok().as_deref())
        .map_err(|e| StoreError::permanent("provision", e))?;
    let n = Names::new(prefix);
    create_table(clients, &n.table).await?;
    create_bucket(clients, &n.bucket).await?;
    let v = visibility;
    let poll_dlq = create_queue(clients, &n.poll_dlq, true, v, None).await?;
    let poll_queue = create_queue(clients, &n.poll_queue, true, v, Some((&poll_dlq, 3))).await?;
    let ingest_dlq = create_queue(clients, &n.ingest_dlq, false, v, None).await?;
    let ingest_queue =
        create_queue(clients, &n.ingest_queue, false, v, Some((&ingest_dlq, 5))).await?;
    let dispatch_dlq = create_queue(clients, &n.dispatch_dlq, false, v, None).await?;
    let dispatch_queue = create_queue(
        clients,
        &n.dispatch_queue,
        false,
        v,
        Some((&dispatch_dlq, 5)),
    )
    .await?;
    let kms_key_id = create_key(clients, &n.key_alias).await?;
    // The data key is provisioning's: the poller only ever opens with it (secrets.rs).
    crate::KmsSecretBox::new(
        clients.kms.clone(),
        &kms_key_id,
        &n.table,
        clients.dynamodb.clone(),
    )
    .create_data_key()
    .await?;
    Ok(Resources {
        table: n.table,
        bucket: n.bucket,
        poll_queue_url: poll_queue,
        ingest_queue_url: ingest_queue,
        dispatch_queue_url: dispatch_queue,
        kms_key_id,
    })
}

/// Sets the visibility timeout of the queues a prefix gets when they are first created (they
/// are never changed afterwards). Only local provisioning reads it: `template.yaml` keeps its
/// own 360 s, six times the poller's timeout as Lambda requires. A test that kills the CLI
/// mid-cycle gives its prefix a few seconds, so what a killed process had received comes
/// back in seconds instead of six minutes.
pub const VISIBILITY_VAR: &str = "MAILROOM_LOCAL_VISIBILITY_TIMEOUT";

/// The queues' visibility timeout in seconds: 360 (as deployed) unless `value` says otherwise.
pub fn visibility_timeout(value: Option<&str>) -> Result<u32, String> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(360);
    };
    match v.parse::<u32>() {
        // SQS's own range; 0 would let every receive see what another just took.
        Ok(s) if (1..=43_200).contains(&s) => Ok(s),
        _ => Err(format!(
            "{VISIBILITY_VAR}: {v:?} is not a number of seconds from 1 to 43200"
        )),
    }
}

fn attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("complete")
}

fn key(name: &str, t: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(t)
        .build()
        .expect("complete")
}

/// The schedule index as `template.yaml` declares it: only what the scheduler decides on.
fn schedule_index() -> GlobalSecondaryIndex {
    use crate::dynamo::schedule::{PROJECTED, SCHED_PK, SCHED_SK};
    GlobalSecondaryIndex::builder()
        .index_name(SCHEDULE_INDEX)
        .key_schema(key(SCHED_PK, KeyType::Hash))
        .key_schema(key(SCHED_SK, KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(PROJECTED.map(String::from).to_vec()))
                .build(),
        )
        .build()
        .expect("complete")
}

/// A table from before the schedule index gets it (its accounts get their attributes from
/// the CLI's connect, `ensure_schedule_index`).
async fn add_schedule_index(clients: &Clients, table: &str) -> StoreResult<()> {
    use crate::dynamo::schedule::{SCHED_PK, SCHED_SK};
    let described = clients
        .dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| sdk_error(format!("describe table {table}"), e))?;
    let has = described
        .table()
        .map(|t| t.global_secondary_indexes())
        .unwrap_or_default()
        .iter()
        .any(|i| i.index_name() == Some(SCHEDULE_INDEX));
    if has {
        return Ok(());
    }
    let index = schedule_index();
    let create = CreateGlobalSecondaryIndexAction::builder()
        .index_name(SCHEDULE_INDEX)
        .set_key_schema(Some(index.key_schema))
        .set_projection(index.projection)
        .build()
        .expect("complete");
    clients
        .dynamodb
        .update_table()
        .table_name(table)
        .attribute_definitions(attr(SCHED_PK))
        .attribute_definitions(attr(SCHED_SK))
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder().create(create).build(),
        )
        .send()
        .await
        .map_err(|e| sdk_error(format!("add the schedule index to {table}"), e))?;
    Ok(())
}

async fn create_table(clients: &Clients, table: &str) -> StoreResult<()> {
    use crate::dynamo::schedule::{SCHED_PK, SCHED_SK};
    let exists = clients
        .dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .is_ok();
    if exists {
        return add_schedule_index(clients, table).await;
    }
    let gsi = GlobalSecondaryIndex::builder()
        .index_name("gsi1")
        .key_schema(key("gsi1pk", KeyType::Hash))
        .key_schema(key("gsi1sk", KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .expect("complete");
    let created = clients
        .dynamodb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .attribute_definitions(attr("gsi1pk"))
        .attribute_definitions(attr("gsi1sk"))
        .attribute_definitions(attr(SCHED_PK))
        .attribute_definitions(attr(SCHED_SK))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(gsi)
        .global_secondary_indexes(schedule_index())
        .send()
        .await;
    if let Err(e) = created {
        // Another process may have created it in between; only a real failure matters.
        let still_missing = clients
            .dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .is_err();
        if still_missing {
            return Err(sdk_error(format!("create table {table}"), e));
        }
    }
    clients
        .dynamodb
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .expect("complete"),
        )
        .send()
        .await
        .map_err(|e| sdk_error(format!("enable TTL on {table}"), e))?;
    Ok(())
}

async fn create_bucket(clients: &Clients, bucket: &str) -> StoreResult<()> {
    if clients.s3.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    if let Err(e) = clients.s3.create_bucket().bucket(bucket).send().await {
        if clients
            .s3
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .is_err()
        {
            return Err(sdk_error(format!("create bucket {bucket}"), e));
        }
    }
    Ok(())
}

/// Returns the queue URL. `dlq` is (DLQ URL, maxReceiveCount). An existing queue is kept as
/// it is, its visibility timeout included.
async fn create_queue(
    clients: &Clients,
    name: &str,
    fifo: bool,
    visibility: u32,
    dlq: Option<(&str, u32)>,
) -> StoreResult<String> {
    if let Ok(r) = clients.sqs.get_queue_url().queue_name(name).send().await {
        if let Some(url) = r.queue_url {
            return Ok(url);
        }
    }
    let mut req = clients.sqs.create_queue().queue_name(name).attributes(
        QueueAttributeName::VisibilityTimeout,
        visibility.to_string(),
    );
    if fifo {
        req = req
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(QueueAttributeName::ContentBasedDeduplication, "false");
    }
    if let Some((dlq_url, max)) = dlq {
        let arn = clients
            .sqs
            .get_queue_attributes()
            .queue_url(dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| sdk_error(format!("read DLQ ARN for {name}"), e))?
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .ok_or_else(|| {
                StoreError::backend(format!("read DLQ ARN for {name}"), "no QueueArn")
            })?;
        req = req.attributes(
            QueueAttributeName::RedrivePolicy,
            format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"{max}"}}"#),
        );
    }
    let resp = req
        .send()
        .await
        .map_err(|e| sdk_error(format!("create queue {name}"), e))?;
    resp.queue_url
        .ok_or_else(|| StoreError::backend(format!("create queue {name}"), "no URL returned"))
}

async fn create_key(clients: &Clients, alias: &str) -> StoreResult<String> {
    let aliases = clients
        .kms
        .list_aliases()
        .send()
        .await
        .map_err(|e| sdk_error("list KMS aliases", e))?;
    if aliases
        .aliases()
        .iter()
        .any(|a| a.alias_name() == Some(alias) && a.target_key_id().is_some())
    {
        return Ok(alias.to_string());
    }
    let key = clients
        .kms
        .create_key()
        .description("Mailroom credential key (local)")
        .send()
        .await
        .map_err(|e| sdk_error("create KMS key", e))?;
    let key_id = key
        .key_metadata
        .map(|m| m.key_id)
        .ok_or_else(|| StoreError::backend("create KMS key", "no key id"))?;
    if let Err(e) = clients
        .kms
        .create_alias()
        .alias_name(alias)
        .target_key_id(&key_id)
        .send()
        .await
    {
        // Lost a race with another provisioner: use the alias it made.
        let again = clients
            .kms
            .list_aliases()
            .send()
            .await
            .map_err(|e| sdk_error("list KMS aliases", e))?;
        if !again
            .aliases()
            .iter()
            .any(|a| a.alias_name() == Some(alias))
        {
            return Err(sdk_error(format!("create alias {alias}"), e));
        }
    }
    Ok(alias.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_visibility_timeout_defaults_to_the_deployed_one_and_refuses_nonsense() {
        assert_eq!(visibility_timeout(None), Ok(360));
        assert_eq!(visibility_timeout(Some(" ")), Ok(360));
        assert_eq!(visibility_timeout(Some("3")), Ok(3));
        assert_eq!(visibility_timeout(Some("43200")), Ok(43_200));
        for bad in ["0", "43201", "-1", "3s", "lots"] {
            let e = visibility_timeout(Some(bad)).unwrap_err();
            assert!(e.contains(VISIBILITY_VAR), "{bad}: {e}");
        }
    }
}
