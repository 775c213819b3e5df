//! serde values <-> DynamoDB attribute values, and the attribute values keys are made of. The
//! core's records serialise with serde; this is the only place that knows how they look in
//! DynamoDB.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Number, Value};

pub type Item = HashMap<String, AttributeValue>;

pub fn to_av(value: Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s),
        Value::Array(a) => AttributeValue::L(a.into_iter().map(to_av).collect()),
        Value::Object(o) => AttributeValue::M(o.into_iter().map(|(k, v)| (k, to_av(v))).collect()),
    }
}

pub fn from_av(av: &AttributeValue) -> Value {
    match av {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| n.parse::<u64>().map(Value::from))
            .unwrap_or_else(|_| {
                n.parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(l) => Value::Array(l.iter().map(from_av).collect()),
        AttributeValue::M(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), from_av(v)))
                .collect::<Map<_, _>>(),
        ),
        AttributeValue::Ss(ss) => {
            let mut v = ss.clone();
            v.sort();
            Value::Array(v.into_iter().map(Value::String).collect())
        }
        AttributeValue::Ns(ns) => Value::Array(
            ns.iter()
                .filter_map(|n| n.parse::<i64>().ok())
                .map(Value::from)
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// A record as an item: its serde fields plus the given keys.
pub fn to_item<T: Serialize>(record: &T, keys: &[(&str, &str)]) -> Item {
    let value = serde_json::to_value(record).expect("records serialise");
    let Value::Object(map) = value else {
        panic!("records serialise to objects")
    };
    let mut item: Item = map.into_iter().map(|(k, v)| (k, to_av(v))).collect();
    for (k, v) in keys {
        item.insert(k.to_string(), AttributeValue::S(v.to_string()));
    }
    item
}

pub fn from_item<T: DeserializeOwned>(item: &Item) -> Result<T, serde_json::Error> {
    let map: Map<String, Value> = item.iter().map(|(k, v)| (k.clone(), from_av(v))).collect();
    serde_json::from_value(Value::Object(map))
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Any serialisable value as one attribute (a map, a list, a string...).
pub fn value<T: Serialize>(v: &T) -> AttributeValue {
    to_av(serde_json::to_value(v).expect("serialises"))
}

/// An item's primary key, formats from `mailroom_core::keys`.
pub fn key(pk: &str, sk: &str) -> Item {
    [("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))].into()
}

/// A string attribute of an item, if it has one.
pub fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a String> {
    item.get(name).and_then(|v| v.as_s().ok())
}

/// A number attribute of an item, parsed, if it has one.
pub fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct R {
        a: String,
        n: u64,
        f: Option<bool>,
        l: Vec<String>,
        m: std::collections::BTreeMap<String, u32>,
    }

    #[test]
    fn round_trip() {
        let r = R {
            a: "x".into(),
            n: u64::MAX,
            f: None,
            l: vec!["p".into()],
            m: [("k".to_string(), 7)].into(),
        };
        let item = to_item(&r, &[("pk", "P")]);
        assert_eq!(item["pk"], s("P"));
        let back: R = from_item(&item).unwrap();
        assert_eq!(back, r);
    }
}
