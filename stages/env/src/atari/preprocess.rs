//! Dopamine's Atari observation: the max of the last two frames of a frame-skip, resized from
//! 210x160 to 84x84 with OpenCV's `INTER_AREA` (`cv2.resize(..., interpolation=cv2.INTER_AREA)`).
//!
//! The resize reproduces OpenCV's area-decimation arithmetic exactly (same per-axis weight
//! tables, `f32` accumulation in the same order, round-half-to-even), so observations are
//! byte-identical to Dopamine's `AtariPreprocessing` (checked against `cv2` in the tests).

/// One axis of an area resize: `(destination, source, weight)` triples in OpenCV's order.
#[derive(Clone, Debug)]
struct AxisTable(Vec<(usize, usize, f32)>);

impl AxisTable {
    /// OpenCV's `computeResizeAreaTab` for `src -> dst` (downscaling).
    fn new(src: usize, dst: usize) -> Self {
        // cv::resize derives the scale as the inverse of dst/src, in f64.
        let scale = 1.0 / (dst as f64 / src as f64);
        let mut tab = Vec::new();
        for d in 0..dst {
            let f1 = d as f64 * scale;
            let f2 = f1 + scale;
            let cell = scale.min(src as f64 - f1);
            let s2 = (f2.floor() as usize).min(src - 1);
            let s1 = (f1.ceil() as usize).min(s2);
            if s1 as f64 - f1 > 1e-3 {
                tab.push((d, s1 - 1, ((s1 as f64 - f1) / cell) as f32));
            }
            for s in s1..s2 {
                tab.push((d, s, (1.0 / cell) as f32));
            }
            if f2 - s2 as f64 > 1e-3 {
                tab.push((d, s2, ((f2 - s2 as f64).min(1.0).min(cell) / cell) as f32));
            }
        }
        AxisTable(tab)
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
    pub fn apply(&self, src: &[u8], dst: &mut [u8]) {
        let (sh, sw) = self.src;
        let (dh, dw) = self.dst;
        assert_eq!(src.len(), sh * sw);
        assert_eq!(dst.len(), dh * dw);
        let mut row = vec![0f32; dw];
        let mut sum = vec![0f32; dw];
        let mut current = self.rows.0.first().map_or(0, |r| r.0);
        for &(dy, sy, beta) in &self.rows.0 {
            row.fill(0.0);
            let line = &src[sy * sw..(sy + 1) * sw];
            for &(dx, sx, alpha) in &self.cols.0 {
                row[dx] += line[sx] as f32 * alpha;
            }
            if dy != current {
                store(&sum, &mut dst[current * dw..(current + 1) * dw]);
                for (s, r) in sum.iter_mut().zip(&row) {
                    *s = beta * r;
                }
                current = dy;
            } else {
                for (s, r) in sum.iter_mut().zip(&row) {
                    *s += beta * r;
                }
            }
        }
        store(&sum, &mut dst[current * dw..(current + 1) * dw]);
    }
}

/// OpenCV's `saturate_cast<uchar>(float)`: round half to even, then clamp.
fn store(sum: &[f32], out: &mut [u8]) {
    for (o, s) in out.iter_mut().zip(sum) {
        *o = s.round_ties_even().clamp(0.0, 255.0) as u8;
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
                let w: f64 = t.0.iter().filter(|e| e.0 == d).map(|e| e.2 as f64).sum();
                assert!((w - 1.0).abs() < 1e-5, "{src}->{dst} cell {d}: {w}");
            }
        }
    }

    #[test]
    fn a_constant_image_stays_constant_and_integer_decimation_averages() {
        let r = AreaResize::new(210, 160, 84, 84);
        let mut out = vec![0; 84 * 84];
        r.apply(&vec![137; 210 * 160], &mut out);
        assert!(out.iter().all(|&v| v == 137));
        // 2x2 blocks average exactly; 0.5 rounds to even.
        let r = AreaResize::new(2, 2, 1, 1);
        let mut one = [0u8];
        r.apply(&[1, 2, 3, 4], &mut one);
        assert_eq!(one[0], 2, "2.5 rounds half to even");
        r.apply(&[1, 2, 4, 4], &mut one);
        assert_eq!(one[0], 3, "2.75 rounds up");
    }
}
