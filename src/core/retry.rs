//! What a server answer means for the events of a batch, and how long to wait before the
//! next try. Pure functions: the random number and the time are arguments.

use super::wire::leading_u64;

/// How a send ended, as the transport saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The server answered with this status and, maybe, a `Retry-After` header value.
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    /// No answer: connection refused, reset, DNS, CORS, offline, aborted.
    NetworkError(String),
}

impl SendOutcome {
    pub fn status(status: u16) -> Self {
        SendOutcome::Status {
            status,
            retry_after: None,
        }
    }
}

/// What the core does with a batch after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delete exactly these events.
    Acknowledged,
    /// 413: the batch is too large for the server; split it.
    TooLarge,
    /// 400 or 422 (the status): some event in it is rejected for its content; bisect to
    /// find it.
    Rejected { status: u16 },
    /// Transient trouble: back off with jitter, or wait what the server asked (capped).
    Retry { server_wait_ms: Option<u64> },
    /// 401/403/404 and other 4xx (not 400, 408, 413, 422, 429): the endpoint is
    /// misconfigured; keep the events, wait the cap.
    Misconfigured,
}

/// Classifies an answer. `now_ms` is wall-clock time, for a `Retry-After` HTTP date.
pub fn verdict(outcome: &SendOutcome, now_ms: u64) -> Verdict {
    let (status, retry_after) = match outcome {
        SendOutcome::NetworkError(_) => {
            return Verdict::Retry {
                server_wait_ms: None,
            }
        }
        SendOutcome::Status {
            status,
            retry_after,
        } => (*status, retry_after),
    };
    match status {
        200..=299 => Verdict::Acknowledged,
        413 => Verdict::TooLarge,
        400 | 422 => Verdict::Rejected { status },
        429 | 503 => Verdict::Retry {
            server_wait_ms: retry_after
                .as_deref()
                .and_then(|v| parse_retry_after(v, now_ms)),
        },
        408 | 500..=599 => Verdict::Retry {
            server_wait_ms: None,
        },
        _ if (400..500).contains(&status) => Verdict::Misconfigured,
        // 1xx and 3xx should never reach us (fetch follows redirects); be patient.
        _ => Verdict::Retry {
            server_wait_ms: None,
        },
    }
}

/// The floor of any wait, so a jitter of zero never means a tight loop.
pub const MIN_WAIT_MS: u64 = 50;

/// Full jitter: a uniformly random wait in `[0, min(max, base * 2^attempt)]`, from a
/// `jitter` in `[0, 1)`, floored at [`MIN_WAIT_MS`] (or the cap, if smaller).
pub fn backoff_ms(base_ms: u64, max_ms: u64, attempt: u32, jitter: f64) -> u64 {
    let bound = backoff_bound_ms(base_ms, max_ms, attempt);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    within_limits((bound as f64 * jitter) as u64, bound)
}

/// `wait` floored at [`MIN_WAIT_MS`] and capped at `cap`; the cap wins where it is below
/// the floor (a `retry.maxMs` of 10 means 10).
pub(super) fn within_limits(wait: u64, cap: u64) -> u64 {
    wait.max(MIN_WAIT_MS).min(cap)
}

/// `min(max, base * 2^attempt)`, saturating.
pub fn backoff_bound_ms(base_ms: u64, max_ms: u64, attempt: u32) -> u64 {
    let factor = 1u64.checked_shl(attempt.min(63)).unwrap_or(u64::MAX);
    base_ms.saturating_mul(factor).min(max_ms)
}

/// Parses `Retry-After`: delay-seconds or an HTTP date (IMF-fixdate). Returns the wait in
/// milliseconds from `now_ms`, or `None` for a value that is neither.
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let value = value.trim();
    if let Some(seconds) = whole_number(value) {
        return Some(seconds.saturating_mul(1000));
    }
    let at_ms = parse_imf_fixdate(value)?;
    Some(at_ms.saturating_sub(now_ms))
}

/// `text` as `str::parse::<u64>` reads it (a leading `+` allowed), byte by byte: the
/// standard parser and `split` on a string pattern cost kilobytes of wasm.
fn whole_number(text: &str) -> Option<u64> {
    digits_only(text.strip_prefix('+').unwrap_or(text))
}

/// `text` as `str::parse::<i64>` reads it (a leading `+` or `-` allowed).
fn signed_number(text: &str) -> Option<i64> {
    match text.strip_prefix('-') {
        Some(digits) => 0i64.checked_sub_unsigned(digits_only(digits)?),
        None => i64::try_from(whole_number(text)?).ok(),
    }
}

/// ASCII digits and nothing else, as after the sign of a number.
fn digits_only(text: &str) -> Option<u64> {
    match leading_u64(text)? {
        (n, "") => Some(n),
        _ => None,
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` to milliseconds since the Unix epoch.
fn parse_imf_fixdate(value: &str) -> Option<u64> {
    let comma = value.as_bytes().windows(2).position(|w| w == b", ")?;
    // ", " is ASCII, so the text after it starts on a character boundary.
    let rest = value.get(comma + 2..)?;
    let mut parts = rest.split(' ');
    let day = whole_number(parts.next()?)?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year = signed_number(parts.next()?)?;
    let mut clock = parts.next()?.split(':');
    let hour = whole_number(clock.next()?)?;
    let minute = whole_number(clock.next()?)?;
    let second = whole_number(clock.next()?)?;
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60
    {
        return None;
    }
    // The day is at most 31 (checked above).
    let days = days_from_civil(year, month, day as u32);
    let seconds = u64::try_from(days).ok()? * 86_400 + hour * 3600 + minute * 60 + second;
    Some(seconds * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_verdicts() {
        let at = |status| verdict(&SendOutcome::status(status), 0);
        assert_eq!(at(200), Verdict::Acknowledged);
        assert_eq!(at(204), Verdict::Acknowledged);
        assert_eq!(at(413), Verdict::TooLarge);
        assert_eq!(at(400), Verdict::Rejected { status: 400 });
        assert_eq!(at(422), Verdict::Rejected { status: 422 });
        for status in [401, 403, 404, 405, 409, 410, 415] {
            assert_eq!(at(status), Verdict::Misconfigured, "{status}");
        }
        for status in [408, 429, 500, 502, 503, 504] {
            assert_eq!(
                at(status),
                Verdict::Retry {
                    server_wait_ms: None
                },
                "{status}"
            );
        }
        assert_eq!(
            verdict(&SendOutcome::NetworkError("refused".into()), 0),
            Verdict::Retry {
                server_wait_ms: None
            }
        );
    }

    #[test]
    fn retry_after_is_read_on_429_and_503_only() {
        let with = |status| {
            verdict(
                &SendOutcome::Status {
                    status,
                    retry_after: Some("7".into()),
                },
                0,
            )
        };
        let seven = Verdict::Retry {
            server_wait_ms: Some(7000),
        };
        assert_eq!(with(429), seven);
        assert_eq!(with(503), seven);
        assert_eq!(
            with(500),
            Verdict::Retry {
                server_wait_ms: None
            }
        );
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        assert_eq!(parse_retry_after("120", 0), Some(120_000));
        assert_eq!(parse_retry_after(" 0 ", 0), Some(0));
        // 1994-11-06T08:49:37Z is 784111777 s after the epoch.
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(
            parse_retry_after(date, 784_111_777_000 - 5_000),
            Some(5_000)
        );
        // A date in the past means "now".
        assert_eq!(parse_retry_after(date, 784_111_777_000 + 5_000), Some(0));
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("Sun, 06 Foo 1994 08:49:37 GMT", 0), None);
        assert_eq!(parse_retry_after("-3", 0), None);
    }

    #[test]
    fn numbers_are_read_as_the_standard_parser_reads_them() {
        for text in [
            "",
            "+",
            "-",
            "0",
            "+0",
            "-0",
            "7",
            "+7",
            "-7",
            "007",
            "12a",
            "a12",
            " 1",
            "1 ",
            "++1",
            "+-1",
            "-+1",
            "--1",
            "1.5",
            "\u{660}",
            "18446744073709551615",
            "18446744073709551616",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
        ] {
            assert_eq!(whole_number(text), text.parse::<u64>().ok(), "{text:?}");
            assert_eq!(signed_number(text), text.parse::<i64>().ok(), "{text:?}");
        }
    }

    #[test]
    fn dates_are_read_as_before() {
        let at = |text| parse_imf_fixdate(text);
        assert_eq!(at("x, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777_000));
        assert_eq!(at("Sun,  06 Nov 1994 08:49:37 GMT"), None);
        assert_eq!(
            at("Sun, +06 Nov +1994 +08:+49:+37 GMT"),
            Some(784_111_777_000)
        );
        assert_eq!(
            at("Sun, 06 Nov 1994 08:49:37:99 GMT trailing"),
            Some(784_111_777_000)
        );
        assert_eq!(at("a, b, 06 Nov 1994 08:49:37 GMT"), None);
        assert_eq!(at("Sun, 06 Nov -1994 08:49:37 GMT"), None);
        assert_eq!(at("Sun, 32 Nov 1994 08:49:37 GMT"), None);
        assert_eq!(at("Sun, 06 Nov 1994 08:49 GMT"), None);
        assert_eq!(parse_retry_after("+5", 0), Some(5_000));
        assert_eq!(parse_retry_after("\u{a0}5\u{2003}", 0), Some(5_000));
    }

    #[test]
    fn epoch_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(
            parse_imf_fixdate("Fri, 22 Nov 2024 01:46:40 GMT"),
            Some(1_732_240_000_000)
        );
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        assert_eq!(backoff_bound_ms(1000, 60_000, 0), 1000);
        assert_eq!(backoff_bound_ms(1000, 60_000, 3), 8000);
        assert_eq!(backoff_bound_ms(1000, 60_000, 10), 60_000);
        assert_eq!(backoff_bound_ms(1000, 60_000, 200), 60_000);
        assert_eq!(backoff_ms(1000, 60_000, 3, 0.5), 4000);
        assert_eq!(backoff_ms(1000, 60_000, 3, 0.0), MIN_WAIT_MS);
        assert_eq!(backoff_ms(1000, 60_000, 3, 0.999_999), 7999);
        assert_eq!(backoff_ms(1000, 60_000, 3, f64::NAN), MIN_WAIT_MS);
        assert_eq!(backoff_ms(10, 20, 0, 0.0), 10);
    }
}
