//! `template.yaml` against the grant table of `mailroom_aws::iam`: every function has every
//! grant its calls need, and nothing more (no write it never makes, no partition, prefix,
//! queue or key use outside its rows); raw messages outlive the ingest dead-letter queue.
//! moto enforces no IAM, so this is what stands between a policy gap and `sam deploy`.

use std::collections::BTreeSet;

use mailroom_aws::iam::{self, Grant, Principal, Resource, Via};
use serde_norway::Value;

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
    let text = std::fs::read_to_string(path).expect("template.yaml is readable");
    serde_norway::from_str(&text).expect("template.yaml parses (SAM tags kept as tagged values)")
}

/// `Value` at a path of mapping keys.
fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

/// A tag's name and value (`!GetAtt X.Arn` is `("GetAtt", "X.Arn")`).
fn tagged(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_string(),
            &t.value,
        )),
        _ => None,
    }
}

/// A string, or each string of a list.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        _ => vec![],
    }
}

fn list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Sequence(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// What one statement grants, in the terms of the table.
#[derive(Debug, Clone)]
struct Granted {
    sid: String,
    actions: Vec<String>,
    resources: Vec<Target>,
    /// `dynamodb:LeadingKeys` patterns; `None`: every partition.
    leading_keys: Option<BTreeSet<String>>,
    /// The key condition; `None`: any use of the key, by any service.
    via: Option<Via>,
}

/// A resource of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Table,
    Index(String),
    Bucket,
    /// Objects under a prefix (`""`: every object).
    Objects(String),
    Queue(String),
    Key,
    /// SES identities (`...:identity/*`).
    Identities,
    /// The stack's SES configuration set (`...:configuration-set/${SendingConfigurationSet}`).
    ConfigurationSet,
    Everything,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Table => write!(f, "MailroomTable"),
            Target::Index(i) => write!(f, "MailroomTable/index/{i}"),
            Target::Bucket => write!(f, "MailroomBucket"),
            Target::Objects(p) => write!(f, "MailroomBucket/{p}*"),
            Target::Queue(q) => write!(f, "{q}"),
            Target::Key => write!(f, "MailroomKey"),
            Target::Identities => write!(f, "SES identity/*"),
            Target::ConfigurationSet => write!(f, "SES configuration-set/SendingConfigurationSet"),
            Target::Everything => write!(f, "*"),
        }
    }
}

fn resource_type<'a>(t: &'a Value, logical_id: &str) -> Option<&'a str> {
    at(t, &["Resources", logical_id, "Type"]).and_then(Value::as_str)
}

fn target(t: &Value, r: &Value) -> Result<Target, String> {
    if r.as_str() == Some("*") {
        return Ok(Target::Everything);
    }
    match tagged(r) {
        Some((tag, v)) if tag == "GetAtt" => {
            let s = v.as_str().unwrap_or_default();
            let id = s.strip_suffix(".Arn").ok_or(format!("!GetAtt {s}"))?;
            match (id, resource_type(t, id)) {
                ("MailroomTable", _) => Ok(Target::Table),
                ("MailroomBucket", _) => Ok(Target::Bucket),
                ("MailroomKey", _) => Ok(Target::Key),
                (q, Some("AWS::SQS::Queue")) => Ok(Target::Queue(q.to_string())),
                _ => Err(format!("!GetAtt {s}")),
            }
        }
        Some((tag, v)) if tag == "Sub" => {
            let s = v.as_str().unwrap_or_default();
            if let Some(index) = s.strip_prefix("${MailroomTable.Arn}/index/") {
                Ok(Target::Index(index.to_string()))
            } else if s == "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*" {
                Ok(Target::Identities)
            } else if s
                == "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/${SendingConfigurationSet}"
            {
                Ok(Target::ConfigurationSet)
            } else if let Some(prefix) = s.strip_prefix("${MailroomBucket.Arn}/") {
                let prefix = prefix.strip_suffix('*').ok_or(format!("!Sub {s}"))?;
                Ok(Target::Objects(prefix.to_string()))
            } else {
                Err(format!("!Sub {s}"))
            }
        }
        _ => Err(format!("{r:?}")),
    }
}

fn via(v: &Value) -> Result<Via, String> {
    let text = match tagged(v) {
        Some((tag, inner)) if tag == "Sub" => inner.as_str().unwrap_or_default().to_string(),
        _ => v.as_str().unwrap_or_default().to_string(),
    };
    match text.as_str() {
        "dynamodb.${AWS::Region}.amazonaws.com" => Ok(Via::DynamoDb),
        "s3.${AWS::Region}.amazonaws.com" => Ok(Via::S3),
        other => Err(format!("kms:ViaService {other}")),
    }
}

/// Reads one statement; a form the check cannot judge is an error, never a pass.
fn statement(t: &Value, s: &Value) -> Result<Granted, String> {
    let sid = s.get("Sid").and_then(Value::as_str).unwrap_or("(no Sid)");
    let fail = |what: String| format!("statement {sid}: {what}");
    if s.get("Effect").and_then(Value::as_str) != Some("Allow") {
        return Err(fail("only Allow statements are checked".into()));
    }
    for unsupported in ["NotAction", "NotResource", "Principal"] {
        if s.get(unsupported).is_some() {
            return Err(fail(format!("{unsupported} cannot be checked")));
        }
    }
    let actions = strings(s.get("Action").ok_or_else(|| fail("no Action".into()))?);
    let resources = list(
        s.get("Resource")
            .ok_or_else(|| fail("no Resource".into()))?,
    )
    .into_iter()
    .map(|r| target(t, r).map_err(|e| fail(format!("cannot tell what resource {e} is"))))
    .collect::<Result<Vec<_>, _>>()?;
    let mut granted = Granted {
        sid: sid.to_string(),
        actions,
        resources,
        leading_keys: None,
        via: None,
    };
    if let Some(Value::Mapping(conditions)) = s.get("Condition") {
        for (operator, keys) in conditions {
            let operator = operator.as_str().unwrap_or_default();
            let Value::Mapping(keys) = keys else {
                return Err(fail(format!("condition {operator} is not a mapping")));
            };
            for (key, value) in keys {
                match (operator, key.as_str().unwrap_or_default()) {
                    (
                        "ForAllValues:StringLike" | "ForAllValues:StringEquals",
                        "dynamodb:LeadingKeys",
                    ) => granted.leading_keys = Some(strings(value).into_iter().collect()),
                    ("StringEquals", "kms:ViaService") => {
                        granted.via = Some(via(value).map_err(fail)?)
                    }
                    ("StringEquals", "kms:EncryptionContext:mailroom:purpose")
                        if value.as_str() == Some(mailroom_aws::secrets::CONTEXT_VALUE) =>
                    {
                        granted.via = Some(Via::DataKey)
                    }
                    (op, k) => return Err(fail(format!("condition {op} {k} cannot be checked"))),
                }
            }
        }
    }
    Ok(granted)
}

/// Every statement of a function's `Policies`.
fn policies(t: &Value, function: &str) -> Result<Vec<Granted>, String> {
    let Some(policies) = at(t, &["Resources", function, "Properties", "Policies"]) else {
        return Ok(vec![]);
    };
    let mut out = Vec::new();
    for p in list(policies) {
        let Some(statements) = p.get("Statement") else {
            return Err(format!(
                "{function}: a policy that is not a statement list (SAM policy templates and \
                 managed policies cannot be checked): {p:?}"
            ));
        };
        for s in list(statements) {
            out.push(statement(t, s).map_err(|e| format!("{function}: {e}"))?);
        }
    }
    Ok(out)
}

/// IAM's action wildcards (`kms:GenerateDataKey*`), case-insensitive as IAM is.
fn action_matches(pattern: &str, action: &str) -> bool {
    let (p, a) = (pattern.to_ascii_lowercase(), action.to_ascii_lowercase());
    match p.split_once('*') {
        None => p == a,
        Some((head, tail)) => a.starts_with(head) && a.ends_with(tail) && a.len() >= p.len() - 1,
    }
}

/// The IAM name of a row's resource (the form the messages use).
fn describe(on: Resource) -> String {
    match on {
        Resource::Table => "MailroomTable".into(),
        Resource::Index(i) => format!("MailroomTable/index/{i}"),
        Resource::Bucket => "MailroomBucket".into(),
        Resource::Objects(p) => format!("MailroomBucket/{p}*"),
        Resource::Queue(q) | Resource::EventSource(q) => q.into(),
        Resource::Key(via) => format!("MailroomKey ({})", via_name(via)),
        Resource::Identities => "SES identity/*".into(),
        Resource::ConfigurationSet => "SES configuration-set/SendingConfigurationSet".into(),
        Resource::LocalStack => "the local stack".into(),
    }
}

fn via_name(via: Via) -> &'static str {
    match via {
        Via::DynamoDb => "kms:ViaService dynamodb",
        Via::S3 => "kms:ViaService s3",
        Via::DataKey => "the data key's encryption context",
    }
}

/// Whether a statement's resource covers a row's.
fn covers(target: &Target, on: Resource) -> bool {
    match (target, on) {
        (Target::Everything, _) => true,
        (Target::Table, Resource::Table) | (Target::Bucket, Resource::Bucket) => true,
        (Target::Index(i), Resource::Index(n)) => i == "*" || i == n,
        (Target::Objects(p), Resource::Objects(n)) => n.starts_with(p.as_str()),
        (Target::Queue(q), Resource::Queue(n)) => q == n,
        (Target::Key, Resource::Key(_)) => true,
        (Target::Identities, Resource::Identities) => true,
        (Target::ConfigurationSet, Resource::ConfigurationSet) => true,
        _ => false,
    }
}

/// What a function lacks: each action of each row, on each partition, must be granted.
fn missing(who: Principal, granted: &[Granted]) -> Vec<String> {
    let function = who.logical_id().unwrap();
    let mut out = Vec::new();
    for g in iam::grants_of(who) {
        if matches!(g.on, Resource::EventSource(_)) {
            continue;
        }
        for action in g.actions {
            let keys: Vec<Option<&str>> = if g.keys.is_empty() {
                vec![None]
            } else {
                g.keys.iter().map(|k| Some(*k)).collect()
            };
            for key in keys {
                let ok = granted.iter().any(|s| {
                    s.actions.iter().any(|p| action_matches(p, action))
                        && s.resources.iter().any(|r| covers(r, g.on))
                        && match (key, &s.leading_keys) {
                            (Some(k), Some(allowed)) => {
                                allowed.contains(&iam::leading_key_pattern(k))
                            }
                            _ => true,
                        }
                        && match (g.on, s.via) {
                            (Resource::Key(want), Some(have)) => want == have,
                            _ => true,
                        }
                });
                if !ok {
                    let partition = key.map(|k| format!(" partition {k}")).unwrap_or_default();
                    out.push(format!(
                        "{function} lacks {action} on {}{partition}: needed by {} \
                         (shared/aws/src/iam.rs)",
                        describe(g.on),
                        g.by
                    ));
                }
            }
        }
    }
    out
}

/// The rows of `who` that state `action` (literally, wildcards included) on `on`.
fn rows<'a>(who: Principal, action: &'a str) -> impl Iterator<Item = &'static Grant> + 'a {
    iam::grants_of(who).filter(move |g| g.actions.iter().any(|a| a.eq_ignore_ascii_case(action)))
}

/// What a function holds beyond its rows: any action, resource, partition or key use.
fn extra(who: Principal, granted: &[Granted]) -> Vec<String> {
    let function = who.logical_id().unwrap();
    let mut out = Vec::new();
    for s in granted {
        for action in &s.actions {
            let kind = if iam::is_write(action) {
                "a write"
            } else {
                "a read"
            };
            for r in &s.resources {
                let never = |what: String| {
                    format!(
                        "{function} is granted {action} on {what} (statement {}), {kind} its \
                         code never makes: no row in shared/aws/src/iam.rs",
                        s.sid
                    )
                };
                let matching: Vec<&Grant> = rows(who, action)
                    .filter(|g| match (r, g.on) {
                        (Target::Table, Resource::Table) | (Target::Bucket, Resource::Bucket) => {
                            true
                        }
                        (Target::Index(i), Resource::Index(n)) => i == n,
                        (Target::Objects(p), Resource::Objects(n)) => p == n,
                        (Target::Queue(q), Resource::Queue(n)) => q == n,
                        (Target::Key, Resource::Key(_)) => true,
                        (Target::Identities, Resource::Identities) => true,
                        (Target::ConfigurationSet, Resource::ConfigurationSet) => true,
                        _ => false,
                    })
                    .collect();
                if matching.is_empty() {
                    out.push(never(r.to_string()));
                    continue;
                }
                // Used, but granted wider than the calls: say what the rows allow.
                let wider = |what: String, condition: &str, used: Vec<String>| {
                    format!(
                        "{function} is granted {action} on {what} (statement {} has no \
                         {condition}), {kind} wider than its calls: shared/aws/src/iam.rs lists \
                         only {}",
                        s.sid,
                        used.join(", ")
                    )
                };
                match r {
                    Target::Table => {
                        let used: Vec<String> = matching
                            .iter()
                            .flat_map(|g| g.keys.iter().map(|k| iam::leading_key_pattern(k)))
                            .collect();
                        // A row without keys is a whole-table grant on purpose (a Scan, which
                        // names no partition), so no condition is the exact grant.
                        let whole_table = matching.iter().any(|g| g.keys.is_empty());
                        match &s.leading_keys {
                            None if whole_table => {}
                            None => out.push(wider(
                                format!("{r} on every partition"),
                                "dynamodb:LeadingKeys condition",
                                used,
                            )),
                            Some(keys) => {
                                for k in keys.iter().filter(|k| !used.contains(k)) {
                                    out.push(never(format!("{r} partition {k}")));
                                }
                            }
                        }
                    }
                    Target::Key => {
                        let used: Vec<String> = matching
                            .iter()
                            .filter_map(|g| match g.on {
                                Resource::Key(v) => Some(via_name(v).to_string()),
                                _ => None,
                            })
                            .collect();
                        match s.via {
                            None => out.push(wider(
                                format!("{r} for any use"),
                                "kms:ViaService or encryption-context condition",
                                used,
                            )),
                            Some(v) if !matching.iter().any(|g| g.on == Resource::Key(v)) => {
                                out.push(never(format!("{r} ({})", via_name(v))))
                            }
                            Some(_) => {}
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

/// The queues a function is triggered by (its SQS events).
fn event_sources(t: &Value, function: &str) -> Vec<String> {
    let Some(Value::Mapping(events)) = at(t, &["Resources", function, "Properties", "Events"])
    else {
        return vec![];
    };
    events
        .values()
        .filter(|e| e.get("Type").and_then(Value::as_str) == Some("SQS"))
        .filter_map(|e| match e.get("Properties").and_then(|p| p.get("Queue")) {
            Some(q) => match target(t, q) {
                Ok(Target::Queue(q)) => Some(q),
                _ => Some(format!("{q:?}")),
            },
            None => None,
        })
        .collect()
}

fn problems(t: &Value) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut statements = 0;
    // Every function of the template has rows: a new one cannot slip past.
    if let Some(Value::Mapping(resources)) = t.get("Resources") {
        for (id, r) in resources {
            let id = id.as_str().unwrap_or_default();
            if r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function")
                && !Principal::FUNCTIONS
                    .iter()
                    .any(|p| p.logical_id() == Some(id))
            {
                out.push(format!(
                    "{id}: a function with no rows in shared/aws/src/iam.rs"
                ));
            }
        }
    }
    for who in Principal::FUNCTIONS {
        let function = who.logical_id().unwrap();
        if resource_type(t, function) != Some("AWS::Serverless::Function") {
            out.push(format!("{function}: not a function in template.yaml"));
            continue;
        }
        let granted = match policies(t, function) {
            Ok(g) => g,
            Err(e) => {
                out.push(e);
                continue;
            }
        };
        statements += granted.len();
        out.extend(missing(who, &granted));
        out.extend(extra(who, &granted));
        let sources = event_sources(t, function);
        let wanted: Vec<&str> = iam::grants_of(who)
            .filter_map(|g| match g.on {
                Resource::EventSource(q) => Some(q),
                _ => None,
            })
            .collect();
        for q in &wanted {
            if !sources.iter().any(|s| s == q) {
                out.push(format!("{function} lacks its SQS event source on {q}"));
            }
        }
        for s in &sources {
            if !wanted.contains(&s.as_str()) {
                out.push(format!(
                    "{function} is triggered by {s}, which has no EventSource row in \
                     shared/aws/src/iam.rs"
                ));
            }
        }
    }
    (out, statements)
}

#[test]
fn every_function_holds_exactly_the_grants_its_calls_need() {
    let (problems, statements) = problems(&template());
    assert!(
        statements >= 3,
        "no statement read: the check would pass vacuously"
    );
    assert!(
        problems.is_empty(),
        "template.yaml does not match shared/aws/src/iam.rs:\n  {}",
        problems.join("\n  ")
    );
}

/// The check itself: a removed grant, a write on the whole table, and a wider key use each
/// fail with the function, action and resource named.
#[test]
fn the_check_names_the_function_action_and_resource_of_a_mismatch() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
        .unwrap();
    let mutate = |from: &str, to: &str| -> Vec<String> {
        assert!(
            text.contains(from),
            "template.yaml no longer contains {from:?}"
        );
        let t: Value = serde_norway::from_str(&text.replacen(from, to, 1)).unwrap();
        problems(&t).0
    };
    let found = |problems: &[String], parts: &[&str]| {
        problems
            .iter()
            .any(|p| parts.iter().all(|part| p.contains(part)))
    };

    // Ingest without its delete of quarantine records.
    let p = mutate("                - dynamodb:DeleteItem\n", "");
    assert!(
        found(
            &p,
            &["ingest lacks dynamodb:DeleteItem on MailroomTable partition QUARANTINE"]
        ),
        "{p:#?}"
    );

    // The scheduler's partitions widened to the whole table.
    let p = mutate(
        "dynamodb:LeadingKeys: [USERS]",
        "dynamodb:LeadingKeys: [USERS, \"EMAIL#*\"]",
    );
    assert!(
        found(
            &p,
            &["scheduler is granted dynamodb:BatchGetItem on MailroomTable partition EMAIL#*"]
        ),
        "{p:#?}"
    );

    // A write the poller never makes.
    let p = mutate(
        "Action: s3:PutObject\n",
        "Action: [s3:PutObject, s3:DeleteObject]\n",
    );
    assert!(
        found(
            &p,
            &[
                "poller is granted s3:DeleteObject on MailroomBucket/raw/*",
                "a write"
            ]
        ),
        "{p:#?}"
    );
}

/// Raw messages must outlive every pointer that names them: a pointer lives up to the ingest
/// queue's retention, then up to the dead-letter queue's (14 days) before it is replayed.
#[test]
fn raw_messages_outlive_the_ingest_dead_letter_queue() {
    let t = template();
    let days = |queue: &str| {
        at(
            &t,
            &["Resources", queue, "Properties", "MessageRetentionPeriod"],
        )
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{queue} states its MessageRetentionPeriod"))
        .div_ceil(86_400)
    };
    let needed =
        days("IngestDeadLetterQueue").max(days("IngestQueue")) + iam::RAW_RETENTION_MARGIN_DAYS;
    assert!(needed >= 21);

    let rules = at(
        &t,
        &[
            "Resources",
            "MailroomBucket",
            "Properties",
            "LifecycleConfiguration",
            "Rules",
        ],
    )
    .map(list)
    .expect("the bucket has lifecycle rules");
    let expiring: Vec<_> = rules
        .iter()
        .filter(|r| r.get("ExpirationInDays").is_some())
        .collect();
    let raw = expiring
        .iter()
        .find(|r| r.get("Prefix").and_then(Value::as_str) == Some("raw/"))
        .expect("raw/ expires by a lifecycle rule");
    // Nothing else expires: bodies, attachments and quarantine copies are kept (R-F9).
    assert_eq!(expiring.len(), 1, "only raw/ expires: {expiring:?}");

    let expiration = raw.get("ExpirationInDays").unwrap();
    let least = match tagged(expiration) {
        Some((tag, v)) if tag == "Ref" => {
            let param = at(&t, &["Parameters", v.as_str().unwrap()]).expect("the parameter exists");
            let min = param
                .get("MinValue")
                .and_then(Value::as_u64)
                .expect("the retention parameter has a MinValue");
            let default = param.get("Default").and_then(Value::as_u64).unwrap();
            assert!(default >= min);
            min
        }
        _ => expiration.as_u64().expect("a number of days"),
    };
    assert!(
        least >= needed,
        "raw/ may expire after {least} days, before a pointer in the ingest DLQ does \
         ({needed} days needed: DLQ retention + {} days margin)",
        iam::RAW_RETENTION_MARGIN_DAYS
    );
}

/// Dispatch's SES grant is read from its identity statement: the template's own, with
/// SendRawEmail dropped, fails naming it; with a delete added, fails naming that.
#[test]
fn the_dispatch_send_grant_is_read_from_an_identity_statement() {
    let t = template();
    let real = policies(&t, "dispatch").unwrap();
    assert!(
        real.iter()
            .any(|g| g.resources.contains(&Target::Identities)),
        "dispatch has an identity statement"
    );
    let parse = |actions: &str| -> Granted {
        let s: Value = serde_norway::from_str(&format!(
            "Sid: Send\nEffect: Allow\nAction: [{actions}]\nResource:\n  - !Sub \
             \"arn:${{AWS::Partition}}:ses:${{AWS::Region}}:${{AWS::AccountId}}:identity/*\"\n  \
             - !Sub \"arn:${{AWS::Partition}}:ses:${{AWS::Region}}:${{AWS::AccountId}}:\
             configuration-set/${{SendingConfigurationSet}}\"\n"
        ))
        .unwrap();
        statement(&t, &s).unwrap()
    };
    let with = |ses: Granted| -> Vec<Granted> {
        let mut all: Vec<Granted> = real
            .iter()
            .filter(|g| !g.resources.contains(&Target::Identities))
            .cloned()
            .collect();
        all.push(ses);
        all
    };
    let both = with(parse("ses:SendEmail, ses:SendRawEmail"));
    assert!(missing(Principal::Dispatch, &both).is_empty());
    assert!(extra(Principal::Dispatch, &both).is_empty());

    let no_raw = with(parse("ses:SendEmail"));
    let p = missing(Principal::Dispatch, &no_raw);
    assert!(
        p.iter()
            .any(|p| p.contains("dispatch lacks ses:SendRawEmail on SES identity/*")),
        "{p:#?}"
    );
    let wider = with(parse(
        "ses:SendEmail, ses:SendRawEmail, ses:DeleteEmailIdentity",
    ));
    let p = extra(Principal::Dispatch, &wider);
    assert!(
        p.iter()
            .any(|p| p.contains("dispatch is granted ses:DeleteEmailIdentity on SES identity/*")),
        "{p:#?}"
    );
}
