//! Byte sizes in Prometheus' syntax (`body_size_limit`: alecthomas/units' `ParseBase2Bytes`):
//! `10MB`, `1.5MiB`, `1GB512MB`; powers of 1024 whether written `KB` or `KiB`.

/// The units `ParseBase2Bytes` knows, with their size.
const UNITS: [(&str, u64); 13] = [
    ("B", 1),
    ("KB", 1 << 10),
    ("KiB", 1 << 10),
    ("MB", 1 << 20),
    ("MiB", 1 << 20),
    ("GB", 1 << 30),
    ("GiB", 1 << 30),
    ("TB", 1 << 40),
    ("TiB", 1 << 40),
    ("PB", 1 << 50),
    ("PiB", 1 << 50),
    ("EB", 1 << 60),
    ("EiB", 1 << 60),
];

/// Reads a byte size as Prometheus does: an optional sign, then a sequence of numbers
/// (fractions allowed) each with a unit, or `0`.
pub fn parse_byte_size(text: &str) -> Result<i64, String> {
    if text == "0" {
        return Ok(0);
    }
    let invalid = || format!("units: invalid {text}");
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if unsigned.is_empty() {
        return Err(invalid());
    }
    let mut rest = unsigned;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        // An integer part, a fraction, or both, as Go's time.ParseDuration reads numbers.
        let whole_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (whole, after) = rest.split_at(whole_len);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(after) => {
                let len = after.bytes().take_while(u8::is_ascii_digit).count();
                after.split_at(len)
            }
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let unit_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!("units: missing unit in {text}"));
        }
        let Some((_, size)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!("units: unknown unit {unit} in {text}"));
        };
        let n: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let mut bytes = n.checked_mul(*size).ok_or_else(invalid)?;
        // The fraction's bytes, truncated as Go's float-to-integer conversion does.
        if !fraction.is_empty() {
            let digits = &fraction[..fraction.len().min(18)];
            let scale = 10u128.pow(digits.len() as u32);
            let numerator: u128 = digits.parse().map_err(|_| invalid())?;
            let extra = numerator * u128::from(*size) / scale;
            bytes = bytes
                .checked_add(u64::try_from(extra).map_err(|_| invalid())?)
                .ok_or_else(invalid)?;
        }
        total = total
            .checked_add(bytes)
            .filter(|&t| t <= i64::MAX as u64)
            .ok_or_else(invalid)?;
        rest = after;
    }
    // At most i64::MAX, checked above.
    let total = total as i64;
    Ok(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_read_in_powers_of_1024() {
        let cases = [
            ("0", 0),
            ("1B", 1),
            ("10MB", 10 << 20),
            ("10MiB", 10 << 20),
            ("512KB", 512 << 10),
            ("1GB512MB", (1 << 30) + (512 << 20)),
            ("2TB", 2 << 40),
            ("1.5MB", 3 << 19),
            (".5KB", 512),
            ("1.KB", 1024),
            ("0.1KB", 102),
            ("+1KB", 1024),
            ("-1MB", -(1 << 20)),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_byte_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn sizes_without_a_known_unit_are_refused() {
        for text in [
            "", "10", "MB", "10mb", "10 MB", ".MB", "1..5MB", "10XB", "--1MB", "-", "16EB",
        ] {
            assert!(parse_byte_size(text).is_err(), "{text}");
        }
    }
}
