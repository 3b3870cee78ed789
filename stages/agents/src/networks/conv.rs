//! Convolutions on the CPU as im2col + matmul: the same values as burn's `Conv2d::forward`
//! with SAME padding, much faster than burn's direct CPU kernels on these small images
//! (benches/steps.rs). GPUs use burn's own kernels.

use burn::nn::conv::Conv2d;
use burn::tensor::ops::PadMode;
use burn::tensor::{Slice, Tensor, TensorData};

use crate::tensor::to_vec;

/// A SAME-padded convolution as im2col + one batched matmul: the k·k shifted (strided) views
/// of the padded input are stacked into patches `[batch, c·k·k, out_h·out_w]` (ordered like the
/// kernel's `[out, in, kh, kw]` layout) and multiplied by the kernel viewed as `[out, c·k·k]`.
/// Same values as `Conv2d::forward` with `PaddingConfig2d::Same`, differentiable through
/// burn's slice, cat and matmul.
pub(super) fn conv_im2col(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let [out, _, kh, kw] = conv.weight.dims();
    let [sh, sw] = conv.stride;
    let (ho, wo) = (h.div_ceil(sh), w.div_ceil(sw));
    let pad_h = ((ho - 1) * sh + kh).saturating_sub(h);
    let pad_w = ((wo - 1) * sw + kw).saturating_sub(w);
    let x = x.pad(
        [
            (pad_h / 2, pad_h - pad_h / 2),
            (pad_w / 2, pad_w - pad_w / 2),
        ],
        PadMode::Constant(0.0),
    );
    let mut cols = Vec::with_capacity(kh * kw);
    for i in 0..kh {
        for j in 0..kw {
            let view = x.clone().slice([
                Slice::from(0..b),
                Slice::from(0..c),
                Slice::with_step(
                    i as isize,
                    Some((i + (ho - 1) * sh + 1) as isize),
                    sh as isize,
                ),
                Slice::with_step(
                    j as isize,
                    Some((j + (wo - 1) * sw + 1) as isize),
                    sw as isize,
                ),
            ]);
            cols.push(view.reshape([b, c, 1, ho * wo]));
        }
    }
    let k = c * kh * kw;
    let patches = Tensor::cat(cols, 2).reshape([b, k, ho * wo]);
    conv_matmul(conv, patches, [b, out, ho, wo])
}

/// A convolution of data (no gradient flows into `x`) as one GEMM over every output position
/// of the batch, `[b·ho·wo, k] × [k, out]`, its im2col patches gathered in one pass over `x`.
pub(super) fn conv_gathered(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let [out, _, kh, kw] = conv.weight.dims();
    let geometry = Im2col::same(c, h, w, kh, kw, conv.stride);
    let device = x.device();
    let (k, hw) = (geometry.rows(), geometry.cols());
    let patches = Tensor::<2>::from_data(
        TensorData::new(geometry.patches_by_position(&to_vec(x), b), [b * hw, k]),
        &device,
    );
    let kernel = conv.weight.val().reshape([out, k]).transpose();
    let mut y = patches.matmul(kernel);
    if let Some(bias) = &conv.bias {
        y = y + bias.val().reshape([1, out]);
    }
    y.reshape([b, hw, out])
        .swap_dims(1, 2)
        .reshape([b, out, geometry.ho, geometry.wo])
}

/// The kernel viewed as `[out, c·k·k]` times im2col `patches` `[b, c·k·k, out_h·out_w]`, plus
/// the bias, shaped `[b, out, out_h, out_w]`.
fn conv_matmul(conv: &Conv2d, patches: Tensor<3>, shape: [usize; 4]) -> Tensor<4> {
    let [b, out, ho, wo] = shape;
    let [_, k, _] = patches.dims();
    let kernel: Tensor<3> = conv.weight.val().reshape([1, out, k]).expand([b, out, k]);
    let mut y = kernel.matmul(patches);
    if let Some(bias) = &conv.bias {
        y = y + bias.val().reshape([1, out, 1]);
    }
    y.reshape([b, out, ho, wo])
}

/// Geometry of a SAME-padded strided convolution's im2col, for gathering patches from plain
/// values (row `ci·kh·kw + i·kw + j` of a sample's patch matrix, like the kernel's
/// `[out, in, kh, kw]` layout; column `oy·wo + ox`).
struct Im2col {
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    pad_top: usize,
    pad_left: usize,
    ho: usize,
    wo: usize,
}

impl Im2col {
    fn same(c: usize, h: usize, w: usize, kh: usize, kw: usize, stride: [usize; 2]) -> Self {
        let (ho, wo) = (h.div_ceil(stride[0]), w.div_ceil(stride[1]));
        let pad_h = ((ho - 1) * stride[0] + kh).saturating_sub(h);
        let pad_w = ((wo - 1) * stride[1] + kw).saturating_sub(w);
        Im2col {
            c,
            h,
            w,
            kh,
            kw,
            stride,
            pad_top: pad_h / 2,
            pad_left: pad_w / 2,
            ho,
            wo,
        }
    }

    fn rows(&self) -> usize {
        self.c * self.kh * self.kw
    }

    fn cols(&self) -> usize {
        self.ho * self.wo
    }

    /// Patches `[batch·cols, rows]` (one row per output position) of `batch` samples.
    fn patches_by_position(&self, x: &[f32], batch: usize) -> Vec<f32> {
        let (rows, cols) = (self.rows(), self.cols());
        let mut out = vec![0f32; batch * rows * cols];
        let sample_len = self.c * self.h * self.w;
        for (sample, dst) in x
            .chunks_exact(sample_len)
            .zip(out.chunks_exact_mut(rows * cols))
        {
            for oy in 0..self.ho {
                for ox in 0..self.wo {
                    let patch = &mut dst[(oy * self.wo + ox) * rows..][..rows];
                    for ci in 0..self.c {
                        let plane = &sample[ci * self.h * self.w..(ci + 1) * self.h * self.w];
                        for i in 0..self.kh {
                            let y = (oy * self.stride[0] + i).wrapping_sub(self.pad_top);
                            if y >= self.h {
                                continue;
                            }
                            let src = &plane[y * self.w..(y + 1) * self.w];
                            let base = (ci * self.kh + i) * self.kw;
                            for j in 0..self.kw {
                                let xx = (ox * self.stride[1] + j).wrapping_sub(self.pad_left);
                                if xx < self.w {
                                    patch[base + j] = src[xx];
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::init::xavier_uniform;
    use super::*;
    use burn::module::Param;
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use rand::SeedableRng;
    use rand_pcg::Pcg64;

    #[test]
    fn im2col_convolution_matches_burns_kernel() {
        let device = crate::device("cpu").unwrap();
        let mut rng = Pcg64::seed_from_u64(3);
        for (cin, cout, k, stride, hw) in [
            (4, 16, 3, 1, 10),
            (4, 8, 8, 4, 84),
            (8, 6, 4, 2, 21),
            (3, 5, 3, 1, 11),
        ] {
            let mut conv = Conv2dConfig::new([cin, cout], [k, k])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Same)
                .init(&device);
            conv.bias = Some(Param::from_data(
                TensorData::new(xavier_uniform(&mut rng, cout, 1, 1), [cout]),
                &device,
            ));
            let n = 2 * cin * hw * hw;
            let x = Tensor::<4>::from_data(
                TensorData::new(xavier_uniform(&mut rng, n, 1, 1), [2, cin, hw, hw]),
                &device,
            );
            let gathered = to_vec(conv_gathered(&conv, x.clone()));
            let (a, b) = (
                to_vec(conv.forward(x.clone())),
                to_vec(conv_im2col(&conv, x)),
            );
            assert_eq!(b, gathered, "gathered patches differ from sliced ones");
            assert_eq!(a.len(), b.len());
            let err = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(err < 1e-5, "k={k} s={stride}: max error {err}");
        }
    }
}
