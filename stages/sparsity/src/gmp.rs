//! Gradual magnitude pruning schedule (Zhu & Gupta 2017) with JaxPruner's exact semantics.
//!
//! Source read: `jaxpruner/sparsity_schedules.py::PolynomialSchedule` (power 3) and
//! `PeriodicSchedule::is_mask_update_iter` (google-research/jaxpruner at f133ee5); the cubic
//! schedule is Zhu & Gupta 2017 ("To prune, or not to prune").
//!
//! Steps are **gradient (optimizer) steps**, counted from 0 like JaxPruner's `SparseState.count`,
//! which is incremented once per optimizer update. They are not agent or environment steps.
//!
//! - A mask update happens at step `t` iff `t % update_freq == 0` and `start <= t <= end`.
//! - At an update the target sparsity is `s_f * (1 - (1 - p)^3)` with
//!   `p = clip(t + 1 - start, 0, end - start) / (end - start)` (`p = 1` when `start == end`).
//!   Note the `+ 1`: JaxPruner's progress runs one step ahead of the paper's Equation 1, so the
//!   first update (at `start`) already prunes a little and the update at `end` reaches `s_f`.
//! - Between updates the masks are frozen, so the sparsity in effect at step `t` is the target of
//!   the last update at or before `t` ([`GmpSchedule::sparsity_in_effect`]).

use serde::{Deserialize, Serialize};

use crate::SparsityError;

/// A schedule boundary: a fraction of the run's gradient steps (the paper's 20% / 80%) or an
/// absolute gradient step (the "40M schedule on a 100M run" experiment, JaxPruner's 500k / 2M).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Boundary {
    /// Fraction of the total gradient steps, in `[0, 1]`.
    Fraction(f64),
    /// Absolute gradient step.
    Step(u64),
}

impl Boundary {
    /// The absolute step of this boundary. Fractions are rounded to the nearest multiple of
    /// `update_freq`, so that a mask update lands exactly on both ends (as JaxPruner's
    /// 500k / 2M / 1000 do) and the last update reaches the target sparsity.
    fn resolve(self, total_steps: u64, update_freq: u64) -> Result<u64, SparsityError> {
        match self {
            Boundary::Step(s) => Ok(s),
            Boundary::Fraction(f) if (0.0..=1.0).contains(&f) => {
                let raw = f * total_steps as f64 / update_freq as f64;
                Ok(raw.round() as u64 * update_freq)
            }
            Boundary::Fraction(f) => Err(SparsityError::Schedule(format!(
                "schedule boundary fraction {f} is outside [0, 1]; give a fraction of training \
                 such as 0.2 or an absolute gradient step"
            ))),
        }
    }
}

/// The cubic GMP schedule. Construct with [`GmpSchedule::new`]; all fields are resolved to
/// absolute gradient steps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GmpSchedule {
    /// Final (target) sparsity `s_f` in `[0, 1)`.
    pub target: f64,
    /// First gradient step at which masks may be updated.
    pub start: u64,
    /// Last gradient step at which masks may be updated.
    pub end: u64,
    /// Masks are updated every `update_freq` gradient steps.
    pub update_freq: u64,
}

impl GmpSchedule {
    /// The polynomial power of Zhu & Gupta's schedule (JaxPruner's `PolynomialSchedule.power`).
    pub const POWER: i32 = 3;

    /// The paper's default: 95% target, pruning from 20% to 80% of training, masks updated every
    /// 1,000 gradient steps (JaxPruner's Dopamine baseline,
    /// `jaxpruner/baselines/dopamine/configs/dqn.gin`; the paper's Fig. 2: 95%).
    pub fn paper_default(total_steps: u64) -> Result<Self, SparsityError> {
        Self::new(
            0.95,
            Boundary::Fraction(0.2),
            Boundary::Fraction(0.8),
            1000,
            total_steps,
        )
    }

    /// Resolves and validates a schedule over a run of `total_steps` gradient steps.
    ///
    /// Errors when the target is outside `[0, 1)`, `update_freq` is 0, `end < start`, no update
    /// step lies in `[start, end]`, or the last update step would not reach the target (an
    /// absolute `end` must be a multiple of `update_freq`, or one more than one).
    pub fn new(
        target: f64,
        start: Boundary,
        end: Boundary,
        update_freq: u64,
        total_steps: u64,
    ) -> Result<Self, SparsityError> {
        let err = |m: String| Err(SparsityError::Schedule(m));
        if !(0.0..1.0).contains(&target) {
            return err(format!(
                "target sparsity {target} must be in [0, 1) (e.g. 0.95 for 95% of weights pruned)"
            ));
        }
        if update_freq == 0 {
            return err("update_freq must be at least 1 gradient step".into());
        }
        let (start, end) = (
            start.resolve(total_steps, update_freq)?,
            end.resolve(total_steps, update_freq)?,
        );
        if end < start {
            return err(format!(
                "pruning end step {end} is before start step {start}; swap them"
            ));
        }
        let schedule = GmpSchedule {
            target,
            start,
            end,
            update_freq,
        };
        let Some(last) = schedule.last_update() else {
            return err(format!(
                "no multiple of update_freq {update_freq} lies in [{start}, {end}], so masks \
                 would never be updated; widen the window or lower update_freq"
            ));
        };
        if last + 1 < end {
            return err(format!(
                "the last mask update (step {last}) would stop short of the target sparsity; \
                 make the end step ({end}) a multiple of update_freq ({update_freq})"
            ));
        }
        Ok(schedule)
    }

    /// Whether the masks are recomputed at gradient step `step` (JaxPruner's
    /// `is_mask_update_iter`).
    pub fn should_update(&self, step: u64) -> bool {
        step.is_multiple_of(self.update_freq) && self.start <= step && step <= self.end
    }

    /// The scheduled sparsity at a mask update at gradient step `step` (JaxPruner's
    /// `get_sparsity_at_step`). Meaningful at every step; masks only follow it at update steps.
    pub fn sparsity_at(&self, step: u64) -> f64 {
        let progress = if self.end == self.start {
            1.0
        } else {
            let length = (self.end - self.start) as f64;
            let done = (step as f64 + 1.0 - self.start as f64).clamp(0.0, length);
            done / length
        };
        self.target * (1.0 - (1.0 - progress).powi(Self::POWER))
    }

    /// The scheduled sparsity at `step` of a layer whose final sparsity is `layer_target`.
    ///
    /// JaxPruner allocates the per-layer targets once, at the final sparsity (ERK), and at each
    /// update scales every layer's own target by the same cubic factor; it does **not** re-run
    /// ERK at the current overall sparsity (which would move the dense/sparse split).
    pub fn layer_sparsity_at(&self, layer_target: f64, step: u64) -> f64 {
        GmpSchedule {
            target: layer_target,
            ..*self
        }
        .sparsity_at(step)
    }

    /// The sparsity of the masks in effect during gradient step `step`: the target of the last
    /// update at or before `step`, or 0 before the first update.
    pub fn sparsity_in_effect(&self, step: u64) -> f64 {
        if step < self.start {
            return 0.0;
        }
        let last = (step.min(self.end) / self.update_freq) * self.update_freq;
        if last < self.start {
            0.0
        } else {
            self.sparsity_at(last)
        }
    }

    /// The last update step in `[start, end]`, if any.
    fn last_update(&self) -> Option<u64> {
        let last = (self.end / self.update_freq) * self.update_freq;
        (last >= self.start).then_some(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Equation 1 written independently: Zhu & Gupta with JaxPruner's `count + 1` progress.
    fn formula(s_f: f64, t: u64, t0: u64, t1: u64) -> f64 {
        if t1 == t0 {
            return s_f;
        }
        let p = ((t as f64 + 1.0 - t0 as f64) / (t1 - t0) as f64).clamp(0.0, 1.0);
        s_f + (0.0 - s_f) * (1.0 - p).powi(3)
    }

    #[test]
    fn jaxpruner_dopamine_baseline_every_step() {
        // 500k / 2M / 1000 of ~2.5M gradient steps, checked at every step of the run.
        let s = GmpSchedule::new(
            0.95,
            Boundary::Step(500_000),
            Boundary::Step(2_000_000),
            1000,
            2_500_000,
        )
        .unwrap();
        assert_eq!(s, GmpSchedule::paper_default(2_500_000).unwrap());
        let mut updates = 0;
        let mut in_effect = 0.0;
        for t in 0..2_500_000u64 {
            let expect = formula(0.95, t, 500_000, 2_000_000);
            assert!((s.sparsity_at(t) - expect).abs() < 1e-12, "step {t}");
            let update = t % 1000 == 0 && (500_000..=2_000_000).contains(&t);
            assert_eq!(s.should_update(t), update, "step {t}");
            if update {
                updates += 1;
                in_effect = expect;
            }
            assert!(
                (s.sparsity_in_effect(t) - in_effect).abs() < 1e-12,
                "step {t}"
            );
        }
        assert_eq!(updates, 1501);
        // Edges: nothing before start, a sliver at start, exactly the target at end.
        assert_eq!(s.sparsity_at(499_998), 0.0);
        assert!(
            (s.sparsity_at(500_000) - 0.95 * (1.0 - (1.0 - 1.0 / 1.5e6f64).powi(3))).abs() < 1e-15
        );
        assert_eq!(s.sparsity_at(1_999_999), 0.95);
        assert_eq!(s.sparsity_at(2_000_000), 0.95);
        assert_eq!(s.sparsity_in_effect(2_400_000), 0.95);
        // Per layer: the layer's own final sparsity times the same cubic factor.
        let f = s.sparsity_at(1_000_000) / 0.95;
        assert!((s.layer_sparsity_at(0.8520, 1_000_000) - 0.8520 * f).abs() < 1e-12);
        assert_eq!(s.layer_sparsity_at(0.0, 1_000_000), 0.0);
    }

    #[test]
    fn one_shot_and_bad_input() {
        let s = GmpSchedule::new(0.9, Boundary::Step(100), Boundary::Step(100), 10, 1000).unwrap();
        assert!(s.should_update(100) && !s.should_update(90) && !s.should_update(110));
        assert_eq!(s.sparsity_at(0), 0.9);
        assert_eq!(s.sparsity_in_effect(99), 0.0);
        assert_eq!(s.sparsity_in_effect(100), 0.9);
        let bad = [
            GmpSchedule::new(1.0, Boundary::Step(0), Boundary::Step(10), 1, 10),
            GmpSchedule::new(0.5, Boundary::Step(10), Boundary::Step(0), 1, 10),
            GmpSchedule::new(0.5, Boundary::Step(0), Boundary::Step(10), 0, 10),
            GmpSchedule::new(0.5, Boundary::Step(101), Boundary::Step(199), 100, 10),
            GmpSchedule::new(0.5, Boundary::Step(0), Boundary::Step(1500), 1000, 10),
            GmpSchedule::new(0.5, Boundary::Fraction(1.5), Boundary::Step(10), 1, 10),
        ];
        for b in bad {
            let e = b.unwrap_err().to_string();
            assert!(e.contains("schedule"), "{e}");
        }
    }

    #[test]
    fn fractions_snap_to_update_steps() {
        // A MinAtar run: (10M - 1000) / 4 gradient steps.
        let s = GmpSchedule::paper_default(2_499_750).unwrap();
        assert_eq!((s.start, s.end), (500_000, 2_000_000));
        let s = GmpSchedule::new(
            0.5,
            Boundary::Fraction(0.4),
            Boundary::Step(4_000),
            1000,
            7_777,
        )
        .unwrap();
        assert_eq!(s.start, 3_000);
    }

    proptest! {
        #[test]
        fn schedule_matches_formula(
            target in 0.0f64..0.999,
            start in 0u64..5_000,
            len in 0u64..5_000,
            freq in 1u64..300,
        ) {
            let end = ((start + len) / freq) * freq;
            prop_assume!(end >= start && end - (end % freq) >= start);
            let s = GmpSchedule::new(target, Boundary::Step(start), Boundary::Step(end), freq, 0);
            prop_assume!(s.is_ok());
            let s = s.unwrap();
            let mut prev = 0.0;
            for t in 0..end + 3 * freq {
                let v = s.sparsity_at(t);
                prop_assert!((v - formula(target, t, start, end)).abs() < 1e-12);
                prop_assert!(v >= prev - 1e-15 && v <= target);
                prev = v;
                prop_assert_eq!(s.should_update(t), t % freq == 0 && t >= start && t <= end);
            }
            prop_assert!((s.sparsity_in_effect(end + 1) - target).abs() < 1e-12);
        }
    }
}
