//! Experience replay: a circular buffer that stores each frame once, in the compact type of its
//! [`ObsKind`] (bits for MinAtar, bytes for Atari, f32 for classic control), and builds stacked
//! states and n-step returns when sampling; uniform or prioritized (sum tree) sampling.
//!
//! Follows Dopamine's `dopamine/replay_memory/circular_replay_buffer.py` and
//! `prioritized_replay_buffer.py` (google/dopamine@1093179):
//! - the n-step return is Σ_{k<m} γ^k r_{t+k}, where m stops at the first terminal in the window
//!   (or n); `next_state` is the state at t+m and the bootstrap discount is γ^m (0 if terminal);
//! - stacks at the start of an episode are padded with zero frames;
//! - prioritized sampling is stratified (one draw per equal slice of the total mass), new
//!   transitions get the largest priority recorded so far.
//!
//! Unlike Dopamine, the last frame of every episode is stored too (flagged as starting no
//! transition), so that an episode cut by a time limit bootstraps from its true next state.

mod actions;

use prunus_env::{Action, ActionSpace, ObsKind, Observation};
use rand::Rng;
use serde::{Deserialize, Serialize};

pub use self::actions::Actions;
use crate::sum_tree::SumTree;

/// Replay settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayConfig {
    pub capacity: usize,
    /// Elements of one frame (`c·h·w` or `n`).
    pub frame_len: usize,
    pub kind: ObsKindSer,
    /// Frames per state (4 for Atari, 1 elsewhere).
    pub stack: usize,
    pub n_step: usize,
    pub gamma: f64,
    pub prioritized: bool,
}

/// Serializable mirror of [`ObsKind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObsKindSer {
    Binary,
    Byte,
    Float,
}

impl From<ObsKind> for ObsKindSer {
    fn from(k: ObsKind) -> Self {
        match k {
            ObsKind::Binary => ObsKindSer::Binary,
            ObsKind::Byte => ObsKindSer::Byte,
            ObsKind::Float => ObsKindSer::Float,
        }
    }
}

/// Frame storage in the observation's compact type.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Frames {
    /// One bit per element, `frame_len.div_ceil(8)` bytes per frame.
    Bits(Vec<u8>),
    Bytes(Vec<u8>),
    Floats(Vec<f32>),
}

/// Flags of one slot.
const FIRST: u8 = 1; // first frame of an episode: stacking stops here
const LAST: u8 = 2; // final frame of an episode: starts no transition
const TERMINAL: u8 = 4; // the transition from this frame ended the episode in the MDP

/// A sampled batch, with states flattened as `[batch, stack·frame_len]` (oldest frame first).
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub states: Vec<f32>,
    /// Discrete actions (empty for a continuous action space).
    pub actions: Vec<usize>,
    /// Continuous actions `[batch, dims]` (empty for a discrete action space).
    pub action_values: Vec<f32>,
    /// n-step discounted (clipped) reward sums.
    pub returns: Vec<f32>,
    pub next_states: Vec<f32>,
    /// γ^m, or 0 when the window hit a terminal.
    pub discounts: Vec<f32>,
    /// Slot indices (for priority updates).
    pub indices: Vec<usize>,
    /// Stored priorities of the sampled slots (1 for uniform replay).
    pub priorities: Vec<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Replay {
    config: ReplayConfig,
    frames: Frames,
    actions: Actions,
    rewards: Vec<f32>,
    flags: Vec<u8>,
    /// Frames ever written; slot of logical index `i` is `i % capacity`.
    count: u64,
    /// Whether the next pushed frame starts an episode.
    at_episode_start: bool,
    tree: Option<SumTree>,
}

impl Replay {
    /// A replay for discrete actions.
    pub fn new(config: ReplayConfig) -> Self {
        Self::with_storage(config, Actions::Discrete(Vec::new()))
    }

    /// A replay storing actions of `space` (one byte each for discrete spaces).
    pub fn for_actions(config: ReplayConfig, space: &ActionSpace) -> Self {
        let actions = match space {
            ActionSpace::Discrete(_) => Actions::Discrete(Vec::new()),
            ActionSpace::Box { low, .. } => Actions::Continuous {
                dims: low.len(),
                values: Vec::new(),
            },
        };
        Self::with_storage(config, actions)
    }

    fn with_storage(config: ReplayConfig, actions: Actions) -> Self {
        assert!(
            config.capacity > config.n_step + config.stack,
            "replay capacity too small"
        );
        let frames = match config.kind {
            ObsKindSer::Binary => Frames::Bits(Vec::new()),
            ObsKindSer::Byte => Frames::Bytes(Vec::new()),
            ObsKindSer::Float => Frames::Floats(Vec::new()),
        };
        let tree = config.prioritized.then(|| SumTree::new(config.capacity));
        Replay {
            config,
            frames,
            actions,
            rewards: Vec::new(),
            flags: Vec::new(),
            count: 0,
            at_episode_start: true,
            tree,
        }
    }

    pub fn config(&self) -> &ReplayConfig {
        &self.config
    }

    /// Reserves room for `frames` more frames (a replay filled once, from a dataset, then
    /// holds no more than it needs instead of up to twice that).
    pub fn reserve(&mut self, frames: usize) {
        let n = self.config.frame_len;
        match &mut self.frames {
            Frames::Bits(buf) => buf.reserve(frames * n.div_ceil(8)),
            Frames::Bytes(buf) => buf.reserve(frames * n),
            Frames::Floats(buf) => buf.reserve(frames * n),
        }
        self.actions.reserve(frames);
        self.rewards.reserve(frames);
        self.flags.reserve(frames);
    }

    /// Transitions currently stored (frames, including episodes' final frames).
    pub fn len(&self) -> usize {
        self.count.min(self.config.capacity as u64) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Frames ever added (the "add count" that gates learning).
    pub fn add_count(&self) -> u64 {
        self.count
    }

    /// Length of one state (stacked frames).
    pub fn state_len(&self) -> usize {
        self.config.stack * self.config.frame_len
    }

    /// Stores frame `obs` and the transition that starts from it.
    pub fn push(&mut self, obs: Observation<'_>, action: Action<'_>, reward: f32, terminal: bool) {
        let mut flags = if terminal { TERMINAL } else { 0 };
        if self.at_episode_start {
            flags |= FIRST;
        }
        self.at_episode_start = false;
        let max = self.tree.as_ref().map(SumTree::max_recorded).unwrap_or(1.0);
        self.write(obs, Some(action), reward, flags, max);
    }

    /// Stores the frame that ended an episode (terminal or truncated); it starts no transition.
    pub fn end_episode(&mut self, final_obs: Observation<'_>) {
        let flags = LAST | if self.at_episode_start { FIRST } else { 0 };
        self.write(final_obs, None, 0.0, flags, 0.0);
        self.at_episode_start = true;
    }

    fn write(
        &mut self,
        obs: Observation<'_>,
        action: Option<Action<'_>>,
        reward: f32,
        flags: u8,
        priority: f64,
    ) {
        let cap = self.config.capacity;
        let slot = (self.count % cap as u64) as usize;
        let n = self.config.frame_len;
        let append = self.flags.len() < cap;
        match (&mut self.frames, obs) {
            (Frames::Bits(buf), Observation::Binary(v)) => {
                let bytes = n.div_ceil(8);
                let mut packed = vec![0u8; bytes];
                for (i, &b) in v.iter().enumerate() {
                    if b != 0 {
                        packed[i / 8] |= 1 << (i % 8);
                    }
                }
                put(buf, slot * bytes, &packed, append);
            }
            (Frames::Bytes(buf), Observation::Byte(v)) => put(buf, slot * n, v, append),
            (Frames::Floats(buf), Observation::Float(v)) => put(buf, slot * n, v, append),
            _ => panic!("observation type does not match the replay's ObsKind"),
        }
        match action {
            Some(action) => self.actions.put(slot, append, action),
            None => self.actions.put_none(slot, append),
        }
        if append {
            self.rewards.push(reward);
            self.flags.push(flags);
        } else {
            self.rewards[slot] = reward;
            self.flags[slot] = flags;
        }
        if let Some(tree) = &mut self.tree {
            tree.set(slot, priority);
        }
        self.count += 1;
    }

    fn slot(&self, logical: u64) -> usize {
        (logical % self.config.capacity as u64) as usize
    }

    fn oldest(&self) -> u64 {
        self.count.saturating_sub(self.config.capacity as u64)
    }

    /// Decodes the frame in `slot` into `out` (length `frame_len`).
    fn frame_into(&self, slot: usize, out: &mut [f32]) {
        let n = self.config.frame_len;
        match &self.frames {
            Frames::Bits(buf) => {
                let bytes = n.div_ceil(8);
                let packed = &buf[slot * bytes..(slot + 1) * bytes];
                for (i, o) in out.iter_mut().enumerate() {
                    *o = ((packed[i / 8] >> (i % 8)) & 1) as f32;
                }
            }
            Frames::Bytes(buf) => {
                for (o, &b) in out.iter_mut().zip(&buf[slot * n..(slot + 1) * n]) {
                    *o = b as f32;
                }
            }
            Frames::Floats(buf) => out.copy_from_slice(&buf[slot * n..(slot + 1) * n]),
        }
    }

    /// Writes the stacked state ending at logical index `l` (oldest frame first, zero frames
    /// before the episode's first frame).
    fn state_into(&self, l: u64, out: &mut [f32]) {
        let (n, s) = (self.config.frame_len, self.config.stack);
        out.fill(0.0);
        let mut idx = l;
        for k in (0..s).rev() {
            let slot = self.slot(idx);
            self.frame_into(slot, &mut out[k * n..(k + 1) * n]);
            if self.flags[slot] & FIRST != 0 || idx == 0 || idx - 1 < self.oldest() {
                break;
            }
            idx -= 1;
        }
    }

    /// The n-step window from logical index `l`: (discounted return, steps m, terminal), or
    /// `None` if `l` starts no transition or its window is not fully written yet.
    fn window(&self, l: u64) -> Option<(f32, u64, bool)> {
        if l < self.oldest() || l >= self.count || self.flags[self.slot(l)] & LAST != 0 {
            return None;
        }
        let gamma = self.config.gamma;
        let mut ret = 0.0f64;
        let mut disc = 1.0f64;
        for k in 0..self.config.n_step as u64 {
            let j = l + k;
            if j + 1 >= self.count {
                return None; // next frame not written yet
            }
            let slot = self.slot(j);
            ret += disc * self.rewards[slot] as f64;
            disc *= gamma;
            if self.flags[slot] & TERMINAL != 0 {
                return Some((ret as f32, k + 1, true));
            }
            if self.flags[self.slot(j + 1)] & LAST != 0 {
                return Some((ret as f32, k + 1, false));
            }
        }
        Some((ret as f32, self.config.n_step as u64, false))
    }

    /// Whether a transition can be sampled from `slot` now.
    fn logical(&self, slot: usize) -> u64 {
        // The most recent logical index stored in this slot.
        let cap = self.config.capacity as u64;
        let last = self.count - 1;
        last - ((last + cap - slot as u64) % cap)
    }

    /// Samples `batch_size` transitions; `None` until at least one transition is complete.
    pub fn sample(&self, batch_size: usize, rng: &mut impl Rng) -> Option<Batch> {
        if self.count < 2 {
            return None;
        }
        let mut picks = Vec::with_capacity(batch_size);
        for i in 0..batch_size {
            let mut found = None;
            for _attempt in 0..1000 {
                let l = match &self.tree {
                    Some(tree) => {
                        let total = tree.total();
                        if total <= 0.0 {
                            return None;
                        }
                        // Stratified: slice i of the mass first, then anywhere.
                        let (lo, hi) = if _attempt == 0 {
                            (
                                total * i as f64 / batch_size as f64,
                                total * (i + 1) as f64 / batch_size as f64,
                            )
                        } else {
                            (0.0, total)
                        };
                        self.logical(tree.find(rng.random_range(lo..hi)))
                    }
                    None => rng.random_range(self.oldest()..self.count),
                };
                if let Some(w) = self.window(l) {
                    found = Some((l, w));
                    break;
                }
            }
            picks.push(found?);
        }
        let sl = self.state_len();
        let mut batch = Batch {
            states: vec![0.0; batch_size * sl],
            next_states: vec![0.0; batch_size * sl],
            ..Batch::default()
        };
        for (b, (l, (ret, m, terminal))) in picks.into_iter().enumerate() {
            let slot = self.slot(l);
            self.state_into(l, &mut batch.states[b * sl..(b + 1) * sl]);
            self.state_into(l + m, &mut batch.next_states[b * sl..(b + 1) * sl]);
            match self.actions.continuous(slot) {
                None => batch.actions.extend(self.actions.discrete(slot)),
                Some(a) => batch.action_values.extend_from_slice(a),
            }
            batch.returns.push(ret);
            batch.discounts.push(if terminal {
                0.0
            } else {
                self.config.gamma.powi(m as i32) as f32
            });
            batch.indices.push(slot);
            batch
                .priorities
                .push(self.tree.as_ref().map_or(1.0, |t| t.get(slot)));
        }
        Some(batch)
    }

    /// Sets the priorities of sampled slots (prioritized replay only).
    pub fn update_priorities(&mut self, indices: &[usize], priorities: &[f64]) {
        if let Some(tree) = &mut self.tree {
            for (&i, &p) in indices.iter().zip(priorities) {
                if self.flags[i] & LAST == 0 {
                    tree.set(i, p);
                }
            }
        }
    }
}

fn put<T: Copy>(buf: &mut Vec<T>, at: usize, values: &[T], append: bool) {
    if append {
        debug_assert_eq!(buf.len(), at);
        buf.extend_from_slice(values);
    } else {
        buf[at..at + values.len()].copy_from_slice(values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64;

    fn config(capacity: usize, stack: usize, n_step: usize, prioritized: bool) -> ReplayConfig {
        ReplayConfig {
            capacity,
            frame_len: 2,
            kind: ObsKindSer::Float,
            stack,
            n_step,
            gamma: 0.5,
            prioritized,
        }
    }

    /// Frame t is [t, -t]; reward of the transition from frame t is t.
    fn episode(r: &mut Replay, start: u32, len: u32, terminal: bool) {
        for t in start..start + len {
            let last = t == start + len - 1;
            r.push(
                Observation::Float(&[t as f32, -(t as f32)]),
                Action::Discrete((t % 3) as usize),
                t as f32,
                last && terminal,
            );
        }
        let t = (start + len) as f32;
        r.end_episode(Observation::Float(&[t, -t]));
    }

    #[test]
    fn n_step_returns_stop_at_terminals_and_truncations() {
        let mut r = Replay::new(config(100, 1, 3, false));
        episode(&mut r, 1, 4, true); // frames 1..4, terminal after 4, final frame 5
        episode(&mut r, 10, 2, false); // truncated: frames 10, 11, final 12
        // From frame 1: 1 + .5*2 + .25*3, next = frame 4, discount .125.
        assert_eq!(r.window(0), Some((2.75, 3, false)));
        // From frame 3: 3 + .5*4 then terminal.
        assert_eq!(r.window(2), Some((5.0, 2, true)));
        // The final frame starts nothing.
        assert_eq!(r.window(4), None);
        // From frame 10: 10 + .5*11, then the episode was cut: bootstrap from frame 12.
        assert_eq!(r.window(5), Some((15.5, 2, false)));
        let mut s = [0.0; 2];
        r.state_into(5 + 2, &mut s);
        assert_eq!(s, [12.0, -12.0]);
    }

    #[test]
    fn stacks_pad_with_zeros_at_episode_start() {
        let mut r = Replay::new(config(100, 3, 1, false));
        episode(&mut r, 1, 3, true);
        episode(&mut r, 7, 3, true);
        let mut s = [9.0; 6];
        r.state_into(4, &mut s); // frame 7, first of episode 2
        assert_eq!(s, [0.0, 0.0, 0.0, 0.0, 7.0, -7.0]);
        r.state_into(6, &mut s); // frame 9
        assert_eq!(s, [7.0, -7.0, 8.0, -8.0, 9.0, -9.0]);
    }

    #[test]
    fn binary_frames_round_trip_through_bits() {
        let mut r = Replay::new(ReplayConfig {
            kind: ObsKindSer::Binary,
            frame_len: 11,
            ..config(10, 1, 1, false)
        });
        let f: Vec<u8> = (0..11).map(|i| (i % 3 == 0) as u8).collect();
        r.push(Observation::Binary(&f), Action::Discrete(1), 0.0, false);
        let mut out = [0.0; 11];
        r.frame_into(0, &mut out);
        assert_eq!(
            out.to_vec(),
            f.iter().map(|&b| b as f32).collect::<Vec<_>>()
        );
    }

    #[test]
    fn wraps_around_and_samples_only_valid_transitions() {
        let mut r = Replay::new(config(16, 2, 2, false));
        for e in 0..10 {
            episode(&mut r, 100 * e + 1, 5, e % 2 == 0);
        }
        assert_eq!(r.len(), 16);
        let mut rng = Pcg64::seed_from_u64(1);
        let b = r.sample(64, &mut rng).expect("batch");
        for i in 0..64 {
            let frame = b.states[i * 4 + 2];
            // The sampled state's newest frame is a real step frame, and the action matches it.
            assert_eq!(b.actions[i], (frame as u32 % 3) as usize);
            assert_eq!(b.states[i * 4 + 3], -frame);
            assert!(b.discounts[i] == 0.0 || b.discounts[i] == 0.25 || b.discounts[i] == 0.5);
        }
    }

    #[test]
    fn prioritized_sampling_follows_priorities() {
        let mut r = Replay::new(config(64, 1, 1, true));
        episode(&mut r, 1, 40, false);
        let idx: Vec<usize> = (0..40).collect();
        let pri: Vec<f64> = (0..40).map(|i| if i == 7 { 100.0 } else { 0.01 }).collect();
        r.update_priorities(&idx, &pri);
        let mut rng = Pcg64::seed_from_u64(2);
        let b = r.sample(32, &mut rng).expect("batch");
        let hits = b.indices.iter().filter(|&&i| i == 7).count();
        assert!(
            hits >= 28,
            "slot 7 holds ~99.6% of the mass, sampled {hits}/32"
        );
        assert!(b.priorities.iter().all(|&p| p == 100.0 || p == 0.01));
    }

    #[test]
    fn continuous_actions_are_stored_and_sampled_with_their_transitions() {
        let space = ActionSpace::Box {
            low: vec![-1.0; 2],
            high: vec![1.0; 2],
        };
        let mut r = Replay::for_actions(config(16, 1, 1, false), &space);
        for t in 0..6 {
            let a = [t as f32 / 10.0, -(t as f32) / 10.0];
            r.push(
                Observation::Float(&[t as f32, -(t as f32)]),
                Action::Continuous(&a),
                0.0,
                false,
            );
        }
        r.end_episode(Observation::Float(&[6.0, -6.0]));
        let b = r.sample(8, &mut Pcg64::seed_from_u64(3)).expect("batch");
        assert!(b.actions.is_empty());
        assert_eq!(b.action_values.len(), 16);
        for i in 0..8 {
            let frame = b.states[i * 2];
            assert_eq!(b.action_values[2 * i], frame / 10.0);
            assert_eq!(b.action_values[2 * i + 1], -frame / 10.0);
        }
    }
}
