//! Remote-write 1.0 bodies: `WriteRequest{timeseries[]{labels[], samples[]}}` written as
//! protobuf by hand with the field numbers of Prometheus' `prompb`, compressed with snappy's
//! raw block format, and read back (for tests and stand-in receivers).

use crate::labels::{Label, Labels};

/// `Content-Type` of a remote-write request.
pub const CONTENT_TYPE: &str = "application/x-protobuf";
/// `Content-Encoding` of a remote-write request.
pub const CONTENT_ENCODING: &str = "snappy";
/// `X-Prometheus-Remote-Write-Version` of a remote-write 1.0 request.
pub const REMOTE_WRITE_VERSION: &str = "0.1.0";

/// One series and its samples, in timestamp order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TimeSeries {
    /// The series' labels.
    pub labels: Labels,
    /// `(timestamp in ms, value)` pairs.
    pub samples: Vec<(i64, f64)>,
}

/// A remote-write 1.0 request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WriteRequest {
    /// The series.
    pub timeseries: Vec<TimeSeries>,
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not a snappy block.
    #[error("not a snappy block")]
    Snappy(#[source] snap::Error),
    /// Not a valid protobuf `WriteRequest`.
    #[error("invalid WriteRequest: {0}")]
    Protobuf(&'static str),
}

// Wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;
const FIXED32: u8 = 5;

pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn varint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(out, u64::from(field << 3 | u32::from(wire_type)));
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_tag(out, field, LENGTH_DELIMITED);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn label_len(label: &Label) -> usize {
    let name = label.name.len();
    let value = label.value.len();
    2 + varint_len(name as u64) + name + varint_len(value as u64) + value
}

fn sample_len(timestamp_ms: i64) -> usize {
    // Both fields are always written: a zero is still exact, and -0.0 keeps its sign.
    1 + 8 + 1 + varint_len(timestamp_ms as u64)
}

/// The encoded size of a series' labels alone.
pub(crate) fn series_labels_len(labels: &Labels) -> usize {
    labels
        .as_slice()
        .iter()
        .map(|label| {
            let len = label_len(label);
            1 + varint_len(len as u64) + len
        })
        .sum()
}

/// The encoded size one more sample adds to a series.
pub(crate) fn sample_field_len(timestamp_ms: i64) -> usize {
    let len = sample_len(timestamp_ms);
    1 + varint_len(len as u64) + len
}

fn series_len(series: &TimeSeries) -> usize {
    series_labels_len(&series.labels)
        + series
            .samples
            .iter()
            .map(|(t, _)| sample_field_len(*t))
            .sum::<usize>()
}

/// The encoded size one series of `inner_len` bytes takes in a request.
pub(crate) fn series_field_len(inner_len: usize) -> usize {
    1 + varint_len(inner_len as u64) + inner_len
}

impl WriteRequest {
    /// The protobuf encoding, before compression.
    pub fn encode(&self) -> Vec<u8> {
        let total: usize = self
            .timeseries
            .iter()
            .map(|s| series_field_len(series_len(s)))
            .sum();
        let mut out = Vec::with_capacity(total);
        for series in &self.timeseries {
            put_tag(&mut out, 1, LENGTH_DELIMITED);
            put_varint(&mut out, series_len(series) as u64);
            for label in series.labels.as_slice() {
                put_tag(&mut out, 1, LENGTH_DELIMITED);
                put_varint(&mut out, label_len(label) as u64);
                put_bytes(&mut out, 1, label.name.as_bytes());
                put_bytes(&mut out, 2, label.value.as_bytes());
            }
            for (timestamp, value) in &series.samples {
                put_tag(&mut out, 2, LENGTH_DELIMITED);
                put_varint(&mut out, sample_len(*timestamp) as u64);
                put_tag(&mut out, 1, FIXED64);
                out.extend_from_slice(&value.to_bits().to_le_bytes());
                put_tag(&mut out, 2, VARINT);
                // int64 is written as its two's complement, ten bytes when negative.
                put_varint(&mut out, *timestamp as u64);
            }
        }
        debug_assert_eq!(out.len(), total);
        out
    }

    /// The body of a remote-write request: the encoding compressed as one snappy block.
    pub fn to_body(&self) -> Vec<u8> {
        compress(&self.encode())
    }

    /// Reads an uncompressed `WriteRequest`; unknown fields are skipped.
    pub fn decode(bytes: &[u8]) -> Result<WriteRequest, DecodeError> {
        let mut request = WriteRequest::default();
        let mut reader = Reader(bytes);
        while let Some((field, wire_type)) = reader.tag()? {
            match (field, wire_type) {
                (1, LENGTH_DELIMITED) => request.timeseries.push(decode_series(reader.bytes()?)?),
                _ => reader.skip(wire_type)?,
            }
        }
        Ok(request)
    }

    /// Reads a remote-write body: a snappy block holding a `WriteRequest`.
    pub fn from_body(body: &[u8]) -> Result<WriteRequest, DecodeError> {
        WriteRequest::decode(&decompress(body)?)
    }

    /// The number of samples.
    pub fn sample_count(&self) -> usize {
        self.timeseries.iter().map(|s| s.samples.len()).sum()
    }
}

fn decode_series(bytes: &[u8]) -> Result<TimeSeries, DecodeError> {
    let mut labels = Vec::new();
    let mut samples = Vec::new();
    let mut reader = Reader(bytes);
    while let Some((field, wire_type)) = reader.tag()? {
        match (field, wire_type) {
            (1, LENGTH_DELIMITED) => {
                let mut inner = Reader(reader.bytes()?);
                let mut label = Label {
                    name: String::new(),
                    value: String::new(),
                };
                while let Some((field, wire_type)) = inner.tag()? {
                    match (field, wire_type) {
                        (1, LENGTH_DELIMITED) => label.name = inner.string()?,
                        (2, LENGTH_DELIMITED) => label.value = inner.string()?,
                        _ => inner.skip(wire_type)?,
                    }
                }
                labels.push(label);
            }
            (2, LENGTH_DELIMITED) => {
                let mut inner = Reader(reader.bytes()?);
                let (mut timestamp, mut value) = (0i64, 0f64);
                while let Some((field, wire_type)) = inner.tag()? {
                    match (field, wire_type) {
                        (1, FIXED64) => value = f64::from_bits(inner.fixed64()?),
                        (2, VARINT) => timestamp = inner.varint()? as i64,
                        _ => inner.skip(wire_type)?,
                    }
                }
                samples.push((timestamp, value));
            }
            _ => reader.skip(wire_type)?,
        }
    }
    // Kept as sent, so a test sees an unsorted or duplicated set exactly as it arrived.
    Ok(TimeSeries {
        labels: Labels::from_sorted(labels),
        samples,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let (&byte, rest) = self
                .0
                .split_first()
                .ok_or(DecodeError::Protobuf("truncated varint"))?;
            self.0 = rest;
            if shift == 63 && byte > 1 {
                return Err(DecodeError::Protobuf("varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(DecodeError::Protobuf("varint longer than ten bytes"))
    }

    fn tag(&mut self) -> Result<Option<(u64, u8)>, DecodeError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        Ok(Some((tag >> 3, (tag & 7) as u8)))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.0.len() {
            return Err(DecodeError::Protobuf("field longer than its message"));
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.varint()?;
        self.take(usize::try_from(len).map_err(|_| DecodeError::Protobuf("length too large"))?)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| DecodeError::Protobuf("a label is not UTF-8"))
    }

    fn fixed64(&mut self) -> Result<u64, DecodeError> {
        let bytes = self.take(8)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(array))
    }

    fn skip(&mut self, wire_type: u8) -> Result<(), DecodeError> {
        match wire_type {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LENGTH_DELIMITED => self.bytes().map(drop),
            FIXED32 => self.take(4).map(drop),
            _ => Err(DecodeError::Protobuf("unsupported wire type")),
        }
    }
}

/// Compresses `bytes` as one snappy block (the raw format, not the framed one).
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    // The encoder fails only on inputs over ~4 GiB; requests are bounded far below that.
    snap::raw::Encoder::new()
        .compress_vec(bytes)
        .unwrap_or_default()
}

/// Decompresses one snappy block.
pub fn decompress(bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
    snap::raw::Decoder::new()
        .decompress_vec(bytes)
        .map_err(DecodeError::Snappy)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::labels::{STALE_NAN_BITS, stale_marker};
    use proptest::prelude::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_known_request_encodes_to_the_bytes_worked_out_by_hand() {
        let request = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: Labels::new([("job", "a"), ("__name__", "up")]).unwrap(),
                samples: vec![(1000, 1.0)],
            }],
        };
        // Worked out from prompb's field numbers:
        //   Label{name:"__name__",value:"up"} = 0a 08 "__name__" 12 02 "up"          (14 bytes)
        //   Label{name:"job",value:"a"}       = 0a 03 "job" 12 01 "a"                 (8 bytes)
        //   Sample{value:1.0,timestamp:1000}  = 09 000000000000f03f 10 e807          (12 bytes)
        //   TimeSeries = 0a 0e <label> 0a 08 <label> 12 0c <sample>                   (40 bytes)
        //   WriteRequest = 0a 28 <series>                                             (42 bytes)
        let expected = concat!(
            "0a28",
            "0a0e",
            "0a085f5f6e616d655f5f", // name "__name__"
            "12027570",             // value "up"
            "0a08",
            "0a036a6f62", // name "job"
            "120161",     // value "a"
            "120c",
            "09000000000000f03f", // value 1.0
            "10e807",             // timestamp 1000
        );
        let encoded = request.encode();
        assert_eq!(hex(&encoded), expected);
        assert_eq!(encoded.len(), 42);
        assert_eq!(WriteRequest::decode(&encoded).unwrap(), request);
    }

    #[test]
    fn negative_timestamps_take_ten_bytes_and_the_stale_marker_keeps_its_bits() {
        let request = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: Labels::new([("__name__", "x")]).unwrap(),
                samples: vec![(-1, stale_marker())],
            }],
        };
        let encoded = request.encode();
        let sample = &encoded[encoded.len() - 20..];
        // 09 <value, little-endian> 10 <int64 -1 as a ten-byte varint>
        assert_eq!(hex(sample), "09020000000000f07f10ffffffffffffffffff01");
        let decoded = WriteRequest::from_body(&request.to_body()).unwrap();
        let (timestamp, value) = decoded.timeseries[0].samples[0];
        assert_eq!(timestamp, -1);
        assert_eq!(value.to_bits(), STALE_NAN_BITS);
    }

    #[test]
    fn bodies_are_snappy_blocks_not_frames() {
        let body = compress(b"hello hello hello hello");
        // A framed stream starts with the stream identifier chunk 0xff 06 00 00 "sNaPpY".
        assert_ne!(body[0], 0xff);
        // A block starts with the uncompressed length as a varint.
        assert_eq!(body[0], 23);
        assert_eq!(decompress(&body).unwrap(), b"hello hello hello hello");
    }

    proptest! {
        #[test]
        fn any_request_round_trips(
            series in proptest::collection::vec(
                (
                    proptest::collection::btree_map("[a-z_]{1,8}", "\\PC{1,8}", 0..5),
                    proptest::collection::vec((any::<i64>(), any::<u64>()), 0..5),
                ),
                0..5,
            )
        ) {
            let request = WriteRequest {
                timeseries: series
                    .into_iter()
                    .map(|(labels, samples)| TimeSeries {
                        labels: Labels::new(labels).unwrap(),
                        samples: samples.into_iter().map(|(t, v)| (t, f64::from_bits(v))).collect(),
                    })
                    .collect(),
            };
            let decoded = WriteRequest::from_body(&request.to_body()).unwrap();
            prop_assert_eq!(decoded.timeseries.len(), request.timeseries.len());
            for (a, b) in decoded.timeseries.iter().zip(&request.timeseries) {
                prop_assert_eq!(&a.labels, &b.labels);
                let bits = |s: &TimeSeries| s.samples.iter().map(|(t, v)| (*t, v.to_bits())).collect::<Vec<_>>();
                prop_assert_eq!(bits(a), bits(b));
            }
        }

        #[test]
        fn any_bytes_decode_to_a_value_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = WriteRequest::decode(&bytes);
            let _ = WriteRequest::from_body(&bytes);
        }
    }
}
