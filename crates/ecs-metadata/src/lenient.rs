//! Lenient deserialisation straight from JSON text: a value of the wrong type, or a number
//! too large for an `f64`, reads as absent (and is skipped without being built), so one odd
//! field never costs a document, and no intermediate `serde_json::Value` tree is allocated on
//! every scrape.

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// Implements visitor methods that consume a value of an unwanted JSON type and read it as
/// the default: `absent_otherwise!(bool, str, seq, map)` for the types named (`bool`, `u64`,
/// `i64`, `f64`, `str`, `seq`, `map`); `null` always reads as the default.
macro_rules! absent_otherwise {
    ($($kind:ident),* $(,)?) => {
        $(absent_otherwise!(@one $kind);)*
        fn visit_unit<E: ::serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_none<E: ::serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
    (@one seq) => {
        fn visit_seq<A: ::serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<::serde::de::IgnoredAny>()?.is_some() {}
            Ok(Default::default())
        }
    };
    (@one map) => {
        fn visit_map<A: ::serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<::serde::de::IgnoredAny, ::serde::de::IgnoredAny>()?.is_some() {}
            Ok(Default::default())
        }
    };
    (@one str) => {
        fn visit_str<E: ::serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
    (@one bool) => {
        fn visit_bool<E: ::serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
    (@one u64) => {
        fn visit_u64<E: ::serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
    (@one i64) => {
        fn visit_i64<E: ::serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
    (@one f64) => {
        fn visit_f64<E: ::serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
}

pub(crate) use absent_otherwise;

/// A JSON number as `f64`; anything else is `None`.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Num(pub Option<f64>);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(Some(v as f64)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(Some(v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                Ok(Num(Some(v)))
            }
            absent_otherwise!(bool, str, seq, map);
        }
        deserializer.deserialize_any(V)
    }
}

/// A JSON string; a number is written out (some producers send `Revision` as a number);
/// anything else is `""`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            absent_otherwise!(bool, seq, map);
        }
        deserializer.deserialize_any(V)
    }
}

/// An RFC 3339 timestamp string as seconds since the Unix epoch; anything else, or a
/// timestamp [`timestamps::parse_rfc3339`] rejects, is `None`.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Time(pub Option<f64>);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Time;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a timestamp")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Time, E> {
                Ok(Time(timestamps::parse_rfc3339(v)))
            }
            absent_otherwise!(bool, u64, i64, f64, seq, map);
        }
        deserializer.deserialize_any(V)
    }
}

/// A JSON object read as `T` (whose fields are lenient in turn); anything else is `None`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Obj<T>(pub Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Obj(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(|t| Obj(Some(t)))
            }
            absent_otherwise!(bool, u64, i64, f64, str, seq);
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

/// A JSON array whose object elements are read as `T`; other elements are skipped, and a
/// value that is not an array reads as `None`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct List<T>(pub Option<Vec<T>>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                let mut items = Vec::new();
                while let Some(Obj(item)) = seq.next_element::<Obj<T>>()? {
                    items.extend(item);
                }
                Ok(List(Some(items)))
            }
            absent_otherwise!(bool, u64, i64, f64, str, map);
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

/// A JSON object's entries whose values are objects, read as `T`, in document order; other
/// entries are skipped, and a value that is not an object reads as empty.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entries<T>(pub Vec<(String, T)>);

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Entries<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<T>, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, Obj(value))) = map.next_entry::<String, Obj<T>>()? {
                    if let Some(value) = value {
                        entries.push((key, value));
                    }
                }
                Ok(Entries(entries))
            }
            absent_otherwise!(bool, u64, i64, f64, str, seq);
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

/// A JSON object's entries whose values are strings, in document order; other entries are
/// skipped, and anything but an object reads as empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Strings(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Strings;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strings, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, StringOnly>()? {
                    if let Some(value) = value.0 {
                        entries.push((key, value));
                    }
                }
                Ok(Strings(entries))
            }
            absent_otherwise!(bool, u64, i64, f64, str, seq);
        }
        deserializer.deserialize_any(V)
    }
}

/// A JSON array's string elements; other elements are skipped, and anything but an array
/// reads as empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Texts(pub Vec<String>);

impl<'de> Deserialize<'de> for Texts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Texts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Texts, A::Error> {
                let mut items = Vec::new();
                while let Some(StringOnly(item)) = seq.next_element::<StringOnly>()? {
                    items.extend(item);
                }
                Ok(Texts(items))
            }
            absent_otherwise!(bool, u64, i64, f64, str, map);
        }
        deserializer.deserialize_any(V)
    }
}

/// A JSON string; anything else is `None`.
#[derive(Default)]
struct StringOnly(Option<String>);

impl<'de> Deserialize<'de> for StringOnly {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringOnly;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringOnly, E> {
                Ok(StringOnly(Some(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<StringOnly, E> {
                Ok(StringOnly(Some(v)))
            }
            absent_otherwise!(bool, u64, i64, f64, seq, map);
        }
        deserializer.deserialize_any(V)
    }
}

/// A whole document: one JSON object read as `T`, or an array whose object elements are
/// read as `T` (other elements skipped). Any other JSON value is an error.
pub(crate) struct OneOrMany<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object or an array of objects")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OneOrMany<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(|one| OneOrMany(vec![one]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany<T>, A::Error> {
                let mut items = Vec::new();
                while let Some(Obj(item)) = seq.next_element::<Obj<T>>()? {
                    items.extend(item);
                }
                Ok(OneOrMany(items))
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

/// Reads a whole document from JSON text. serde_json refuses a number too large for an `f64`
/// (`1e400`, or an integer of 400 digits) with an error for the whole text, before any visitor
/// above sees it; so when reading fails and the text holds such numbers, it is read once more
/// with each of them replaced by `null`, which every lenient type reads as absent. A document
/// that is well-formed apart from such numbers costs nothing extra; the second reading's error,
/// if any, has the same line and column as in the original text.
pub(crate) fn read_document<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(body).or_else(|error| match nulled_out_of_range_numbers(body) {
        Some(text) => serde_json::from_slice(&text),
        None => Err(error),
    })
}

/// A copy of `body` with every well-formed JSON number outside string literals that serde_json
/// rejects as out of range overwritten by `null` padded with spaces to the number's length (such
/// a number is at least five bytes long, `1e309`), or `None` when there is none.
fn nulled_out_of_range_numbers(body: &[u8]) -> Option<Vec<u8>> {
    let mut text: Option<Vec<u8>> = None;
    let mut at = 0;
    while let Some(&byte) = body.get(at) {
        match byte {
            b'"' => at = after_string(body, at + 1),
            b'-' | b'0'..=b'9' => {
                let start = at;
                while body
                    .get(at)
                    .is_some_and(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                {
                    at += 1;
                }
                let number = &body[start..at];
                if number.len() > 4
                    && is_json_number(number)
                    && serde_json::from_slice::<f64>(number).is_err()
                {
                    let text = text.get_or_insert_with(|| body.to_vec());
                    text[start..at].fill(b' ');
                    text[start..start + 4].copy_from_slice(b"null");
                }
            }
            _ => at += 1,
        }
    }
    text
}

/// The index just past the string literal whose contents start at `at` (the end of `body` if
/// the literal is not closed).
fn after_string(body: &[u8], mut at: usize) -> usize {
    while let Some(&byte) = body.get(at) {
        match byte {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    body.len()
}

/// Whether `text` is exactly one number in JSON's grammar:
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(text: &[u8]) -> bool {
    fn digits(text: &[u8]) -> (usize, &[u8]) {
        let count = text.iter().take_while(|b| b.is_ascii_digit()).count();
        (count, &text[count..])
    }
    let rest = text.strip_prefix(b"-").unwrap_or(text);
    let rest = match rest.strip_prefix(b"0") {
        Some(rest) => rest,
        None => match digits(rest) {
            (0, _) => return false,
            (_, rest) => rest,
        },
    };
    let rest = match rest.strip_prefix(b".") {
        Some(fraction) => match digits(fraction) {
            (0, _) => return false,
            (_, rest) => rest,
        },
        None => rest,
    };
    let rest = match rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        Some(exponent) => {
            let exponent = exponent
                .strip_prefix(b"+")
                .or_else(|| exponent.strip_prefix(b"-"))
                .unwrap_or(exponent);
            match digits(exponent) {
                (0, _) => return false,
                (_, rest) => rest,
            }
        }
        None => rest,
    };
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Sample {
        n: Num,
        t: Text,
        at: Time,
        o: Obj<Inner>,
        l: List<Inner>,
        e: Entries<Inner>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Inner {
        x: Num,
    }

    fn read(text: &str) -> Sample {
        serde_json::from_str(text).expect("lenient types accept any JSON value")
    }

    #[test]
    fn reads_values_of_the_expected_type() {
        let s = read(
            r#"{"n": 18446744073709551615, "t": 7, "at": "1970-01-02T00:00:00Z",
            "o": {"x": -1}, "l": [{"x": 1}, 2, null, {"x": "no"}], "e": {"a": {"x": 3}, "b": null}, "other": [1]}"#,
        );
        assert_eq!(s.n, Num(Some(u64::MAX as f64)));
        assert_eq!(s.t, Text("7".into()));
        assert_eq!(s.at, Time(Some(86_400.0)));
        assert_eq!(s.o.0, Some(Inner { x: Num(Some(-1.0)) }));
        assert_eq!(
            s.l.0,
            Some(vec![Inner { x: Num(Some(1.0)) }, Inner { x: Num(None) }])
        );
        assert_eq!(s.e.0, vec![("a".to_owned(), Inner { x: Num(Some(3.0)) })]);
    }

    #[test]
    fn numbers_too_large_for_f64_read_as_absent_wherever_they_are() {
        let huge_integer = format!("-{}", "9".repeat(400));
        let text = format!(
            r#"{{"n": 1e400, "t": -1E+400, "o": {{"x": {huge_integer}}}, "l": [{{"x": 2e999999999999}}, {{"x": 4}}],
            "e": {{"a": {{"x": 1.5e308}}}}, "at": "1970-01-02T00:00:00Z", "skipped": [1e400, {{"y": 1e400}}]}}"#
        );
        let s: Sample = read_document(text.as_bytes()).expect("out-of-range numbers are absent");
        assert_eq!((s.n, s.t.0.as_str()), (Num(None), ""));
        assert_eq!(s.o.0, Some(Inner { x: Num(None) }));
        assert_eq!(
            s.l.0,
            Some(vec![Inner { x: Num(None) }, Inner { x: Num(Some(4.0)) }])
        );
        assert_eq!(
            s.e.0,
            vec![(
                "a".to_owned(),
                Inner {
                    x: Num(Some(1.5e308))
                }
            )]
        );
        assert_eq!(s.at, Time(Some(86_400.0)));
    }

    #[test]
    fn only_out_of_range_numbers_outside_strings_are_replaced() {
        let cases: [(&str, Option<&str>); 9] = [
            (r#"[1e400]"#, Some("[null ]")),
            (
                r#"{"a":-1e400,"b":1e308}"#,
                Some(r#"{"a":null  ,"b":1e308}"#),
            ),
            (r#"["1e400", "\"1e400"]"#, None),
            (r#"["\\", 1e400]"#, Some(r#"["\\", null ]"#)),
            ("[1e-400, 0e999999, 1.7976931348623157e308]", None),
            // Not JSON numbers: left for the parser to reject.
            ("[01e400]", None),
            ("[1.e400]", None),
            ("[1e400.5]", None),
            ("[--1e400]", None),
        ];
        for (text, expected) in cases {
            let replaced = nulled_out_of_range_numbers(text.as_bytes());
            assert_eq!(
                replaced
                    .as_deref()
                    .map(|t| std::str::from_utf8(t).expect("ASCII")),
                expected,
                "{text}"
            );
        }
    }

    #[test]
    fn text_that_is_not_json_stays_an_error_at_the_same_place() {
        for (text, nulled) in [
            ("[1e400, oops]", "[null , oops]"),
            ("{\"n\": 1e400", "{\"n\": null "),
            ("[01e400]", "[01e400]"),
        ] {
            let error = read_document::<Sample>(text.as_bytes()).expect_err("still not JSON");
            let expected = serde_json::from_str::<Sample>(nulled).expect_err("not JSON");
            assert_eq!(error.to_string(), expected.to_string(), "{text}");
        }
    }

    #[test]
    fn recognises_json_numbers() {
        for good in ["0", "-0", "12", "1.5", "-0.25e-3", "1E+9", "9e400"] {
            assert!(is_json_number(good.as_bytes()), "{good}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "1e", "1e+", "+1", "1.5.5", "1e5e5", "--1",
        ] {
            assert!(!is_json_number(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn reads_values_of_other_types_as_absent() {
        for value in [
            "null",
            "true",
            "\"s\"",
            "1.5e300",
            "[1, [2]]",
            "{\"deep\": 1}",
        ] {
            let text = format!(
                r#"{{"n": {value}, "t": {value}, "at": {value}, "o": {value}, "l": {value}, "e": {value}}}"#
            );
            let s: Sample = serde_json::from_str(&text).expect("never an error");
            assert!(s.at.0.is_none() && s.e.0.is_empty(), "{value}");
            assert_eq!(s.l.0.is_some(), value.starts_with('['), "{value}");
        }
    }
}
