//! The `/api/snapshot` query string, decoded as the server decodes it (urlencoded pairs) and
//! turned into a filter: a filter or a 400 message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webui_doctor::serve::from_query;

fuzz_target!(|data: &[u8]| {
    if let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(data) {
        let _ = from_query(&pairs);
    }
});
