//! The small dense linear algebra of the Cox fit, written as R's `survival`
//! writes it (`cholesky2.c`, `chsolve2.c`), so that rank decisions and
//! singular-matrix behaviour match R's: a generalised LDLᵀ Cholesky
//! decomposition whose pivots below `toler · max(diag)` are set to zero,
//! marking the column as redundant, and a solver that gives zero for those
//! columns. Matrices are p × p, row-major, symmetric.

/// In-place LDLᵀ of the symmetric matrix `a` (only the lower triangle is
/// read after the copy from the upper one): D on the diagonal, L strictly
/// below. Returns the rank. Pivots that are not finite or below
/// `toler · max |diag|` become 0.
pub(crate) fn cholesky2(a: &mut [f64], n: usize, toler: f64) -> usize {
    let mut eps: f64 = 0.0;
    for i in 0..n {
        eps = eps.max(a[i * n + i].abs());
        for j in (i + 1)..n {
            a[j * n + i] = a[i * n + j];
        }
    }
    let eps = if eps == 0.0 { toler } else { eps * toler };
    let mut rank = 0;
    for i in 0..n {
        let pivot = a[i * n + i];
        if !pivot.is_finite() || pivot < eps {
            a[i * n + i] = 0.0;
        } else {
            rank += 1;
            for j in (i + 1)..n {
                let temp = a[j * n + i] / pivot;
                a[j * n + i] = temp;
                a[j * n + j] -= temp * temp * pivot;
                for k in (j + 1)..n {
                    a[k * n + j] -= temp * a[k * n + i];
                }
            }
        }
    }
    rank
}

/// Solves A x = y in place, given the output of [`cholesky2`]; redundant
/// columns (zero pivots) get x = 0.
pub(crate) fn chsolve2(a: &[f64], n: usize, y: &mut [f64]) {
    for i in 0..n {
        let mut temp = y[i];
        for j in 0..i {
            temp -= y[j] * a[i * n + j];
        }
        y[i] = temp;
    }
    for i in (0..n).rev() {
        if a[i * n + i] == 0.0 {
            y[i] = 0.0;
        } else {
            let mut temp = y[i] / a[i * n + i];
            for j in (i + 1)..n {
                temp -= y[j] * a[j * n + i];
            }
            y[i] = temp;
        }
    }
}

/// The (generalised) inverse from the output of [`cholesky2`]: rows and
/// columns of redundant variables are zero.
pub(crate) fn chinv(a: &[f64], n: usize) -> Vec<f64> {
    let mut inv = vec![0.0; n * n];
    let mut e = vec![0.0; n];
    for j in 0..n {
        if a[j * n + j] == 0.0 {
            continue;
        }
        e.iter_mut().for_each(|v| *v = 0.0);
        e[j] = 1.0;
        chsolve2(a, n, &mut e);
        for i in 0..n {
            inv[i * n + j] = if a[i * n + i] == 0.0 { 0.0 } else { e[i] };
        }
    }
    // Symmetrise against rounding.
    for i in 0..n {
        for j in (i + 1)..n {
            let m = 0.5 * (inv[i * n + j] + inv[j * n + i]);
            inv[i * n + j] = m;
            inv[j * n + i] = m;
        }
    }
    inv
}

/// xᵀ A⁻¹ x for symmetric positive semi-definite A (generalised: redundant
/// directions are dropped), as R's `coxph.wtest`.
pub(crate) fn quad_form_inv(a: &[f64], n: usize, x: &[f64], toler: f64) -> f64 {
    let mut m = a.to_vec();
    cholesky2(&mut m, n, toler);
    let mut y = x.to_vec();
    chsolve2(&m, n, &mut y);
    y.iter().zip(x).map(|(a, b)| a * b).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_and_inverts_spd() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let mut m = a.to_vec();
        assert_eq!(cholesky2(&mut m, 3, 1e-12), 3);
        let inv = chinv(&m, 3);
        for i in 0..3 {
            for j in 0..3 {
                let s: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((s - if i == j { 1.0 } else { 0.0 }).abs() < 1e-14);
            }
        }
        let x = [1.0, -2.0, 0.5];
        let q = quad_form_inv(&a, 3, &x, 1e-12);
        let direct: f64 = (0..3)
            .map(|i| (0..3).map(|j| x[i] * inv[i * 3 + j] * x[j]).sum::<f64>())
            .sum();
        assert!((q - direct).abs() < 1e-13);
    }

    #[test]
    fn singular_column_is_dropped() {
        // Third column = first + second.
        let a = [2.0, 1.0, 3.0, 1.0, 2.0, 3.0, 3.0, 3.0, 6.0];
        let mut m = a.to_vec();
        assert_eq!(cholesky2(&mut m, 3, 1e-12), 2);
        assert_eq!(m[8], 0.0);
        let inv = chinv(&m, 3);
        assert_eq!(inv[2 * 3 + 2], 0.0);
    }
}
