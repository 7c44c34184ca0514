//! Byte sizes in Prometheus' syntax (`body_size_limit`: alecthomas/units' `ParseBase2Bytes`):
//! `10MB`, `512KiB`, `1GB512MB`; powers of 1024 whether written `KB` or `KiB`.

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

/// Reads a byte size as Prometheus does: a sequence of integers each with a unit, or `0`.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    if text == "0" {
        return Ok(0);
    }
    let invalid = || format!("units: invalid {text}");
    if text.is_empty() {
        return Err(invalid());
    }
    let mut rest = text;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let (number, after) = rest.split_at(digits);
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
        let n: u64 = number.parse().map_err(|_| invalid())?;
        total = n
            .checked_mul(*size)
            .and_then(|bytes| total.checked_add(bytes))
            .filter(|&t| t <= i64::MAX as u64)
            .ok_or_else(invalid)?;
        rest = after;
    }
    Ok(total)
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
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_byte_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn sizes_without_a_known_unit_are_refused() {
        for text in [
            "", "10", "MB", "10mb", "10 MB", "1.5MB", "10XB", "-1MB", "16EB",
        ] {
            assert!(parse_byte_size(text).is_err(), "{text}");
        }
    }
}
