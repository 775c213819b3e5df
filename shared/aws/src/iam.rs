//! What each function asks of AWS, in one table ([`GRANTS`]): per principal, the actions, the
//! resource, and for the table the partition keys (`mailroom_core::keys::DYNAMO_KEY_PREFIXES`),
//! for the bucket the object prefixes (`mailroom_core::keys::S3_PREFIXES`). Built by reading
//! every adapter call (`dynamo/*.rs`, `blobs.rs`, `queue.rs`, `secrets.rs`) that the functions'
//! handlers and the core services they drive make.
//!
//! `tests/iam.rs` reads `template.yaml` and fails when a function lacks a row of this table, or
//! holds a grant that is not one (a write it never makes, a partition or prefix it never
//! touches, a key use outside the service that needs it). moto enforces no IAM at all, so this
//! is the only check before `sam deploy` that the policies match the code: change a call, change
//! its row, and the test says what the template must say. The integration test
//! `tests/integration/iam.rs` checks the rows against the code: it records every request the
//! three functions make while they run a cycle on the local stack and fails on any that no row
//! allows.
//!
//! How the grants are written in the template:
//! - Table grants name their partitions with `dynamodb:LeadingKeys` (`ForAllValues:StringLike`;
//!   a prefix such as `EMAIL#` becomes `EMAIL#*`). A transaction has no IAM action of its own:
//!   each of its items is authorised as PutItem, UpdateItem or ConditionCheckItem, under the same
//!   conditions. Index grants name the index (`<table>/index/sched`); nothing reads the
//!   `gsi1` index yet, so no function is granted it.
//! - The table and the bucket are encrypted with the stack's key, so every function that uses
//!   them is granted the key through that service (`kms:ViaService`); only the poller uses the
//!   key directly, to unwrap the credential data key, under its encryption context.
//! - A function's own trigger queue is read by its SQS event source: SAM grants receive, delete
//!   and visibility changes on that queue to the role; the template states no such statement.

use mailroom_core::keys::{
    ACCOUNTS_PK, CONFIG_PK, COUNTER_PK, FAILING_PK, FILTERS_PK, LOAD_PK, QUARANTINE_PK, ROLES_PK,
    SCHEDULE_INDEX, SENT_PK, SKIPPED_PK, SUPPRESSED_PK, TEAMS_PK, USERS_PK,
};

/// Who makes the calls. The functions' names are their logical ids in `template.yaml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    Scheduler,
    Poller,
    Ingest,
    Dispatch,
    /// The HTTP API (`mailroom-api`): management, reading, sending.
    Api,
    /// The operator CLI, beyond the functions' handlers it also runs (`mailroom poll` drives
    /// the pipeline's, `mailroom api serve` the api's), so an operator's role needs every row.
    /// Not in the template.
    Cli,
}

impl Principal {
    pub const FUNCTIONS: [Principal; 5] = [
        Principal::Scheduler,
        Principal::Poller,
        Principal::Ingest,
        Principal::Dispatch,
        Principal::Api,
    ];

    /// The function's logical id in `template.yaml` (`None` for the CLI).
    pub fn logical_id(self) -> Option<&'static str> {
        match self {
            Principal::Scheduler => Some("scheduler"),
            Principal::Poller => Some("poller"),
            Principal::Ingest => Some("ingest"),
            Principal::Dispatch => Some("dispatch"),
            Principal::Api => Some("api"),
            Principal::Cli => None,
        }
    }
}

/// How a function uses the stack's KMS key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Via {
    /// DynamoDB, for the table's encryption (`kms:ViaService` dynamodb).
    DynamoDb,
    /// S3, for the bucket's SSE-KMS (`kms:ViaService` s3).
    S3,
    /// A direct call for the credential data key, under its encryption context
    /// (`kms:EncryptionContext:mailroom:purpose` = `imap-credentials`).
    DataKey,
}

/// What a grant is on. Queues and the key are named by their logical ids in `template.yaml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// The table's items whose partition keys are the grant's `keys`.
    Table,
    /// A secondary index of the table.
    Index(&'static str),
    /// The bucket itself (listing).
    Bucket,
    /// The bucket's objects under a prefix of `S3_PREFIXES`.
    Objects(&'static str),
    /// A queue, by logical id.
    Queue(&'static str),
    /// The function's trigger: its SQS event source reads this queue (SAM grants it).
    EventSource(&'static str),
    /// The stack's key (`MailroomKey`), used as stated.
    Key(Via),
    /// SES sending identities (addresses and domains):
    /// `arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*`. Group addresses
    /// are added at run time, so no narrower ARN can be stated in the template.
    Identities,
    /// The stack's SES configuration set (`SendingConfigurationSet`): a send through it is
    /// authorised on it too.
    ConfigurationSet,
    /// Creating the local stack's resources (`mailroom local up`); never in a deployed stack.
    LocalStack,
}

/// One row: `who` may do `actions` on `on` (for the table: on the partitions `keys`), because
/// of the calls named in `by`.
#[derive(Clone, Copy, Debug)]
pub struct Grant {
    pub who: Principal,
    pub actions: &'static [&'static str],
    pub on: Resource,
    /// Table rows only: partition keys, each an entry of `DYNAMO_KEY_PREFIXES` or a fixed key
    /// under one (`REC#case`). Empty: every partition (a Scan).
    pub keys: &'static [&'static str],
    pub by: &'static str,
}

/// The table's key rights that DynamoDB uses on the caller's behalf (the table is encrypted
/// with the stack's key): for reads and writes alike, since it may refresh the table key on any
/// request.
const TABLE_KEY: &[&str] = &["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"];
/// What S3 needs of the key to write (`GenerateDataKey`) and read (`Decrypt`) SSE-KMS objects;
/// with a bucket key, writes may need `Decrypt` too.
const BUCKET_KEY: &[&str] = &["kms:Decrypt", "kms:GenerateDataKey"];

use Principal::{Api, Cli, Dispatch, Ingest, Poller, Scheduler};
use Resource::{
    Bucket, ConfigurationSet, EventSource, Identities, Index, Key, LocalStack, Objects, Queue,
    Table,
};

/// Every grant the code needs, by principal. Keep it in step with the calls: the template test
/// reads it both ways.
pub const GRANTS: &[Grant] = &[
    // ---- scheduler: one tick (schedule::run_cycle) ----
    Grant {
        who: Scheduler,
        actions: &["dynamodb:Query"],
        on: Index(SCHEDULE_INDEX),
        keys: &[],
        by: "ScheduleIndex::schedule_page (the due ranges of each shard)",
    },
    Grant {
        who: Scheduler,
        actions: &["dynamodb:BatchGetItem"],
        on: Table,
        keys: &[USERS_PK],
        by: "Directory::get_users (the owners of a page's due personal accounts)",
    },
    Grant {
        who: Scheduler,
        actions: &["sqs:SendMessage"],
        on: Queue("PollQueue"),
        keys: &[],
        by: "SqsQueue::send (SendMessageBatch) of poll jobs",
    },
    Grant {
        who: Scheduler,
        actions: TABLE_KEY,
        on: Key(Via::DynamoDb),
        keys: &[],
        by: "every table request (the table is encrypted with the stack's key)",
    },
    // ---- poller: PollService::poll ----
    Grant {
        who: Poller,
        actions: &["dynamodb:GetItem"],
        on: Table,
        keys: &[ACCOUNTS_PK, CONFIG_PK],
        by: "AccountStore::get_account; KmsSecretBox reads the wrapped data key (CONFIG/DATAKEY)",
    },
    Grant {
        who: Poller,
        actions: &["dynamodb:UpdateItem"],
        on: Table,
        keys: &[ACCOUNTS_PK],
        by: "AccountStore::save_folder_state (watermarks), save_status",
    },
    Grant {
        who: Poller,
        actions: &["dynamodb:Query"],
        on: Table,
        keys: &[FILTERS_PK],
        by: "FilterStore::filters (header-stage skip filters)",
    },
    Grant {
        who: Poller,
        actions: &["dynamodb:PutItem"],
        on: Table,
        keys: &[SKIPPED_PK],
        by: "FilterStore::put_skipped (messages skipped on headers)",
    },
    Grant {
        who: Poller,
        actions: &["s3:PutObject"],
        on: Objects("raw/"),
        keys: &[],
        by: "BlobStore::put of raw messages (keys::raw_key)",
    },
    Grant {
        who: Poller,
        actions: &["sqs:SendMessage"],
        on: Queue("IngestQueue"),
        keys: &[],
        by: "SqsQueue::send (SendMessageBatch) of ingest pointers",
    },
    Grant {
        who: Poller,
        actions: &["sqs:SendMessage"],
        on: Queue("DispatchQueue"),
        keys: &[],
        by: "SqsQueue::send of account.failing events (poller::handle, R-F7)",
    },
    Grant {
        who: Poller,
        actions: &[],
        on: EventSource("PollQueue"),
        keys: &[],
        by: "its trigger: poll jobs",
    },
    Grant {
        who: Poller,
        actions: &["kms:Decrypt"],
        on: Key(Via::DataKey),
        keys: &[],
        by: "KmsSecretBox::open unwraps the credential data key (never creates one)",
    },
    Grant {
        who: Poller,
        actions: TABLE_KEY,
        on: Key(Via::DynamoDb),
        keys: &[],
        by: "every table request",
    },
    Grant {
        who: Poller,
        actions: BUCKET_KEY,
        on: Key(Via::S3),
        keys: &[],
        by: "raw/ writes under SSE-KMS",
    },
    // ---- ingest: Intake (IngestService, LinkService, inbox copies) ----
    Grant {
        who: Ingest,
        actions: &["s3:GetObject"],
        on: Objects("raw/"),
        keys: &[],
        by: "IngestService reads the raw message a pointer names",
    },
    Grant {
        who: Ingest,
        actions: &["s3:GetObject"],
        on: Objects("quarantine/"),
        keys: &[],
        by: "a replayed pointer names the quarantine copy",
    },
    Grant {
        who: Ingest,
        actions: &["s3:GetObject"],
        on: Objects("bodies/"),
        keys: &[],
        by: "inbox copies read a stored text body when a user's filter needs it",
    },
    Grant {
        who: Ingest,
        actions: &["s3:PutObject"],
        on: Objects("bodies/"),
        keys: &[],
        by: "bodies too large for the item (keys::body_key)",
    },
    Grant {
        who: Ingest,
        actions: &["s3:PutObject"],
        on: Objects("attachments/"),
        keys: &[],
        by: "attachments (keys::attachment_key)",
    },
    Grant {
        who: Ingest,
        actions: &["s3:PutObject"],
        on: Objects("quarantine/"),
        keys: &[],
        by: "the durable copy of a quarantined message (keys::quarantine_key)",
    },
    Grant {
        who: Ingest,
        actions: &["dynamodb:Query"],
        on: Table,
        keys: &[FILTERS_PK, "MEMBERS#", "ADDR#"],
        by: "Intake::context (filters, the batch's teams: Crm::team_members; once per cache \
             period); Crm::records_by_address",
    },
    Grant {
        who: Ingest,
        actions: &["dynamodb:GetItem"],
        on: Table,
        keys: &[
            "REC#case",
            "REC#contact",
            "REC#lead",
            "THREAD#",
            COUNTER_PK,
            USERS_PK,
        ],
        by: "Crm::get_case, contact_account, lead_target, thread_case, counter; the assignee's \
             teams when a reply reopens a case (set_case_status)",
    },
    Grant {
        who: Ingest,
        actions: &["dynamodb:BatchGetItem"],
        on: Table,
        keys: &["MSGID#", LOAD_PK, "INBOX#", ACCOUNTS_PK, "ADDR#"],
        by: "Crm::messages (message index), open_loads; put_copies (which copies exist); \
             AccountStore::get_accounts (the batch's accounts), own_addresses (`MAILBOX` entries)",
    },
    Grant {
        who: Ingest,
        actions: &["dynamodb:BatchWriteItem"],
        on: Table,
        keys: &["INBOX#"],
        by: "FilterStore::put_copies (a team's copies, 25 a request)",
    },
    Grant {
        who: Ingest,
        actions: &["dynamodb:PutItem"],
        on: Table,
        keys: &[
            "EMAIL#",
            QUARANTINE_PK,
            SKIPPED_PK,
            "INBOX#",
            "MSGID#",
            "STREAM#",
            "THREAD#",
            "REC#case",
        ],
        by: "upsert_email, put_quarantine, put_skipped, put_copy; in transactions: message \
             index, stream entries, thread claim, case (claim_case, join_case, link_email)",
    },
    Grant {
        who: Ingest,
        actions: &["dynamodb:UpdateItem"],
        on: Table,
        keys: &["EMAIL#", "REC#case", COUNTER_PK, LOAD_PK, ACCOUNTS_PK],
        by: "upsert_email (accounts set), email links, case participants and status, \
             next_case_number and round-robin guard, open-case loads, record_case_error",
    },
    Grant {
        who: Ingest,
        actions: &["dynamodb:DeleteItem"],
        on: Table,
        keys: &[QUARANTINE_PK],
        by: "EmailStore::remove_quarantine once a replayed message imports",
    },
    Grant {
        who: Ingest,
        actions: &["sqs:SendMessage"],
        on: Queue("DispatchQueue"),
        keys: &[],
        by: "SqsQueue::send of case.created / email.linked events",
    },
    Grant {
        who: Ingest,
        actions: &[],
        on: EventSource("IngestQueue"),
        keys: &[],
        by: "its trigger: ingest pointers",
    },
    Grant {
        who: Ingest,
        actions: TABLE_KEY,
        on: Key(Via::DynamoDb),
        keys: &[],
        by: "every table request",
    },
    Grant {
        who: Ingest,
        actions: BUCKET_KEY,
        on: Key(Via::S3),
        keys: &[],
        by: "raw/, quarantine/ and bodies/ reads; bodies/, attachments/, quarantine/ writes",
    },
    // ---- dispatch: auto-replies and notification emails (issue 9) ----
    Grant {
        who: Dispatch,
        // SES v2 authorises SendEmail with raw content as ses:SendRawEmail too: AWS's denial
        // names that action for the SendEmail operation (see the closing note of issue 9).
        actions: &["ses:SendEmail", "ses:SendRawEmail"],
        on: Identities,
        keys: &[],
        by: "SesMailer::send_raw (SESv2 SendEmail, raw content) from a verified group address",
    },
    Grant {
        who: Dispatch,
        actions: &["ses:SendEmail", "ses:SendRawEmail"],
        on: ConfigurationSet,
        keys: &[],
        by: "SesMailer::send_raw through MAILROOM_SES_CONFIGURATION_SET (bounce and complaint \
             events to the feedback topic, R-A4)",
    },
    // ---- dispatch: what the dispatch service reads and records beyond its own stores ----
    Grant {
        who: Dispatch,
        actions: &["dynamodb:GetItem"],
        on: Table,
        keys: &[ACCOUNTS_PK, "EMAIL#", "REC#"],
        by: "AccountStore::get_account, EmailStore::get_email, Crm::get_case / record_name / \
             contact_account (template values, a record's account)",
    },
    Grant {
        who: Dispatch,
        actions: &["dynamodb:BatchGetItem"],
        on: Table,
        keys: &["MSGID#", "ADDR#", USERS_PK],
        by: "Crm::messages (the email's thread; whether it is our own mail), \
             AccountStore::own_addresses (R-A2: never answer Mailroom's own addresses), \
             Directory::get_users (who could be told of a delivered email)",
    },
    Grant {
        who: Dispatch,
        actions: &["dynamodb:Query"],
        on: Table,
        keys: &[USERS_PK],
        by: "Directory::list_users (the admins told of a failing group account, R-F7)",
    },
    Grant {
        who: Dispatch,
        actions: &["dynamodb:PutItem"],
        on: Table,
        keys: &["MSGID#", "STREAM#"],
        by: "Crm::index_sent (a transaction: both Message-IDs of a sent message, its stream entry)",
    },
    Grant {
        who: Dispatch,
        actions: &[],
        on: EventSource("FeedbackQueue"),
        keys: &[],
        by: "its second trigger: SES bounce and complaint notices through SNS",
    },
    // ---- dispatch: DispatchStore and Followers (the dispatch service's other reads are
    // its own rows) ----
    Grant {
        who: Dispatch,
        actions: &["dynamodb:GetItem"],
        on: Table,
        keys: &[SENT_PK],
        by: "DispatchStore::sent (the idempotency record of a send)",
    },
    Grant {
        who: Dispatch,
        actions: &["dynamodb:PutItem"],
        on: Table,
        keys: &[SENT_PK, SUPPRESSED_PK, "NOTIF#", FAILING_PK, "FOLLOW#"],
        by: "put_sent, put_suppressed, put_notifications (one conditional put, or conditional \
             puts in transactions), mark_failing; Followers::follow (a new case's assignee)",
    },
    Grant {
        who: Dispatch,
        actions: &["dynamodb:UpdateItem"],
        on: Table,
        keys: &["RATE#", ACCOUNTS_PK],
        by: "DispatchStore::take_allowance (one conditional ADD per auto-reply, R-A3); \
             AccountStore::record_send_error (SES refused a send for good)",
    },
    Grant {
        who: Dispatch,
        actions: &["dynamodb:BatchGetItem"],
        on: Table,
        keys: &["NOTIF#", FAILING_PK],
        by: "put_notifications (which exist already); DispatchStore::failing",
    },
    Grant {
        who: Dispatch,
        actions: &["dynamodb:Query"],
        on: Table,
        keys: &["FOLLOW#"],
        by: "Followers::followers (of the email's record and of its account, R-N1)",
    },
    Grant {
        who: Dispatch,
        actions: &[],
        on: EventSource("DispatchQueue"),
        keys: &[],
        by: "its trigger: case.created / email.linked events",
    },
    Grant {
        who: Dispatch,
        actions: TABLE_KEY,
        on: Key(Via::DynamoDb),
        keys: &[],
        by: "every table request",
    },
    // ---- api: the management resources (accounts, filters, directory, operations) ----
    Grant {
        who: Api,
        actions: &["dynamodb:GetItem"],
        on: Table,
        keys: &[
            ACCOUNTS_PK,
            USERS_PK,
            ROLES_PK,
            QUARANTINE_PK,
            CONFIG_PK,
            "EMAIL#",
            "REC#",
        ],
        by: "the caller (get_user, get_role), get_account, get_user (owners, filter scopes), \
             get_quarantine; KmsSecretBox reads the wrapped data key (seal, and open for a \
             quarantine refetch); get_email (reading, replying), get_case, get_record",
    },
    Grant {
        who: Api,
        actions: &["dynamodb:Query"],
        on: Table,
        keys: &[
            ACCOUNTS_PK,
            USERS_PK,
            TEAMS_PK,
            ROLES_PK,
            FILTERS_PK,
            QUARANTINE_PK,
            "REC#",
            "STREAM#",
            "FOLLOW#",
            "NOTIF#",
        ],
        by: "the listings: accounts, users, teams, roles, filters, quarantine, records and \
             cases; a record's stream (and a case's thread for a reply), its followers; the \
             caller's notifications",
    },
    Grant {
        who: Api,
        actions: &["dynamodb:PutItem"],
        on: Table,
        keys: &[
            ACCOUNTS_PK,
            USERS_PK,
            "ADDR#",
            "MEMBERS#",
            TEAMS_PK,
            ROLES_PK,
            FILTERS_PK,
            "REC#",
            "FOLLOW#",
            SENT_PK,
            "MSGID#",
            "STREAM#",
        ],
        by: "create_account; add_user (with its address-index and team-member entries); \
             add_team, add_role, add_filter; add_record (with its address-index entries); \
             Followers::follow; a send: DispatchStore::put_sent, then Crm::index_sent's \
             transaction (both Message-IDs, the parent's stream entry)",
    },
    Grant {
        who: Api,
        actions: &["dynamodb:UpdateItem"],
        on: Table,
        keys: &[
            ACCOUNTS_PK,
            "ADDR#",
            "REC#case",
            LOAD_PK,
            COUNTER_PK,
            "NOTIF#",
        ],
        by: "reset_account, set_account_active; create_account (the account's own-address \
             entry); update_case's transaction (the case, both users' open counts, the teams' \
             load versions); DispatchStore::mark_read",
    },
    Grant {
        who: Api,
        actions: &["dynamodb:DeleteItem"],
        on: Table,
        keys: &[FILTERS_PK, "FOLLOW#"],
        by: "remove_filter; Followers::unfollow",
    },
    Grant {
        who: Api,
        actions: &["dynamodb:BatchGetItem"],
        on: Table,
        keys: &[ACCOUNTS_PK, "ADDR#", "MSGID#"],
        by: "AccountStore::get_accounts (an email's accounts, once per request); \
             own_addresses (who a reply never goes to); the message index (a reply's thread)",
    },
    Grant {
        who: Api,
        actions: &["dynamodb:Scan"],
        on: Table,
        keys: &[],
        by: "EmailStore::list_emails (GET /v1/emails filters every email by R-P4: a per-account \
             email index would bound it; a Scan names no partition, so this row is the whole \
             table's)",
    },
    Grant {
        who: Api,
        actions: &["ses:SendEmail", "ses:SendRawEmail"],
        on: Identities,
        keys: &[],
        by: "SesMailer::send_raw: mail users send through the API (R-S1), from a verified group \
             or personal address",
    },
    Grant {
        who: Api,
        actions: &["ses:SendEmail", "ses:SendRawEmail"],
        on: ConfigurationSet,
        keys: &[],
        by: "SesMailer::send_raw through MAILROOM_SES_CONFIGURATION_SET (bounces and complaints \
             of API mail reach dispatch too)",
    },
    Grant {
        who: Api,
        actions: TABLE_KEY,
        on: Key(Via::DynamoDb),
        keys: &[],
        by: "every table request",
    },
    Grant {
        who: Api,
        actions: &["kms:Decrypt"],
        on: Key(Via::DataKey),
        keys: &[],
        by: "secrets::ExistingKey::seal (a password given through the API) unwraps the data \
             key, never creating one; open, for a quarantine refetch",
    },
    Grant {
        who: Api,
        actions: &["ses:CreateEmailIdentity", "ses:GetEmailIdentity"],
        on: Identities,
        keys: &[],
        by: "SesMailer::verify_identity (a group account's address, POST /v1/accounts/group)",
    },
    Grant {
        who: Api,
        actions: &["s3:GetObject", "s3:PutObject"],
        on: Objects("quarantine/"),
        keys: &[],
        by: "PollService::replay_pointer reads the quarantine copy, and stores it when a \
             message quarantined empty is read from its mailbox again",
    },
    Grant {
        who: Api,
        actions: &["s3:GetObject"],
        on: Objects("attachments/"),
        keys: &[],
        by: "S3Blobs::presign_get: a pre-signed attachment URL acts with the signer's rights \
             (GET /v1/emails/{id}/attachments/{index})",
    },
    Grant {
        who: Api,
        actions: &["s3:GetObject"],
        on: Objects("bodies/"),
        keys: &[],
        by: "BlobStore::get of a body too large for the item (GET /v1/emails/{id})",
    },
    Grant {
        who: Api,
        actions: BUCKET_KEY,
        on: Key(Via::S3),
        keys: &[],
        by: "S3 SSE-KMS on the API's objects: reads, directly or through a pre-signed URL, \
             and the quarantine copies (the pair every bucket user holds, bucket keys \
             included)",
    },
    Grant {
        who: Api,
        actions: &["sqs:SendMessage"],
        on: Queue("IngestQueue"),
        keys: &[],
        by: "a quarantine replay; a redrive of the ingest dead-letter queue",
    },
    Grant {
        who: Api,
        actions: &["sqs:SendMessage"],
        on: Queue("PollQueue"),
        keys: &[],
        by: "a redrive of the poll dead-letter queue",
    },
    Grant {
        who: Api,
        actions: &[
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        ],
        on: Queue("IngestDeadLetterQueue"),
        keys: &[],
        by: "GET /v1/dead-letters (depth), POST /v1/dead-letters/replay (Adapters::redrive)",
    },
    Grant {
        who: Api,
        actions: &[
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        ],
        on: Queue("PollDeadLetterQueue"),
        keys: &[],
        by: "GET /v1/dead-letters (depth), POST /v1/dead-letters/replay (Adapters::redrive)",
    },
    // ---- the CLI alone (an operator's role; not in the template) ----
    Grant {
        who: Cli,
        actions: &["dynamodb:GetItem"],
        on: Table,
        keys: &[ACCOUNTS_PK, USERS_PK, ROLES_PK, QUARANTINE_PK, "REC#", CONFIG_PK],
        by: "account, user and role look-ups (`users add --role`), get_quarantine, \
             record_exists; the data key (seal)",
    },
    Grant {
        who: Cli,
        actions: &["dynamodb:BatchGetItem"],
        on: Table,
        keys: &[ACCOUNTS_PK],
        by: "a cycle of named accounts (`mailroom poll --account`): AccountStore::get_accounts",
    },
    Grant {
        who: Cli,
        actions: &["dynamodb:Query"],
        on: Table,
        keys: &[
            ACCOUNTS_PK,
            USERS_PK,
            TEAMS_PK,
            ROLES_PK,
            FILTERS_PK,
            SKIPPED_PK,
            QUARANTINE_PK,
            "INBOX#",
            "REC#",
            "STREAM#",
            "FOLLOW#",
            SENT_PK,
            SUPPRESSED_PK,
            "NOTIF#",
        ],
        by: "the listings (accounts, users, teams, filters, skipped, quarantine, inbox, records, \
             cases, streams, followers; `sent list` and its suppressed, `notifications list`)",
    },
    Grant {
        who: Cli,
        actions: &["dynamodb:Scan"],
        on: Table,
        keys: &[],
        by: "EmailStore::list_emails (`mailroom emails list`)",
    },
    Grant {
        who: Cli,
        actions: &["dynamodb:PutItem"],
        on: Table,
        keys: &[
            ACCOUNTS_PK,
            USERS_PK,
            TEAMS_PK,
            ROLES_PK,
            FILTERS_PK,
            "ADDR#",
            "REC#",
            "FOLLOW#",
            CONFIG_PK,
            "MEMBERS#",
        ],
        by: "create_account, add_user (with its team-member entries), add_team, add_role, add_filter, \
             add_record (with address index), follow; the data key \
             (KmsSecretBox::create_data_key); ensure_address_index, ensure_member_index and \
             ensure_schedule_index \
             (their markers, the member entries of users added before them)",
    },
    Grant {
        who: Cli,
        actions: &["dynamodb:UpdateItem"],
        on: Table,
        keys: &[
            ACCOUNTS_PK,
            "REC#case",
            LOAD_PK,
            COUNTER_PK,
            "ADDR#",
            "NOTIF#",
            USERS_PK,
        ],
        by: "reset_account, set_case_settings, set_send_as; set_case_status (with the \
             assignee's load and the teams' load versions); set_admin, set_notify_email, \
             set_role (a user's own item); \
             create_account and ensure_address_index (an account's own-address entry); \
             DispatchStore::mark_read; ensure_schedule_index (the index attributes of accounts \
             from before it)",
    },
    Grant {
        who: Cli,
        actions: &["dynamodb:DeleteItem"],
        on: Table,
        keys: &[FILTERS_PK],
        by: "remove_filter",
    },
    Grant {
        who: Cli,
        actions: &["kms:GenerateDataKey"],
        on: Key(Via::DataKey),
        keys: &[],
        by: "KmsSecretBox::create_data_key (provisioning, and the first sealed account)",
    },
    Grant {
        who: Cli,
        actions: &["kms:Decrypt"],
        on: Key(Via::DataKey),
        keys: &[],
        by: "KmsSecretBox::seal unwraps the data key",
    },
    Grant {
        who: Cli,
        actions: &["ses:CreateEmailIdentity", "ses:GetEmailIdentity"],
        on: Identities,
        keys: &[],
        by: "SesMailer::verify_identity (`mailroom account add-group` verifies the group address)",
    },
    Grant {
        who: Cli,
        actions: &["s3:ListBucket"],
        on: Bucket,
        keys: &[],
        by: "S3Blobs::list (operator tools, tests)",
    },
    Grant {
        who: Cli,
        actions: &["s3:PutObject"],
        on: Objects("raw/"),
        keys: &[],
        by: "mailroom-bench stores raw messages directly",
    },
    Grant {
        who: Cli,
        actions: &[
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        ],
        on: Queue("*"),
        keys: &[],
        by: "the local cycle drains every queue; `mailroom dlq` reads the dead-letter queues",
    },
    Grant {
        who: Cli,
        actions: &["sqs:SendMessage"],
        on: Queue("IngestQueue"),
        keys: &[],
        by: "`quarantine replay` and `dlq redrive` send pointers again",
    },
    Grant {
        who: Cli,
        actions: &[
            "dynamodb:CreateTable",
            "dynamodb:DescribeTable",
            "dynamodb:UpdateTable",
            "dynamodb:UpdateTimeToLive",
            "s3:CreateBucket",
            "s3:ListBucket",
            "sqs:CreateQueue",
            "sqs:GetQueueUrl",
            "sqs:GetQueueAttributes",
            "kms:CreateKey",
            "kms:CreateAlias",
            "kms:ListAliases",
        ],
        on: LocalStack,
        keys: &[],
        by: "provision::provision (the local stack and the tests' prefixes; the schedule \
             index added to a table from before it)",
    },
];

/// Actions that change state: a function granted one it never makes fails the template test
/// with the word "write" (reads it never makes fail too).
pub fn is_write(action: &str) -> bool {
    const WRITES: &[&str] = &[
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "s3:PutObject",
        "s3:DeleteObject",
        "sqs:SendMessage",
        "sqs:DeleteMessage",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKey*",
        "ses:SendEmail",
        "ses:SendRawEmail",
        "ses:CreateEmailIdentity",
    ];
    WRITES.iter().any(|w| w.eq_ignore_ascii_case(action)) || action.ends_with(":*")
}

/// A partition key as a `dynamodb:LeadingKeys` pattern: a prefix (`EMAIL#`) matches its ids.
pub fn leading_key_pattern(key: &str) -> String {
    if key.ends_with('#') {
        format!("{key}*")
    } else {
        key.to_string()
    }
}

/// The rows of one principal.
pub fn grants_of(who: Principal) -> impl Iterator<Item = &'static Grant> {
    GRANTS.iter().filter(move |g| g.who == who)
}

/// Days beyond the ingest dead-letter queue's retention that raw messages must outlive it: a
/// pointer replayed from the DLQ on its last day still finds its raw message.
pub const RAW_RETENTION_MARGIN_DAYS: u64 = 7;

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_core::keys::{record_pk, DYNAMO_KEY_PREFIXES, S3_PREFIXES};

    fn listed(key: &str) -> bool {
        DYNAMO_KEY_PREFIXES.iter().any(|p| {
            if p.ends_with('#') {
                key.starts_with(p)
            } else {
                key == *p
            }
        })
    }

    #[test]
    fn every_key_and_prefix_is_one_the_code_builds() {
        for g in GRANTS {
            for k in g.keys {
                assert!(listed(k), "{g:?}: {k} is not under DYNAMO_KEY_PREFIXES");
            }
            if let Resource::Objects(p) = g.on {
                assert!(S3_PREFIXES.contains(&p), "{g:?}: {p} is not in S3_PREFIXES");
            }
            if g.on == Resource::Table && g.who != Principal::Cli && g.actions != ["dynamodb:Scan"]
            {
                // A function's table grant always names its partitions (LeadingKeys); a Scan
                // names none, so its row says so alone.
                assert!(!g.keys.is_empty(), "{g:?}");
            }
            if g.on != Resource::Table {
                assert!(g.keys.is_empty(), "{g:?}: keys only apply to the table");
            }
        }
        // The fixed record partitions named above are the ones the adapter builds.
        for kind in ["case", "contact", "lead"] {
            assert!(GRANTS
                .iter()
                .any(|g| g.keys.contains(&record_pk(kind).as_str())));
        }
        assert_eq!(leading_key_pattern("EMAIL#"), "EMAIL#*");
        assert_eq!(leading_key_pattern(ACCOUNTS_PK), "ACCOUNTS");
    }

    #[test]
    fn every_function_that_uses_the_table_or_bucket_has_the_key_through_that_service() {
        for who in Principal::FUNCTIONS {
            let has = |on: Resource, action: &str| {
                grants_of(who).any(|g| g.on == on && g.actions.contains(&action))
            };
            if grants_of(who).any(|g| g.on == Resource::Table) {
                for a in TABLE_KEY {
                    assert!(has(Resource::Key(Via::DynamoDb), a), "{who:?} lacks {a}");
                }
            }
            if grants_of(who).any(|g| matches!(g.on, Resource::Objects(_))) {
                for a in BUCKET_KEY {
                    assert!(has(Resource::Key(Via::S3), a), "{who:?} lacks {a}");
                }
            }
        }
        // Only the CLI may create a data key; no function may.
        for g in GRANTS {
            if g.on == Resource::Key(Via::DataKey) && g.who != Principal::Cli {
                assert_eq!(g.actions, ["kms:Decrypt"], "{g:?}");
            }
        }
    }
}
