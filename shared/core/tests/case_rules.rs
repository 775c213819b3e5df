//! Table-driven link and case rules from `tests/fixtures/cases/*.test` (format in its README):
//! the real ingest parse and [`LinkService`] on the in-memory fakes, no Dovecot, no moto.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use mailroom_core::cases::{LinkCache, LinkOutcome, LinkService};
use mailroom_core::error::Invalid;
use mailroom_core::ingest::{IngestOutcome, IngestService};
use mailroom_core::limits::Limits;
use mailroom_core::memory::{MemoryBlobs, MemoryCrm, MemoryQueue, MemoryStore};
use mailroom_core::messages::DispatchEvent;
use mailroom_core::messages::IngestPointer;
use mailroom_core::model::*;
use mailroom_core::ports::BlobStore;
use mailroom_core::records::*;
use mailroom_core::types::CaseNumber;

/// Every rule the specs must show both firing and not firing.
const RULES: [&str; 8] = [
    "R-L1", "R-L2", "R-L3", "R-A4", "R-C1", "R-C3", "R-C5", "R-C6",
];

enum Step {
    /// A `given` line, split into words, applied when reached (so it may follow a message).
    Given(usize, Vec<String>),
    /// A message and its options (`via=<mailbox>`, `again`).
    Message(usize, Vec<String>, String),
    Expect(usize, String),
}

struct Spec {
    file: String,
    title: String,
    /// (rule id, fires)
    rules: Vec<(String, bool)>,
    steps: Vec<Step>,
}

fn specs() -> Vec<Spec> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("case rule specs exist")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let mut current: Option<Spec> = None;
        let mut in_message = false;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if let Some(title) = line.strip_prefix("=== ") {
                out.extend(current.take());
                current = Some(Spec {
                    file: file.clone(),
                    title: title.trim().into(),
                    rules: vec![],
                    steps: vec![],
                });
                in_message = false;
                continue;
            }
            let Some(spec) = current.as_mut() else {
                assert!(
                    line.trim().is_empty() || line.starts_with('#'),
                    "{file}:{n}: text before the first === title"
                );
                continue;
            };
            if in_message && (line.starts_with("  ") || line.is_empty()) {
                if let Some(Step::Message(_, _, raw)) = spec.steps.last_mut() {
                    raw.push_str(line.strip_prefix("  ").unwrap_or(""));
                    raw.push_str("\r\n");
                }
                continue;
            }
            in_message = false;
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            match words[0].as_str() {
                "rule" => {
                    let fires = match words.get(2).map(String::as_str) {
                        Some("fires") => true,
                        Some("does-not-fire") => false,
                        _ => panic!("{file}:{n}: write `rule R-.. fires|does-not-fire`"),
                    };
                    spec.rules.push((words[1].clone(), fires));
                }
                "message" => {
                    in_message = !words.iter().any(|w| w == "again");
                    spec.steps
                        .push(Step::Message(n, words[1..].to_vec(), String::new()));
                }
                "expect" => spec.steps.push(Step::Expect(n, line[7..].trim().into())),
                _ => spec.steps.push(Step::Given(n, words)),
            }
        }
        out.extend(current.take());
    }
    out
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-03T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// `key=value` options and bare flags of a given line.
struct Opts(BTreeMap<String, String>);

impl Opts {
    fn new(words: &[String]) -> Self {
        Opts(
            words
                .iter()
                .map(|w| match w.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (w.clone(), String::new()),
                })
                .collect(),
        )
    }
    fn get(&self, k: &str) -> Option<String> {
        self.0.get(k).cloned()
    }
    fn has(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }
    fn list(&self, k: &str) -> Vec<String> {
        self.0
            .get(k)
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default()
    }
}

/// One spec's world: the fakes, the mail accounts, and what the last message did.
#[derive(Default)]
struct World {
    crm: MemoryCrm,
    store: MemoryStore,
    blobs: MemoryBlobs,
    events: MemoryQueue<DispatchEvent>,
    limits: Limits,
    mailboxes: Vec<Account>,
    users: u32,
    messages: u32,
    last_raw: Option<String>,
    /// The last message's outcome and the events it emitted.
    last: Option<(LinkOutcome, Vec<DispatchEvent>)>,
    /// Rules that fired, message by message.
    fired: Vec<Option<&'static str>>,
}

fn mailbox(name: &str, o: &Opts) -> Account {
    let case = o.get("case").map(|d| CaseSettings {
        create_case: o.get("create").as_deref() != Some("off"),
        distribution: d.parse().unwrap(),
        assign_to: o.get("assign-to"),
        target_team: o.get("target-team"),
        position: o.get("position").map(|p| p.replace('_', " ")),
        reopen_on_reply: o.has("reopen"),
    });
    Account {
        v: 1,
        name: name.into(),
        kind: match o.has("personal") {
            true => AccountKind::Personal,
            false => AccountKind::Group,
        },
        address: Some(
            o.get("address")
                .unwrap_or_else(|| format!("{name}@example.test")),
        ),
        owner: o.get("owner"),
        imap: ImapSettings {
            host: "imap.example.test".into(),
            port: 993,
            user: name.into(),
            security: Security::ImplicitTls,
        },
        secret: SealedSecret {
            key_id: "fake".into(),
            nonce: name.into(),
            ciphertext: String::new(),
        },
        folders: vec!["INBOX".into()],
        fetch_since: None,
        teams: o.list("teams"),
        active: true,
        created_at: t0(),
        folder_state: BTreeMap::new(),
        status: AccountStatus::default(),
        case,
        person_centric: o.has("person-centric"),
        case_error: None,
        case_error_at: None,
        auto_reply: None,
        identity: None,
        send_error: None,
        send_error_at: None,
        send_as: Default::default(),
    }
}

impl World {
    fn given(&mut self, words: &[String]) -> Result<(), String> {
        let (what, id) = (words[0].as_str(), words.get(1).cloned().unwrap_or_default());
        let o = Opts::new(words.get(2..).unwrap_or_default());
        let e = |r: mailroom_core::ports::StoreResult<()>| r.map_err(|e| e.to_string());
        match what {
            "mailbox" => self.mailboxes.push(mailbox(&id, &o)),
            "account" => e(self.crm.add_account(CrmAccount {
                v: 1,
                name: id,
                emails: o.list("emails"),
            }))?,
            "contact" => e(self.crm.add_contact(Contact {
                v: 1,
                name: id.clone(),
                email: id,
                account: o.get("account"),
            }))?,
            "lead" => e(self.crm.add_lead(Lead {
                v: 1,
                name: id.clone(),
                email: id,
                converted_contact: o.get("converted-contact"),
                converted_account: o.get("converted-account"),
            }))?,
            "team" => e(self.crm.add_team(&id))?,
            "user" => {
                self.users += 1;
                let teams = o
                    .list("teams")
                    .into_iter()
                    .map(|m| match m.split_once('/') {
                        Some((team, p)) => TeamMembership {
                            team: team.into(),
                            position: Some(p.replace('_', " ")),
                        },
                        None => TeamMembership {
                            team: m,
                            position: None,
                        },
                    })
                    .collect();
                e(self.crm.add_user(User {
                    v: 1,
                    name: id,
                    emails: o.list("emails"),
                    teams,
                    active: !o.has("inactive"),
                    created_at: t0() + Duration::minutes(self.users as i64),
                    admin: false,
                    notify_email: false,
                    role: None,
                }))?
            }
            "case" => {
                let number: CaseNumber = id.parse().map_err(|_| format!("case number {id:?}"))?;
                let status = o.get("status").unwrap_or_else(|| "New".into());
                let case = Case {
                    v: 1,
                    number,
                    name: format!("case {number}"),
                    description: String::new(),
                    status: status.parse().map_err(|e: Invalid| e.to_string())?,
                    account: o.get("account"),
                    contact: o.get("contact"),
                    lead: o.get("lead"),
                    assigned_user: o.get("assigned"),
                    teams: o.list("teams"),
                    mail_account: o.get("mailbox").unwrap_or_else(|| "support".into()),
                    thread_key: o.get("thread").ok_or("case without thread=")?,
                    participants: o.list("participants"),
                    created_at: t0() - Duration::days(1),
                };
                e(self.crm.add_case(case, &format!("seed-{number}")))?
            }
            "stored" => self.crm.add_message(mailroom_core::records::MessageEntry {
                message_id: id.clone(),
                email_id: format!("stored-{id}"),
                parent: o
                    .get("parent")
                    .map(|p| p.parse())
                    .transpose()
                    .map_err(|e: Invalid| e.to_string())?,
                thread_key: o.get("thread").unwrap_or(id),
                ours: false,
            }),
            "load" => self
                .crm
                .set_load(&id, words[2].parse().map_err(|_| "load N")?),
            "counter" => self
                .crm
                .set_counter(&id, words[2].parse().map_err(|_| "counter N")?),
            "status" => {
                let n: CaseNumber = id.parse().map_err(|_| "status N STATUS")?;
                self.crm
                    .set_case_status(n, words[2].parse().map_err(|e: Invalid| e.to_string())?)
                    .map_err(|e| e.to_string())?;
            }
            other => return Err(format!("unknown line {other:?}")),
        }
        Ok(())
    }

    async fn message(&mut self, opts: &[String], raw: &str) -> Result<(), String> {
        let o = Opts::new(opts);
        let raw = match o.has("again") {
            true => self
                .last_raw
                .clone()
                .ok_or("`message again` before any message")?,
            false => raw.trim_start().to_string(),
        };
        self.last_raw = Some(raw.clone());
        let account = match o.get("via") {
            Some(name) => self.mailboxes.iter().find(|a| a.name == name),
            None => self.mailboxes.first(),
        }
        .ok_or("no such mailbox (add a `mailbox` line)")?
        .clone();
        self.messages += 1;
        let now = t0() + Duration::minutes(self.messages as i64);
        let key = format!("raw/{}", self.messages);
        let size = raw.len() as u64;
        self.blobs
            .put(&key, raw.into_bytes(), "message/rfc822")
            .await
            .map_err(|e| e.to_string())?;
        let pointer = IngestPointer {
            v: 1,
            account: account.name.clone(),
            folder: "INBOX".into(),
            uidvalidity: 1,
            uid: self.messages,
            key,
            size,
            arrived: Some(now),
            truncated: false,
            quarantine_id: None,
            fetch_error: None,
        };
        let ingest = IngestService {
            emails: &self.store,
            blobs: &self.blobs,
            limits: &self.limits,
            filters: &[],
            skips: &self.store,
        };
        let (outcome, email) = ingest
            .ingest_with_record(&pointer, now)
            .await
            .map_err(|e| e.to_string())?;
        let email = email.ok_or_else(|| format!("not imported: {outcome:?}"))?;
        // Ingest stored the email item; link writes update it (the adapter's condition).
        self.crm.add_email(&email.email_id);
        let ours: Vec<String> = self
            .mailboxes
            .iter()
            .filter_map(|a| a.address.as_deref().map(normalize_address))
            .collect();
        let linker = LinkService {
            crm: &self.crm,
            events: &self.events,
            our_addresses: &ours,
            cache: LinkCache::with_users(&self.crm.users()),
        };
        // As the ingest handler decides it: only a first import is fresh.
        let fresh = matches!(outcome, IngestOutcome::Imported { .. });
        let before = self.events.sent.lock().unwrap().len();
        let linked = linker
            .link(&email, &account, now, fresh)
            .await
            .map_err(|e| e.to_string())?;
        let emitted = self.events.sent.lock().unwrap()[before..].to_vec();
        self.fired.push(linked.rule);
        self.last = Some((linked, emitted));
        Ok(())
    }

    fn expect(&self, line: &str) -> Result<(), String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (o, events) = self.last.as_ref().ok_or("expect before any message")?;
        let st = self.crm.state();
        let case_of = |n: &str| -> Result<Case, String> {
            let n: CaseNumber = n.parse().map_err(|_| format!("case number {n:?}"))?;
            st.cases.get(&n).cloned().ok_or(format!("no case {n}"))
        };
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        let (want, got) = match words.as_slice() {
            ["parent", p, "by", r] => (
                format!("{p} by {r}"),
                format!(
                    "{} by {}",
                    opt(&o.parent.as_ref().map(|p| p.to_string())),
                    o.rule.unwrap_or("none")
                ),
            ),
            ["parent", p] => (
                p.to_string(),
                opt(&o.parent.as_ref().map(|p| p.to_string())),
            ),
            ["rule", r] => (r.to_string(), o.rule.unwrap_or("none").to_string()),
            ["case", "none"] => ("none".into(), case_text(o)),
            ["case", how, n] => (format!("{how} {n}"), case_text(o)),
            ["assigned", u] => (u.to_string(), opt(&o.assigned_user)),
            ["case-error", "none"] => ("none".into(), opt(&o.case_error)),
            ["case-error", "contains", rest @ ..] => {
                let needle = rest.join(" ");
                let got = opt(&o.case_error);
                // A created case's problem is also recorded on the mail account.
                let recorded = st
                    .case_errors
                    .values()
                    .find(|e| Some(*e) == o.case_error.as_ref());
                match got.contains(&needle) && recorded.is_some() {
                    true => (got.clone(), got),
                    false => (
                        format!("an error containing {needle:?}, recorded on the account"),
                        format!("{got} (recorded: {})", recorded.is_some()),
                    ),
                }
            }
            ["events", kinds @ ..] => (
                kinds.join(" "),
                match events.is_empty() {
                    true => "none".into(),
                    false => events
                        .iter()
                        .map(|e| e.kind.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                },
            ),
            ["counter", k, v] => (
                v.to_string(),
                st.counters.get(*k).copied().unwrap_or(0).to_string(),
            ),
            ["load", u, v] => (
                v.to_string(),
                st.loads.get(*u).copied().unwrap_or(0).to_string(),
            ),
            ["cases", v] => (v.to_string(), st.cases.len().to_string()),
            ["participants", n, list] => (
                list.to_string(),
                match case_of(n)?.participants.join(",") {
                    p if p.is_empty() => "none".into(),
                    p => p,
                },
            ),
            ["stream", r, v] => {
                let r: RecordRef = r.parse().map_err(|e: Invalid| e.to_string())?;
                let emails = self
                    .crm
                    .stream(&r)
                    .iter()
                    .filter(|e| e.kind == "email_received")
                    .count();
                (v.to_string(), emails.to_string())
            }
            ["case-fields", n, fields @ ..] => {
                let c = case_of(n)?;
                let have: BTreeMap<&str, String> = [
                    ("status", format!("{:?}", c.status)),
                    ("account", opt(&c.account)),
                    ("contact", opt(&c.contact)),
                    ("lead", opt(&c.lead)),
                    ("assigned", opt(&c.assigned_user)),
                    ("teams", c.teams.join(",")),
                    ("name", c.name.replace(' ', "_")),
                ]
                .into();
                let mut got = Vec::new();
                for f in fields {
                    let (k, _) = f.split_once('=').ok_or(format!("{f:?}: key=value"))?;
                    let v = have.get(k).ok_or(format!("unknown case field {k:?}"))?;
                    got.push(format!("{k}={v}"));
                }
                (fields.join(" "), got.join(" "))
            }
            _ => return Err(format!("cannot read expect line {line:?}")),
        };
        match want == got {
            true => Ok(()),
            false => Err(format!("expect {line}: got {got}")),
        }
    }
}

fn case_text(o: &LinkOutcome) -> String {
    match (o.case, o.case_created) {
        (None, _) => "none".into(),
        (Some(n), true) => format!("created {n}"),
        (Some(n), false) => format!("joined {n}"),
    }
}

async fn run(spec: &Spec) -> Result<(), String> {
    let mut w = World::default();
    for step in &spec.steps {
        match step {
            Step::Given(n, words) => w.given(words).map_err(|e| format!("line {n}: {e}"))?,
            Step::Message(n, opts, raw) => w
                .message(opts, raw)
                .await
                .map_err(|e| format!("line {n}: message: {e}"))?,
            Step::Expect(n, line) => w.expect(line).map_err(|e| format!("line {n}: {e}"))?,
        }
    }
    if !spec.steps.iter().any(|s| matches!(s, Step::Expect(..))) {
        return Err("no expect line".into());
    }
    // A linking rule tagged as firing must have fired; as not firing, not on the last email.
    // R-A4 is one: a bounce linked through the original it returns.
    let linking = |r: &str| r.starts_with("R-L") || r == "R-A4";
    for (rule, fires) in spec.rules.iter().filter(|(r, _)| linking(r)) {
        let any = w.fired.contains(&Some(rule.as_str()));
        let last = w.fired.last().copied().flatten() == Some(rule.as_str());
        if *fires && !any {
            return Err(format!("tagged `{rule} fires`, but it never did"));
        }
        if !*fires && last {
            return Err(format!("tagged `{rule} does-not-fire`, but it did"));
        }
    }
    Ok(())
}

#[tokio::test]
async fn case_rule_specs() {
    let specs = specs();
    let mut failures = Vec::new();
    let mut seen: BTreeSet<(String, bool)> = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for s in &specs {
        if !titles.insert((&s.file, &s.title)) {
            failures.push(format!("{}: {}: title used twice", s.file, s.title));
        }
        if s.rules.is_empty() {
            failures.push(format!("{}: {}: no `rule` line", s.file, s.title));
        }
        seen.extend(s.rules.iter().cloned());
        if let Err(e) = run(s).await {
            failures.push(format!("{}: {}: {e}", s.file, s.title));
        }
    }
    for rule in RULES {
        for (fires, how) in [(true, "fires"), (false, "does-not-fire")] {
            if !seen.contains(&(rule.to_string(), fires)) {
                failures.push(format!("no case where {rule} {how}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(
        specs.len() >= 40,
        "too few case rule specs: {}",
        specs.len()
    );
    println!("ran {} case rule specs", specs.len());
}
