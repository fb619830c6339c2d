//! The statistics `compare` judges with: the Mann–Whitney U test (is one set of samples shifted
//! against the other?) and Holm's correction (many rows are tested at once; the chance that any of
//! them is flagged by noise stays under the family's α).

/// Two-sided p-value of the Mann–Whitney U test between `a` and `b`: the probability of a shift at
/// least this large if both came from one distribution. Normal approximation with tie and
/// continuity corrections; 1 when either side is empty or every value is equal.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let mut all: Vec<(f64, bool)> = a.iter().map(|x| (*x, true)).chain(b.iter().map(|x| (*x, false))).collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let (mut rank_a, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        let mean_rank = (i + j + 2) as f64 / 2.0;
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        rank_a += all[i..=j].iter().filter(|x| x.1).count() as f64 * mean_rank;
        i = j + 1;
    }
    let (n1f, n2f, nf) = (n1 as f64, n2 as f64, n as f64);
    let u = rank_a - n1f * (n1f + 1.0) / 2.0;
    let mean = n1f * n2f / 2.0;
    let var = n1f * n2f / 12.0 * ((nf + 1.0) - ties / (nf * (nf - 1.0)));
    if var <= 0.0 {
        return 1.0;
    }
    let z = ((u - mean).abs() - 0.5).max(0.0) / var.sqrt();
    (2.0 * normal_tail(z)).min(1.0)
}

/// P(Z > z) for a standard normal Z (erfc with a fractional error under 1.2e-7).
fn normal_tail(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06 + t * (0.278_868_07 + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    0.5 * if x >= 0.0 { erfc } else { 2.0 - erfc }
}

/// Holm's step-down correction: which of the p-values are significant with the chance of any
/// false finding among all of them at most `alpha`.
pub fn holm(p: &[f64], alpha: f64) -> Vec<bool> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|a, b| p[*a].total_cmp(&p[*b]));
    let m = p.len();
    let mut out = vec![false; m];
    for (i, idx) in order.into_iter().enumerate() {
        if p[idx] <= alpha / (m - i) as f64 {
            out[idx] = true;
        } else {
            break;
        }
    }
    out
}

/// The median (0 for none).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 { s[m] } else { (s[m - 1] + s[m]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::approx_constant)]
    fn mann_whitney_matches_reference_values() {
        // scipy.stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic"): 0.132919…
        let a = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30];
        let b = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29];
        let p = mann_whitney(&a, &b);
        assert!((p - 0.132_919).abs() < 1e-4, "{p}");
        let same: Vec<f64> = (0..30).map(f64::from).collect();
        assert!(mann_whitney(&same, &same) > 0.9);
        // scipy: 3.0199e-11 for 0..30 against 100..130.
        let shifted: Vec<f64> = same.iter().map(|x| x + 100.0).collect();
        let p = mann_whitney(&same, &shifted);
        assert!((p / 3.0199e-11 - 1.0).abs() < 0.01, "{p}");
        assert_eq!(mann_whitney(&[1.0; 5], &[1.0; 5]), 1.0, "all equal: nothing to tell");
        assert_eq!(mann_whitney(&[], &[1.0]), 1.0);
    }

    #[test]
    fn normal_tail_is_accurate() {
        assert!((normal_tail(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_tail(1.959_964) - 0.025).abs() < 1e-6);
        assert!((normal_tail(-1.959_964) - 0.975).abs() < 1e-6);
    }

    #[test]
    fn holm_steps_down() {
        assert_eq!(holm(&[0.01, 0.04, 0.03, 0.5], 0.05), vec![true, false, false, false]);
        assert_eq!(holm(&[0.001, 0.012, 0.02], 0.05), vec![true, true, true]);
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
    }
}
