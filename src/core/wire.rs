//! The bulk request body of ARCHITECTURE.md, built by string concatenation from payloads that
//! the driver already serialized (the browser's `JSON.stringify` is faster and smaller
//! than any Rust JSON library in wasm).
//!
//! ```text
//! {"sent_at":1732240000123,"device":"d","events":[{"id":"s-42","session":"s","seq":42,"ts":1732240000000,"payload":{...}}]}
//! ```
//!
//! `seq` counts the events of one page's `session` from 1, in the order they were
//! logged, so the server sees a gap wherever one never arrived. Storage and the tabs'
//! messages carry an event's line behind its storage key ([`push_keyed`]).

use super::types::Key;

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

/// What one event object holds, as [`push_event`] writes and [`parse_event`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLine<'a> {
    pub id: String,
    pub session: String,
    pub seq: u64,
    pub ts: u64,
    pub payload: &'a str,
}

/// The id of the event numbered `seq` in `session`: unique, as a session id is, and the
/// same on every path that posts the event (the entry's `eventLine` writes it so too).
pub fn event_id(session: &str, seq: u64) -> String {
    let mut id = String::with_capacity(session.len() + 1 + MAX_U64_DIGITS);
    id.push_str(session);
    id.push('-');
    push_u64(&mut id, seq);
    id
}

/// Appends one event object.
pub fn push_event(out: &mut String, id: &str, session: &str, seq: u64, ts: u64, payload: &str) {
    out.push_str("{\"id\":");
    push_json_string(out, id);
    out.push_str(",\"session\":");
    push_json_string(out, session);
    out.push_str(",\"seq\":");
    push_u64(out, seq);
    out.push_str(",\"ts\":");
    push_u64(out, ts);
    out.push_str(",\"payload\":");
    out.push_str(payload);
    out.push('}');
}

/// The parts of one event object written by [`push_event`]; `None` for text it did not
/// write.
pub fn parse_event(text: &str) -> Option<EventLine<'_>> {
    let rest = text.strip_prefix("{\"id\":\"")?;
    let (id, rest) = parse_json_string_body(rest)?;
    let rest = rest.strip_prefix(",\"session\":\"")?;
    let (session, rest) = parse_json_string_body(rest)?;
    let rest = rest.strip_prefix(",\"seq\":")?;
    let (seq, rest) = leading_u64(rest)?;
    let rest = rest.strip_prefix(",\"ts\":")?;
    let (ts, rest) = leading_u64(rest)?;
    let payload = rest.strip_prefix(",\"payload\":")?.strip_suffix('}')?;
    Some(EventLine {
        id,
        session,
        seq,
        ts,
        payload,
    })
}

/// Appends an event object behind its storage key, as storage and the tabs' messages
/// hold it.
pub fn push_keyed(out: &mut String, key: Key, line: &str) {
    push_u64(out, key);
    out.push(' ');
    out.push_str(line);
}

/// The storage key and the event object of a line written by [`push_keyed`].
pub fn parse_keyed(text: &str) -> Option<(Key, &str)> {
    let (key, rest) = leading_u64(text)?;
    Some((key, rest.strip_prefix(' ')?))
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
pub fn event_len(id: &str, session: &str, seq: u64, ts: u64, payload: &str) -> usize {
    r#"{"id":,"session":,"seq":,"ts":,"payload":}"#.len()
        + json_string_len(id)
        + json_string_len(session)
        + digits(seq)
        + digits(ts)
        + payload.len()
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

    const EVENTS: [(&str, &str, u64, u64, &str); 3] = [
        ("a", "s", 0, 0, "{}"),
        (
            "q\"u\\o\nt\u{1}e",
            "sess\"ion",
            42,
            1_732_240_000_000,
            r#"{"type":"CLICK","s":"}"}"#,
        ),
        ("x", "", u64::MAX, u64::MAX, "null"),
    ];

    #[test]
    fn event_len_is_exact() {
        for (id, session, seq, ts, payload) in EVENTS {
            let mut out = String::new();
            push_event(&mut out, id, session, seq, ts, payload);
            assert_eq!(out.len(), event_len(id, session, seq, ts, payload), "{out}");
        }
    }

    #[test]
    fn parse_reads_back_what_push_wrote() {
        for (key, (id, session, seq, ts, payload)) in EVENTS.into_iter().enumerate() {
            let mut out = String::new();
            push_event(&mut out, id, session, seq, ts, payload);
            let expected = EventLine {
                id: id.to_owned(),
                session: session.to_owned(),
                seq,
                ts,
                payload,
            };
            assert_eq!(parse_event(&out), Some(expected), "{out}");
            let mut keyed = String::new();
            push_keyed(&mut keyed, key as Key, &out);
            assert_eq!(parse_keyed(&keyed), Some((key as Key, out.as_str())));
        }
        assert_eq!(parse_event("{\"id\":1}"), None);
        assert_eq!(
            parse_event("{\"id\":\"u\",\"seq\":1,\"ts\":1,\"payload\":1}"),
            None
        );
        assert_eq!(parse_event(""), None);
        assert_eq!(parse_keyed("{\"id\":\"u\"}"), None);
        assert_eq!(parse_keyed("7{}"), None);
    }

    #[test]
    fn body_matches_the_wire_format() {
        let mut event = String::new();
        push_event(&mut event, "s-7", "s", 7, 1000, r#"{"type":"VIEW"}"#);
        let body = body(
            2000,
            "dev\"ice",
            [event.as_str(), event.as_str()].into_iter(),
        );
        assert_eq!(
            body,
            r#"{"sent_at":2000,"device":"dev\"ice","events":[{"id":"s-7","session":"s","seq":7,"ts":1000,"payload":{"type":"VIEW"}},{"id":"s-7","session":"s","seq":7,"ts":1000,"payload":{"type":"VIEW"}}]}"#
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
        assert_eq!(parse_keyed("5 é"), Some((5, "é")));
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
