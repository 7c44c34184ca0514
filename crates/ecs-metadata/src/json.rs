//! Lenient field access on `serde_json::Value`: a wrong type reads as absent.

use serde_json::{Map, Value};

/// A string field, or `""` when absent or not a string. Numbers are written out, because a
/// few producers send `Revision` as a number.
pub(crate) fn string(object: &Map<String, Value>, key: &str) -> String {
    match object.get(key) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        _ => String::new(),
    }
}

/// A numeric field as `f64`, or `None` when absent or not a number.
pub(crate) fn number(object: &Map<String, Value>, key: &str) -> Option<f64> {
    object.get(key).and_then(Value::as_f64)
}

/// An object field, or `None` when absent or not an object.
pub(crate) fn object<'a>(
    object: &'a Map<String, Value>,
    key: &str,
) -> Option<&'a Map<String, Value>> {
    object.get(key).and_then(Value::as_object)
}

/// The JSON type of a value, for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
