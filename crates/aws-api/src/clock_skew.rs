//! Living with a local clock that is wrong: which AWS answers mean "your request time is too
//! far from ours", the time an answer's `Date` header gives, and the offset the client keeps
//! and signs with from then on.

use std::sync::atomic::{AtomicI64, Ordering};
use timestamps::now as unix_now;

/// Error codes that only ever mean the request time was out of the service's window.
const SKEW_CODES: &[&str] = &[
    "RequestTimeTooSkewed",
    "RequestExpired",
    "RequestInTheFuture",
];

/// Error codes that mean a bad signature, which a wrong clock causes when the message says
/// so (STS and the JSON services answer a skewed request with
/// `InvalidSignatureException: Signature expired: ... is now earlier than ...`).
const SIGNATURE_CODES: &[&str] = &[
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "AuthFailure",
];

/// Words in a signature error's message that point at the clock rather than the key.
const SKEW_WORDS: &[&str] = &["expired", "not yet current", "skew", "time"];

/// Whether an error answer says the request's time was too far from the service's.
pub fn is_clock_skew_error(status: u16, code: &str, message: &str) -> bool {
    if !(400..500).contains(&status) {
        return false;
    }
    if SKEW_CODES.contains(&code) {
        return true;
    }
    let message = message.to_ascii_lowercase();
    SIGNATURE_CODES.contains(&code) && SKEW_WORDS.iter().any(|word| message.contains(word))
}

/// Seconds since the Unix epoch for an HTTP date (RFC 7231 §7.1.1.1): the IMF-fixdate every
/// AWS endpoint sends (`Sun, 06 Nov 1994 08:49:37 GMT`) and, as the RFC asks of recipients,
/// the obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
/// (`Sun Nov  6 08:49:37 1994`) forms. `None` for anything else.
pub fn parse_http_date(text: &str) -> Option<u64> {
    let fields: Vec<&str> = text
        .split([' ', ',', '-'])
        .filter(|field| !field.is_empty())
        .collect();
    let (day, month, year, time) = match fields.as_slice() {
        // IMF-fixdate and RFC 850: weekday, day, month, year, time, GMT.
        [_, day, month, year, time, "GMT"] => (*day, *month, *year, *time),
        // asctime: weekday, month, day, time, year.
        [_, month, day, time, year] => (*day, *month, *year, *time),
        _ => return None,
    };
    let month = MONTHS.iter().position(|m| *m == month)? + 1;
    let day: u32 = day.parse().ok()?;
    let year: u32 = match year.parse::<u32>().ok()? {
        // RFC 7231: a two-digit year more than 50 years ahead is in the past century.
        two @ 0..=49 if year.len() == 2 => 2000 + two,
        two @ 50..=99 if year.len() == 2 => 1900 + two,
        four => four,
    };
    let mut clock = time.split(':');
    let (hour, minute, second) = (clock.next()?, clock.next()?, clock.next()?);
    if clock.next().is_some() || [hour, minute, second].iter().any(|part| part.len() != 2) {
        return None;
    }
    // The RFC 3339 parser checks the ranges and does the calendar arithmetic.
    let rfc3339 = format!("{year:04}-{month:02}-{day:02}T{hour}:{minute}:{second}Z");
    let seconds = timestamps::parse_rfc3339(&rfc3339)?;
    Some(seconds as u64)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// AWS time minus local time, in seconds, shared by every call of one client.
#[derive(Debug, Default)]
pub(crate) struct ClockOffset(AtomicI64);

impl ClockOffset {
    /// The offset now in use.
    pub(crate) fn seconds(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// The time to sign with: the local clock corrected by the offset.
    pub(crate) fn aws_now(&self) -> u64 {
        let now = unix_now() as i64;
        now.saturating_add(self.seconds()).max(0) as u64
    }

    /// Takes the offset from a `Date` header AWS sent and returns it, or `None` (and keeps
    /// the old offset) when the header is missing or unreadable.
    pub(crate) fn correct_from(&self, date: Option<&str>) -> Option<i64> {
        let aws = parse_http_date(date?)? as i64;
        let offset = aws - unix_now() as i64;
        self.0.store(offset, Ordering::Relaxed);
        Some(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 1994-11-06T08:49:37Z, the RFC's own example.
    const EXAMPLE: u64 = 784_111_777;

    #[test]
    fn reads_every_http_date_form() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(EXAMPLE)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(EXAMPLE)
        );
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(EXAMPLE));
        assert_eq!(
            parse_http_date("Tue, 14 Nov 2023 22:13:20 GMT"),
            Some(1_700_000_000)
        );
        // A leap day.
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT"),
            Some(1_709_164_800)
        );
    }

    #[test]
    fn rejects_what_is_not_an_http_date() {
        for text in [
            "",
            "yesterday",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 8:49:37:00 GMT",
            "1994-11-06T08:49:37Z",
        ] {
            assert_eq!(parse_http_date(text), None, "{text:?}");
        }
    }

    #[test]
    fn tells_clock_skew_from_other_errors() {
        assert!(is_clock_skew_error(
            400,
            "InvalidSignatureException",
            "Signature expired: 20231114T221320Z is now earlier than 20231114T231320Z \
             (20231114T231820Z - 5 min.)"
        ));
        assert!(is_clock_skew_error(
            400,
            "InvalidSignatureException",
            "Signature not yet current: 20231115T011320Z is still later than 20231114T231820Z"
        ));
        assert!(is_clock_skew_error(403, "RequestTimeTooSkewed", ""));
        assert!(is_clock_skew_error(
            400,
            "RequestExpired",
            "Request has expired."
        ));
        assert!(is_clock_skew_error(
            403,
            "SignatureDoesNotMatch",
            "Signature expired: 20231114T221320Z is now earlier than 20231114T231320Z"
        ));
        assert!(is_clock_skew_error(
            401,
            "AuthFailure",
            "AWS was not able to validate the provided access credentials: request time too skewed"
        ));
        // A wrong key is not a wrong clock.
        assert!(!is_clock_skew_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided."
        ));
        assert!(!is_clock_skew_error(
            400,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided."
        ));
        assert!(!is_clock_skew_error(
            400,
            "ThrottlingException",
            "Rate exceeded"
        ));
        assert!(!is_clock_skew_error(500, "RequestTimeTooSkewed", ""));
    }

    #[test]
    fn keeps_the_offset_from_a_date_header() {
        let offset = ClockOffset::default();
        assert_eq!(offset.seconds(), 0);
        assert_eq!(offset.correct_from(None), None);
        assert_eq!(offset.correct_from(Some("garbage")), None);
        assert_eq!(offset.seconds(), 0);
        let local = unix_now() as u64;
        let hour_ahead = timestamps::format_rfc3339((local + 3600) as f64);
        // Build the IMF-fixdate from the RFC 3339 form: `YYYY-MM-DDTHH:MM:SS`.
        let month = MONTHS[hour_ahead[5..7].parse::<usize>().expect("month") - 1];
        let date = format!(
            "Mon, {} {month} {} {} GMT",
            &hour_ahead[8..10],
            &hour_ahead[..4],
            &hour_ahead[11..19]
        );
        let corrected = offset.correct_from(Some(&date)).expect("a readable date");
        // The local clock may tick between the two readings.
        assert!((3599..=3600).contains(&corrected), "{corrected}");
        assert_eq!(offset.seconds(), corrected);
        assert!(offset.aws_now().abs_diff(local + 3600) <= 2);
    }
}
