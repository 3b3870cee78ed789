//! What 95% sparsity leaves of each MinAtar network: the per-layer kept counts that decide
//! whether a pruned network still has capacity (JaxPruner's ERK, `sparsity_distributions.py`).
//!
//! ERK gives layer l a density proportional to sum(dims)/prod(dims), so Dopamine's one-conv
//! MinAtar network loses almost all of its only convolution; the MinAtar ResNet keeps
//! thousands of conv weights, as the paper's Impala networks do.

use prunus_agents::networks::{Architecture, NetworkConfig, QNetwork};
use prunus_sparsity::{Distribution, erk, magnitude::kept_count};
use rand::SeedableRng;

/// `(name, weights, kept)` per kernel of `architecture` at `width` on Breakout's observations
/// (4 channels) with MinAtar's 6 actions, at 95% sparsity.
fn kept(
    architecture: Architecture,
    width: f64,
    distribution: Distribution,
) -> Vec<(String, usize, usize)> {
    let config = NetworkConfig {
        architecture,
        width,
        input: vec![4, 10, 10],
        outputs: 6,
        input_scale: 1.0,
        normalize_features: false,
    };
    let device = prunus_agents::device("cpu").unwrap();
    let net = QNetwork::new(&config, &mut rand_pcg::Pcg64::seed_from_u64(0), &device);
    let kernels = net.kernels();
    let shapes: Vec<&[usize]> = kernels.iter().map(|k| k.shape.as_slice()).collect();
    let sparsities = erk::allocate(distribution, &shapes, 0.95).unwrap();
    kernels
        .iter()
        .zip(sparsities)
        .map(|(k, s)| {
            let n = k.shape.iter().product();
            (k.name.clone(), n, kept_count(n, s.unwrap()))
        })
        .collect()
}

fn total(layers: &[(String, usize, usize)]) -> usize {
    layers.iter().map(|l| l.2).sum()
}

#[test]
fn erk_starves_the_one_conv_of_dopamines_minatar_network() {
    let w1 = kept(
        Architecture::MinAtarCnn { hidden: vec![] },
        1.0,
        Distribution::Erk,
    );
    assert_eq!(w1[0], ("conv1".into(), 576, 8));
    assert_eq!(w1[1].1, 9_600);
    assert_eq!(total(&w1), 509);
    let w2 = kept(
        Architecture::MinAtarCnn { hidden: vec![] },
        2.0,
        Distribution::Erk,
    );
    assert_eq!(w2[0], ("conv1".into(), 1_152, 13));
    // Uniform allocation keeps 5% of every layer: 29 of the conv's 576 weights.
    let uniform = kept(
        Architecture::MinAtarCnn { hidden: vec![] },
        1.0,
        Distribution::Uniform,
    );
    assert_eq!(uniform[0].2, 29);
}

#[test]
fn minatar128_keeps_its_conv_and_10k_weights() {
    let layers = kept(
        Architecture::MinAtarCnn { hidden: vec![128] },
        1.0,
        Distribution::Erk,
    );
    assert_eq!(layers.iter().map(|l| l.1).sum::<usize>(), 206_144);
    assert_eq!(
        (layers[0].2, layers[1].2, total(&layers)),
        (142, 9_434, 10_308)
    );
    // ERK keeps 732 of the Q-head's 768 weights; uniform keeps 5% of it, 38 (6 or 7 per
    // action), and fewer in the conv: why uniform fails on this network (docs/minatar).
    assert_eq!(layers[2].2, 732);
    let uniform = kept(
        Architecture::MinAtarCnn { hidden: vec![128] },
        1.0,
        Distribution::Uniform,
    );
    let kept_per_layer: Vec<usize> = uniform.iter().map(|l| l.2).collect();
    assert_eq!(kept_per_layer, [29, 10_240, 38]);
}

#[test]
fn the_minatar_resnet_keeps_capacity_at_95_percent() {
    // (width, conv weights kept, all weights kept): thousands of conv weights, ~100 per
    // convolution even at width 1, where the one-conv network keeps 8.
    for (width, convs, all) in [(1.0, 2_825, 10_095), (4.0, 35_457, 70_318)] {
        let layers = kept(Architecture::MinAtarResNet, width, Distribution::Erk);
        let kept_in_convs: usize = layers
            .iter()
            .filter(|l| l.0.starts_with("stack"))
            .map(|l| l.2)
            .sum();
        assert_eq!((kept_in_convs, total(&layers)), (convs, all), "{layers:?}");
        assert!(layers.iter().all(|l| l.2 >= 140), "{layers:?}");
    }
}
