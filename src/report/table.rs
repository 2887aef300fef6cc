//! Tables rendered as GitHub-flavoured Markdown and as aligned plain text.
//!
//! A [`Table`] is a list of typed [`Column`]s and rows of [`Cell`]s; every row has exactly one cell
//! per column (checked when added). Numbers are formatted by their column (fixed decimals), so a
//! column of measurements lines up on the decimal point when right-aligned. Widths are counted
//! in `char`s. Rendering is deterministic and never fails.

use super::num;
use crate::{Error, Result};

/// Horizontal alignment of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Flush left (text).
    Left,
    /// Flush right (numbers).
    Right,
    /// Centred; an odd leftover space goes to the right.
    Center,
}

/// A column: header, alignment and, for numbers, how many decimals to print.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Header text (with unit, e.g. "VRAM (MiB)").
    pub header: String,
    /// Alignment of header and cells.
    pub align: Align,
    /// Decimals for [`Cell::Num`] values in this column.
    pub decimals: usize,
}

impl Column {
    /// A left-aligned text column.
    pub fn text(header: impl Into<String>) -> Self {
        Column {
            header: header.into(),
            align: Align::Left,
            decimals: 0,
        }
    }

    /// A right-aligned number column printing `decimals` decimals.
    pub fn num(header: impl Into<String>, decimals: usize) -> Self {
        Column {
            header: header.into(),
            align: Align::Right,
            decimals,
        }
    }

    /// The same column with another alignment.
    pub fn align(mut self, align: Align) -> Self {
        self.align = align;
        self
    }
}

/// One table cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text, printed as is.
    Text(String),
    /// A number, printed with its column's decimals (`n/a` when not finite).
    Num(f64),
    /// An integer, printed without decimals.
    Int(i64),
    /// Nothing (an unmeasured value).
    Empty,
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_string())
    }
}
impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}
impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        Cell::Num(v)
    }
}
impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::Int(v)
    }
}
impl From<u32> for Cell {
    fn from(v: u32) -> Self {
        Cell::Int(i64::from(v))
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map_or(Cell::Empty, Into::into)
    }
}

/// Columns and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(columns: Vec<Column>) -> Self {
        Table {
            columns,
            rows: Vec::new(),
        }
    }

    /// Appends a row; it must have one cell per column.
    pub fn push(&mut self, row: Vec<Cell>) -> Result<()> {
        if row.len() != self.columns.len() {
            return Err(Error::Invalid(format!(
                "table row {} has {} cells for {} columns",
                self.rows.len(),
                row.len(),
                self.columns.len()
            )));
        }
        self.rows.push(row);
        Ok(())
    }

    /// Number of rows (without the header).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn cell_text(&self, col: usize, cell: &Cell) -> String {
        match cell {
            Cell::Text(s) => s.clone(),
            Cell::Num(v) => num::fixed(*v, self.columns[col].decimals),
            Cell::Int(v) => v.to_string(),
            Cell::Empty => String::new(),
        }
    }

    /// Header and rows as text, plus each column's width.
    fn texts(&self, escape: bool) -> (Vec<Vec<String>>, Vec<usize>) {
        let fix = |s: String| {
            if escape {
                s.replace('|', "\\|").replace('\n', " ")
            } else {
                s.replace('\n', " ")
            }
        };
        let mut lines = vec![self
            .columns
            .iter()
            .map(|c| fix(c.header.clone()))
            .collect::<Vec<_>>()];
        for row in &self.rows {
            lines.push(
                row.iter()
                    .enumerate()
                    .map(|(i, c)| fix(self.cell_text(i, c)))
                    .collect(),
            );
        }
        let widths = (0..self.columns.len())
            .map(|i| {
                lines
                    .iter()
                    .map(|l| l[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        (lines, widths)
    }

    /// GitHub-flavoured Markdown: padded cells, alignment row (`:--`, `--:`, `:-:`), `|` in
    /// cells escaped. Each line ends in `\n`.
    pub fn to_markdown(&self) -> String {
        let (lines, widths) = self.texts(true);
        let widths: Vec<usize> = widths.iter().map(|&w| w.max(3)).collect();
        let mut out = String::new();
        for (n, line) in lines.iter().enumerate() {
            out.push('|');
            for (i, text) in line.iter().enumerate() {
                out.push(' ');
                out.push_str(&aligned(text, widths[i], self.columns[i].align));
                out.push_str(" |");
            }
            out.push('\n');
            if n == 0 {
                out.push('|');
                for (i, c) in self.columns.iter().enumerate() {
                    let w = widths[i];
                    let rule = match c.align {
                        Align::Left => format!(":{}", "-".repeat(w - 1)),
                        Align::Right => format!("{}:", "-".repeat(w - 1)),
                        Align::Center => format!(":{}:", "-".repeat(w - 2)),
                    };
                    out.push(' ');
                    out.push_str(&rule);
                    out.push_str(" |");
                }
                out.push('\n');
            }
        }
        out
    }

    /// Plain text for a terminal: columns separated by two spaces, the header underlined with
    /// dashes, no trailing spaces. Each line ends in `\n`.
    pub fn to_text(&self) -> String {
        let (lines, widths) = self.texts(false);
        let mut out = String::new();
        let mut push_line = |cells: Vec<String>| {
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        };
        for (n, line) in lines.iter().enumerate() {
            push_line(
                line.iter()
                    .enumerate()
                    .map(|(i, t)| aligned(t, widths[i], self.columns[i].align))
                    .collect(),
            );
            if n == 0 {
                push_line(widths.iter().map(|&w| "-".repeat(w)).collect());
            }
        }
        out
    }
}

fn aligned(text: &str, width: usize, align: Align) -> String {
    let gap = width.saturating_sub(text.chars().count());
    match align {
        Align::Left => format!("{text}{}", " ".repeat(gap)),
        Align::Right => format!("{}{text}", " ".repeat(gap)),
        Align::Center => format!("{}{text}{}", " ".repeat(gap / 2), " ".repeat(gap - gap / 2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(vec![
            Column::text("variant"),
            Column::num("VRAM (MiB)", 1),
            Column::num("tg (t/s)", 2),
            Column::text("ok").align(Align::Center),
        ]);
        t.push(vec![
            "Q4_K_M".into(),
            105.26.into(),
            310.0.into(),
            "yes".into(),
        ])
        .unwrap();
        t.push(vec![
            "Q8|0".into(),
            1024.0.into(),
            f64::NAN.into(),
            Cell::Empty,
        ])
        .unwrap();
        t
    }

    #[test]
    fn markdown_is_aligned_and_escaped() {
        let want = "\
| variant | VRAM (MiB) | tg (t/s) | ok  |
| :------ | ---------: | -------: | :-: |
| Q4_K_M  |      105.3 |   310.00 | yes |
| Q8\\|0   |     1024.0 |      n/a |     |
";
        assert_eq!(sample().to_markdown(), want);
    }

    #[test]
    fn text_is_aligned_without_trailing_spaces() {
        let want = "\
variant  VRAM (MiB)  tg (t/s)  ok
-------  ----------  --------  ---
Q4_K_M        105.3    310.00  yes
Q8|0         1024.0       n/a
";
        assert_eq!(sample().to_text(), want);
    }

    #[test]
    fn rows_must_match_the_columns() {
        let mut t = Table::new(vec![Column::text("a"), Column::num("b", 0)]);
        let err = t.push(vec!["x".into()]).unwrap_err().to_string();
        assert_eq!(err, "table row 0 has 1 cells for 2 columns");
        assert!(t.is_empty());
        t.push(vec![Cell::Int(-3), Some(2.4).into()]).unwrap();
        assert_eq!(t.to_text(), "a   b\n--  -\n-3  2\n");
    }
}
