//! The Impala ResNet torso (Espeholt et al. 2018) as Dopamine builds it for the paper's Atari
//! agents: three stacks, each a convolution, a 3×3 stride-2 max-pool and two residual blocks
//! (ReLU, conv, ReLU, conv, plus the skip), channels (16, 32, 32)·width, then a ReLU
//! (`ImpalaEncoder` and `Stack`, `dopamine/labs/offline_rl/jax/networks.py`, line 108 at
//! google/dopamine@81f695c, the version the paper cites). The stack convolutions use Dopamine's
//! xavier-uniform; the residual convolutions are built without a `kernel_init`, so they get
//! Flax's default lecun-normal.
//!
//! [`ResNetShape::MINATAR`] is the same torso adapted to MinAtar's 10×10 inputs: two stacks
//! (16, 32)·width instead of three, so the two stride-2 pools take 10×10 to 5×5 to 3×3 (a third
//! would leave 2×2), the same two residual blocks per stack and the same 512-unit dense layer
//! that does not scale with width. At width 1 it has 51k conv weights and 147k dense ones
//! (Breakout's 4 channels), so 95% sparsity still keeps ~10k weights, ~70k at width 4: the
//! regime of the paper's Impala networks (arXiv 2402.12479, §4), which Dopamine's one-conv
//! MinAtar network (10k weights, 509 kept at 95%) is not.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2dConfig;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::init::{self, Init};
use super::{InputShape, QNetwork, Torso, Wiring, scaled};

/// Where each convolution of the ResNet sits: indices into the network's convolutions, which
/// are stored in this order (stack 0's conv, its blocks' conv1 and conv2, stack 1's conv, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImpalaLayout {
    pub stacks: Vec<Stack>,
}

/// One stack: a convolution (then the max-pool) and its residual blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stack {
    /// Output channels before width scaling.
    pub base_channels: usize,
    pub conv: usize,
    pub blocks: Vec<ResidualBlock>,
}

/// `x + conv2(relu(conv1(relu(x))))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResidualBlock {
    pub conv1: usize,
    pub conv2: usize,
}

impl ImpalaLayout {
    /// Dopamine's `ImpalaEncoder`: stacks of 16, 32 and 32 channels, two blocks each.
    pub fn dopamine() -> Self {
        let shape = ResNetShape::DOPAMINE;
        Self::new(shape.channels, shape.blocks)
    }

    /// Stacks of the given base channels with `blocks` residual blocks each, numbered in
    /// storage order.
    pub fn new(channels: &[usize], blocks: usize) -> Self {
        let mut next = 0..;
        let mut take = || next.next().expect("unbounded");
        let stacks = channels
            .iter()
            .map(|&base_channels| Stack {
                base_channels,
                conv: take(),
                blocks: (0..blocks)
                    .map(|_| ResidualBlock {
                        conv1: take(),
                        conv2: take(),
                    })
                    .collect(),
            })
            .collect();
        ImpalaLayout { stacks }
    }

    /// Convolutions in all.
    pub fn num_convs(&self) -> usize {
        self.stacks.iter().map(|s| 1 + 2 * s.blocks.len()).sum()
    }

    /// Names of the convolutions in storage order: `stack0/conv`, `stack0/block0/conv1`, ...
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::with_capacity(self.num_convs());
        for (s, stack) in self.stacks.iter().enumerate() {
            names.push(format!("stack{s}/conv"));
            for b in 0..stack.blocks.len() {
                names.push(format!("stack{s}/block{b}/conv1"));
                names.push(format!("stack{s}/block{b}/conv2"));
            }
        }
        names
    }

    /// The initializer of convolution `conv` (lecun-normal inside the residual blocks).
    pub fn init(&self, conv: usize) -> Init {
        let residual = self
            .stacks
            .iter()
            .flat_map(|s| &s.blocks)
            .any(|b| b.conv1 == conv || b.conv2 == conv);
        if residual {
            Init::LecunNormal
        } else {
            Init::XavierUniform
        }
    }

    /// The first convolution of every residual block, in order.
    pub fn block_inputs(&self) -> Vec<usize> {
        self.stacks
            .iter()
            .flat_map(|s| s.blocks.iter().map(|b| b.conv1))
            .collect()
    }

    /// The last convolution (whose post-ReLU output is the torso's output).
    pub fn last_conv(&self) -> usize {
        self.num_convs() - 1
    }

    /// The torso on `y` `[batch, c, h, w]`; `record` sees the post-ReLU activations of each
    /// block's first convolution and the torso's output (under the last convolution's name).
    pub(super) fn forward(
        &self,
        net: &QNetwork,
        mut y: Tensor<4>,
        names: &[String],
        record: &mut dyn FnMut(&str, &Tensor<4>),
    ) -> Tensor<4> {
        let pool = net.pool.as_ref().expect("impala network has a pool");
        for stack in &self.stacks {
            y = pool.forward(net.conv(stack.conv, y));
            for block in &stack.blocks {
                let skip = y.clone();
                let h = relu(net.conv(block.conv1, relu(y)));
                record(&names[block.conv1], &h);
                y = net.conv(block.conv2, h) + skip;
            }
        }
        y = relu(y);
        record(&names[self.last_conv()], &y);
        y
    }
}

/// What a ResNet torso is made of, before width scaling.
#[derive(Clone, Copy, Debug)]
pub(super) struct ResNetShape {
    /// Output channels of each stack.
    pub channels: &'static [usize],
    /// Residual blocks per stack.
    pub blocks: usize,
    /// Units of the dense layer after the torso (not width-scaled).
    pub dense: usize,
}

impl ResNetShape {
    /// Dopamine's `ImpalaDQNNetwork` for Atari.
    pub const DOPAMINE: ResNetShape = ResNetShape {
        channels: &[16, 32, 32],
        blocks: 2,
        dense: 512,
    };
    /// The same, two stacks, for MinAtar's 10×10 inputs (module docs).
    pub const MINATAR: ResNetShape = ResNetShape {
        channels: &[16, 32],
        blocks: 2,
        dense: 512,
    };
}

/// The ResNet's convolutions, max-pool and dense layer (512 units, not width-scaled, as
/// Dopamine's `ImpalaDQNNetwork`).
pub(super) fn torso(
    shape: &ResNetShape,
    width: f64,
    input: InputShape,
    rng: &mut dyn rand::RngCore,
    device: &Device,
) -> Torso {
    let layout = ImpalaLayout::new(shape.channels, shape.blocks);
    let mut convs: Vec<Conv2d> = Vec::with_capacity(layout.num_convs());
    let mut cin = input.c;
    let (mut h, mut w) = (input.h, input.w);
    for stack in &layout.stacks {
        let c = scaled(stack.base_channels, width);
        convs.push(init::conv(
            rng,
            device,
            [cin, c],
            3,
            1,
            layout.init(stack.conv),
        ));
        for block in &stack.blocks {
            for conv in [block.conv1, block.conv2] {
                convs.push(init::conv(rng, device, [c, c], 3, 1, layout.init(conv)));
            }
        }
        cin = c;
        h = h.div_ceil(2);
        w = w.div_ceil(2);
    }
    let pool = MaxPool2dConfig::new([3, 3])
        .with_strides([2, 2])
        .with_padding(PaddingConfig2d::Same)
        .init();
    Torso {
        convs,
        pool: Some(pool),
        wiring: Wiring::Impala(layout),
        hidden: vec![shape.dense],
        flat: cin * h * w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Storage order: each stack's convolution, then its blocks' two convolutions.
    #[test]
    fn layout_numbers_convolutions_in_storage_order() {
        let layout = ImpalaLayout::dopamine();
        assert_eq!(layout.num_convs(), 15);
        for (s, stack) in layout.stacks.iter().enumerate() {
            assert_eq!(stack.conv, 5 * s);
            for (b, block) in stack.blocks.iter().enumerate() {
                assert_eq!(
                    (block.conv1, block.conv2),
                    (5 * s + 1 + 2 * b, 5 * s + 2 + 2 * b)
                );
            }
        }
        assert_eq!(layout.names()[7], "stack1/block0/conv2");
        assert_eq!(layout.block_inputs(), [1, 3, 6, 8, 11, 13]);
        assert_eq!(layout.init(5), Init::XavierUniform);
        assert_eq!(layout.init(4), Init::LecunNormal);
    }
}
