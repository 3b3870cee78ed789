//! Dopamine's Atari observation: the max of the last two frames of a frame-skip, resized from
//! 210x160 to 84x84 with OpenCV's `INTER_AREA` (`cv2.resize(..., interpolation=cv2.INTER_AREA)`).
//!
//! The resize reproduces OpenCV's area-decimation arithmetic exactly (same per-axis weight
//! tables, `f32` accumulation in the same order, round-half-to-even), so observations are
//! byte-identical to Dopamine's `AtariPreprocessing` (checked against `cv2` in the tests).

/// One axis of an area resize: per destination index, its `(source, weight)` terms in
/// OpenCV's order.
#[derive(Clone, Debug)]
struct AxisTable {
    cells: Vec<Vec<(usize, f32)>>,
    /// Per cell: its first source index, clamped so that `first + width <= src`...
    first: Vec<u32>,
    /// ...and `width` weights for the sources `first..first + width` (zero where a source is
    /// not one of the cell's terms), flat.
    weights: Vec<f32>,
    width: usize,
}

impl AxisTable {
    /// OpenCV's `computeResizeAreaTab` for `src -> dst` (downscaling).
    fn new(src: usize, dst: usize) -> Self {
        // cv::resize derives the scale as the inverse of dst/src, in f64.
        let scale = 1.0 / (dst as f64 / src as f64);
        let cells = (0..dst)
            .map(|d| {
                let f1 = d as f64 * scale;
                let f2 = f1 + scale;
                let cell = scale.min(src as f64 - f1);
                let s2 = (f2.floor() as usize).min(src - 1);
                let s1 = (f1.ceil() as usize).min(s2);
                let mut terms = Vec::new();
                if s1 as f64 - f1 > 1e-3 {
                    terms.push((s1 - 1, ((s1 as f64 - f1) / cell) as f32));
                }
                terms.extend((s1..s2).map(|s| (s, (1.0 / cell) as f32)));
                if f2 - s2 as f64 > 1e-3 {
                    terms.push((s2, ((f2 - s2 as f64).min(1.0).min(cell) / cell) as f32));
                }
                terms
            })
            .collect::<Vec<Vec<(usize, f32)>>>();
        let width = cells.iter().map(Vec::len).max().unwrap_or(0);
        let (mut first, mut weights) = (Vec::new(), Vec::new());
        for terms in &cells {
            // Terms are consecutive sources in increasing order; padding goes after them (or,
            // at the image's right edge, before them, where it adds 0.0 to 0.0).
            let start = terms[0].0.min(src - width);
            let mut w = vec![0f32; width];
            for &(s, a) in terms {
                w[s - start] = a;
            }
            debug_assert!(terms.windows(2).all(|p| p[1].0 == p[0].0 + 1));
            first.push(start as u32);
            weights.extend(w);
        }
        AxisTable {
            cells,
            first,
            weights,
            width,
        }
    }
}

/// A precomputed `INTER_AREA` resize between two fixed sizes.
#[derive(Clone, Debug)]
pub struct AreaResize {
    src: (usize, usize),
    dst: (usize, usize),
    rows: AxisTable,
    cols: AxisTable,
}

impl AreaResize {
    /// Resizes `src_h x src_w` images to `dst_h x dst_w` (both axes shrinking).
    pub fn new(src_h: usize, src_w: usize, dst_h: usize, dst_w: usize) -> Self {
        assert!(
            dst_h <= src_h && dst_w <= src_w,
            "INTER_AREA here only shrinks"
        );
        AreaResize {
            src: (src_h, src_w),
            dst: (dst_h, dst_w),
            rows: AxisTable::new(src_h, dst_h),
            cols: AxisTable::new(src_w, dst_w),
        }
    }

    /// Resizes one 8-bit image.
    ///
    /// The float operations are OpenCV's, in its order: per source row, each destination
    /// column sums `pixel * alpha` from zero over its terms; per destination row, the rows'
    /// sums are combined as `beta_0 * row_0 + beta_1 * row_1 + ...` left to right.
    pub fn apply(&self, src: &[u8], dst: &mut [u8], scratch: &mut Scratch) {
        let (sh, sw) = self.src;
        let (dh, dw) = self.dst;
        assert_eq!(src.len(), sh * sw);
        assert_eq!(dst.len(), dh * dw);
        match self.cols.width {
            2 => self.horizontal::<2>(src, scratch),
            3 => self.horizontal::<3>(src, scratch),
            4 => self.horizontal::<4>(src, scratch),
            _ => self.horizontal::<0>(src, scratch),
        }
        let Scratch { rows, sum, .. } = scratch;
        sum.resize(dw, 0.0);
        for (out, terms) in dst.chunks_exact_mut(dw).zip(&self.rows.cells) {
            sum.fill(0.0);
            for &(sy, beta) in terms {
                let row = &rows[sy * dw..(sy + 1) * dw];
                for (s, r) in sum.iter_mut().zip(row) {
                    *s += beta * r;
                }
            }
            store(sum, out);
        }
    }

    /// The horizontal pass of every source row into `scratch.rows`, skipping rows equal to
    /// the previous image's (their result is already there). A column's terms read
    /// consecutive source pixels, so each column is one window `line[first..first + K]` times
    /// its `K` weights, padded with zero weights after the real terms (adding `0.0 * pixel`
    /// leaves the sum bit-identical). `K == 0`: any width.
    fn horizontal<const K: usize>(&self, src: &[u8], scratch: &mut Scratch) {
        let (sh, sw, dw) = (self.src.0, self.src.1, self.dst.1);
        let k = self.cols.width;
        let Scratch {
            previous,
            rows,
            line,
            ..
        } = scratch;
        let fresh = previous.len() != src.len() || rows.len() != sh * dw;
        if fresh {
            *previous = vec![0; src.len()];
            *rows = vec![0.0; sh * dw];
        }
        line.resize(sw, 0.0);
        let rows_in = src.chunks_exact(sw).zip(previous.chunks_exact_mut(sw));
        for ((pixels, seen), out) in rows_in.zip(rows.chunks_exact_mut(dw)) {
            if !fresh && pixels == seen {
                continue;
            }
            seen.copy_from_slice(pixels);
            for (l, &p) in line.iter_mut().zip(pixels) {
                *l = p as f32;
            }
            let weights = self.cols.weights.chunks_exact(k);
            for ((o, w), &first) in out.iter_mut().zip(weights).zip(&self.cols.first) {
                let window = &line[first as usize..first as usize + k];
                let mut acc = 0f32;
                if K > 0 {
                    for (p, a) in window[..K].iter().zip(&w[..K]) {
                        acc += p * a;
                    }
                } else {
                    for (p, a) in window.iter().zip(w) {
                        acc += p * a;
                    }
                }
                *o = acc;
            }
        }
    }
}

/// Buffers reused by [`AreaResize::apply`]. They remember the last image's rows and their
/// horizontal pass, so rows that did not change since the previous call (most of an Atari
/// screen from one step to the next) are not recomputed: the same bytes give the same floats.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    previous: Vec<u8>,
    rows: Vec<f32>,
    line: Vec<f32>,
    sum: Vec<f32>,
}

/// OpenCV's `saturate_cast<uchar>(float)`: round half to even, then clamp. (Adding and
/// subtracting 2^23 rounds to an integer, half to even, in the FPU's default mode, for
/// 0 <= x < 2^23; it compiles to two vector adds where `round_ties_even` is a libm call.)
fn store(sum: &[f32], out: &mut [u8]) {
    const SHIFT: f32 = 8_388_608.0;
    for (o, s) in out.iter_mut().zip(sum) {
        let x = s.clamp(0.0, 255.0);
        *o = ((x + SHIFT) - SHIFT) as u8;
    }
}

/// Element-wise max of two frames into the first (Dopamine's pooling over the last two frames).
pub fn max_pool(into: &mut [u8], other: &[u8]) {
    for (a, b) in into.iter_mut().zip(other) {
        *a = (*a).max(*b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_of_each_destination_cell_sum_to_one() {
        for (src, dst) in [(210, 84), (160, 84), (10, 4), (7, 7)] {
            let t = AxisTable::new(src, dst);
            for d in 0..dst {
                let w: f64 = t.cells[d].iter().map(|e| e.1 as f64).sum();
                assert!((w - 1.0).abs() < 1e-5, "{src}->{dst} cell {d}: {w}");
            }
        }
    }

    #[test]
    fn reusing_rows_across_calls_changes_nothing() {
        let r = AreaResize::new(210, 160, 84, 84);
        let mut image: Vec<u8> = (0..210 * 160).map(|i| (i * 7 % 251) as u8).collect();
        let mut kept = Scratch::default();
        let (mut a, mut b) = (vec![0; 84 * 84], vec![0; 84 * 84]);
        for step in 0..5 {
            // Change a few rows, as a moving sprite does.
            for x in 0..160 {
                image[(40 + 13 * step) * 160 + x] ^= 0x5a;
            }
            r.apply(&image, &mut a, &mut kept);
            r.apply(&image, &mut b, &mut Scratch::default());
            assert_eq!(a, b, "step {step}");
        }
    }

    #[test]
    fn rounding_is_half_to_even_like_opencv() {
        let xs = [
            0.0f32, 0.5, 1.5, 2.5, 2.4999998, 2.5000002, 254.5, 255.49, 300.0, -3.0,
        ];
        let mut out = [0u8; 10];
        store(&xs, &mut out);
        let want = xs.map(|x| x.round_ties_even().clamp(0.0, 255.0) as u8);
        assert_eq!(out, want);
    }

    #[test]
    fn a_constant_image_stays_constant_and_integer_decimation_averages() {
        let r = AreaResize::new(210, 160, 84, 84);
        let mut out = vec![0; 84 * 84];
        r.apply(&vec![137; 210 * 160], &mut out, &mut Scratch::default());
        assert!(out.iter().all(|&v| v == 137));
        // 2x2 blocks average exactly; 0.5 rounds to even.
        let r = AreaResize::new(2, 2, 1, 1);
        let mut one = [0u8];
        r.apply(&[1, 2, 3, 4], &mut one, &mut Scratch::default());
        assert_eq!(one[0], 2, "2.5 rounds half to even");
        r.apply(&[1, 2, 4, 4], &mut one, &mut Scratch::default());
        assert_eq!(one[0], 3, "2.75 rounds up");
    }
}
