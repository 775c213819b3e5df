//! Any bytes as an API request: the query string, the route table and a send's JSON body never
//! panic; a body is refused with the field named or becomes a message.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = mailroom_api::request::parse_query(&text);
    for method in ["GET", "POST", "PATCH", "PUT", "DELETE"] {
        let _ = mailroom_api::routes::find(method, &text);
    }
    if let Ok(req) = serde_json::from_slice::<mailroom_core::outbox::request::SendRequest>(data) {
        let _ = req.message();
    }
});
