//! The `--format` template of `sluice consume`.
//!
//! `%k` key, `%v` value, `%K` and `%V` their lengths in bytes (-1 for a
//! null key or value, which `%k` and `%v` print as nothing, like an empty
//! one), `%h` headers (`name=value` pairs joined by `,`; a header with a
//! null value prints as its name alone), `%o` offset, `%p` partition, `%T`
//! timestamp (ms since the epoch), `%t` topic, `%%` a percent sign; `\n`,
//! `\t` and `\\` escapes. A newline ends each record unless the template
//! already ends with one.

use std::io::Write;

use sluice_client::ConsumerRecord;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Key,
    Value,
    KeyLength,
    ValueLength,
    Headers,
    Offset,
    Partition,
    Timestamp,
    Topic,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Format {
    pieces: Vec<Piece>,
}

impl Format {
    /// Parses a template; unknown `%` or `\` sequences are errors.
    pub(crate) fn parse(template: &str) -> Result<Format, String> {
        let mut pieces = Vec::new();
        let mut literal = Vec::new();
        let mut chars = template.chars();
        while let Some(c) = chars.next() {
            let field = match c {
                '%' => match chars.next() {
                    Some('k') => Piece::Key,
                    Some('v') => Piece::Value,
                    Some('K') => Piece::KeyLength,
                    Some('V') => Piece::ValueLength,
                    Some('h') => Piece::Headers,
                    Some('o') => Piece::Offset,
                    Some('p') => Piece::Partition,
                    Some('T') => Piece::Timestamp,
                    Some('t') => Piece::Topic,
                    Some('%') => {
                        literal.push(b'%');
                        continue;
                    }
                    Some(other) => return Err(format!("unknown placeholder %{other}")),
                    None => return Err("the format ends with a lone %".into()),
                },
                '\\' => {
                    let byte = match chars.next() {
                        Some('n') => b'\n',
                        Some('t') => b'\t',
                        Some('\\') => b'\\',
                        Some(other) => return Err(format!("unknown escape \\{other}")),
                        None => return Err("the format ends with a lone \\".into()),
                    };
                    literal.push(byte);
                    continue;
                }
                c => {
                    let mut buf = [0u8; 4];
                    literal.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    continue;
                }
            };
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            pieces.push(field);
        }
        if literal.last() != Some(&b'\n') {
            literal.push(b'\n');
        }
        pieces.push(Piece::Literal(literal));
        Ok(Format { pieces })
    }

    /// Writes one record.
    pub(crate) fn write(&self, out: &mut impl Write, r: &ConsumerRecord) -> std::io::Result<()> {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(bytes) => out.write_all(bytes)?,
                Piece::Key => out.write_all(r.key().unwrap_or_default())?,
                Piece::Value => out.write_all(r.value())?,
                Piece::KeyLength => write!(out, "{}", length(r.record.key.as_deref()))?,
                Piece::ValueLength => write!(out, "{}", length(r.record.value.as_deref()))?,
                Piece::Headers => {
                    // The record comes from a validated batch: its headers
                    // decode; should one not, the rest are left out.
                    for (i, (name, value)) in r.record.headers().map_while(Result::ok).enumerate() {
                        if i > 0 {
                            out.write_all(b",")?;
                        }
                        out.write_all(name.as_bytes())?;
                        if let Some(value) = value {
                            out.write_all(b"=")?;
                            out.write_all(&value)?;
                        }
                    }
                }
                Piece::Offset => write!(out, "{}", r.offset())?,
                Piece::Partition => write!(out, "{}", r.partition)?,
                Piece::Timestamp => write!(out, "{}", r.record.timestamp)?,
                Piece::Topic => out.write_all(r.topic.as_bytes())?,
            }
        }
        Ok(())
    }
}

/// A key's or value's length in bytes, -1 for null.
fn length(bytes: Option<&[u8]>) -> i64 {
    bytes.map_or(-1, |b| b.len() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_placeholders_escapes_and_adds_one_newline() {
        let f = Format::parse("%p:%o\\t%k=%v 100%%").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            f.pieces,
            vec![
                Piece::Partition,
                Piece::Literal(b":".to_vec()),
                Piece::Offset,
                Piece::Literal(b"\t".to_vec()),
                Piece::Key,
                Piece::Literal(b"=".to_vec()),
                Piece::Value,
                Piece::Literal(b" 100%\n".to_vec()),
            ]
        );
        let f = Format::parse("%v\\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.pieces, vec![Piece::Value, Piece::Literal(b"\n".to_vec())]);
        let f = Format::parse("%K %V %h").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            f.pieces,
            vec![
                Piece::KeyLength,
                Piece::Literal(b" ".to_vec()),
                Piece::ValueLength,
                Piece::Literal(b" ".to_vec()),
                Piece::Headers,
                Piece::Literal(b"\n".to_vec()),
            ]
        );
        let f = Format::parse("%T %t é").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.pieces.last(), Some(&Piece::Literal(" é\n".into())));
    }

    #[test]
    fn rejects_unknown_sequences() {
        for bad in ["%x", "%", "\\q", "a\\"] {
            assert!(Format::parse(bad).is_err(), "{bad}");
        }
    }
}
