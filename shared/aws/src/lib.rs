//! AWS adapters for the core's ports: DynamoDB (accounts, emails, quarantine, filters, records,
//! cases), S3 (raw mail, bodies, attachments), SQS (poll jobs, ingest pointers), KMS (credential
//! envelope encryption), SES v2 (raw sends, sending identities).
//!
//! # Layout
//! - [`config`]: every setting, from the environment, validated at load with the field named.
//! - [`errors`]: SDK errors to the core's `StoreError`, classified transient or permanent once
//!   for every adapter.
//! - [`dynamo`]: the DynamoDB adapter, a file per entity, with the table's key schema in its doc.
//! - [`blobs`], [`queue`], [`secrets`], [`ses`]: one adapter each.
//! - [`redrive`]: dead-letter queues moved back to their queues (R-F9).
//! - [`provision`]: creates the resources `template.yaml` declares, for the local stack, and
//!   the credential data key.
//! - [`iam`]: the actions, partitions and prefixes each function uses, in one table that
//!   `tests/iam.rs` holds `template.yaml` to.
//!
//! Endpoints come from the standard SDK configuration (`AWS_ENDPOINT_URL`), so the same code
//! talks to AWS in Lambda and to the local emulator in development and tests.

pub mod blobs;
pub mod config;
pub mod dynamo;
pub mod errors;
pub mod iam;
pub mod provision;
pub mod queue;
pub mod redrive;
pub mod secrets;
pub mod ses;

pub use blobs::S3Blobs;
pub use config::{Config, Resources};
pub use dynamo::DynamoStore;
pub use queue::SqsQueue;
pub use secrets::KmsSecretBox;
pub use ses::SesMailer;

/// Every SDK client, built once per process (per Lambda instance) from one SDK config.
#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub kms: aws_sdk_kms::Client,
    pub ses: aws_sdk_sesv2::Client,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        // Path-style keeps `localhost` endpoints working (no bucket.localhost DNS names).
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build();
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            s3: aws_sdk_s3::Client::from_conf(s3),
            kms: aws_sdk_kms::Client::new(sdk),
            ses: aws_sdk_sesv2::Client::new(sdk),
        }
    }

    /// Loads the standard SDK configuration (environment, profile, Lambda role).
    pub async fn from_env() -> Self {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        Clients::new(&sdk)
    }

    /// Talks to an explicit endpoint (the local emulator) with its dummy credentials.
    pub async fn for_endpoint(endpoint: &str, region: &str) -> Self {
        let creds = aws_sdk_dynamodb::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "mailroom-local",
        );
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new(region.to_string()))
            .credentials_provider(creds)
            .load()
            .await;
        Clients::new(&sdk)
    }
}

/// The adapters wired together over one set of resources: what every function and the CLI use.
pub struct Adapters {
    pub store: DynamoStore,
    pub blobs: S3Blobs,
    pub poll_queue: SqsQueue,
    pub ingest_queue: SqsQueue,
    pub dispatch_queue: SqsQueue,
    pub secrets: KmsSecretBox,
    /// Outgoing mail: auto-replies and notification emails (dispatch), identity checks (CLI).
    pub mailer: SesMailer,
    /// What ingest read recently; kept as long as the adapters (a Lambda instance).
    pub intake_cache: mailroom_core::intake::IntakeCache,
    pub config: Config,
}

impl Adapters {
    pub fn new(clients: &Clients, config: Config) -> Self {
        let r = &config.resources;
        Adapters {
            store: DynamoStore::new(clients.dynamodb.clone(), &r.table),
            blobs: S3Blobs::new(clients.s3.clone(), &r.bucket),
            poll_queue: SqsQueue::new(clients.sqs.clone(), &r.poll_queue_url),
            ingest_queue: SqsQueue::new(clients.sqs.clone(), &r.ingest_queue_url),
            dispatch_queue: SqsQueue::new(clients.sqs.clone(), &r.dispatch_queue_url),
            secrets: KmsSecretBox::new(
                clients.kms.clone(),
                &r.kms_key_id,
                &r.table,
                clients.dynamodb.clone(),
            ),
            mailer: SesMailer::new(clients.ses.clone())
                .with_configuration_set(config.ses_configuration_set.clone()),
            intake_cache: mailroom_core::intake::IntakeCache::new(std::time::Duration::from_secs(
                config.limits.ingest_cache_seconds,
            )),
            config,
        }
    }
}

impl Adapters {
    /// What the ingest function writes through: one table for emails and records.
    pub fn intake(
        &self,
    ) -> mailroom_core::intake::Intake<'_, DynamoStore, DynamoStore, S3Blobs, SqsQueue> {
        mailroom_core::intake::Intake {
            store: &self.store,
            crm: &self.store,
            blobs: &self.blobs,
            events: &self.dispatch_queue,
            limits: &self.config.limits,
            cache: &self.intake_cache,
        }
    }
}

impl Adapters {
    /// What the dispatch function works through: the table (stores, CRM, followers) and SES.
    pub fn dispatch(
        &self,
    ) -> mailroom_core::dispatch::Dispatch<
        '_,
        DynamoStore,
        DynamoStore,
        DynamoStore,
        DynamoStore,
        SesMailer,
    > {
        mailroom_core::dispatch::Dispatch {
            store: &self.store,
            dispatch: &self.store,
            crm: &self.store,
            followers: &self.store,
            mailer: &self.mailer,
            settings: &self.config.dispatch,
        }
    }
}

/// Counts DynamoDB requests by operation (benchmarks quote requests per email).
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>,
);

impl RequestCounter {
    pub fn take(&self) -> std::collections::BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().expect("not poisoned"))
    }
}

impl aws_sdk_dynamodb::config::Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let op = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_string();
        *self.0.lock().expect("not poisoned").entry(op).or_default() += 1;
        Ok(())
    }
}

impl Clients {
    /// The same clients, with `interceptor` on every client (tests record each request to hold
    /// it to the IAM table, [`iam`]).
    pub fn intercepted<I>(self, interceptor: I) -> Self
    where
        I: aws_sdk_dynamodb::config::Intercept + Clone + 'static,
    {
        let dynamodb = self.dynamodb.config().to_builder();
        let sqs = self.sqs.config().to_builder();
        let s3 = self.s3.config().to_builder();
        let kms = self.kms.config().to_builder();
        let ses = self.ses.config().to_builder();
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                dynamodb.interceptor(interceptor.clone()).build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(sqs.interceptor(interceptor.clone()).build()),
            s3: aws_sdk_s3::Client::from_conf(s3.interceptor(interceptor.clone()).build()),
            kms: aws_sdk_kms::Client::from_conf(kms.interceptor(interceptor.clone()).build()),
            ses: aws_sdk_sesv2::Client::from_conf(ses.interceptor(interceptor).build()),
        }
    }

    /// The same clients, with every DynamoDB request counted.
    pub fn counting_dynamodb(mut self, counter: RequestCounter) -> Self {
        let config = self
            .dynamodb
            .config()
            .to_builder()
            .interceptor(counter)
            .build();
        self.dynamodb = aws_sdk_dynamodb::Client::from_conf(config);
        self
    }
}
