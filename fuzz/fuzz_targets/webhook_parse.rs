//! The webhook body as it arrives: signature check on the raw bytes, then envelope parsing.
//! Neither may panic, and a signature made with the secret always verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-secret";

fuzz_target!(|data: &[u8]| {
    // The first line (if any) plays the X-Spark-Signature header, the rest the body.
    let (header, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let header = String::from_utf8_lossy(header);
    let good = webex::signature::sign(SECRET, body);
    assert!(webex::signature::verify(SECRET, body, &good));
    if header != good && !header.eq_ignore_ascii_case(&good) {
        // Anything else must be refused (the header is attacker-controlled).
        let accepted = webex::signature::verify(SECRET, body, &header);
        assert!(!accepted || header.trim().eq_ignore_ascii_case(&good), "forged signature accepted: {header:?}");
    }
    if let Ok(event) = webex::WebhookEvent::parse(body) {
        // A parsed event is a JSON object; the accessors the route uses must not panic.
        let _ = event.is_message_created();
        let _ = event.data.id.as_deref();
        let _ = event.data.room_id.as_ref().map(|r| r.as_str().len());
        assert!(serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v.is_object()));
    }
});
