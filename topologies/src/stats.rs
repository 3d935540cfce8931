//! Summaries of repeated runs: the median and the range of one measure, as
//! the report prints them (one run on this machine moves by ±20%, so a
//! single figure is not an answer).

use serde::Serialize;

/// Median, smallest and largest of the finite values of a measure.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stat {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// How many finite values there were.
    pub n: usize,
}

impl Stat {
    /// The summary of `values`; non-finite values (a measure that did not
    /// happen) are left out; none left: every field NaN, `n` 0.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Stat {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Stat {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
                n: 0,
            };
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Stat {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        }
    }

    /// `1.23`, or `1.23 (1.10–1.40)` when the runs differ; `-` for nothing.
    pub fn show(&self, digits: usize) -> String {
        if self.n == 0 {
            return "-".into();
        }
        let m = format!("{:.digits$}", self.median);
        let (lo, hi) = (format!("{:.digits$}", self.min), format!("{:.digits$}", self.max));
        if self.n == 1 || lo == hi {
            m
        } else {
            format!("{m} ({lo}–{hi})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_ranges_and_missing_values() {
        let s = Stat::of([3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(s.show(1), "2.0 (1.0–3.0)");
        assert_eq!(Stat::of([4.0, 1.0, f64::NAN, 2.0, 3.0]).median, 2.5);
        assert_eq!(Stat::of([0.5]).show(2), "0.50");
        assert_eq!(Stat::of([0.501, 0.499]).show(2), "0.50");
        let none = Stat::of([f64::NAN]);
        assert_eq!((none.n, none.show(2)), (0, "-".to_string()));
        assert!(none.median.is_nan());
    }
}
