//! A sum tree over priorities: O(log n) update and prefix-sum search, for prioritized replay.
//!
//! Same contract as Dopamine's `dopamine/replay_memory/sum_tree.py`: leaves hold priorities,
//! [`SumTree::find`] maps a value in `[0, total)` to the leaf whose cumulative range holds it, and
//! the largest priority ever set is remembered for new transitions (starting at 1.0).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SumTree {
    /// Number of leaves (padded to a power of two internally).
    leaves: usize,
    /// Binary heap layout: node i has children 2i+1, 2i+2; leaves start at `leaves - 1`.
    nodes: Vec<f64>,
    max_recorded: f64,
}

impl SumTree {
    pub fn new(capacity: usize) -> Self {
        let leaves = capacity.max(1).next_power_of_two();
        SumTree {
            leaves,
            nodes: vec![0.0; 2 * leaves - 1],
            max_recorded: 1.0,
        }
    }

    pub fn total(&self) -> f64 {
        self.nodes[0]
    }

    /// The largest priority ever set (1.0 before any).
    pub fn max_recorded(&self) -> f64 {
        self.max_recorded
    }

    pub fn get(&self, index: usize) -> f64 {
        self.nodes[self.leaves - 1 + index]
    }

    pub fn set(&mut self, index: usize, priority: f64) {
        assert!(
            priority >= 0.0 && priority.is_finite(),
            "priority must be finite and >= 0, got {priority}"
        );
        self.max_recorded = self.max_recorded.max(priority);
        let mut node = self.leaves - 1 + index;
        let delta = priority - self.nodes[node];
        self.nodes[node] = priority;
        while node > 0 {
            node = (node - 1) / 2;
            self.nodes[node] += delta;
        }
    }

    /// The leaf whose cumulative range contains `value` (clamped into `[0, total)`).
    pub fn find(&self, value: f64) -> usize {
        let mut value = value.clamp(0.0, self.total());
        let mut node = 0;
        while node < self.leaves - 1 {
            let left = 2 * node + 1;
            // Descend left when the value falls in the left mass, or when the right is empty
            // (guards against rounding pushing us into a zero-priority subtree).
            if value < self.nodes[left] || self.nodes[left + 1] <= 0.0 {
                node = left;
            } else {
                value -= self.nodes[left];
                node = left + 1;
            }
        }
        node - (self.leaves - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_leaves_by_cumulative_mass() {
        let mut t = SumTree::new(5);
        for (i, p) in [1.0, 0.0, 2.0, 3.0, 4.0].into_iter().enumerate() {
            t.set(i, p);
        }
        assert_eq!(t.total(), 10.0);
        assert_eq!(t.find(0.5), 0);
        assert_eq!(t.find(1.0), 2);
        assert_eq!(t.find(2.99), 2);
        assert_eq!(t.find(3.0), 3);
        assert_eq!(t.find(9.99), 4);
        assert_eq!(t.max_recorded(), 4.0);
        t.set(4, 0.0);
        assert_eq!(t.total(), 6.0);
        assert_eq!(t.find(5.999), 3);
    }
}
