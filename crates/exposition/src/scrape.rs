//! Reads a scraped body the way a scraper must: the Prometheus text format 0.0.4 or the
//! OpenMetrics 1.0 text format, chosen by the response's `Content-Type` as Prometheus chooses,
//! into samples (name, sorted labels, value, optional timestamp) and per-family metadata.
//!
//! A body is accepted or rejected as a whole: any error names its line and what is wrong, and
//! no samples are returned with it. Two verdict modes:
//!
//! - [`Strictness::Prometheus`] (the default) gives the verdict Prometheus 2.42 gives: every
//!   syntax error is rejected, but semantic rules of OpenMetrics that Prometheus does not check
//!   (negative counters, bucket order, metadata placement, clashing names, ...) are not.
//! - [`Strictness::Specification`] also applies those rules, as the OpenMetrics conformance
//!   suite expects, and for the text format rejects a repeated `# TYPE`/`# HELP` or a `# TYPE`
//!   that follows samples of its family.
//!
//! Where Prometheus' behaviour is odd but harmless it is kept in Prometheus mode so that a
//! target that works with Prometheus works here; the unit tests name each case.

use foldhash::{HashMap, HashSet, HashSetExt};
use std::fmt;

/// The `Content-Type` of the OpenMetrics 1.0 text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `Accept` header a scraper sends: OpenMetrics preferred, the text format as fallback
/// (the header Prometheus 2.42 sends).
pub const SCRAPE_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Which text format a body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format 0.0.4.
    Text,
    /// The OpenMetrics 1.0 text format.
    OpenMetrics,
}

impl Format {
    /// The format Prometheus reads a response with: OpenMetrics when the media type is
    /// `application/openmetrics-text` (any version), the text format for anything else,
    /// including an absent or malformed header.
    pub fn from_content_type(content_type: Option<&str>) -> Format {
        let Some(content_type) = content_type else {
            return Format::Text;
        };
        let mut parts = content_type.split(';');
        let media_type = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        // Go's mime.ParseMediaType fails on a parameter without '=', and Prometheus then
        // falls back to the text format.
        let parameters_valid = parts.all(|p| p.trim().is_empty() || p.contains('='));
        if media_type == "application/openmetrics-text" && parameters_valid {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// How strictly a body is judged; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strictness {
    /// The verdict of Prometheus 2.42.
    #[default]
    Prometheus,
    /// The verdict of the format's specification (OpenMetrics 1.0, text format 0.0.4).
    Specification,
}

/// The type of a metric family, as declared on its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyType {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `gaugehistogram` (OpenMetrics).
    GaugeHistogram,
    /// `summary`.
    Summary,
    /// `info` (OpenMetrics).
    Info,
    /// `stateset` (OpenMetrics).
    StateSet,
    /// `unknown` (OpenMetrics) or `untyped` (text format).
    Unknown,
}

impl FamilyType {
    fn from_openmetrics(text: &str) -> Option<FamilyType> {
        Some(match text {
            "counter" => FamilyType::Counter,
            "gauge" => FamilyType::Gauge,
            "histogram" => FamilyType::Histogram,
            "gaugehistogram" => FamilyType::GaugeHistogram,
            "summary" => FamilyType::Summary,
            "info" => FamilyType::Info,
            "stateset" => FamilyType::StateSet,
            "unknown" => FamilyType::Unknown,
            _ => return None,
        })
    }

    fn from_text(text: &str) -> Option<FamilyType> {
        Some(match text {
            "counter" => FamilyType::Counter,
            "gauge" => FamilyType::Gauge,
            "histogram" => FamilyType::Histogram,
            "summary" => FamilyType::Summary,
            "untyped" => FamilyType::Unknown,
            _ => return None,
        })
    }

    /// The suffixes of the sample names an OpenMetrics family of this type owns.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            FamilyType::Counter => &["_total", "_created"],
            FamilyType::Summary => &["", "_count", "_sum", "_created"],
            FamilyType::Histogram => &["_count", "_sum", "_bucket", "_created"],
            FamilyType::GaugeHistogram => &["_gcount", "_gsum", "_bucket"],
            FamilyType::Info => &["_info"],
            FamilyType::Gauge | FamilyType::StateSet | FamilyType::Unknown => &[""],
        }
    }
}

/// What the metadata lines say about one metric family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyMetadata {
    /// The family name as written on its metadata lines (without `_total`, `_bucket`, ...).
    pub name: String,
    /// From `# TYPE`.
    pub kind: Option<FamilyType>,
    /// From `# HELP`, unescaped.
    pub help: Option<String>,
    /// From `# UNIT` (OpenMetrics only).
    pub unit: Option<String>,
}

/// One scraped sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapedSample {
    /// The metric name, suffix included (`x_total`, `x_bucket`, `x_created`, ...).
    pub name: String,
    /// Label names and unescaped values, sorted by name, unique. A label written with an empty
    /// value is left out: Prometheus treats it as absent.
    pub labels: Vec<(String, String)>,
    /// The value; NaN and ±Inf included.
    pub value: f64,
    /// Milliseconds since the epoch, when the exposition gives one (OpenMetrics' fractional
    /// seconds are truncated to milliseconds as Prometheus does).
    pub timestamp_ms: Option<i64>,
}

impl ScrapedSample {
    /// The value of label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(label, _)| label.as_str().cmp(name))
            .ok()
            .map(|index| self.labels[index].1.as_str())
    }
}

/// A whole scraped body, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Scrape {
    /// The format it was read as.
    pub format: Format,
    /// Every sample, in the order written. Exemplars are read, checked and dropped.
    pub samples: Vec<ScrapedSample>,
    /// Every family that has a metadata line, in order of its first one.
    pub families: Vec<FamilyMetadata>,
}

impl Scrape {
    /// The metadata of the family a sample name belongs to: the family of that exact name,
    /// else of the name without a `_total`, `_created`, `_bucket`, `_count`, `_sum`, `_gcount`,
    /// `_gsum` or `_info` suffix.
    pub fn metadata(&self, sample_name: &str) -> Option<&FamilyMetadata> {
        let find = |name: &str| self.families.iter().find(|f| f.name == name);
        find(sample_name).or_else(|| {
            [
                "_total", "_created", "_bucket", "_count", "_sum", "_gcount", "_gsum", "_info",
            ]
            .iter()
            .filter_map(|suffix| sample_name.strip_suffix(suffix))
            .find_map(find)
        })
    }
}

/// Why a scraped body was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeError {
    /// The line, counted from 1.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ScrapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ScrapeError {}

/// Reads a scraped body in the format its `Content-Type` names (see
/// [`Format::from_content_type`]).
pub fn parse_scrape(
    body: &[u8],
    content_type: Option<&str>,
    strictness: Strictness,
) -> Result<Scrape, ScrapeError> {
    match Format::from_content_type(content_type) {
        Format::Text => parse_text(body, strictness),
        Format::OpenMetrics => parse_openmetrics(body, strictness),
    }
}

fn error(line: usize, reason: impl Into<String>) -> ScrapeError {
    ScrapeError {
        line,
        reason: reason.into(),
    }
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

fn is_label_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_label_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Length of the metric name at the start of `bytes` (0 when there is none).
fn metric_name_len(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(&b) if is_name_start(b) => {
            1 + bytes[1..].iter().take_while(|&&b| is_name_char(b)).count()
        }
        _ => 0,
    }
}

fn label_name_len(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(&b) if is_label_start(b) => {
            1 + bytes[1..].iter().take_while(|&&b| is_label_char(b)).count()
        }
        _ => 0,
    }
}

/// A float as Go's `strconv.ParseFloat` reads it, without the hexadecimal and underscore forms
/// Prometheus refuses: decimals with optional exponent, `Inf`/`Infinity` with optional sign and
/// `NaN`, case-insensitive. Finite text beyond the `f64` range is an error, as in Go.
pub(crate) fn parse_go_float(text: &str) -> Result<f64, String> {
    if text.contains(['p', 'P', '_']) {
        return Err(format!("unsupported character in float {text:?}"));
    }
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'+') => (false, &text[1..]),
        Some(b'-') => (true, &text[1..]),
        _ => (false, text),
    };
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Ok(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if text.eq_ignore_ascii_case("nan") {
        return Ok(f64::NAN);
    }
    let bytes = unsigned.as_bytes();
    let mantissa_len = bytes
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'.')
        .count();
    let mantissa = &bytes[..mantissa_len];
    let digits = mantissa.iter().filter(|b| b.is_ascii_digit()).count();
    let dots = mantissa_len - digits;
    let exponent = &bytes[mantissa_len..];
    let exponent_valid = match exponent {
        [] => true,
        [b'e' | b'E', rest @ ..] => {
            let rest = match rest {
                [b'+' | b'-', rest @ ..] => rest,
                rest => rest,
            };
            !rest.is_empty() && rest.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    };
    if digits == 0 || dots > 1 || !exponent_valid {
        return Err(format!("invalid number {text:?}"));
    }
    let value: f64 = text
        .parse()
        .map_err(|_| format!("invalid number {text:?}"))?;
    if value.is_infinite() {
        return Err(format!("number out of range {text:?}"));
    }
    Ok(value)
}

/// Reads a quoted label value starting after its opening quote, the way both lexers do:
/// `\` followed by any character but a newline is an escape; `newline_allowed` says whether a
/// raw newline may appear (the text format's lexer allows it, OpenMetrics' does not). Returns
/// the raw (still escaped) bytes and the length consumed including the closing quote.
fn scan_quoted(bytes: &[u8], newline_allowed: bool) -> Option<(&[u8], usize)> {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Some((&bytes[..i], i + 1)),
            b'\\' => {
                if bytes.get(i + 1).is_none_or(|&b| b == b'\n') {
                    return None;
                }
                i += 2;
            }
            b'\n' if !newline_allowed => return None,
            _ => i += 1,
        }
    }
    None
}

/// Replaces `\\`, `\n` and (with `quotes`) `\"` escapes; any other backslash is kept as
/// written, as Prometheus does.
fn unescape(raw: &str, quotes: bool) -> String {
    if !raw.contains('\\') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.clone().next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            _ => {
                out.push('\\');
                continue;
            }
        }
        chars.next();
    }
    out
}

/// Labels as written, to labels as stored: Prometheus drops labels with empty values, then
/// refuses a name given twice (the metric name counts as `__name__`); the rest are sorted.
/// The specification forbids a repeated name even with an empty value.
fn finish_labels(
    mut labels: Vec<(String, String)>,
    strictness: Strictness,
) -> Result<Vec<(String, String)>, String> {
    let has_duplicate = |labels: &[(String, String)]| -> Option<String> {
        let mut names: Vec<&str> = labels.iter().map(|(n, _)| n.as_str()).collect();
        names.push("__name__");
        names.sort_unstable();
        names
            .windows(2)
            .find(|w| w[0] == w[1])
            .map(|w| w[0].to_owned())
    };
    if strictness == Strictness::Specification
        && let Some(name) = has_duplicate(&labels)
    {
        return Err(format!("label name {name:?} is not unique"));
    }
    labels.retain(|(_, value)| !value.is_empty());
    if let Some(name) = has_duplicate(&labels) {
        return Err(format!("label name {name:?} is not unique"));
    }
    labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(labels)
}

fn utf8(bytes: &[u8], what: &str) -> Result<String, String> {
    utf8_str(bytes, what).map(str::to_owned)
}

/// [`utf8`] without the copy, for what is unescaped into a copy anyway.
fn utf8_str<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, String> {
    std::str::from_utf8(bytes).map_err(|_| format!("{what} is not valid UTF-8"))
}

/// Collects metadata lines into families (last line wins, as in Prometheus' metadata cache).
#[derive(Default)]
struct MetadataTable {
    families: Vec<FamilyMetadata>,
    index: HashMap<String, usize>,
}

impl MetadataTable {
    fn entry(&mut self, name: &str) -> &mut FamilyMetadata {
        let next = self.families.len();
        let index = *self.index.entry(name.to_owned()).or_insert(next);
        if index == next {
            self.families.push(FamilyMetadata {
                name: name.to_owned(),
                kind: None,
                help: None,
                unit: None,
            });
        }
        &mut self.families[index]
    }
}

// ---------------------------------------------------------------------------------------
// The text format 0.0.4
// ---------------------------------------------------------------------------------------

/// Reads a body in the Prometheus text format 0.0.4.
pub fn parse_text(body: &[u8], strictness: Strictness) -> Result<Scrape, ScrapeError> {
    let mut reader = TextReader {
        body,
        pos: 0,
        line: 1,
        strictness,
        samples: Vec::new(),
        metadata: MetadataTable::default(),
        typed: HashSet::new(),
        helped: HashSet::new(),
        sample_names: HashSet::new(),
    };
    reader.run()?;
    Ok(Scrape {
        format: Format::Text,
        samples: reader.samples,
        families: reader.metadata.families,
    })
}

struct TextReader<'a> {
    body: &'a [u8],
    pos: usize,
    line: usize,
    strictness: Strictness,
    samples: Vec<ScrapedSample>,
    metadata: MetadataTable,
    typed: HashSet<String>,
    helped: HashSet<String>,
    sample_names: HashSet<String>,
}

impl TextReader<'_> {
    fn peek(&self) -> Option<u8> {
        self.body.get(self.pos).copied()
    }

    fn rest(&self) -> &[u8] {
        &self.body[self.pos..]
    }

    fn skip_blanks(&mut self) -> usize {
        let n = self
            .rest()
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        self.pos += n;
        n
    }

    fn fail(&self, reason: impl Into<String>) -> ScrapeError {
        error(self.line, reason)
    }

    /// The rest of the current line (without its newline), consumed.
    fn take_line(&mut self) -> &[u8] {
        let rest = &self.body[self.pos..];
        let len = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// At a newline or the end of the body: consumes the newline.
    fn end_of_line(&mut self) -> bool {
        match self.peek() {
            None => true,
            Some(b'\n') => {
                self.pos += 1;
                self.line += 1;
                true
            }
            Some(_) => false,
        }
    }

    fn run(&mut self) -> Result<(), ScrapeError> {
        loop {
            let leading = self.skip_blanks();
            match self.peek() {
                None => return Ok(()),
                // Prometheus' lexer reads a NUL byte at the start of a token as the end of
                // the body; the specification knows no such thing.
                Some(0) if self.strictness == Strictness::Prometheus => return Ok(()),
                Some(b'\n') => {
                    self.end_of_line();
                }
                Some(b'#') => {
                    self.pos += 1;
                    self.comment_or_metadata()?;
                }
                Some(b) if is_name_start(b) => {
                    if leading > 0 {
                        return Err(self.fail("whitespace before a metric name"));
                    }
                    self.sample()?;
                }
                Some(b) => {
                    return Err(self.fail(format!("a line cannot start with {:?}", char::from(b))));
                }
            }
        }
    }

    fn comment_or_metadata(&mut self) -> Result<(), ScrapeError> {
        if self.skip_blanks() == 0 {
            self.take_line();
            self.end_of_line();
            return Ok(());
        }
        let keyword = match self.rest() {
            [b'H', b'E', b'L', b'P', b' ' | b'\t', ..] => "HELP",
            [b'T', b'Y', b'P', b'E', b' ' | b'\t', ..] => "TYPE",
            _ => {
                self.take_line();
                self.end_of_line();
                return Ok(());
            }
        };
        self.pos += 4;
        self.skip_blanks();
        let name_len = metric_name_len(self.rest());
        if name_len == 0 {
            return Err(self.fail(format!("expected a metric name after # {keyword}")));
        }
        // A metric name is ASCII by construction.
        let name = String::from_utf8_lossy(&self.rest()[..name_len]).into_owned();
        self.pos += name_len;
        let raw = self.take_line();
        // Prometheus drops the one character that separates the name from the text.
        let text: &[u8] = if raw.iter().all(|&b| b == b' ' || b == b'\t') || raw.len() <= 1 {
            &[]
        } else {
            &raw[1..]
        };
        let text = match utf8(text, "the help text") {
            Ok(text) => text,
            Err(_) if keyword == "TYPE" => {
                return Err(self.fail("invalid metric type (not UTF-8)"));
            }
            Err(reason) => return Err(self.fail(reason)),
        };
        let strict = self.strictness == Strictness::Specification;
        if keyword == "TYPE" {
            let kind = FamilyType::from_text(&text)
                .ok_or_else(|| self.fail(format!("invalid metric type {text:?}")))?;
            if strict {
                if !self.typed.insert(name.clone()) {
                    return Err(self.fail(format!("second TYPE line for {name}")));
                }
                let owned: &[&str] = match kind {
                    FamilyType::Histogram => &["", "_bucket", "_sum", "_count"],
                    FamilyType::Summary => &["", "_sum", "_count"],
                    _ => &[""],
                };
                if owned
                    .iter()
                    .any(|s| self.sample_names.contains(&format!("{name}{s}")))
                {
                    return Err(self.fail(format!("TYPE line for {name} after its samples")));
                }
            }
            self.metadata.entry(&name).kind = Some(kind);
        } else {
            if strict && !self.helped.insert(name.clone()) {
                return Err(self.fail(format!("second HELP line for {name}")));
            }
            self.metadata.entry(&name).help = Some(unescape(&text, false));
        }
        self.end_of_line();
        Ok(())
    }

    fn sample(&mut self) -> Result<(), ScrapeError> {
        let name_len = metric_name_len(self.rest());
        let name = String::from_utf8_lossy(&self.rest()[..name_len]).into_owned();
        self.pos += name_len;
        let start_line = self.line;
        self.skip_blanks();
        let mut labels = Vec::new();
        if self.peek() == Some(b'{') {
            self.pos += 1;
            self.labels(&mut labels)?;
            self.skip_blanks();
        }
        let value_len = self
            .rest()
            .iter()
            .take_while(|&&b| !matches!(b, b'{' | b' ' | b'\t' | b'\n'))
            .count();
        if value_len == 0 {
            return Err(self.fail("expected a value after the metric"));
        }
        // Borrowed, not copied: this runs for every sample of every scrape.
        let value = parse_go_float(&String::from_utf8_lossy(&self.rest()[..value_len]))
            .map_err(|reason| self.fail(reason))?;
        self.pos += value_len;
        self.skip_blanks();
        let mut timestamp_ms = None;
        if !self.end_of_line() {
            let digits = self
                .rest()
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == 0 {
                return Err(
                    self.fail("expected a timestamp (integer milliseconds) or the end of the line")
                );
            }
            let text = String::from_utf8_lossy(&self.rest()[..digits]).into_owned();
            timestamp_ms = Some(
                text.parse::<i64>()
                    .map_err(|_| self.fail(format!("timestamp {text} out of range")))?,
            );
            self.pos += digits;
            self.skip_blanks();
            if !self.end_of_line() {
                return Err(self.fail("unexpected text after the timestamp"));
            }
        }
        let labels =
            finish_labels(labels, self.strictness).map_err(|reason| error(start_line, reason))?;
        if self.strictness == Strictness::Specification {
            self.sample_names.insert(name.clone());
        }
        self.samples.push(ScrapedSample {
            name,
            labels,
            value,
            timestamp_ms,
        });
        Ok(())
    }

    /// Reads labels after `{` up to and including `}`. The text format's lexer skips blanks
    /// between tokens and needs no comma between two labels.
    fn labels(&mut self, labels: &mut Vec<(String, String)>) -> Result<(), ScrapeError> {
        loop {
            self.skip_blanks();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(());
            }
            let len = label_name_len(self.rest());
            if len == 0 {
                return Err(self.fail("expected a label name or '}'"));
            }
            let name = String::from_utf8_lossy(&self.rest()[..len]).into_owned();
            self.pos += len;
            self.skip_blanks();
            if self.peek() != Some(b'=') {
                return Err(self.fail(format!("expected '=' after label name {name}")));
            }
            self.pos += 1;
            self.skip_blanks();
            if self.peek() != Some(b'"') {
                return Err(self.fail(format!("expected a quoted value for label {name}")));
            }
            self.pos += 1;
            let (raw, consumed) = scan_quoted(self.rest(), true)
                .ok_or_else(|| self.fail(format!("unterminated value for label {name}")))?;
            let raw = utf8(raw, "a label value").map_err(|reason| self.fail(reason))?;
            self.line += raw.bytes().filter(|&b| b == b'\n').count();
            self.pos += consumed;
            labels.push((name, unescape(&raw, true)));
            self.skip_blanks();
            if self.peek() == Some(b',') {
                self.pos += 1;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// OpenMetrics 1.0
// ---------------------------------------------------------------------------------------

/// One exemplar, as far as the checks need it.
struct ExemplarInfo {
    label_chars: usize,
}

/// One sample line of an OpenMetrics body, as written.
struct OmSample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    timestamp: Option<f64>,
    exemplar: Option<ExemplarInfo>,
}

/// Reads a body in the OpenMetrics 1.0 text format.
pub fn parse_openmetrics(body: &[u8], strictness: Strictness) -> Result<Scrape, ScrapeError> {
    let mut samples = Vec::new();
    let mut metadata = MetadataTable::default();
    let mut rules = (strictness == Strictness::Specification).then(OmRules::default);
    let mut rest = body;
    let mut line = 0;
    loop {
        line += 1;
        if rest.is_empty() {
            return Err(error(line, "the body does not end with # EOF"));
        }
        let (text, terminated, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => (&rest[..end], true, &rest[end + 1..]),
            None => (rest, false, &rest[rest.len()..]),
        };
        if let Some(tail) = text.strip_prefix(b"# EOF") {
            if !tail.is_empty() || !after.is_empty() {
                return Err(error(line, "unexpected data after # EOF"));
            }
            if let Some(rules) = rules.as_mut() {
                rules.finish_family().map_err(|r| r.at(line))?;
            }
            return Ok(Scrape {
                format: Format::OpenMetrics,
                samples,
                families: metadata.families,
            });
        }
        if !terminated {
            return Err(error(line, "the body does not end with # EOF"));
        }
        rest = after;
        if text.first() == Some(&b'#') {
            let (keyword, name, value) = om_metadata(text).map_err(|r| error(line, r))?;
            let entry = metadata.entry(&name);
            match keyword {
                Keyword::Help => entry.help = Some(unescape(&value, true)),
                Keyword::Type => entry.kind = FamilyType::from_openmetrics(&value),
                Keyword::Unit => entry.unit = Some(value.clone()),
            }
            if let Some(rules) = rules.as_mut() {
                rules
                    .metadata(keyword, &name, &value)
                    .map_err(|r| r.at(line))?;
            }
            continue;
        }
        let sample = om_sample(text).map_err(|r| error(line, r))?;
        if let Some(rules) = rules.as_mut() {
            rules.sample(&sample, line).map_err(|r| r.at(line))?;
        }
        let labels = finish_labels(sample.labels, strictness).map_err(|r| error(line, r))?;
        samples.push(ScrapedSample {
            name: sample.name,
            labels,
            value: sample.value,
            // Go's int64(ts*1000): truncation toward zero (saturating here).
            timestamp_ms: sample.timestamp.map(|ts| (ts * 1000.0) as i64),
        });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    Help,
    Type,
    Unit,
}

/// `# HELP|TYPE|UNIT <name> <text>`: exactly one space each, as Prometheus' lexer wants.
fn om_metadata(line: &[u8]) -> Result<(Keyword, String, String), String> {
    let (keyword, rest) = if let Some(rest) = line.strip_prefix(b"# HELP ") {
        (Keyword::Help, rest)
    } else if let Some(rest) = line.strip_prefix(b"# TYPE ") {
        (Keyword::Type, rest)
    } else if let Some(rest) = line.strip_prefix(b"# UNIT ") {
        (Keyword::Unit, rest)
    } else {
        return Err(
            "only # HELP, # TYPE, # UNIT and # EOF lines may start with '#' (with one space)"
                .to_owned(),
        );
    };
    let word = match keyword {
        Keyword::Help => "HELP",
        Keyword::Type => "TYPE",
        Keyword::Unit => "UNIT",
    };
    let name_len = metric_name_len(rest);
    if name_len == 0 {
        return Err(format!("expected a metric name after # {word}"));
    }
    let name = String::from_utf8_lossy(&rest[..name_len]).into_owned();
    let text = rest[name_len..]
        .strip_prefix(b" ")
        .ok_or_else(|| format!("expected a space and text after # {word} {name}"))?;
    let text = utf8(text, &format!("the {word} text"))?;
    match keyword {
        Keyword::Type if FamilyType::from_openmetrics(&text).is_none() => {
            return Err(format!("invalid metric type {text:?}"));
        }
        Keyword::Unit if !text.is_empty() => {
            let matches = name
                .strip_suffix(text.as_str())
                .is_some_and(|head| head.ends_with('_'));
            if !matches {
                return Err(format!("unit {text:?} is not a suffix of metric {name:?}"));
            }
        }
        _ => {}
    }
    Ok((keyword, name, text))
}

/// Reads `{name="value",...}` (the `{` already consumed); no blanks, no trailing comma.
/// Returns the labels and the length consumed including `}`.
fn om_labels(bytes: &[u8]) -> Result<(Vec<(String, String)>, usize), String> {
    let mut labels = Vec::new();
    let mut i = 0;
    if bytes.first() == Some(&b'}') {
        return Ok((labels, 1));
    }
    loop {
        let len = label_name_len(&bytes[i..]);
        if len == 0 {
            return Err(if labels.is_empty() {
                "expected a label name or '}'".to_owned()
            } else {
                "expected a label name after ','".to_owned()
            });
        }
        let name = String::from_utf8_lossy(&bytes[i..i + len]).into_owned();
        i += len;
        if bytes.get(i) != Some(&b'=') {
            return Err(format!("expected '=' after label name {name}"));
        }
        i += 1;
        if bytes.get(i) != Some(&b'"') {
            return Err(format!("expected a quoted value for label {name}"));
        }
        i += 1;
        let (raw, consumed) = scan_quoted(&bytes[i..], false)
            .ok_or_else(|| format!("unterminated value for label {name}"))?;
        let raw = utf8_str(raw, "a label value")?;
        i += consumed;
        labels.push((name, unescape(raw, true)));
        match bytes.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Ok((labels, i + 1)),
            _ => return Err("expected ',' or '}' after a label".to_owned()),
        }
    }
}

/// The next space-separated token: a single space, then at least one non-space byte.
fn om_token(bytes: &[u8]) -> Option<(&[u8], usize)> {
    let rest = bytes.strip_prefix(b" ")?;
    let len = rest.iter().take_while(|&&b| b != b' ').count();
    (len > 0).then(|| (&rest[..len], len + 1))
}

fn om_float(token: &[u8]) -> Result<f64, String> {
    parse_go_float(&String::from_utf8_lossy(token))
}

fn om_sample(line: &[u8]) -> Result<OmSample, String> {
    let name_len = metric_name_len(line);
    if name_len == 0 {
        return Err(match line.first() {
            None => "blank lines are not allowed".to_owned(),
            Some(&b) => format!("a line cannot start with {:?}", char::from(b)),
        });
    }
    let name = String::from_utf8_lossy(&line[..name_len]).into_owned();
    let mut i = name_len;
    let mut labels = Vec::new();
    if line.get(i) == Some(&b'{') {
        let (read, consumed) = om_labels(&line[i + 1..])?;
        labels = read;
        i += 1 + consumed;
    }
    let (value, consumed) = om_token(&line[i..]).ok_or("expected a space and a value")?;
    let value = om_float(value)?;
    i += consumed;
    let mut timestamp = None;
    let mut exemplar = None;
    if i < line.len() {
        if line[i..].starts_with(b" # {") {
            exemplar = Some(om_exemplar(&name, &line[i + 4..])?);
        } else {
            let (token, consumed) =
                om_token(&line[i..]).ok_or("expected a space and a timestamp or exemplar")?;
            let ts = om_float(token)?;
            if !ts.is_finite() {
                return Err(format!("invalid timestamp {ts}"));
            }
            timestamp = Some(ts);
            i += consumed;
            if i < line.len() {
                if !line[i..].starts_with(b" # {") {
                    return Err(
                        "expected an exemplar or the end of the line after the timestamp"
                            .to_owned(),
                    );
                }
                exemplar = Some(om_exemplar(&name, &line[i + 4..])?);
            }
        }
    }
    Ok(OmSample {
        name,
        labels,
        value,
        timestamp,
        exemplar,
    })
}

/// Reads an exemplar after ` # {` to the end of the line; Prometheus only allows it on
/// `_total` and `_bucket` samples.
fn om_exemplar(name: &str, bytes: &[u8]) -> Result<ExemplarInfo, String> {
    if !(name.ends_with("_total") || name.ends_with("_bucket")) {
        return Err(format!("metric name {name} does not support exemplars"));
    }
    let (labels, mut i) = om_labels(bytes)?;
    let (value, consumed) =
        om_token(&bytes[i..]).ok_or("expected a space and a value after the exemplar labels")?;
    om_float(value)?;
    i += consumed;
    if i < bytes.len() {
        let (token, consumed) = om_token(&bytes[i..])
            .ok_or("expected a space and a timestamp after the exemplar value")?;
        let ts = om_float(token)?;
        if !ts.is_finite() {
            return Err(format!("invalid exemplar timestamp {ts}"));
        }
        i += consumed;
        if i < bytes.len() {
            return Err("unexpected text after the exemplar timestamp".to_owned());
        }
    }
    let label_chars = labels
        .iter()
        .map(|(n, v)| n.chars().count() + v.chars().count())
        .sum();
    Ok(ExemplarInfo { label_chars })
}

// ---------------------------------------------------------------------------------------
// OpenMetrics' semantic rules (Specification mode)
// ---------------------------------------------------------------------------------------

/// A label set as written (sorted in the rules' copies).
type LabelSet = Vec<(String, String)>;

/// A sample as the histogram checks need it.
struct SeenSample {
    line: usize,
    name: String,
    labels: LabelSet,
    value: f64,
    timestamp: Option<f64>,
}

/// The family being read and what has been seen of it.
#[derive(Default)]
struct OmFamily {
    name: String,
    kind: Option<FamilyType>,
    help: bool,
    unit: Option<String>,
    allowed: Vec<String>,
    samples: Vec<SeenSample>,
    group: Option<Vec<(String, String)>>,
    group_timestamp: Option<f64>,
    seen_groups: HashSet<Vec<(String, String)>>,
}

/// The rules of the OpenMetrics specification that a parser of its grammar alone does not
/// check, in the order of the reference implementation (the Python client's parser).
#[derive(Default)]
struct OmRules {
    family: Option<OmFamily>,
    seen_names: HashSet<String>,
}

impl OmRules {
    fn start(&mut self, name: &str) -> Result<(), RuleError> {
        self.finish_family()?;
        self.family = Some(OmFamily {
            name: name.to_owned(),
            allowed: vec![name.to_owned()],
            ..OmFamily::default()
        });
        Ok(())
    }

    fn metadata(&mut self, keyword: Keyword, name: &str, text: &str) -> Result<(), RuleError> {
        if self.family.as_ref().is_none_or(|f| f.name != name) {
            self.start(name)?;
        }
        let Some(family) = self.family.as_mut() else {
            return Ok(());
        };
        if !family.samples.is_empty() {
            return Err(format!("metadata for {name} after its samples").into());
        }
        match keyword {
            Keyword::Help => {
                if std::mem::replace(&mut family.help, true) {
                    return Err(format!("more than one HELP for {name}").into());
                }
            }
            Keyword::Type => {
                if family.kind.is_some() {
                    return Err(format!("more than one TYPE for {name}").into());
                }
                let kind = FamilyType::from_openmetrics(text)
                    .ok_or_else(|| format!("invalid metric type {text:?}"))?;
                family.kind = Some(kind);
                family.allowed = kind
                    .suffixes()
                    .iter()
                    .map(|s| format!("{name}{s}"))
                    .collect();
            }
            Keyword::Unit => {
                if family.unit.replace(text.to_owned()).is_some() {
                    return Err(format!("more than one UNIT for {name}").into());
                }
            }
        }
        Ok(())
    }

    fn sample(&mut self, sample: &OmSample, line: usize) -> Result<(), RuleError> {
        if self
            .family
            .as_ref()
            .is_none_or(|f| !f.allowed.contains(&sample.name))
        {
            self.start(&sample.name)?;
        }
        let Some(family) = self.family.as_mut() else {
            return Ok(());
        };
        let kind = family.kind.unwrap_or(FamilyType::Unknown);
        let name = family.name.as_str();
        let suffix = &sample.name[name.len()..];
        let mut labels = sample.labels.clone();
        labels.sort_unstable();
        if labels.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(format!("duplicate label name in {}", sample.name).into());
        }
        let label = |n: &str| labels.iter().find(|(l, _)| l == n).map(|(_, v)| v.as_str());
        let value = sample.value;

        if kind == FamilyType::StateSet && label(name).is_none() {
            return Err(format!("stateset sample without a {name:?} label").into());
        }
        if kind == FamilyType::StateSet && value != 0.0 && value != 1.0 {
            return Err("stateset samples can only have the values 0 and 1"
                .to_owned()
                .into());
        }
        if kind == FamilyType::Info && value != 1.0 {
            return Err("info samples can only have the value 1".to_owned().into());
        }
        if kind == FamilyType::Summary && suffix.is_empty() {
            let valid = label("quantile")
                .and_then(|q| parse_go_float(q).ok().map(|v| (q, v)))
                .is_some_and(|(q, v)| (0.0..=1.0).contains(&v) && canonical(q, v));
            if !valid {
                return Err(
                    "summary quantile sample needs a quantile label between 0 and 1".into(),
                );
            }
            if value < 0.0 {
                return Err(format!("quantile values of {name} cannot be negative").into());
            }
        }
        if matches!(kind, FamilyType::Histogram | FamilyType::GaugeHistogram) && suffix == "_bucket"
        {
            let valid = label("le")
                .and_then(|le| parse_go_float(le).ok().map(|v| (le, v)))
                .is_some_and(|(le, v)| !v.is_nan() && canonical(le, v));
            if !valid {
                return Err("histogram bucket needs a numeric le label"
                    .to_owned()
                    .into());
            }
        }
        let counter_like = !suffix.is_empty()
            && ["_total", "_sum", "_count", "_bucket", "_gcount", "_gsum"].contains(&suffix);
        if counter_like && value.is_nan() {
            return Err(format!("{} cannot be NaN", sample.name).into());
        }
        if counter_like && suffix != "_gsum" && value < 0.0 {
            return Err(format!("{} cannot be negative", sample.name).into());
        }
        if let Some(exemplar) = &sample.exemplar {
            let allowed = (matches!(kind, FamilyType::Histogram | FamilyType::GaugeHistogram)
                && suffix == "_bucket")
                || (kind == FamilyType::Counter && suffix == "_total");
            if !allowed {
                return Err("only histogram buckets and counter totals can have exemplars".into());
            }
            if exemplar.label_chars > 128 {
                return Err("exemplar labels exceed 128 characters".to_owned().into());
            }
        }

        let group: Vec<(String, String)> = match kind {
            FamilyType::Info => Vec::new(),
            FamilyType::Summary if suffix.is_empty() => without(&labels, "quantile"),
            FamilyType::StateSet => without(&labels, name),
            FamilyType::Histogram | FamilyType::GaugeHistogram if suffix == "_bucket" => {
                without(&labels, "le")
            }
            _ => labels.clone(),
        };
        if let Some(current) = &family.group {
            if *current != group && family.seen_groups.contains(&group) {
                return Err(format!("samples of {name} are not grouped together").into());
            }
            if *current == group {
                if sample.timestamp.is_some() != family.group_timestamp.is_some() {
                    return Err("a group mixes samples with and without timestamps"
                        .to_owned()
                        .into());
                }
                if let (Some(previous), Some(ts)) = (family.group_timestamp, sample.timestamp)
                    && previous > ts
                    && kind != FamilyType::Info
                {
                    return Err("timestamps go backwards within a group".to_owned().into());
                }
            }
        }
        family.seen_groups.insert(group.clone());
        family.group = Some(group);
        family.group_timestamp = sample.timestamp;
        family.samples.push(SeenSample {
            line,
            name: sample.name.clone(),
            labels,
            value: sample.value,
            timestamp: sample.timestamp,
        });
        Ok(())
    }

    fn finish_family(&mut self) -> Result<(), RuleError> {
        let Some(family) = self.family.take() else {
            return Ok(());
        };
        let kind = family.kind.unwrap_or(FamilyType::Unknown);
        let mut claimed: Vec<&str> = kind.suffixes().to_vec();
        if !claimed.contains(&"") {
            claimed.push("");
        }
        for suffix in claimed {
            let name = format!("{}{suffix}", family.name);
            if !self.seen_names.insert(name.clone()) {
                return Err(format!("clashing name {name}").into());
            }
        }
        if family.unit.as_deref().is_some_and(|u| !u.is_empty())
            && matches!(kind, FamilyType::Info | FamilyType::StateSet)
        {
            return Err(format!("{} cannot have a unit", family.name).into());
        }
        if matches!(kind, FamilyType::Histogram | FamilyType::GaugeHistogram) {
            check_histogram(&family)?;
        }
        Ok(())
    }
}

/// Infinity must be written `+Inf` or `-Inf` in a `le` or `quantile` label.
fn canonical(text: &str, value: f64) -> bool {
    !value.is_infinite() || text == "+Inf" || text == "-Inf"
}

fn without(labels: &[(String, String)], name: &str) -> Vec<(String, String)> {
    labels.iter().filter(|(n, _)| n != name).cloned().collect()
}

/// An OpenMetrics rule broken: what, and on which line when that is not the line being read
/// (a histogram is judged when its family ends).
struct RuleError {
    line: Option<usize>,
    reason: String,
}

impl From<String> for RuleError {
    fn from(reason: String) -> Self {
        RuleError { line: None, reason }
    }
}

impl From<&str> for RuleError {
    fn from(reason: &str) -> Self {
        RuleError::from(reason.to_owned())
    }
}

impl RuleError {
    fn at(self, line: usize) -> ScrapeError {
        error(self.line.unwrap_or(line), self.reason)
    }
}

/// Bucket order, the `+Inf` bucket, and the `_count`/`_sum` rules of each histogram group.
fn check_histogram(family: &OmFamily) -> Result<(), RuleError> {
    #[derive(Default)]
    struct Group {
        count: Option<f64>,
        bucket: Option<f64>,
        value: f64,
        negative_buckets: bool,
        sum: bool,
        gsum: bool,
        negative_gsum: bool,
    }
    let name = family.name.as_str();
    let check = |g: &Group, line: usize| -> Result<(), RuleError> {
        let at = |reason: String| RuleError {
            line: Some(line),
            reason,
        };
        if g.bucket != Some(f64::INFINITY) {
            return Err(at(format!("histogram {name} has no +Inf bucket")));
        }
        if g.count.is_some_and(|c| c != g.value) {
            return Err(at(format!(
                "the count of {name} does not match its +Inf bucket"
            )));
        }
        if g.sum && g.count.is_none() {
            return Err(at(format!("{name} has _sum without _count")));
        }
        if g.gsum && g.count.is_none() {
            return Err(at(format!("{name} has _gsum without _gcount")));
        }
        if !(g.sum || g.gsum) && g.count.is_some() {
            return Err(at(format!("{name} has a count without a sum")));
        }
        if g.negative_buckets && g.sum {
            return Err(at(format!("{name} has _sum with negative buckets")));
        }
        if !g.negative_buckets && g.negative_gsum {
            return Err(at(format!(
                "{name} has a negative _gsum without negative buckets"
            )));
        }
        Ok(())
    };
    let mut current: Option<(LabelSet, Option<f64>, Group)> = None;
    let mut last_line = 0;
    for SeenSample {
        line,
        name: sample_name,
        labels,
        value,
        timestamp,
    } in &family.samples
    {
        let suffix = &sample_name[name.len()..];
        if suffix.is_empty() {
            continue;
        }
        let key = if suffix == "_bucket" {
            without(labels, "le")
        } else {
            labels.clone()
        };
        let same = current
            .as_ref()
            .is_some_and(|(k, ts, _)| *k == key && *ts == *timestamp);
        if !same {
            if let Some((_, _, group)) = &current {
                check(group, last_line)?;
            }
            current = Some((key, *timestamp, Group::default()));
        }
        let Some((_, _, group)) = current.as_mut() else {
            continue;
        };
        match suffix {
            "_bucket" => {
                let le = labels
                    .iter()
                    .find(|(n, _)| n == "le")
                    .and_then(|(_, v)| parse_go_float(v).ok())
                    .unwrap_or(f64::NAN);
                if le < 0.0 {
                    group.negative_buckets = true;
                }
                let at = |reason: String| RuleError {
                    line: Some(*line),
                    reason,
                };
                if group.bucket.is_some_and(|b| le <= b) {
                    return Err(at(format!("buckets of {name} are out of order")));
                }
                if *value < group.value {
                    return Err(at(format!("bucket values of {name} decrease")));
                }
                group.bucket = Some(le);
                group.value = *value;
            }
            "_count" | "_gcount" => group.count = Some(*value),
            "_sum" => group.sum = true,
            "_gsum" => {
                group.gsum = true;
                if *value < 0.0 {
                    group.negative_gsum = true;
                }
            }
            _ => {}
        }
        last_line = *line;
    }
    if let Some((_, _, group)) = &current {
        check(group, last_line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Family, MetricType, encode};
    use proptest::prelude::*;

    const OM: Option<&str> = Some("application/openmetrics-text; version=1.0.0; charset=utf-8");
    const TEXT: Option<&str> = Some("text/plain; version=0.0.4");

    fn text(body: &str) -> Result<Scrape, ScrapeError> {
        parse_scrape(body.as_bytes(), TEXT, Strictness::Prometheus)
    }

    fn text_strict(body: &str) -> Result<Scrape, ScrapeError> {
        parse_scrape(body.as_bytes(), TEXT, Strictness::Specification)
    }

    fn om(body: &str) -> Result<Scrape, ScrapeError> {
        parse_scrape(body.as_bytes(), OM, Strictness::Prometheus)
    }

    fn om_strict(body: &str) -> Result<Scrape, ScrapeError> {
        parse_scrape(body.as_bytes(), OM, Strictness::Specification)
    }

    fn pairs(labels: &[(&str, &str)]) -> Vec<(String, String)> {
        labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn chooses_the_format_as_prometheus_does() {
        for (content_type, format) in [
            (None, Format::Text),
            (Some(""), Format::Text),
            (
                Some("text/plain; version=0.0.4; charset=utf-8"),
                Format::Text,
            ),
            (
                Some("application/openmetrics-text; version=1.0.0"),
                Format::OpenMetrics,
            ),
            (
                Some("Application/OpenMetrics-Text;version=0.0.1"),
                Format::OpenMetrics,
            ),
            (Some("application/openmetrics-text"), Format::OpenMetrics),
            // A malformed parameter makes Go's mime parser fail: Prometheus reads text.
            (Some("application/openmetrics-text; version"), Format::Text),
            (Some("application/json"), Format::Text),
        ] {
            assert_eq!(
                Format::from_content_type(content_type),
                format,
                "{content_type:?}"
            );
        }
        let scrape = parse_scrape(b"a 1\n", None, Strictness::Prometheus).expect("text");
        assert_eq!(scrape.format, Format::Text);
        // The same body is not OpenMetrics: it has no # EOF.
        let error = parse_scrape(b"a 1\n", OM, Strictness::Prometheus).expect_err("no EOF");
        assert_eq!(error.line, 2);
    }

    #[test]
    fn text_reads_samples_metadata_and_escapes() {
        let body = "# HELP a_total Counts \\\\ and \\n and \\\"this\\\".\n\
                    # TYPE a_total counter\n\
                    a_total{z=\"last\",path=\"q\\\"\\\\\\n\\t\"} 3 1700000000000\n\
                    # just a comment\n\
                    g NaN\n\
                    g{x=\"1\"} +Inf\n\
                    g{x=\"2\"} -Inf\n\
                    g{x=\"3\"} nan\n\
                    g{x=\"4\"} 1.5e3\n";
        let scrape = text(body).expect("valid");
        let samples = &scrape.samples;
        assert_eq!(samples.len(), 6);
        assert_eq!(samples[0].name, "a_total");
        // Sorted by name; the unknown escape \t is kept as written, as Prometheus does.
        assert_eq!(
            samples[0].labels,
            pairs(&[("path", "q\"\\\n\\t"), ("z", "last")])
        );
        assert_eq!(samples[0].value, 3.0);
        assert_eq!(samples[0].timestamp_ms, Some(1_700_000_000_000));
        assert!(samples[1].value.is_nan());
        assert_eq!(samples[1].timestamp_ms, None);
        assert_eq!(samples[2].value, f64::INFINITY);
        assert_eq!(samples[3].value, f64::NEG_INFINITY);
        assert!(samples[4].value.is_nan());
        assert_eq!(samples[5].value, 1500.0);
        let family = scrape.metadata("a_total").expect("metadata");
        assert_eq!(family.kind, Some(FamilyType::Counter));
        // HELP in the text format unescapes only \\ and \n.
        assert_eq!(
            family.help.as_deref(),
            Some("Counts \\ and \n and \\\"this\\\".")
        );
        assert_eq!(family.unit, None);
    }

    #[test]
    fn text_histogram_and_summary_families() {
        let body = "# TYPE h histogram\n\
                    h_bucket{le=\"0.5\"} 1\n\
                    h_bucket{le=\"+Inf\"} 3\n\
                    h_sum 4.5\n\
                    h_count 3\n\
                    # TYPE s summary\n\
                    s{quantile=\"0.99\"} 0.25\n\
                    s_sum 10\n\
                    s_count 7\n\
                    # TYPE u untyped\n\
                    u 1\n";
        for scrape in [text(body), text_strict(body)] {
            let scrape = scrape.expect("valid");
            let names: Vec<&str> = scrape.samples.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(
                names,
                [
                    "h_bucket", "h_bucket", "h_sum", "h_count", "s", "s_sum", "s_count", "u"
                ]
            );
            assert_eq!(scrape.samples[1].label("le"), Some("+Inf"));
            assert_eq!(scrape.samples[4].label("quantile"), Some("0.99"));
            let kind = |name| scrape.metadata(name).and_then(|f| f.kind);
            assert_eq!(kind("h_bucket"), Some(FamilyType::Histogram));
            assert_eq!(kind("h_count"), Some(FamilyType::Histogram));
            assert_eq!(kind("s_sum"), Some(FamilyType::Summary));
            assert_eq!(kind("u"), Some(FamilyType::Unknown));
            assert_eq!(kind("other"), None);
        }
    }

    /// Each of these was served to a real Prometheus 2.42 with `Content-Type: text/plain;
    /// version=0.0.4` (scripts/record-openmetrics-verdicts.py --cases ... --content-type ...);
    /// the verdicts here are the ones it gave.
    #[test]
    fn text_gives_prometheus_2_42_verdicts_on_its_quirks() {
        for (body, accepted) in [
            ("a 1", true),                                     // no final newline
            ("a 1\n# c", true),                                // a comment as the last line
            ("a{b=\"1\" c=\"2\"} 1\n", true),                  // no comma between labels
            ("a{b=\"x\ny\"} 1\n", true),                       // a raw newline in a label value
            ("a 1\n\0garbage\n", true),                        // NUL ends the body
            ("a 1\n# TYPE a counter\n", true),                 // TYPE after samples
            ("# TYPE a counter\n# TYPE a gauge\na 1\n", true), // TYPE twice
            ("a{b=\"\",b=\"2\"} 1\n", true),                   // the empty one is dropped first
            ("# HELP a\na 1\n", true),                         // HELP without text
            ("# \u{ff}\na 1\n", true),                         // any comment
            ("# EOF\na 1\n", true),                            // # EOF is a comment here
            ("a\t1\n", true),
            ("a nan\n", true),
            ("  a 1\n", false), // whitespace before the name
            ("a{b=\"1\",b=\"2\"} 1\n", false),
            ("a{__name__=\"x\"} 1\n", false),
            ("a 1 1.5\n", false),
            ("a 1 -5\n", false),
            ("a 1 +5\n", false),
            ("# TYPE a counter \na 1\n", false),
            ("# TYPE a unknown\na 1\n", false),
            ("a 1\r\n", false),
            ("a 1e400\n", false),
            ("a 0x1p3\n", false),
            ("a +NaN\n", false),
            ("a{b:c=\"1\"} 1\n", false),
            ("a{b=\"\\xff\"} 1\n", true), // the escape is text, not a byte
        ] {
            assert_eq!(text(body).is_ok(), accepted, "{body:?}: {:?}", text(body));
        }
        let invalid_utf8 = parse_scrape(b"a{b=\"\xff\"} 1\n", TEXT, Strictness::Prometheus);
        assert!(invalid_utf8.is_err());
    }

    #[test]
    fn text_specification_mode_is_stricter_about_metadata_and_labels() {
        let after = text_strict("a 1\n# TYPE a counter\n").expect_err("TYPE after samples");
        assert_eq!(after.line, 2);
        assert!(after.reason.contains("after its samples"), "{after}");
        let after_bucket = text_strict("h_bucket{le=\"+Inf\"} 1\n# TYPE h histogram\n");
        assert_eq!(after_bucket.expect_err("TYPE after buckets").line, 2);
        assert_eq!(
            text_strict("# TYPE a counter\n# TYPE a gauge\na 1\n")
                .expect_err("two TYPE lines")
                .line,
            2
        );
        assert_eq!(
            text_strict("# HELP a x\n# HELP a y\n")
                .expect_err("two HELP")
                .line,
            2
        );
        assert!(text_strict("a{b=\"\",b=\"2\"} 1\n").is_err());
        assert!(text_strict("a 1\n\0garbage\n").is_err());
        // A TYPE for another family than the samples before it is fine.
        assert!(text_strict("a 1\n# TYPE b counter\nb 2\n").is_ok());
    }

    #[test]
    fn text_errors_name_the_line() {
        for (body, line) in [
            ("ok 1\nbad\n", 2),
            ("x{a=\"1\" 2\n", 1),
            ("x{a=1} 2\n", 1),
            ("x 1 2 3\n", 1),
            ("x one\n", 1),
            ("# c\n{a=\"1\"} 2\n", 2),
            ("a{b=\"x\ny\"} 1\nc{d=\"1\",d=\"2\"} 1\n", 3),
            ("a{b=\"1\",b=\"2\"} 1\n", 1),
            ("a 1\n# TYPE b meh\n", 2),
        ] {
            let error = text(body).expect_err(body);
            assert_eq!(error.line, line, "{body:?}: {error}");
        }
    }

    #[test]
    fn openmetrics_reads_samples_timestamps_metadata_and_ignores_exemplars() {
        let body = "# TYPE req_seconds counter\n\
                    # UNIT req_seconds seconds\n\
                    # HELP req_seconds Requests \\\"served\\\"\\n.\n\
                    req_seconds_total{path=\"/a\",empty=\"\"} 7 1.5 # {trace_id=\"abc\"} 1 1.25\n\
                    req_seconds_created{path=\"/a\"} 1700000000.123\n\
                    # TYPE t gauge\n\
                    t -1 -1.5\n\
                    t{x=\"y\"} NaN\n\
                    # EOF\n";
        for scrape in [om(body), om_strict(body)] {
            let scrape = scrape.expect("valid");
            assert_eq!(scrape.format, Format::OpenMetrics);
            let samples = &scrape.samples;
            assert_eq!(samples.len(), 4);
            // The exemplar leaves no trace; the empty label is dropped.
            assert_eq!(samples[0].name, "req_seconds_total");
            assert_eq!(samples[0].labels, pairs(&[("path", "/a")]));
            assert_eq!(samples[0].value, 7.0);
            assert_eq!(samples[0].timestamp_ms, Some(1500));
            // _created is a sample like any other (Prometheus 2.42 without created-timestamp
            // support stores it as a series).
            assert_eq!(samples[1].name, "req_seconds_created");
            assert_eq!(samples[1].value, 1_700_000_000.123);
            assert_eq!(samples[2].timestamp_ms, Some(-1500));
            assert!(samples[3].value.is_nan());
            let req = scrape
                .metadata("req_seconds_created")
                .expect("req metadata");
            assert_eq!(req.kind, Some(FamilyType::Counter));
            assert_eq!(req.help.as_deref(), Some("Requests \"served\"\n."));
            let unit = scrape.metadata("req_seconds").expect("unit metadata");
            assert_eq!(unit.unit.as_deref(), Some("seconds"));
        }
    }

    #[test]
    fn openmetrics_rejects_with_the_line_and_never_a_partial_result() {
        for (body, line, fragment) in [
            ("a 1\n", 2, "EOF"),
            ("a 1\nb 2", 2, "EOF"),
            ("a 1\n\n# EOF\n", 2, "blank"),
            ("a 1\n# EOF\nb 1\n", 2, "after # EOF"),
            ("a 1\n# comment\n# EOF\n", 2, "only # HELP"),
            ("a{b=\"1\", c=\"2\"} 1\n# EOF\n", 1, "label"),
            ("a{b=\"1\",} 1\n# EOF\n", 1, "label name"),
            ("a  1\n# EOF\n", 1, "value"),
            ("a 1 NaN\n# EOF\n", 1, "timestamp"),
            ("# TYPE a untyped\n# EOF\n", 1, "invalid metric type"),
            ("# UNIT a seconds\n# EOF\n", 1, "suffix"),
            ("a 1 # {b=\"c\"} 1\n# EOF\n", 1, "exemplars"),
            ("a{b=\"1\",b=\"2\"} 1\n# EOF\n", 1, "not unique"),
        ] {
            let error = om(body).expect_err(body);
            assert_eq!(error.line, line, "{body:?}: {error}");
            assert!(error.reason.contains(fragment), "{body:?}: {error}");
        }
    }

    #[test]
    fn openmetrics_specification_mode_checks_semantics_prometheus_does_not() {
        for (body, line, fragment) in [
            ("# TYPE a counter\na_total -1\n# EOF\n", 2, "negative"),
            ("# TYPE a counter\na_total NaN\n# EOF\n", 2, "NaN"),
            (
                "# TYPE a histogram\na_bucket{le=\"2\"} 0\na_bucket{le=\"1\"} 0\n# EOF\n",
                3,
                "order",
            ),
            (
                "# TYPE a gauge\na 1\n# HELP a x\n# EOF\n",
                3,
                "after its samples",
            ),
            (
                "# TYPE a gauge\n# TYPE b gauge\n# TYPE a gauge\n# EOF\n",
                4,
                "clashing",
            ),
            ("# TYPE a gauge\na 0 1\na 0 0\n# EOF\n", 3, "backwards"),
            ("# TYPE a histogram\na_sum 1\n# EOF\n", 2, "+Inf"),
        ] {
            assert!(om(body).is_ok(), "{body:?} is fine for Prometheus");
            let error = om_strict(body).expect_err(body);
            assert_eq!(error.line, line, "{body:?}: {error}");
            assert!(error.reason.contains(fragment), "{body:?}: {error}");
        }
    }

    #[test]
    fn go_float_spellings() {
        for (text, value) in [
            ("1", 1.0),
            ("-1.5e3", -1500.0),
            ("+.5", 0.5),
            ("5.", 5.0),
            ("1E-2", 0.01),
            ("Inf", f64::INFINITY),
            ("+inf", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("0001.2e-1", 0.12),
            ("1e-400", 0.0),
        ] {
            assert_eq!(parse_go_float(text), Ok(value), "{text}");
        }
        assert!(parse_go_float("NaN").is_ok_and(f64::is_nan));
        assert!(parse_go_float("nAn").is_ok_and(f64::is_nan));
        for bad in [
            "", "+", ".", "e5", "1e", "1e+", "1.2.3", "0x10", "1_000", "0x1p3", "-NaN", "infin",
            "1e400", "--1", "1 ", "١",
        ] {
            assert!(parse_go_float(bad).is_err(), "{bad:?}");
        }
    }

    /// Bodies assembled from the formats' own pieces reach deep into both parsers.
    fn token_soup() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just("# TYPE "),
            Just("# HELP "),
            Just("# UNIT "),
            Just("# EOF"),
            Just("# {"),
            Just("a"),
            Just("a_total"),
            Just("a_bucket"),
            Just("a_sum"),
            Just("a_count"),
            Just("a_gsum"),
            Just("a_created"),
            Just(" counter"),
            Just(" histogram"),
            Just(" gaugehistogram"),
            Just(" summary"),
            Just(" stateset"),
            Just(" info"),
            Just("{"),
            Just("}"),
            Just("le=\""),
            Just("quantile=\""),
            Just("a=\""),
            Just("\""),
            Just(","),
            Just(" "),
            Just("\t"),
            Just("\n"),
            Just("\\"),
            Just("0"),
            Just(" 1"),
            Just(" -1"),
            Just(" +Inf"),
            Just(" NaN"),
            Just(" 1.5e3"),
            Just("\0"),
            Just("é"),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat().into_bytes())
    }

    fn every_way(body: &[u8]) {
        for content_type in [TEXT, OM] {
            for strictness in [Strictness::Prometheus, Strictness::Specification] {
                if let Ok(scrape) = parse_scrape(body, content_type, strictness) {
                    for sample in &scrape.samples {
                        assert!(sample.labels.windows(2).all(|w| w[0].0 < w[1].0));
                        assert!(sample.labels.iter().all(|(_, v)| !v.is_empty()));
                    }
                }
            }
        }
    }

    /// Writes samples with the crate's encoder: one untyped family per sample (the encoder
    /// takes static names; leaking is fine in a test).
    fn reencode(samples: &[ScrapedSample]) -> String {
        let leak = |s: &str| -> &'static str { Box::leak(s.to_owned().into_boxed_str()) };
        let families: Vec<Family> = samples
            .iter()
            .map(|sample| {
                let mut family = Family::new(leak(&sample.name), "Re-encoded.", MetricType::Gauge);
                let labels = sample
                    .labels
                    .iter()
                    .map(|(n, v)| (leak(n), v.clone()))
                    .collect();
                family.push(labels, sample.value);
                family
            })
            .collect();
        let mut out = String::new();
        encode(&families, &mut out);
        out
    }

    fn same_samples(a: &[ScrapedSample], b: &[ScrapedSample]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.name == y.name
                    && x.labels == y.labels
                    && (x.value == y.value || (x.value.is_nan() && y.value.is_nan()))
            })
    }

    fn sample_line() -> impl Strategy<Value = (String, Vec<(String, String)>, f64)> {
        (
            "[a-zA-Z_:][a-zA-Z0-9_:]{0,8}",
            proptest::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,6}", ".{0,8}", 0..4),
            prop_oneof![
                any::<f64>(),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                Just(0.5)
            ],
        )
            .prop_filter("__name__ is the metric name", |(_, labels, _)| {
                !labels.contains_key("__name__")
            })
            .prop_map(|(name, labels, value)| (name, labels.into_iter().collect(), value))
    }

    fn write_line(name: &str, labels: &[(String, String)], value: f64, out: &mut String) {
        out.push_str(name);
        out.push('{');
        for (i, (n, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(n);
            out.push_str("=\"");
            out.push_str(
                &v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n"),
            );
            out.push('"');
        }
        out.push_str("} ");
        crate::write_value(value, out);
        out.push('\n');
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            every_way(&body);
        }

        #[test]
        fn pieces_of_the_formats_never_panic(body in token_soup()) {
            every_way(&body);
            let mut with_eof = body.clone();
            with_eof.extend_from_slice(b"\n# EOF\n");
            every_way(&with_eof);
        }

        /// parse, write with the crate's encoder, parse again: the same samples, whichever
        /// format the first body was in.
        #[test]
        fn parse_encode_parse_is_stable(lines in proptest::collection::vec(sample_line(), 0..8)) {
            let mut body = String::new();
            for (name, labels, value) in &lines {
                write_line(name, labels, *value, &mut body);
            }
            let first = text(&body).map_err(|e| TestCaseError::fail(format!("{body:?}: {e}")))?;
            let second_body = reencode(&first.samples);
            let second = text(&second_body).map_err(|e| TestCaseError::fail(format!("{second_body:?}: {e}")))?;
            prop_assert!(same_samples(&first.samples, &second.samples), "{body:?} -> {second_body:?}");

            body.push_str("# EOF\n");
            let from_om = om(&body).map_err(|e| TestCaseError::fail(format!("{body:?}: {e}")))?;
            prop_assert!(same_samples(&first.samples, &from_om.samples));
        }
    }
}
