//! Statistics (`<<<`) and SystemTap's ASCII histograms.
//!
//! Each element keeps count, sum, min, max and the sum of squares (exact
//! variance), a log2 histogram in stap's 128-bucket numbering but stored
//! only over the range of buckets seen, and a linear histogram when the
//! array declared one (`stat_hist_linear`): the bounds of `@hist_linear` are
//! needed while adding, not only when printing.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use crate::fmt::{needed_space, push_i64};

/// Buckets of a log histogram (stap's `HIST_LOG_BUCKETS`).
pub const LOG_BUCKETS: usize = 128;
/// The bucket of value 0 (stap's `HIST_LOG_BUCKET0`).
pub const LOG_BUCKET0: usize = 64;
/// Most buckets of a linear histogram, under/overflow included (stap's
/// `STP_MAX_BUCKETS`).
pub const MAX_LINEAR_BUCKETS: i64 = 128;
/// Width of the bar area (stap's `HIST_WIDTH`).
pub const HIST_WIDTH: usize = 50;
/// Zero rows kept around data before eliding (stap's `HIST_ELISION`).
pub const HIST_ELISION: usize = 2;

/// The linear histogram declared for an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linear {
    /// Lowest value of the first regular bucket.
    pub start: i64,
    /// Upper bound as written in `@hist_linear`.
    pub stop: i64,
    /// Bucket width.
    pub interval: i64,
    /// Buckets including underflow and overflow.
    pub buckets: usize,
}

impl Linear {
    /// Validates `@hist_linear(start, stop, interval)` as stap does.
    pub fn new(start: i64, stop: i64, interval: i64) -> Result<Self, &'static str> {
        if interval <= 0 {
            return Err("histogram: interval must be positive");
        }
        let buckets = (stop.wrapping_sub(start)) / interval + 3;
        if !(3..=MAX_LINEAR_BUCKETS).contains(&buckets) {
            return Err("histogram: Number of buckets must be between 1 and 126");
        }
        Ok(Self {
            start,
            stop,
            interval,
            buckets: buckets as usize,
        })
    }

    fn bucket(&self, val: i64) -> usize {
        let v = val.wrapping_sub(self.start);
        let b = if v < 0 {
            0
        } else {
            (v as u64 / self.interval as u64).saturating_add(1)
        };
        b.min(self.buckets as u64 - 1) as usize
    }
}

/// stap's `_stp_val_to_bucket`.
pub fn log_bucket(val: i64) -> usize {
    if val == 0 {
        return LOG_BUCKET0;
    }
    let mag = val.unsigned_abs();
    let res = LOG_BUCKETS - mag.leading_zeros() as usize;
    if val < 0 { LOG_BUCKETS - res } else { res }
}

/// stap's `_stp_bucket_to_val`: the smallest value of a log bucket.
pub fn log_bucket_value(num: usize) -> i64 {
    if num == LOG_BUCKET0 {
        0
    } else if num < LOG_BUCKET0 {
        i64::MIN >> num
    } else {
        1i64 << (num - LOG_BUCKET0 - 1)
    }
}

/// One statistics element.
#[derive(Default)]
pub struct Stat {
    /// Values added.
    pub count: i64,
    /// Their sum (wrapping like stap's int64).
    pub sum: i64,
    /// Smallest value.
    pub min: i64,
    /// Largest value.
    pub max: i64,
    sumsq: i128,
    log_first: u8,
    log: Vec<u64>,
    linear: Option<Box<[u64]>>,
}

impl Stat {
    /// `<<< val`.
    #[inline]
    pub fn add(&mut self, val: i64, linear: Option<&Linear>) {
        if self.count == 0 {
            self.min = val;
            self.max = val;
        } else {
            self.min = self.min.min(val);
            self.max = self.max.max(val);
        }
        self.count += 1;
        self.sum = self.sum.wrapping_add(val);
        self.sumsq = self.sumsq.wrapping_add(val as i128 * val as i128);
        self.add_log(log_bucket(val));
        if let Some(l) = linear {
            let h = self
                .linear
                .get_or_insert_with(|| vec![0u64; l.buckets].into_boxed_slice());
            if let Some(c) = h.get_mut(l.bucket(val)) {
                *c += 1;
            }
        }
    }

    #[inline]
    fn add_log(&mut self, b: usize) {
        let first = self.log_first as usize;
        if !self.log.is_empty() && b >= first && b < first + self.log.len() {
            self.log[b - first] += 1;
            return;
        }
        if self.log.is_empty() {
            self.log_first = b as u8;
            self.log.push(1);
        } else if b < first {
            let grow = first - b;
            self.log.splice(0..0, core::iter::repeat_n(0, grow));
            self.log_first = b as u8;
            self.log[0] = 1;
        } else {
            self.log.resize(b - first + 1, 0);
            self.log[b - first] = 1;
        }
    }

    /// `@avg`: integer division truncating toward zero, as stap's.
    pub fn avg(&self) -> i64 {
        if self.count == 0 {
            0
        } else {
            self.sum.wrapping_div(self.count)
        }
    }

    /// `@variance`: the sample variance (n - 1 in the denominator), integer.
    pub fn variance(&self) -> i64 {
        if self.count < 2 {
            return 0;
        }
        let n = self.count as i128;
        let s = self.sum as i128;
        let num = n.wrapping_mul(self.sumsq).wrapping_sub(s.wrapping_mul(s));
        (num / (n * (n - 1))) as i64
    }

    /// The full 128-bucket log histogram.
    pub fn log_buckets(&self) -> [u64; LOG_BUCKETS] {
        let mut h = [0u64; LOG_BUCKETS];
        let first = self.log_first as usize;
        h[first..first + self.log.len()].copy_from_slice(&self.log);
        h
    }

    /// The linear histogram, if one was declared and values were added.
    pub fn linear_buckets(&self) -> Option<&[u64]> {
        self.linear.as_deref()
    }
}

/// Which histogram to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistKind<'a> {
    /// `@hist_log`.
    Log,
    /// `@hist_linear` with its declaration.
    Linear(&'a Linear),
}

fn pad_to(out: &mut Vec<u8>, width: usize, used: usize) {
    if width > used {
        out.resize(out.len() + (width - used), b' ');
    }
}

/// stap's `_stp_stat_print_histogram`, byte for byte.
pub fn print_histogram(out: &mut Vec<u8>, kind: HistKind<'_>, h: &[u64]) {
    let buckets = h.len();
    if buckets == 0 {
        return;
    }
    let mut low: isize = -1;
    let mut high: usize = 0;
    let mut valmax: u64 = 0;
    for (i, &c) in h.iter().enumerate() {
        if c > 0 {
            if low == -1 {
                low = i as isize;
            }
            high = i;
        }
        valmax = valmax.max(c);
    }
    let is_log = matches!(kind, HistKind::Log);
    for _ in 0..2 {
        if is_log {
            if low != LOG_BUCKET0 as isize && low > 0 {
                low -= 1;
            }
        } else if low > 0 {
            low -= 1;
        }
        if high < buckets - 1 {
            high += 1;
        }
    }
    let (mut under, mut over) = (0usize, 0usize);
    if !is_log {
        if low == 0 && h[0] == 0 {
            low += 1;
        }
        if high == buckets - 1 && h[high] == 0 {
            high -= 1;
        }
        if low == 0 {
            under = 1;
        }
        if high == buckets - 1 {
            over = 1;
        }
    }
    let low = low.max(0) as usize;
    let scale = if valmax <= HIST_WIDTH as u64 {
        1
    } else {
        valmax.div_ceil(HIST_WIDTH as u64)
    };
    let cnt_space = needed_space(valmax as i64);
    let val_space = match kind {
        HistKind::Linear(l) => (needed_space(l.start) + under)
            .max(needed_space(l.start.wrapping_add(l.interval.wrapping_mul(high as i64))) + over),
        HistKind::Log => {
            needed_space(log_bucket_value(high)).max(needed_space(log_bucket_value(low)))
        }
    }
    .max(5);

    pad_to(out, val_space, 5);
    out.extend_from_slice(b"value |");
    out.resize(out.len() + HIST_WIDTH, b'-');
    out.extend_from_slice(b" count\n");

    let mut eliding = false;
    for i in low..=high {
        let max_elide = HIST_ELISION.min(buckets);
        let min_b = low.max(i.saturating_sub(max_elide));
        let max_b = high.min(i + max_elide);
        if h[min_b..=max_b].iter().all(|&c| c == 0) {
            eliding = true;
            continue;
        }
        if eliding {
            pad_to(out, val_space, 0);
            out.extend_from_slice(b" ~\n");
            eliding = false;
        }
        let (val, prefix): (i64, &[u8]) = match kind {
            HistKind::Linear(l) => {
                if i == 0 {
                    (l.start, b"<")
                } else if i == buckets - 1 {
                    (
                        l.start
                            .wrapping_add((i as i64 - 2).wrapping_mul(l.interval)),
                        b">",
                    )
                } else {
                    (
                        l.start
                            .wrapping_add((i as i64 - 1).wrapping_mul(l.interval)),
                        b"",
                    )
                }
            }
            HistKind::Log => (log_bucket_value(i), b""),
        };
        let w = val_space.saturating_sub(needed_space(val));
        pad_to(out, w, prefix.len());
        out.extend_from_slice(prefix);
        push_i64(out, val);
        out.extend_from_slice(b" |");
        let v = (h[i] / scale) as usize;
        out.resize(out.len() + v, b'@');
        let w = (HIST_WIDTH + 1 + cnt_space).saturating_sub(v);
        pad_to(out, w, needed_space(h[i] as i64));
        push_i64(out, h[i] as i64);
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn stat(values: &[i64], linear: Option<&Linear>) -> Stat {
        let mut s = Stat::default();
        for &v in values {
            s.add(v, linear);
        }
        s
    }

    #[test]
    fn buckets_match_stap() {
        assert_eq!(log_bucket(0), 64);
        assert_eq!(log_bucket(1), 65);
        assert_eq!(log_bucket(2), 66);
        assert_eq!(log_bucket(3), 66);
        assert_eq!(log_bucket(4), 67);
        assert_eq!(log_bucket(-1), 63);
        assert_eq!(log_bucket(-3), 62);
        assert_eq!(log_bucket(i64::MAX), 127);
        assert_eq!(log_bucket(i64::MIN), 0);
        assert_eq!(log_bucket_value(65), 1);
        assert_eq!(log_bucket_value(67), 4);
        assert_eq!(log_bucket_value(63), -1);
        assert_eq!(log_bucket_value(62), -2);
    }

    #[test]
    fn aggregates() {
        let s = stat(&[1, 2, 3, 4, 10], None);
        assert_eq!((s.count, s.sum, s.min, s.max), (5, 20, 1, 10));
        assert_eq!(s.avg(), 4);
        // Sample variance of 1,2,3,4,10: mean 4, squares 9+4+1+0+36 = 50, /4.
        assert_eq!(s.variance(), 12);
        assert_eq!(stat(&[-7, 2], None).avg(), -2);
        assert_eq!(stat(&[5], None).variance(), 0);
        let h = stat(&[1, 100, -3], None).log_buckets();
        assert_eq!((h[65], h[71], h[62]), (1, 1, 1));
    }

    #[test]
    fn hist_log_golden() {
        // stap -e 'global x; probe begin { for (i = 0; i < 10; i++) x <<< i;
        //   x <<< 100; print(@hist_log(x)); exit() }'
        let mut vals: Vec<i64> = (0..10).collect();
        vals.push(100);
        let s = stat(&vals, None);
        let mut out = Vec::new();
        print_histogram(&mut out, HistKind::Log, &s.log_buckets());
        let expected = "\
value |-------------------------------------------------- count
    0 |@                                                  1
    1 |@                                                  1
    2 |@@                                                 2
    4 |@@@@                                               4
    8 |@@                                                 2
   16 |                                                   0
   32 |                                                   0
   64 |@                                                  1
  128 |                                                   0
  256 |                                                   0

";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn hist_log_elides_and_scales() {
        let mut vals = Vec::new();
        // 120 > HIST_WIDTH: bars scale by ceil(120 / 50) = 3.
        vals.extend(core::iter::repeat_n(1i64, 120));
        vals.push(1 << 20);
        let s = stat(&vals, None);
        let mut out = Vec::new();
        print_histogram(&mut out, HistKind::Log, &s.log_buckets());
        let expected = "  value |-------------------------------------------------- count
      0 |                                                     0
      1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@           120
      2 |                                                     0
      4 |                                                     0
        ~
 262144 |                                                     0
 524288 |                                                     0
1048576 |                                                     1
2097152 |                                                     0
4194304 |                                                     0

";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn hist_linear_golden() {
        // @hist_linear(x, 0, 100, 10) with values below, inside and above;
        // rows within two of a non-zero one (">100") are not elided.
        let l = Linear::new(0, 100, 10).unwrap();
        assert_eq!(l.buckets, 13);
        let s = stat(&[-5, 0, 5, 15, 15, 25, 250], Some(&l));
        let mut out = Vec::new();
        print_histogram(&mut out, HistKind::Linear(&l), s.linear_buckets().unwrap());
        let expected = "\
value |-------------------------------------------------- count
   <0 |@                                                  1
    0 |@@                                                 2
   10 |@@                                                 2
   20 |@                                                  1
   30 |                                                   0
   40 |                                                   0
      ~
   90 |                                                   0
  100 |                                                   0
 >100 |@                                                  1

";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn hist_linear_without_under_overflow() {
        let l = Linear::new(0, 50, 10).unwrap();
        let s = stat(&[20, 21, 22], Some(&l));
        let mut out = Vec::new();
        print_histogram(&mut out, HistKind::Linear(&l), s.linear_buckets().unwrap());
        let expected = "\
value |-------------------------------------------------- count
    0 |                                                   0
   10 |                                                   0
   20 |@@@                                                3
   30 |                                                   0
   40 |                                                   0

";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn linear_validation() {
        assert!(Linear::new(0, 100, 0).is_err());
        assert!(Linear::new(0, 10000, 1).is_err());
        assert!(Linear::new(0, 0, 1).is_ok());
    }
}
