//! Text put into the status pages the servers answer on `/`.

/// `text` with the characters HTML gives meaning to (`&`, `<`, `>`, `"`) escaped, for element
/// content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_in_labels_and_errors_stays_text() {
        assert_eq!(
            super::escape(r#"<a href="x">&</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
