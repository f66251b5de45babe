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

/// Reads every row with `parse`, collecting all errors with their line numbers.
pub fn parse_all<T>(
    input: impl Read,
    headers: &'static [&'static str],
    mut parse: impl FnMut(&Row) -> Result<T, String>,
) -> Result<Vec<(u64, T)>, ImportError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
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
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let line = n as u64 + 2;
        match record {
            Err(_) => errors.push(RowError {
                line,
                message: "not readable as CSV UTF-8".into(),
            }),
            Ok(r) if r.len() != headers.len() => errors.push(RowError {
                line: r.position().map_or(line, |p| p.line()),
                message: format!("has {} fields, expected {}", r.len(), headers.len()),
            }),
            Ok(r) => {
                let line = r.position().map_or(line, |p| p.line());
                match parse(&Row {
                    record: &r,
                    headers,
                }) {
                    Ok(v) => rows.push((line, v)),
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
}
