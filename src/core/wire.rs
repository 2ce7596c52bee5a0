//! The bulk request body of ARCHITECTURE.md, built by string concatenation from payloads that
//! the driver already serialized (the browser's `JSON.stringify` is faster and smaller
//! than any Rust JSON library in wasm).
//!
//! ```text
//! {"sent_at":1732240000123,"device":"d","events":[{"id":"u","seq":42,"ts":1732240000000,"payload":{...}}]}
//! ```

/// Digits of the largest `u64`: the bound used where a number is not known yet.
const MAX_U64_DIGITS: usize = 20;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `n` in decimal: what `to_string` writes, without the formatting machinery,
/// which costs kilobytes of wasm.
pub fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; MAX_U64_DIGITS];
    let mut start = MAX_U64_DIGITS;
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &digit in &digits[start..] {
        out.push(char::from(digit));
    }
}

/// The number at the start of `text` (ASCII digits only, at least one, no overflow) and
/// what follows it.
pub(super) fn leading_u64(text: &str) -> Option<(u64, &str)> {
    let end = text
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    if end == 0 {
        return None;
    }
    let mut n: u64 = 0;
    for digit in text.bytes().take(end) {
        n = n.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
    }
    // Digits are ASCII, so `end` is a character boundary.
    Some((n, text.get(end..)?))
}

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
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(c as u8 >> 4)]));
                out.push(char::from(HEX[usize::from(c as u8 & 0x0f)]));
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
    push_u64(out, seq);
    push_event_end(out, ts, payload);
}

/// Appends one event object for an event whose write has not completed, so without the
/// `seq` that storage assigns: only the unload path posts one (a closing page may never
/// see its write complete), and if the write did complete, the id comes again with it.
pub fn push_unstored_event(out: &mut String, id: &str, ts: u64, payload: &str) {
    out.push_str("{\"id\":");
    push_json_string(out, id);
    push_event_end(out, ts, payload);
}

fn push_event_end(out: &mut String, ts: u64, payload: &str) {
    out.push_str(",\"ts\":");
    push_u64(out, ts);
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
    let (seq, rest) = leading_u64(rest)?;
    let rest = rest.strip_prefix(",\"ts\":")?;
    let (ts, rest) = leading_u64(rest)?;
    let payload = rest.strip_prefix(",\"payload\":")?.strip_suffix('}')?;
    Some((id, seq, ts, payload))
}

/// The `seq` of an event object written by [`push_event`], without decoding the rest.
pub fn parse_seq(text: &str) -> Option<u64> {
    const MARK: &[u8] = b",\"seq\":";
    let at = text
        .as_bytes()
        .windows(MARK.len())
        .position(|window| window == MARK)?;
    // The mark is ASCII, so the text after it starts on a character boundary.
    leading_u64(text.get(at + MARK.len()..)?).map(|(seq, _)| seq)
}

/// Reads a JSON string after its opening quote: the value and what follows the closing quote.
fn parse_json_string_body(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            // A quote is one byte, so `i + 1` is a character boundary.
            '"' => return Some((out, text.get(i + 1..)?)),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => out.push(char::from_u32(parse_hex4(&mut chars)?)?),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// The up to four hex digits of a `\\u` escape, as `u32::from_str_radix` reads them (a
/// leading `+` allowed), taken from `chars`.
fn parse_hex4(chars: &mut impl Iterator<Item = (usize, char)>) -> Option<u32> {
    let mut code = 0;
    let mut digits = 0;
    for (i, (_, c)) in chars.take(4).enumerate() {
        if i == 0 && c == '+' {
            continue;
        }
        code = code * 16 + c.to_digit(16)?;
        digits += 1;
    }
    (digits > 0).then_some(code)
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
    push_u64(&mut out, sent_at);
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
    fn numbers_are_written_and_read_as_std_does() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            1_732_240_000_000,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = String::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string());
            assert_eq!(leading_u64(&out), Some((n, "")));
        }
        assert_eq!(leading_u64("12,rest"), Some((12, ",rest")));
        assert_eq!(leading_u64("+12"), None);
        assert_eq!(leading_u64(""), None);
        assert_eq!(leading_u64("18446744073709551616"), None);
        assert_eq!(parse_seq("{\"id\":\"é\",\"seq\":5,"), Some(5));
        assert_eq!(parse_seq(",\"seq\":x"), None);
    }

    #[test]
    fn unicode_escapes_are_read_as_from_str_radix_reads_them() {
        let read = |escape: &str| parse_json_string_body(&format!("{escape}\"")).map(|(s, _)| s);
        assert_eq!(read("\\u0041"), Some("A".to_owned()));
        assert_eq!(read("\\u+041"), Some("A".to_owned()));
        assert_eq!(read("\\u004G"), None);
        assert_eq!(read("\\u+"), None);
        assert_eq!(read("\\ud800"), None);
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = String::new();
        push_json_string(&mut out, "a\u{1}b\u{1f}");
        assert_eq!(out, r#""a\u0001b\u001f""#);
    }

    #[test]
    fn uuid_has_version_and_variant() {
        let id = uuid_v4([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
    }
}
