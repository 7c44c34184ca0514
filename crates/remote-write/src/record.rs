//! The queue's record format: a batch of samples as one length-prefixed, checksummed record.
//!
//! ```text
//! u32 LE  payload length
//! u32 LE  sample count (so dropping a segment counts its samples without decoding them)
//! u32 LE  CRC-32C of the sample count's four bytes and the payload
//! payload: one snappy block of, per sample:
//!     varint label count, then per label varint length + name, varint length + value
//!     i64 LE timestamp (ms), u64 LE value bits
//! ```

use crate::labels::{Label, Labels, Sample};
use crate::protobuf::{compress, decompress, put_varint};

/// Bytes before a record's payload.
pub(crate) const HEADER_LEN: usize = 12;

/// The largest payload a reader accepts; a larger length is a torn or corrupted header.
pub(crate) const MAX_PAYLOAD_LEN: u32 = 64 * 1024 * 1024;

/// CRC-32C (Castagnoli), the checksum of ext4, iSCSI and Prometheus' own WAL.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c_update(0, bytes)
}

const fn crc32c_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static CRC32C_TABLE: [u32; 256] = crc32c_table();

fn crc32c_update(crc: u32, bytes: &[u8]) -> u32 {
    let mut crc = !crc;
    for &byte in bytes {
        crc = CRC32C_TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// One record holding `samples`, header included.
pub fn encode_record(samples: &[Sample]) -> Vec<u8> {
    let mut raw = Vec::new();
    for sample in samples {
        let labels = sample.labels.as_slice();
        put_varint(&mut raw, labels.len() as u64);
        for label in labels {
            put_varint(&mut raw, label.name.len() as u64);
            raw.extend_from_slice(label.name.as_bytes());
            put_varint(&mut raw, label.value.len() as u64);
            raw.extend_from_slice(label.value.as_bytes());
        }
        raw.extend_from_slice(&sample.timestamp_ms.to_le_bytes());
        raw.extend_from_slice(&sample.value.to_bits().to_le_bytes());
    }
    let payload = compress(&raw);
    let count = (samples.len() as u32).to_le_bytes();
    let crc = crc32c_update(crc32c(&count), &payload);
    let mut record = Vec::with_capacity(HEADER_LEN + payload.len());
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&count);
    record.extend_from_slice(&crc.to_le_bytes());
    record.extend_from_slice(&payload);
    record
}

/// A record's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub payload_len: u32,
    pub count: u32,
    pub crc: u32,
}

impl Header {
    pub(crate) fn parse(bytes: &[u8; HEADER_LEN]) -> Header {
        let word =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        Header {
            payload_len: word(0),
            count: word(4),
            crc: word(8),
        }
    }

    /// Whether `payload` is the one this header was written for.
    pub(crate) fn matches(&self, payload: &[u8]) -> bool {
        crc32c_update(crc32c(&self.count.to_le_bytes()), payload) == self.crc
    }
}

/// The samples of a record's payload; `None` when it does not decode to `count` samples.
pub fn decode_record_payload(payload: &[u8], count: u32) -> Option<Vec<Sample>> {
    let raw = decompress(payload).ok()?;
    let mut rest = raw.as_slice();
    let mut samples = Vec::with_capacity(count.min(1 << 16) as usize);
    for _ in 0..count {
        let label_count = varint(&mut rest)?;
        let mut labels = Vec::with_capacity(label_count.min(64) as usize);
        for _ in 0..label_count {
            let name = string(&mut rest)?;
            let value = string(&mut rest)?;
            labels.push(Label { name, value });
        }
        let timestamp_ms = i64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?);
        let value = f64::from_bits(u64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?));
        samples.push(Sample {
            labels: Labels::from_sorted(labels),
            timestamp_ms,
            value,
        });
    }
    rest.is_empty().then_some(samples)
}

fn take<'a>(rest: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    if rest.len() < len {
        return None;
    }
    let (head, tail) = rest.split_at(len);
    *rest = tail;
    Some(head)
}

fn varint(rest: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *take(rest, 1)?.first()?;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

fn string(rest: &mut &[u8]) -> Option<String> {
    let len = usize::try_from(varint(rest)?).ok()?;
    String::from_utf8(take(rest, len)?.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::labels::stale_marker;
    use proptest::prelude::*;

    fn sample(name: &str, t: i64, v: f64) -> Sample {
        Sample {
            labels: Labels::new([("__name__", name), ("job", "j")]).unwrap(),
            timestamp_ms: t,
            value: v,
        }
    }

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The check value of CRC-32C (RFC 3720, appendix B.4): "123456789" -> 0xe3069283.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
    }

    #[test]
    fn a_record_round_trips_with_its_header() {
        let samples = vec![sample("a", 1, 1.5), sample("b", -2, stale_marker())];
        let record = encode_record(&samples);
        let header = Header::parse(record[..HEADER_LEN].try_into().unwrap());
        assert_eq!(header.count, 2);
        assert_eq!(header.payload_len as usize, record.len() - HEADER_LEN);
        let payload = &record[HEADER_LEN..];
        assert!(header.matches(payload));
        let decoded = decode_record_payload(payload, header.count).unwrap();
        assert!(decoded.iter().zip(&samples).all(|(a, b)| a.same_as(b)));
    }

    #[test]
    fn any_flipped_bit_is_caught_by_the_checksum() {
        let record = encode_record(&[sample("a", 1, 1.5)]);
        for byte in 4..record.len() {
            for bit in 0..8 {
                let mut damaged = record.clone();
                damaged[byte] ^= 1 << bit;
                let header = Header::parse(damaged[..HEADER_LEN].try_into().unwrap());
                assert!(
                    !header.matches(&damaged[HEADER_LEN..]),
                    "byte {byte} bit {bit}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn any_payload_decodes_to_samples_or_none(bytes in proptest::collection::vec(any::<u8>(), 0..200), count in 0u32..10) {
            let _ = decode_record_payload(&bytes, count);
        }
    }
}
