//! Rows grouped into runs that render as one component each.

use std::rc::Rc;

use super::row::Row;

/// Messages per rendering chunk (see [`chunked`]).
pub const CHUNK: u64 = 50;

/// A run of rows that renders as one component, named by its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub id: u64,
    pub rows: Rc<[Row]>,
}

/// Groups rows into runs of up to [`CHUNK`] sequence numbers: a new message
/// changes only the last run, so the view compares a few dozen runs and
/// renders one, instead of comparing 2,000 rows. A line belongs to the run
/// of the message it follows; lines before any message form their own.
pub fn chunked(rows: Vec<Row>) -> Vec<Chunk> {
    let mut chunks: Vec<(u64, Vec<Row>)> = Vec::new();
    for row in rows {
        let id = match &row {
            Row::Message(message) => message.seq / CHUNK,
            Row::Divider { before } => before / CHUNK,
            Row::Line { key, .. } if key.at == u64::MAX => u64::MAX,
            Row::Line { key, .. } => key.at / CHUNK,
        };
        match chunks.last_mut() {
            Some((last, rows)) if *last == id => rows.push(row),
            _ => chunks.push((id, vec![row])),
        }
    }
    chunks.into_iter().map(|(id, rows)| Chunk { id, rows: rows.into() }).collect()
}
