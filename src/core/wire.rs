//! The bulk request body of ARCHITECTURE.md, built by string concatenation from payloads that
//! the driver already serialized (the browser's `JSON.stringify` is faster and smaller
//! than any Rust JSON library in wasm).
//!
//! ```text
//! {"sent_at":1732240000123,"device":"d","events":[{"id":"u","seq":42,"ts":1732240000000,"payload":{...}}]}
//! ```

/// Digits of the largest `u64`: the bound used where a number is not known yet.
const MAX_U64_DIGITS: usize = 20;

/// Appends `value` as a JSON string literal.
pub fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_string_len(value: &str) -> usize {
    2 + value
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum::<usize>()
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Appends one event object.
pub fn push_event(out: &mut String, id: &str, seq: u64, ts: u64, payload: &str) {
    out.push_str("{\"id\":");
    push_json_string(out, id);
    out.push_str(",\"seq\":");
    out.push_str(&seq.to_string());
    out.push_str(",\"ts\":");
    out.push_str(&ts.to_string());
    out.push_str(",\"payload\":");
    out.push_str(payload);
    out.push('}');
}

/// The parts of one event object written by [`push_event`]: `(id, seq, ts, payload)`.
/// `None` for text it did not write.
pub fn parse_event(text: &str) -> Option<(String, u64, u64, &str)> {
    let rest = text.strip_prefix("{\"id\":\"")?;
    let (id, rest) = parse_json_string_body(rest)?;
    let rest = rest.strip_prefix(",\"seq\":")?;
    let (seq, rest) = parse_u64(rest)?;
    let rest = rest.strip_prefix(",\"ts\":")?;
    let (ts, rest) = parse_u64(rest)?;
    let payload = rest.strip_prefix(",\"payload\":")?.strip_suffix('}')?;
    Some((id, seq, ts, payload))
}

/// The `seq` of an event object written by [`push_event`], without decoding the rest.
pub fn parse_seq(text: &str) -> Option<u64> {
    let at = text.find(",\"seq\":")? + ",\"seq\":".len();
    parse_u64(&text[at..]).map(|(seq, _)| seq)
}

fn parse_u64(text: &str) -> Option<(u64, &str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    Some((text[..end].parse().ok()?, &text[end..]))
}

/// Reads a JSON string after its opening quote: the value and what follows the closing quote.
fn parse_json_string_body(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &text[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = (0..4)
                        .filter_map(|_| chars.next().map(|(_, c)| c))
                        .collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// Exact length of [`push_event`]'s output.
pub fn event_len(id: &str, seq: u64, ts: u64, payload: &str) -> usize {
    r#"{"id":,"seq":,"ts":,"payload":}"#.len()
        + json_string_len(id)
        + digits(seq)
        + digits(ts)
        + payload.len()
}

/// Length of an event whose storage key (its `seq`) is not assigned yet: the bound used
/// to refuse an event that could never fit in a batch.
pub fn event_len_bound(id: &str, ts: u64, payload: &str) -> usize {
    event_len(id, 0, ts, payload) - 1 + MAX_U64_DIGITS
}

/// Upper bound of the bytes a body spends around its events.
pub fn envelope_len_bound(device: &str) -> usize {
    r#"{"sent_at":,"device":,"events":[]}"#.len() + MAX_U64_DIGITS + json_string_len(device)
}

/// Builds the body from pre-encoded event objects.
pub fn body<'a>(sent_at: u64, device: &str, events: impl Iterator<Item = &'a str>) -> String {
    let count = events.size_hint().0;
    let mut out = String::new();
    out.push_str("{\"sent_at\":");
    out.push_str(&sent_at.to_string());
    out.push_str(",\"device\":");
    push_json_string(&mut out, device);
    out.push_str(",\"events\":[");
    for (i, event) in events.enumerate() {
        if i == 0 {
            // Sized once, from the first event with an eighth to spare for longer ones:
            // growing a body of a hundred events copies it several times, which a fleet
            // retrying its backlog pays on every retry.
            out.reserve((event.len() + 1) * count * 9 / 8 + 2);
        } else {
            out.push(',');
        }
        out.push_str(event);
    }
    out.push_str("]}");
    out
}

/// Formats 16 random bytes as an RFC 4122 version-4 UUID.
pub fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_len_is_exact() {
        for (id, seq, ts, payload) in [
            ("a", 0, 0, "{}"),
            (
                "quote\"and\\back\nslash",
                42,
                1_732_240_000_000,
                r#"{"type":"CLICK"}"#,
            ),
            ("x", u64::MAX, u64::MAX, "null"),
        ] {
            let mut out = String::new();
            push_event(&mut out, id, seq, ts, payload);
            assert_eq!(out.len(), event_len(id, seq, ts, payload), "{out}");
            assert!(event_len_bound(id, ts, payload) >= out.len());
        }
    }

    #[test]
    fn parse_reads_back_what_push_wrote() {
        for (id, seq, ts, payload) in [
            ("a", 0, 0, "{}"),
            (
                "q\"u\\o\nt\u{1}e",
                42,
                1_732_240_000_000,
                r#"{"type":"CLICK","s":"}"}"#,
            ),
            ("x", u64::MAX, u64::MAX, "null"),
        ] {
            let mut out = String::new();
            push_event(&mut out, id, seq, ts, payload);
            assert_eq!(
                parse_event(&out),
                Some((id.to_owned(), seq, ts, payload)),
                "{out}"
            );
            assert_eq!(parse_seq(&out), Some(seq));
        }
        assert_eq!(parse_event("{\"id\":1}"), None);
        assert_eq!(parse_event(""), None);
        assert_eq!(parse_seq("nonsense"), None);
    }

    #[test]
    fn body_matches_the_wire_format() {
        let mut event = String::new();
        push_event(&mut event, "u1", 7, 1000, r#"{"type":"VIEW"}"#);
        let body = body(
            2000,
            "dev\"ice",
            [event.as_str(), event.as_str()].into_iter(),
        );
        assert_eq!(
            body,
            r#"{"sent_at":2000,"device":"dev\"ice","events":[{"id":"u1","seq":7,"ts":1000,"payload":{"type":"VIEW"}},{"id":"u1","seq":7,"ts":1000,"payload":{"type":"VIEW"}}]}"#
        );
        assert!(body.len() <= envelope_len_bound("dev\"ice") + 2 * event.len() + 1);
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = String::new();
        push_json_string(&mut out, "a\u{1}b");
        assert_eq!(out, r#""a\u0001b""#);
    }

    #[test]
    fn uuid_has_version_and_variant() {
        let id = uuid_v4([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
    }
}
