//! Number formatting and a small aligned-table renderer shared by the text reports
//! ([`crate::summary_text`], [`crate::compare`]), so both print the same way.

pub(crate) use tessera_passes::lower::thousands;

/// Signed thousands: `+1,234`, `-56`, `0`.
pub(crate) fn signed(n: i128) -> String {
    let mag = thousands(n.unsigned_abs().min(u128::from(u64::MAX)) as u64);
    match n.signum() {
        1 => format!("+{mag}"),
        -1 => format!("-{mag}"),
        _ => mag,
    }
}

/// A fraction as a percentage with one decimal: `0.1234` → `12.3%`.
pub(crate) fn pct(f: f64) -> String {
    format!("{:.1}%", f * 100.0)
}

/// Seconds with a unit that keeps 3 significant decimals readable (`s`, `ms`, `µs`).
pub(crate) fn seconds(s: f64) -> String {
    let a = s.abs();
    if a >= 1.0 {
        format!("{s:.3} s")
    } else if a >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.3} µs", s * 1e6)
    }
}

/// Bytes in KiB/MiB/GiB with two decimals (plain bytes below 1 KiB).
pub(crate) fn bytes(b: f64) -> String {
    let a = b.abs();
    if a >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else if a >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", b / (1024.0 * 1024.0))
    } else if a >= 1024.0 {
        format!("{:.2} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

/// `b / a` as `×1.234`, or `-` when `a` is 0.
pub(crate) fn ratio(a: f64, b: f64) -> String {
    if a == 0.0 {
        if b == 0.0 {
            "×1.000".into()
        } else {
            "-".into()
        }
    } else {
        format!("×{:.3}", b / a)
    }
}

/// `s` cut to at most `max` characters (with `...` when cut).
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(3)).collect();
        out.push_str("...");
        out
    }
}

/// A text table: a header row and rows; column 0 left-aligned, the rest right-aligned
/// unless listed in `left`.
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    left: Vec<usize>,
}

impl Table {
    /// A table with these column headers.
    pub(crate) fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            left: vec![0],
        }
    }

    /// Left-aligns column `c` too.
    pub(crate) fn left(mut self, c: usize) -> Self {
        self.left.push(c);
        self
    }

    /// Adds a row.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Renders with two spaces between columns, a dashed rule under the header, each line
    /// indented by two spaces and without trailing spaces.
    pub(crate) fn render(&self) -> String {
        let cols = self.header.len();
        let mut w = vec![0usize; cols];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (c, cell) in r.iter().enumerate().take(cols) {
                w[c] = w[c].max(cell.chars().count());
            }
        }
        let line = |r: &[String]| {
            let mut s = String::from(" ");
            for (c, width) in w.iter().enumerate() {
                let cell = r.get(c).map(String::as_str).unwrap_or("");
                let pad = width.saturating_sub(cell.chars().count());
                s.push(' ');
                if self.left.contains(&c) {
                    s.push_str(cell);
                    s.push_str(&" ".repeat(pad));
                } else {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(cell);
                }
                s.push(' ');
            }
            s.trim_end().to_string() + "\n"
        };
        let mut out = line(&self.header);
        let rule: Vec<String> = w.iter().map(|&n| "-".repeat(n)).collect();
        out.push_str(&line(&rule));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(signed(-1000), "-1,000");
        assert_eq!(signed(12), "+12");
        assert_eq!(pct(0.12345), "12.3%");
        assert_eq!(seconds(0.0025), "2.500 ms");
        assert_eq!(bytes(638_976.0), "624.00 KiB");
        assert_eq!(ratio(2.0, 3.0), "×1.500");
        assert_eq!(clip("abcdefgh", 6), "abc...");
    }

    #[test]
    fn table_aligns() {
        let mut t = Table::new(&["name", "n"]);
        t.row(vec!["a".into(), "1".into()]);
        t.row(vec!["bbb".into(), "100".into()]);
        assert_eq!(
            t.render(),
            "  name    n\n  ----  ---\n  a       1\n  bbb   100\n"
        );
    }
}
