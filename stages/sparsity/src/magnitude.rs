//! Magnitude pruning masks: keep the largest `|w|`.
//!
//! Source read: `jaxpruner/mask_calculator.py::topk_mask_calculator` (google-research/jaxpruner at
//! f133ee5).
//!
//! - Sparsity 0 keeps every weight.
//! - Otherwise keep `max(1, round(N * (1 - s)))` weights, rounding half to even like `jnp.round`.
//!   JaxPruner computes this count in float32; we use float64, which can differ by one weight in
//!   exact half-way cases.
//! - Ties at the threshold are broken by lower flat index, as JaxPruner's stable `argsort` does.
//!   The flat index is the caller's memory layout (row-major over the shape it passes), which
//!   need not match Flax's; ties only matter between equal magnitudes, in practice the zeros of
//!   already-pruned weights.
//! - NaN magnitudes rank below every number, so a NaN weight is pruned first.

use serde::{Deserialize, Serialize};

/// A binary keep-mask over one parameter tensor, in its flat (row-major) order.
///
/// Serialized compactly (bit-packed) so that masks fit in checkpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "PackedMask", try_from = "PackedMask")]
pub struct Mask {
    keep: Vec<bool>,
}

impl Mask {
    /// A mask that keeps all `len` weights.
    pub fn dense(len: usize) -> Self {
        Mask {
            keep: vec![true; len],
        }
    }

    /// A mask from explicit keep flags.
    pub fn from_keep(keep: Vec<bool>) -> Self {
        Mask { keep }
    }

    /// The keep flags, one per weight.
    pub fn keep(&self) -> &[bool] {
        &self.keep
    }

    /// Number of weights covered.
    pub fn len(&self) -> usize {
        self.keep.len()
    }

    /// Whether the mask covers no weight.
    pub fn is_empty(&self) -> bool {
        self.keep.is_empty()
    }

    /// Number of pruned (masked-out) weights.
    pub fn zeros(&self) -> usize {
        self.keep.iter().filter(|&&k| !k).count()
    }

    /// Fraction of weights pruned.
    pub fn sparsity(&self) -> f64 {
        if self.keep.is_empty() {
            0.0
        } else {
            self.zeros() as f64 / self.keep.len() as f64
        }
    }

    /// Zeroes the pruned entries of `values` (weights, or gradients / Adam moments when masking
    /// those too). Panics if the lengths differ, since that is a wiring bug.
    pub fn apply(&self, values: &mut [f32]) {
        assert_eq!(
            values.len(),
            self.keep.len(),
            "mask covers {} weights but the tensor has {}",
            self.keep.len(),
            values.len()
        );
        for (v, &k) in values.iter_mut().zip(&self.keep) {
            *v = if k { *v } else { 0.0 };
        }
    }

    /// The mask as 1.0 / 0.0 multipliers, e.g. to upload as a device tensor.
    pub fn to_f32(&self) -> Vec<f32> {
        self.keep
            .iter()
            .map(|&k| if k { 1.0 } else { 0.0 })
            .collect()
    }
}

/// Number of weights a top-k mask keeps out of `len` at `sparsity`.
pub fn kept_count(len: usize, sparsity: f64) -> usize {
    if sparsity <= 0.0 {
        return len;
    }
    let ones = (len as f64 * (1.0 - sparsity)).round_ties_even();
    (ones.max(1.0) as usize).min(len)
}

/// The top-k magnitude mask of `weights` at `sparsity` (see the module docs for the exact rule).
pub fn topk_mask(weights: &[f32], sparsity: f64) -> Mask {
    let n = weights.len();
    let k = kept_count(n, sparsity);
    if k >= n {
        return Mask::dense(n);
    }
    // One u64 key per weight, larger = kept first: the bits of |w| (monotone in |w| for
    // non-negative floats; +1 so that NaN, mapped to 0, ranks below every number) above the
    // complemented index (lower index wins ties). Integer keys make the selection a plain
    // `select_nth_unstable` over a contiguous array.
    assert!(
        n <= u32::MAX as usize,
        "a layer of {n} weights exceeds the 2^32 index range"
    );
    let mut keys: Vec<u64> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let m = if w.is_nan() {
                0
            } else {
                w.abs().to_bits() as u64 + 1
            };
            (m << 32) | (u32::MAX - i as u32) as u64
        })
        .collect();
    keys.select_nth_unstable_by(k, |a, b| b.cmp(a));
    let mut keep = vec![false; n];
    for key in &keys[..k] {
        keep[(u32::MAX - *key as u32) as usize] = true;
    }
    Mask { keep }
}

/// Bit-packed wire form of a [`Mask`]: `len` and little-endian 64-bit words.
#[derive(Serialize, Deserialize)]
struct PackedMask {
    len: usize,
    words: Vec<u64>,
}

impl From<Mask> for PackedMask {
    fn from(m: Mask) -> Self {
        let mut words = vec![0u64; m.keep.len().div_ceil(64)];
        for (i, &k) in m.keep.iter().enumerate() {
            words[i / 64] |= (k as u64) << (i % 64);
        }
        PackedMask {
            len: m.keep.len(),
            words,
        }
    }
}

impl TryFrom<PackedMask> for Mask {
    type Error = String;
    fn try_from(p: PackedMask) -> Result<Self, String> {
        if p.words.len() != p.len.div_ceil(64) {
            return Err(format!(
                "corrupt mask: {} words cannot hold exactly {} flags",
                p.words.len(),
                p.len
            ));
        }
        Ok(Mask {
            keep: (0..p.len)
                .map(|i| p.words[i / 64] >> (i % 64) & 1 == 1)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_largest_and_breaks_ties_by_index() {
        let w = [0.1, -3.0, 2.0, 0.0, -0.5];
        assert_eq!(
            topk_mask(&w, 0.6).keep(),
            &[false, true, true, false, false]
        );
        // All equal: keep the lowest indices.
        let m = topk_mask(&[1.0; 10], 0.7);
        assert_eq!(
            m.keep(),
            &[
                true, true, true, false, false, false, false, false, false, false
            ]
        );
        // Zeros tie with each other and are pruned before any non-zero.
        let m = topk_mask(&[0.0, 0.0, 0.0, 1e-30, 0.0], 0.8);
        assert_eq!(m.keep(), &[false, false, false, true, false]);
        // NaN goes first; at least one weight is always kept; sparsity 0 keeps all.
        let m = topk_mask(&[f32::NAN, 1.0, 2.0], 0.34);
        assert_eq!(m.keep(), &[false, true, true]);
        assert_eq!(topk_mask(&[1.0, 2.0], 0.9999).keep(), &[false, true]);
        assert_eq!(topk_mask(&[0.0; 3], 0.0).zeros(), 0);
        // Round half to even, like jnp.round: 2.5 -> 2, 3.5 -> 4.
        assert_eq!(kept_count(5, 0.5), 2);
        assert_eq!(kept_count(7, 0.5), 4);
    }

    #[test]
    fn mask_serde_round_trip() {
        let w: Vec<f32> = (0..1000)
            .map(|i| ((i * 7919) % 1009) as f32 - 500.0)
            .collect();
        let m = topk_mask(&w, 0.93);
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.len() < 500, "packed: {}", json.len());
        let back: Mask = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        let bad = serde_json::from_str::<Mask>(r#"{"len":200,"words":[1]}"#).unwrap_err();
        assert!(bad.to_string().contains("corrupt mask"), "{bad}");
    }

    proptest! {
        /// Achieved sparsity is the target within one weight; every kept |w| >= every pruned |w|.
        #[test]
        fn topk_is_exact(
            w in prop::collection::vec(-4.0f32..4.0, 1..600),
            s in 0.0f64..1.0,
            quantise in any::<bool>(),
        ) {
            // Quantising creates many ties.
            let w: Vec<f32> = if quantise { w.iter().map(|x| x.round()).collect() } else { w };
            let m = topk_mask(&w, s);
            let n = w.len();
            let target_zeros = s * n as f64;
            prop_assert!((m.zeros() as f64 - target_zeros).abs() <= 1.0);
            prop_assert!(m.zeros() < n || n == 0);
            let min_kept = w.iter().zip(m.keep()).filter(|p| *p.1).map(|p| p.0.abs()).fold(f32::INFINITY, f32::min);
            let max_pruned = w.iter().zip(m.keep()).filter(|p| !*p.1).map(|p| p.0.abs()).fold(0.0, f32::max);
            prop_assert!(min_kept >= max_pruned);
            // Among equal magnitudes, the kept ones have lower indices than the pruned ones.
            for i in 0..n {
                for j in i + 1..n {
                    if w[i].abs() == w[j].abs() {
                        prop_assert!(m.keep()[i] || !m.keep()[j]);
                    }
                }
            }
            let back: Mask = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
            prop_assert_eq!(back, m);
        }
    }
}
