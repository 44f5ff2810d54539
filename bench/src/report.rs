//! The result table: one row per figure, real vs ours, the ratio, and the target.

use std::fmt::Write as _;

/// A measured value, or why there is none.
pub type Cell = Result<f64, String>;

/// What a figure should satisfy.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// No target; shown for context.
    None,
    /// ours/real must be at most this (CPU per request: 1/3).
    RatioAtMost(f64),
    /// ours/real must be at least this (throughput: 1.0).
    RatioAtLeast(f64),
    /// Ours alone must be at most this, in the row's unit.
    OursAtMost(f64),
}

/// One table row.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured, with unit.
    pub figure: String,
    /// The real director's value.
    pub real: Cell,
    /// Our value.
    pub ours: Cell,
    /// Digits after the decimal point.
    pub decimals: usize,
    /// Target.
    pub goal: Goal,
}

/// All rows, in the order they were measured.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Row>,
}

impl Table {
    /// Appends a row.
    pub fn push(
        &mut self,
        figure: impl Into<String>,
        real: Cell,
        ours: Cell,
        decimals: usize,
        goal: Goal,
    ) {
        self.rows.push(Row {
            figure: figure.into(),
            real,
            ours,
            decimals,
            goal,
        });
    }

    /// The table as Markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::from(
            "| figure | real | ours | ours/real | target |\n|---|---:|---:|---:|---|\n",
        );
        for r in &self.rows {
            let ratio = match (&r.real, &r.ours) {
                // Overheads can come out negative in noise; their ratio means nothing then.
                (Ok(a), Ok(b)) if *a > 0.0 && *b >= 0.0 => Some(b / a),
                _ => None,
            };
            let ratio_text = ratio.map_or("–".to_string(), |x| format!("{x:.2}×"));
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                r.figure,
                cell(&r.real, r.decimals),
                cell(&r.ours, r.decimals),
                ratio_text,
                verdict(r.goal, ratio, &r.ours)
            );
        }
        s
    }
}

fn cell(c: &Cell, decimals: usize) -> String {
    match c {
        Ok(v) => format!("{v:.decimals$}"),
        Err(why) => format!("n/a ({})", why.replace('|', "/").replace('\n', " ")),
    }
}

fn verdict(goal: Goal, ratio: Option<f64>, ours: &Cell) -> String {
    let mark = |ok: bool| if ok { "met" } else { "**missed**" };
    match goal {
        Goal::None => String::new(),
        Goal::RatioAtMost(x) => match ratio {
            Some(r) => format!("≤ {x:.2}×: {}", mark(r <= x)),
            None => format!("≤ {x:.2}×: not measured"),
        },
        Goal::RatioAtLeast(x) => match ratio {
            Some(r) => format!("≥ {x:.2}×: {}", mark(r >= x)),
            None => format!("≥ {x:.2}×: not measured"),
        },
        Goal::OursAtMost(x) => match ours {
            Ok(v) => format!("≤ {x}: {}", mark(*v <= x)),
            Err(_) => format!("≤ {x}: not measured"),
        },
    }
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn verdicts_and_cells() {
        let mut t = Table::default();
        t.push(
            "cpu µs/req",
            Ok(21.0),
            Ok(6.0),
            1,
            Goal::RatioAtMost(1.0 / 3.0),
        );
        t.push("req/s", Ok(100.0), Ok(90.0), 0, Goal::RatioAtLeast(1.0));
        t.push(
            "bytes/user",
            Ok(98.0),
            Err("no | admin".into()),
            1,
            Goal::OursAtMost(40.0),
        );
        let md = t.markdown();
        assert!(
            md.contains("| cpu µs/req | 21.0 | 6.0 | 0.29× | ≤ 0.33×: met |"),
            "{md}"
        );
        assert!(
            md.contains("| req/s | 100 | 90 | 0.90× | ≥ 1.00×: **missed** |"),
            "{md}"
        );
        assert!(
            md.contains("| n/a (no / admin) | – | ≤ 40: not measured |"),
            "{md}"
        );
    }
}
