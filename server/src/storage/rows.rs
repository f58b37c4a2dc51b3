//! Multi-row inserts: rows are gathered per table and written with one statement per table
//! (per `MAX_PARAMETERS` bind parameters), which matters once a batch holds hundreds.

use std::collections::BTreeMap;

use sqlx::{Any, Transaction};

use super::{MAX_PARAMETERS, StorageError};

/// A value to bind.
pub enum Cell {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_owned())
    }
}

impl From<&String> for Cell {
    fn from(s: &String) -> Self {
        Cell::Text(s.clone())
    }
}

impl From<&Option<String>> for Cell {
    fn from(s: &Option<String>) -> Self {
        Cell::OptText(s.clone())
    }
}

impl From<i64> for Cell {
    fn from(i: i64) -> Self {
        Cell::Int(i)
    }
}

impl From<Option<i64>> for Cell {
    fn from(i: Option<i64>) -> Self {
        Cell::OptInt(i)
    }
}

/// Rows to insert, per table: (columns, rows).
#[derive(Default)]
pub struct Rows(BTreeMap<&'static str, (&'static [&'static str], Vec<Vec<Cell>>)>);

impl Rows {
    pub fn add(&mut self, table: &'static str, columns: &'static [&'static str], row: Vec<Cell>) {
        debug_assert_eq!(columns.len(), row.len());
        self.0.entry(table).or_insert_with(|| (columns, Vec::new())).1.push(row);
    }

    pub async fn insert(self, tx: &mut Transaction<'static, Any>) -> Result<(), StorageError> {
        for (table, (columns, rows)) in self.0 {
            for part in rows.chunks(MAX_PARAMETERS / columns.len()) {
                let placeholders: Vec<String> = (0..part.len())
                    .map(|r| {
                        let cells: Vec<String> =
                            (1..=columns.len()).map(|c| format!("${}", r * columns.len() + c)).collect();
                        format!("({})", cells.join(", "))
                    })
                    .collect();
                let sql = format!("INSERT INTO {table} ({}) VALUES {}", columns.join(", "), placeholders.join(", "));
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for row in part {
                    for cell in row {
                        query = match cell {
                            Cell::Text(s) => query.bind(s.clone()),
                            Cell::OptText(s) => query.bind(s.clone()),
                            Cell::Int(i) => query.bind(*i),
                            Cell::OptInt(i) => query.bind(*i),
                        };
                    }
                }
                query.execute(&mut **tx).await?;
            }
        }
        Ok(())
    }
}
