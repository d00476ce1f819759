//! Building SQL text with numbered `$N` placeholders (`QueryBuilder<Any>` emits `?`, which
//! PostgreSQL refuses).

use std::fmt::Write;

/// Bind parameters one statement may carry: SQLite's `SQLITE_MAX_VARIABLE_NUMBER` (32766
/// since 3.32) and PostgreSQL's protocol limit (65535, a 16-bit count).
pub(crate) const SQLITE_MAX_BINDS: usize = 32_766;
pub(crate) const POSTGRES_MAX_BINDS: usize = 65_535;

/// How a statement's bind parameters are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// `$1, $2…`: what every query of the store uses; PostgreSQL requires it.
    Numbered,
    /// `?, ?…`, bound in order. For SQLite's big multi-row statements only: SQLite keeps
    /// named parameters (`$N` counts as a name) in a list it searches linearly, and sqlx
    /// looks each parameter's name up on every execution, so binding n `$N` parameters costs
    /// O(n²) (20 000 CDRs took 7 s in 500-row statements; anonymous `?` take 0.1 s).
    Anonymous,
}

/// `rows` groups of `cols` placeholders, numbered from `$1` (or anonymous):
/// `($1, $2), ($3, $4)` for 2 × 2.
pub(crate) fn values_placeholders(style: Style, rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 6);
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for col in 0..cols {
            if col > 0 {
                out.push_str(", ");
            }
            n += 1;
            match style {
                Style::Numbered => write!(out, "${n}").expect("writing to a String cannot fail"),
                Style::Anonymous => out.push('?'),
            }
        }
        out.push(')');
    }
    out
}

/// Rows per multi-row statement: as many as the bind limit allows, capped at `cap`.
pub(crate) fn rows_per_statement(max_binds: usize, cols: usize, cap: usize) -> usize {
    (max_binds / cols).clamp(1, cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_across_rows() {
        assert_eq!(values_placeholders(Style::Numbered, 1, 1), "($1)");
        assert_eq!(
            values_placeholders(Style::Numbered, 2, 3),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(values_placeholders(Style::Numbered, 0, 3), "");
        assert_eq!(
            values_placeholders(Style::Anonymous, 2, 2),
            "(?, ?), (?, ?)"
        );
    }

    #[test]
    fn chunks_respect_bind_limits() {
        for max in [SQLITE_MAX_BINDS, POSTGRES_MAX_BINDS] {
            for cols in [1, 7, 22, 100] {
                let rows = rows_per_statement(max, cols, 1000);
                assert!(rows * cols <= max, "{rows} × {cols} > {max}");
                assert!(rows >= 1);
            }
        }
        assert_eq!(rows_per_statement(SQLITE_MAX_BINDS, 22, 10_000), 1489);
        assert_eq!(rows_per_statement(POSTGRES_MAX_BINDS, 22, 10_000), 2978);
        assert_eq!(rows_per_statement(POSTGRES_MAX_BINDS, 22, 500), 500);
    }
}
