//! Every storage key format of the project, in one leaf module (it imports nothing of the
//! crate): S3 object keys here, DynamoDB partition and sort keys beside them. Adapters and
//! services build keys only through these functions, so a format is changed in one place and
//! the IAM check can list every prefix.
//!
//! | S3 prefix      | holds                                   | written by | lifetime                |
//! |----------------|-----------------------------------------|------------|-------------------------|
//! | `raw/`         | raw messages as fetched                 | poller     | bucket lifecycle rule   |
//! | `bodies/`      | text/HTML bodies too large for an item  | ingest     | kept                    |
//! | `attachments/` | attachments and inline parts            | ingest     | kept                    |
//! | `quarantine/`  | raw copies of quarantined messages      | ingest     | kept (replayable, R-F9) |
//!
//! DynamoDB: one table, keys `pk` and `sk`. The item types and their attributes are tabled in
//! the adapter's module doc (`mailroom_aws::dynamo`); the formats are here. A partition key is
//! either a fixed name (`ACCOUNTS`) or a prefix and an id (`EMAIL#<email id>`); every one is in
//! [`DYNAMO_KEY_PREFIXES`].

/// Every S3 prefix the project writes or reads, for the IAM check.
pub const S3_PREFIXES: [&str; 4] = ["raw/", "bodies/", "attachments/", "quarantine/"];

/// The S3 key of a raw message. Deterministic, so a re-run overwrites instead of duplicating.
pub fn raw_key(account: &str, folder: &str, uidvalidity: u32, uid: u32) -> String {
    format!(
        "raw/{account}/{}/{uidvalidity}/{uid}.eml",
        encode_path_part(folder)
    )
}

/// A body too large for the email item (R-F6): `name` is `text` or `html`.
pub fn body_key(email_id: &str, name: &str) -> String {
    format!("bodies/{email_id}/{name}")
}

/// The `index`th attachment of an email; the file name (already shortened) is kept readable.
pub fn attachment_key(email_id: &str, index: usize, filename: Option<&str>) -> String {
    match filename {
        Some(name) => {
            let mut encoded = encode_path_part(name);
            // S3 keys hold at most 1,024 bytes: keep the readable name short, whole escapes only.
            if encoded.len() > ATTACHMENT_NAME_KEY_BYTES {
                let mut end = ATTACHMENT_NAME_KEY_BYTES;
                while encoded.as_bytes()[end - 1] == b'%' || encoded.as_bytes()[end - 2] == b'%' {
                    end -= 1;
                }
                encoded.truncate(end);
            }
            format!("attachments/{email_id}/{index}-{encoded}")
        }
        None => format!("attachments/{email_id}/{index}"),
    }
}

/// The encoded file name's share of an attachment key (the rest is under 100 bytes).
pub const ATTACHMENT_NAME_KEY_BYTES: usize = 300;

/// A key part taken from a message's content (a Message-ID, a thread root, a sender address):
/// verbatim up to [`KEY_PART_BYTES`], else `h:` and its SHA-256, so no key reaches DynamoDB's
/// 2,048-byte partition key limit. The item keeps the verbatim value.
pub fn key_part(value: &str) -> std::borrow::Cow<'_, str> {
    use sha2::{Digest, Sha256};
    if value.len() <= KEY_PART_BYTES {
        return std::borrow::Cow::Borrowed(value);
    }
    let digest = Sha256::digest(value.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    std::borrow::Cow::Owned(format!("h:{hex}"))
}

/// Longest content-derived key part kept verbatim.
pub const KEY_PART_BYTES: usize = 512;

/// The durable raw copy of a quarantined message.
pub fn quarantine_key(id: &str) -> String {
    format!("quarantine/{id}.eml")
}

/// The sort key of a skipped-message record: one per account, folder, UIDVALIDITY and UID.
pub fn skipped_key(account: &str, folder: &str, uidvalidity: u32, uid: u32) -> String {
    format!(
        "{account}#{}#{uidvalidity}#{uid:010}",
        encode_path_part(folder)
    )
}

// ---- DynamoDB partition keys: fixed names ----

/// Every account, in one partition: the CLI lists them with one paginated Query (the
/// scheduler reads the schedule index instead, [`SCHEDULE_INDEX`]).
pub const ACCOUNTS_PK: &str = "ACCOUNTS";
/// Quarantined messages (R-F9).
pub const QUARANTINE_PK: &str = "QUARANTINE";
/// Deployment configuration: the wrapped data key (R-F8).
pub const CONFIG_PK: &str = "CONFIG";
/// Filters (R-X), one partition: ingest reads them all at once.
pub const FILTERS_PK: &str = "FILTERS";
/// Messages a filter skipped (R-X).
pub const SKIPPED_PK: &str = "SKIPPED";
pub const USERS_PK: &str = "USERS";
pub const TEAMS_PK: &str = "TEAMS";
pub const ROLES_PK: &str = "ROLES";
/// Counters: the case number, one round-robin position per account (R-C5), and one load
/// version per team (R-C3).
pub const COUNTER_PK: &str = "COUNTER";
/// Open cases per user (R-C3), beside the cases so a claim can check and count in one transaction.
pub const LOAD_PK: &str = "LOAD";
/// Every email Mailroom sent (R-I3), one partition: the send's idempotency record, sort key
/// [`sent_sk`].
pub const SENT_PK: &str = "SENT";
/// Auto-replies and notification emails deliberately not sent, with why (R-A2, R-A3).
pub const SUPPRESSED_PK: &str = "SUPPRESSED";
/// Addresses that bounced or complained (R-A4), sort key [`failing_sk`]: read by key in one
/// BatchGetItem for a notification's recipients.
pub const FAILING_PK: &str = "FAILING";

// ---- DynamoDB sort keys: fixed names ----

/// The sort key of an email item (also how a scan finds every email).
pub const EMAIL_SK: &str = "EMAIL";
/// The sort key of a message-index entry (R-L1).
pub const MESSAGE_SK: &str = "MSGID";
/// The sort key of a thread's case claim (R-C4).
pub const CLAIM_SK: &str = "CLAIM";
/// The sort key of the wrapped data key in [`CONFIG_PK`].
pub const DATA_KEY_SK: &str = "DATAKEY";
/// The address-index entry (in `ADDR#<address>`) saying an account's own address is this one:
/// ingest looks addresses up instead of listing accounts (R-L3, mail from us). No `#`, so it is
/// never taken for a record or user entry ([`split_address_sk`]).
pub const MAILBOX_SK: &str = "MAILBOX";
/// The marker in [`CONFIG_PK`] saying every account's address is in the index (accounts made
/// before the index existed were added once, by the CLI's connect).
pub const ADDRESS_INDEX_SK: &str = "ADDRESSINDEX";
/// The same marker for the team-member entries ([`members_pk`]).
pub const MEMBER_INDEX_SK: &str = "MEMBERINDEX";
/// The same marker for the schedule index's attributes on accounts ([`schedule_pk`]).
pub const SCHEDULE_INDEX_SK: &str = "SCHEDULEINDEX";
/// The case-number counter in [`COUNTER_PK`].
pub const CASE_COUNTER_SK: &str = "case";
/// A case's first stream entry.
pub const CASE_CREATED_SK: &str = "case_created";
/// The one item of an auto-reply allowance bucket ([`allowance_pk`]).
pub const ALLOWANCE_SK: &str = "RATE";

/// Every partition key of the table: a fixed name, or a prefix ending in `#`. For the IAM check
/// (`dynamodb:LeadingKeys`) and the test below.
pub const DYNAMO_KEY_PREFIXES: [&str; 24] = [
    ACCOUNTS_PK,
    "EMAIL#",
    QUARANTINE_PK,
    CONFIG_PK,
    FILTERS_PK,
    SKIPPED_PK,
    "INBOX#",
    "REC#",
    "ADDR#",
    USERS_PK,
    TEAMS_PK,
    ROLES_PK,
    "FOLLOW#",
    "MEMBERS#",
    "STREAM#",
    "MSGID#",
    "THREAD#",
    COUNTER_PK,
    LOAD_PK,
    SENT_PK,
    SUPPRESSED_PK,
    "RATE#",
    "NOTIF#",
    FAILING_PK,
];

// ---- DynamoDB keys with ids ----

/// An email's partition (sort key [`EMAIL_SK`]); ids are content hashes, so one item per email.
pub fn email_pk(email_id: &str) -> String {
    format!("EMAIL#{email_id}")
}

/// A team's members: a copy of each member's user item, sort key [`member_sk`], so one Query
/// gives the team in round-robin order (join order) without listing every user.
pub fn members_pk(team: &str) -> String {
    format!("MEMBERS#{team}")
}

/// A member's place in [`members_pk`]: join time (fixed width, so it sorts), then name, the
/// order `Directory::list_users` gives.
pub fn member_sk(joined: chrono::DateTime<chrono::Utc>, user: &str) -> String {
    format!("{}#{user}", joined.format("%Y%m%dT%H%M%S%.9f"))
}

/// A user's copies of emails (R-X); sort key: the email id.
pub fn inbox_pk(user: &str) -> String {
    format!("INBOX#{user}")
}

/// The partition of one record type (`account`, `contact`, `lead`, `opportunity`, `case`).
pub fn record_pk(kind: &str) -> String {
    format!("REC#{kind}")
}

/// A case's sort key: zero-padded, so a partition query lists cases in number order.
pub fn case_sk(number: u64) -> String {
    format!("{number:012}")
}

/// The records (and users) an address belongs to (R-L2); `address` is already normalised.
pub fn address_pk(address: &str) -> String {
    format!("ADDR#{}", key_part(address))
}

/// An address-index entry: `<type>#<id>`, `type` being a record type or `user`.
pub fn address_sk(kind: &str, id: &str) -> String {
    format!("{kind}#{id}")
}

/// The type and id an [`address_sk`] names.
pub fn split_address_sk(sk: &str) -> Option<(&str, &str)> {
    sk.split_once('#')
}

/// A record's followers; sort key: the user. A contact's or lead's id is an address, so it is
/// bounded like any content-derived part (short ids, every one so far, keep their key).
pub fn follow_pk(kind: &str, id: &str) -> String {
    format!("FOLLOW#{kind}#{}", key_part(id))
}

/// A record's stream; sort keys [`stream_email_sk`] and [`CASE_CREATED_SK`].
pub fn stream_pk(kind: &str, id: &str) -> String {
    format!("STREAM#{kind}#{id}")
}

/// A stream entry for an email: one per email, so a redelivery overwrites it.
pub fn stream_email_sk(email_id: &str) -> String {
    format!("email#{email_id}")
}

/// A stream entry for a message Mailroom sent, by its send id.
pub fn stream_sent_sk(send_id: &str) -> String {
    format!("sent#{}", key_part(send_id))
}

/// The message index (R-L1): which email a Message-ID is, its parent and thread.
pub fn message_pk(message_id: &str) -> String {
    format!("MSGID#{}", key_part(message_id))
}

/// A thread's claim on a case (R-C4): at most one case per thread.
pub fn thread_pk(thread_key: &str) -> String {
    format!("THREAD#{}", key_part(thread_key))
}

/// An account's round-robin position (R-C5), in [`COUNTER_PK`].
pub fn round_robin_sk(account: &str) -> String {
    format!("rr#{account}")
}

/// A team's load version (R-C3), in [`COUNTER_PK`]: bumped by every change of any member's
/// open count, so a least-busy claim conditions on one item instead of every member's count.
pub fn team_loads_sk(team: &str) -> String {
    format!("loads#{team}")
}

/// A sent email's (or a suppressed one's) sort key in [`SENT_PK`] / [`SUPPRESSED_PK`]: its
/// idempotency id, which holds a Message-ID or an address, so bounded.
pub fn sent_sk(id: &str) -> String {
    key_part(id).into_owned()
}

/// One auto-reply allowance bucket (one sender's window, R-A3), sort key [`ALLOWANCE_SK`]: a
/// partition of its own, so senders never contend on one item.
pub fn allowance_pk(bucket: &str) -> String {
    format!("RATE#{}", key_part(bucket))
}

/// A user's notifications (R-N); sort key [`notification_sk`].
pub fn notification_pk(user: &str) -> String {
    format!("NOTIF#{}", key_part(user))
}

/// A notification's sort key: its deterministic key alone (no time), so marking one read is
/// one UpdateItem by user and key; a listing reads the partition and orders by `at`.
pub fn notification_sk(key: &str) -> String {
    key_part(key).into_owned()
}

/// A failing address's sort key in [`FAILING_PK`]; `address` is already normalised.
pub fn failing_sk(address: &str) -> String {
    key_part(address).into_owned()
}

// ---- the schedule index (`sched`, a GSI over account items; not table partitions) ----

/// The index that lists due accounts (`mailroom_core::schedule`).
pub const SCHEDULE_INDEX: &str = "sched";

/// An account's partition of the schedule index while it is not backing off: sort key its
/// last mail (else its creation), so one range condition finds the accounts of one interval.
pub fn schedule_pk(shard: u32) -> String {
    format!("SCHED#{shard:02}")
}

/// The same shard's accounts in back-off: sort key the end of the back-off.
pub fn schedule_wait_pk(shard: u32) -> String {
    format!("SCHED#{shard:02}#WAIT")
}

/// Folder names may hold `/`, spaces or any Unicode; keys get a reversible, plain form.
pub fn encode_path_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_plain_and_every_prefix_is_listed() {
        assert_eq!(
            raw_key("support", "INBOX/Sub folder", 7, 42),
            "raw/support/INBOX%2FSub%20folder/7/42.eml"
        );
        assert_eq!(
            attachment_key("e1", 2, Some("a b.pdf")),
            "attachments/e1/2-a%20b.pdf"
        );
        assert_eq!(skipped_key("a", "INBOX", 3, 9), "a#INBOX#3#0000000009");
        for key in [
            raw_key("a", "f", 1, 1),
            body_key("e", "text"),
            attachment_key("e", 0, None),
            quarantine_key("q"),
        ] {
            assert!(S3_PREFIXES.iter().any(|p| key.starts_with(p)), "{key}");
        }
    }

    #[test]
    fn dynamo_keys_keep_their_formats_and_every_partition_is_listed() {
        assert_eq!(email_pk("e1"), "EMAIL#e1");
        assert_eq!(record_pk("contact"), "REC#contact");
        assert_eq!(case_sk(42), "000000000042");
        assert_eq!(address_sk("user", "ann"), "user#ann");
        assert_eq!(
            split_address_sk("contact#a@b.c"),
            Some(("contact", "a@b.c"))
        );
        // An account's own-address entry is never read as a record or user entry.
        assert_eq!(split_address_sk(MAILBOX_SK), None);
        // Members sort by join time, then name, whatever the digits of the fraction.
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-01-01T09:59:59.5Z").unwrap();
        let t1 = chrono::DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z").unwrap();
        let (t0, t1) = (t0.to_utc(), t1.to_utc());
        assert!(member_sk(t0, "zed") < member_sk(t1, "ann"));
        assert!(member_sk(t1, "ann") < member_sk(t1, "bob"));
        assert_eq!(stream_pk("case", "7"), "STREAM#case#7");
        assert_eq!(stream_email_sk("e1"), "email#e1");
        assert_eq!(round_robin_sk("support"), "rr#support");
        assert_eq!(team_loads_sk("l1"), "loads#l1");
        assert_eq!(follow_pk("account", "Acme"), "FOLLOW#account#Acme");
        assert_eq!(allowance_pk("a@b.c#1"), "RATE#a@b.c#1");
        assert_eq!(notification_pk("ann"), "NOTIF#ann");
        assert_eq!(notification_sk("e1"), "e1");
        assert_eq!(
            (sent_sk("e1#auto-reply"), failing_sk("a@b.c")),
            ("e1#auto-reply".into(), "a@b.c".into())
        );
        for pk in [
            ACCOUNTS_PK.to_string(),
            email_pk("e"),
            QUARANTINE_PK.to_string(),
            CONFIG_PK.to_string(),
            FILTERS_PK.to_string(),
            SKIPPED_PK.to_string(),
            inbox_pk("u"),
            record_pk("lead"),
            address_pk("a@b.c"),
            USERS_PK.to_string(),
            TEAMS_PK.to_string(),
            ROLES_PK.to_string(),
            follow_pk("account", "Acme"),
            members_pk("l1"),
            stream_pk("contact", "a@b.c"),
            message_pk("<m@x>"),
            thread_pk("t"),
            COUNTER_PK.to_string(),
            LOAD_PK.to_string(),
            SENT_PK.to_string(),
            SUPPRESSED_PK.to_string(),
            allowance_pk("ann@example.com#2026-03-03T10"),
            notification_pk("ann"),
            FAILING_PK.to_string(),
        ] {
            let listed = DYNAMO_KEY_PREFIXES
                .iter()
                .filter(|p| {
                    if p.ends_with('#') {
                        pk.starts_with(*p)
                    } else {
                        pk == **p
                    }
                })
                .count();
            assert_eq!(listed, 1, "{pk}");
        }
    }

    #[test]
    fn keys_from_content_stay_within_the_limits_of_aws() {
        let long = "i".repeat(3000);
        for key in [
            message_pk(&long),
            thread_pk(&long),
            address_pk(&long),
            follow_pk("contact", &long),
            sent_sk(&long),
            allowance_pk(&long),
            notification_pk(&long),
            notification_sk(&long),
            failing_sk(&long),
        ] {
            assert!(key.len() < 100, "{key}");
        }
        assert_eq!(message_pk("a@b"), "MSGID#a@b", "short ids keep their key");
        assert_ne!(message_pk(&long), message_pk(&"i".repeat(3001)));
        let name = "Ünïcødé-名前-".repeat(40);
        let key = attachment_key(&"e".repeat(32), 1499, Some(&name));
        assert!(key.len() <= 1024, "{}", key.len());
        assert!(!key.ends_with('%') && key.as_bytes()[key.len() - 2] != b'%');
    }
}
