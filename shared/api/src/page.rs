//! Cursor pagination: `?limit=` (1..=100, default 50) and `?cursor=`, the `next` of the page
//! before. A cursor is the sort key of the last item returned, opaque (base64url), so a page
//! is stable under inserts and deletes before it, unlike an offset.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::request::ApiRequest;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    /// The sort key the page starts after.
    pub after: Option<String>,
}

impl PageRequest {
    pub fn from_request(req: &ApiRequest) -> ApiResult<Self> {
        let limit = match req.query("limit") {
            None => DEFAULT_LIMIT,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::bad_request(
                        "limit",
                        format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                    ))
                }
            },
        };
        let after = match req.query("cursor") {
            None | Some("") => None,
            Some(c) => Some(
                URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        ApiError::bad_request("cursor", "cursor is not one this API gave")
                    })?,
            ),
        };
        Ok(PageRequest { limit, after })
    }

    /// One page of `items` in the order of `key` (unique per item): those after the cursor,
    /// at most `limit`, and the cursor of the next page when more remain.
    pub fn page<T>(
        &self,
        mut items: Vec<T>,
        key: impl Fn(&T) -> String,
    ) -> (Vec<T>, Option<String>) {
        items.sort_by_cached_key(|i| key(i));
        let start = match &self.after {
            Some(after) => items.partition_point(|i| key(i) <= *after),
            None => 0,
        };
        let mut rest: Vec<T> = items.into_iter().skip(start).collect();
        let next = if rest.len() > self.limit {
            rest.truncate(self.limit);
            rest.last().map(|i| URL_SAFE_NO_PAD.encode(key(i)))
        } else {
            None
        };
        (rest, next)
    }
}

/// The list body every list endpoint answers: `{"items": [...], "next": cursor | null}`.
pub fn list_body(items: Vec<Value>, next: Option<String>) -> Value {
    json!({"items": items, "next": next})
}

/// A zero-padded number key, so numbers sort as numbers in a string cursor.
pub fn number_key(n: u64) -> String {
    format!("{n:020}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_every_item_once() {
        let items: Vec<u64> = (1..=7).rev().collect();
        let mut page = PageRequest {
            limit: 3,
            after: None,
        };
        let mut seen = vec![];
        loop {
            let (got, next) = page.page(items.clone(), |n| number_key(*n));
            seen.extend(got);
            match next {
                Some(c) => {
                    page.after =
                        Some(String::from_utf8(URL_SAFE_NO_PAD.decode(c).unwrap()).unwrap())
                }
                None => break,
            }
        }
        assert_eq!(seen, (1..=7).collect::<Vec<_>>());
    }

    #[test]
    fn an_exact_last_page_has_no_next() {
        let page = PageRequest {
            limit: 2,
            after: None,
        };
        assert_eq!(
            page.page(vec![1u64, 2], |n| number_key(*n)),
            (vec![1, 2], None)
        );
    }
}
