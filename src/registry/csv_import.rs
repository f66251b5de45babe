//! The shared shape of a CSV import: check the header, check every row, and only
//! then write. A file with any bad row changes nothing.

use std::fmt;
use std::io::Read;

/// One bad row. The message names the column and the rule, never the value,
/// because a value may be a BSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the header must be exactly `{expected}`")]
    Header { expected: String },
    #[error("{} bad row(s); nothing was imported:\n{}", .0.len(), list(.0))]
    Rows(Vec<RowError>),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

impl From<diesel::result::Error> for ImportError {
    fn from(e: diesel::result::Error) -> Self {
        ImportError::Db(e.into())
    }
}

fn list(errors: &[RowError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} inserted, {} updated, {} unchanged",
            self.inserted, self.updated, self.unchanged
        )
    }
}

/// A row's fields by column name.
pub struct Row<'a> {
    record: &'a csv::StringRecord,
    headers: &'a [&'static str],
}

impl Row<'_> {
    /// The trimmed value of a column.
    pub fn get(&self, column: &str) -> &str {
        let i = self
            .headers
            .iter()
            .position(|h| *h == column)
            .expect("known column");
        self.record.get(i).unwrap_or("").trim()
    }
}

/// Counts lines as an editor shows them, for the line numbers of row errors. csv's
/// own count starts a record at the line break before it (the `\n` of a CRLF, a
/// blank line) and counts `\n` only, so it put every row of a CRLF file one line
/// early, the first on the header's line.
struct Lines<'a> {
    data: &'a [u8],
    at: usize,
    line: u64,
}

impl Lines<'_> {
    /// The line of the first byte at or after `byte` that is not a line break.
    /// Records come in file order, so the whole file is scanned once.
    fn of(&mut self, byte: u64) -> u64 {
        let mut end = usize::try_from(byte).map_or(self.data.len(), |b| b.min(self.data.len()));
        while matches!(self.data.get(end), Some(b'\r' | b'\n')) {
            end += 1;
        }
        for i in self.at..end {
            let b = self.data[i];
            if b == b'\n' || (b == b'\r' && self.data.get(i + 1) != Some(&b'\n')) {
                self.line += 1;
            }
        }
        self.at = self.at.max(end);
        self.line
    }
}

fn check_header(
    reader: &mut csv::Reader<&[u8]>,
    headers: &'static [&'static str],
) -> Result<(), ImportError> {
    let found: Vec<String> = match reader.headers() {
        Ok(h) => h
            .iter()
            .map(|s| s.trim().trim_start_matches('\u{feff}').to_string())
            .collect(),
        Err(_) => Vec::new(),
    };
    if found != headers {
        return Err(ImportError::Header {
            expected: headers.join(","),
        });
    }
    Ok(())
}

/// Reads every row with `parse`, collecting all errors with their line numbers.
pub fn parse_all<T>(
    mut input: impl Read,
    headers: &'static [&'static str],
    mut parse: impl FnMut(&Row) -> Result<T, String>,
) -> Result<Vec<T>, ImportError> {
    let mut data = Vec::new();
    input.read_to_end(&mut data)?;
    let mut lines = Lines {
        data: &data,
        at: 0,
        line: 1,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(data.as_slice());
    check_header(&mut reader, headers)?;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let position = match &record {
            Ok(r) => r.position(),
            Err(e) => e.position(),
        };
        let line = position.map_or(n as u64 + 2, |p| lines.of(p.byte()));
        match record {
            Err(_) => errors.push(RowError {
                line,
                message: "not readable as CSV UTF-8".into(),
            }),
            Ok(r) if r.len() != headers.len() => errors.push(RowError {
                line,
                message: format!("has {} fields, expected {}", r.len(), headers.len()),
            }),
            Ok(r) => {
                match parse(&Row {
                    record: &r,
                    headers,
                }) {
                    Ok(v) => rows.push(v),
                    Err(message) => errors.push(RowError { line, message }),
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(ImportError::Rows(errors))
    }
}

/// A Dutch school branch code: two digits, two letters, two digits (`12AB00`).
pub fn brin(raw: &str) -> Result<String, String> {
    let upper = raw.to_ascii_uppercase();
    let b = upper.as_bytes();
    let ok = b.len() == 6
        && b[..2].iter().all(u8::is_ascii_digit)
        && b[2..4].iter().all(u8::is_ascii_uppercase)
        && b[4..].iter().all(u8::is_ascii_digit);
    if ok {
        Ok(upper)
    } else {
        Err("school_brin must be 2 digits, 2 letters and 2 digits, like 12AB00".into())
    }
}

pub fn date(column: &str, raw: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| format!("{column} must be a date as YYYY-MM-DD"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brin_format() {
        assert_eq!(brin("12ab00").unwrap(), "12AB00");
        for bad in ["12AB0", "1AAB00", "12A100", "12AB0X", ""] {
            assert!(brin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn all_bad_rows_are_reported_with_line_numbers() {
        let csv = "a,b\n1,x\n2\n3,x\n4,y\n";
        let err = parse_all(csv.as_bytes(), &["a", "b"], |row| {
            if row.get("b") == "x" {
                Ok(())
            } else {
                Err("b must be x".into())
            }
        })
        .unwrap_err();
        let ImportError::Rows(rows) = err else {
            panic!()
        };
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), vec![3, 5]);
        let err = parse_all("x,y\n".as_bytes(), &["a", "b"], |_| Ok(())).unwrap_err();
        assert!(matches!(err, ImportError::Header { .. }));
    }

    /// Found by the `registry_csv` fuzz target: in a CRLF file every row was
    /// reported one line early, the first on the header's line.
    #[test]
    fn line_numbers_count_crlf_cr_and_blank_lines() {
        let bad_lines = |csv: &[u8]| {
            let err = parse_all(csv, &["a", "b"], |_| Err::<(), _>("bad".into())).unwrap_err();
            let ImportError::Rows(rows) = err else {
                panic!("{err}")
            };
            rows.iter().map(|r| r.line).collect::<Vec<_>>()
        };
        assert_eq!(bad_lines(b"a,b\n1,x\n2,x\n"), vec![2, 3]);
        assert_eq!(bad_lines(b"\xef\xbb\xbfa,b\r\n1,x\r\n2,x\r\n"), vec![2, 3]);
        assert_eq!(bad_lines(b"a,b\r1,x\r2,x\r"), vec![2, 3]);
        assert_eq!(bad_lines(b"a,b\r\n\r\n1,x\n\n\n2,x"), vec![3, 6]);
        assert_eq!(
            bad_lines(b"a,b\r\n\"1\r\n\",x\r\n2,\xff\r\n3"),
            vec![2, 4, 5]
        );
    }
}
