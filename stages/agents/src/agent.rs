//! A value-based agent: online and target Q-networks, Adam, acting and one gradient step of
//! either objective (DQN's TD regression or C51's cross-entropy).

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::store::ModuleRecord;
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::adam::Adam;
use crate::hooks::{Prunable, Surgery};
use crate::networks::{HeadConfig, NetworkConfig, QNetwork};
use crate::objectives::{self, FullRainbow, Objective};
use crate::parameters::ParameterSet;
use crate::replay::Batch;
use crate::tensor::to_vec;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentConfig {
    /// The torso; `outputs` is derived from the actions and the objective.
    pub network: NetworkConfig,
    pub num_actions: usize,
    pub objective: Objective,
    pub learning_rate: f64,
    pub adam_epsilon: f32,
    /// Coupled weight decay added to every gradient before Adam, `g + wd * w` (Dopamine ReDo
    /// lab's `RecycledDQNAgent` chains `optax.add_decayed_weights` before Adam, biases included;
    /// `dopamine/labs/redo` at google/dopamine@1093179). 0: none.
    pub weight_decay: f64,
}

impl AgentConfig {
    pub fn network_config(&self) -> NetworkConfig {
        NetworkConfig {
            outputs: self.num_actions * self.objective.outputs_per_action(),
            ..self.network.clone()
        }
    }

    /// The head options the objective asks for (dueling, noisy: the Atari-100k agents); plain
    /// for every other objective.
    pub fn head(&self) -> HeadConfig {
        match self.objective {
            Objective::FullRainbow(f) => HeadConfig {
                dueling: f.dueling,
                noisy: f.noisy,
                atoms: f.outputs_per_action(),
            },
            _ => HeadConfig::default(),
        }
    }
}

/// What one gradient step reports.
pub struct LearnOutput {
    pub loss: f32,
    /// New priorities for the sampled slots (C51: sqrt(loss + 1e-10)).
    pub priorities: Vec<f64>,
}

pub struct Agent {
    config: AgentConfig,
    /// Trained, on the autodiff device.
    online: QNetwork,
    /// Frozen copy (hard-synced), on the plain device.
    target: QNetwork,
    /// `online` without autodiff, refreshed after each update, for acting.
    acting: QNetwork,
    optimizer: Adam,
    device: Device,
}

impl Agent {
    /// A fresh agent with weights drawn from `rng`; `device` is the plain (non-autodiff) device.
    pub fn new(config: AgentConfig, rng: &mut impl Rng, device: &Device) -> Self {
        crate::malloc::tune();
        let online = QNetwork::with_head(
            &config.network_config(),
            &config.head(),
            rng,
            &device.clone().autodiff(),
        );
        let optimizer = Adam::new(config.adam_epsilon);
        let acting = online.valid();
        let target = acting.clone();
        Agent {
            config,
            online,
            target,
            acting,
            optimizer,
            device: device.clone(),
        }
    }

    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The online network (plain device), e.g. for probes and pruning.
    pub fn network(&self) -> &QNetwork {
        &self.acting
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Q-values `[batch, actions]` of a batch of flattened states (noise-free).
    pub fn q_values(&self, states: &[f32], batch: usize) -> Vec<f32> {
        self.q_values_noisy(states, batch, None)
    }

    fn q_values_noisy(
        &self,
        states: &[f32],
        batch: usize,
        noise: Option<&crate::networks::Noise>,
    ) -> Vec<f32> {
        let x = Tensor::<2>::from_data(
            TensorData::new(states.to_vec(), [batch, states.len() / batch]),
            &self.device,
        );
        self.config
            .objective
            .q_values(to_vec(self.acting.forward_noisy(x, noise)))
    }

    /// ε-greedy action for one state while training (ties go to the lowest index, like
    /// `argmax`); a noisy network acts with fresh noise from `rng`.
    pub fn act(&self, state: &[f32], epsilon: f64, rng: &mut impl Rng) -> usize {
        if rng.random::<f64>() < epsilon {
            return rng.random_range(0..self.config.num_actions);
        }
        let noise = self.acting.sample_noise(rng);
        argmax(&self.q_values_noisy(state, 1, noise.as_ref()))
    }

    /// [`act`](Self::act) in evaluation: noisy layers without noise (Dopamine's `eval_mode`);
    /// the same as `act` for every other network.
    pub fn act_eval(&self, state: &[f32], epsilon: f64, rng: &mut impl Rng) -> usize {
        if rng.random::<f64>() < epsilon {
            return rng.random_range(0..self.config.num_actions);
        }
        argmax(&self.q_values(state, 1))
    }

    /// Whether the network has noisy layers (then exploration is the noise: ε is 0 in training,
    /// Dopamine's `zero_epsilon`).
    pub fn is_noisy(&self) -> bool {
        self.acting.is_noisy()
    }

    /// One gradient step on `batch` (with importance weights when `prioritized`).
    pub fn learn(&mut self, batch: &Batch, prioritized: bool) -> LearnOutput {
        let b = batch.actions.len();
        let sl = batch.states.len() / b;
        let next = Tensor::<2>::from_data(
            TensorData::new(batch.next_states.clone(), [b, sl]),
            &self.device,
        );
        let next_out = to_vec(self.target.forward(next));
        let states =
            Tensor::<2>::from_data(TensorData::new(batch.states.clone(), [b, sl]), &self.device);
        let out = self.online.forward(states);
        let per_sample = self.config.objective.per_sample_loss(
            out,
            &next_out,
            batch,
            self.config.num_actions,
            &self.device,
        );
        self.descend(per_sample, batch, prioritized)
    }

    /// One gradient step that may draw from `rng`: the Atari-100k objective's augmentation,
    /// noise and double-DQN targets ([`FullRainbow`]); every other objective is [`learn`]
    /// (which draws nothing).
    ///
    /// As Dopamine's `Atari100kRainbowAgent._training_step_update` and `full_rainbow_agent.train`:
    /// states and next states are augmented with draws of their own; the online network on the
    /// states has one noise draw, the target network (and, for double DQN, the online network)
    /// on the next states another, shared by both.
    ///
    /// [`learn`]: Self::learn
    pub fn learn_with(
        &mut self,
        batch: &Batch,
        prioritized: bool,
        rng: &mut impl Rng,
    ) -> LearnOutput {
        let Objective::FullRainbow(f) = self.config.objective else {
            return self.learn(batch, prioritized);
        };
        let b = batch.actions.len();
        let sl = batch.states.len() / b;
        let (mut states, mut next) = (batch.states.clone(), batch.next_states.clone());
        if f.augment {
            let shape = image_shape(&self.config.network.input);
            crate::augment::augment(&mut states, shape, rng);
            crate::augment::augment(&mut next, shape, rng);
        }
        let noise = self.acting.sample_noise(rng);
        let next_noise = self.acting.sample_noise(rng);
        let next = Tensor::<2>::from_data(TensorData::new(next, [b, sl]), &self.device);
        let next_target = to_vec(self.target.forward_noisy(next.clone(), next_noise.as_ref()));
        let next_online = f
            .double_dqn
            .then(|| to_vec(self.acting.forward_noisy(next, next_noise.as_ref())));
        let states = Tensor::<2>::from_data(TensorData::new(states, [b, sl]), &self.device);
        let out = self.online.forward_noisy(states, noise.as_ref());
        let per_sample = full_loss(&f, out, &next_target, next_online.as_deref(), batch, self);
        self.descend(per_sample, batch, prioritized)
    }

    /// The optimizer step on a per-sample loss (importance-weighted when `prioritized`).
    fn descend(&mut self, per_sample: Tensor<1>, batch: &Batch, prioritized: bool) -> LearnOutput {
        let b = batch.actions.len();
        let per_sample_values = to_vec(per_sample.clone().inner());
        let loss = if prioritized {
            let w = objectives::importance_weights(&batch.priorities);
            let w = Tensor::<1>::from_data(TensorData::new(w, [b]), &self.device);
            (per_sample * w).mean()
        } else {
            per_sample.mean()
        };
        let grads = GradientsParams::from_grads(loss.backward(), &self.online);
        self.online = self.optimizer.step(
            self.config.learning_rate,
            self.config.weight_decay,
            self.online.clone(),
            grads,
        );
        self.acting = self.online.valid();
        LearnOutput {
            loss: per_sample_values.iter().sum::<f32>() / b as f32,
            priorities: per_sample_values
                .iter()
                .map(|&l| (l as f64 + 1e-10).sqrt())
                .collect(),
        }
    }

    /// An agent acting with trained weights (burnpack bytes of an online network, as in a
    /// [`Snapshot`](crate::checkpoint::Snapshot)), its target a copy of them and Adam fresh:
    /// what collecting a checkpoint's policy runs.
    pub fn from_network(
        config: AgentConfig,
        online: &[u8],
        device: &Device,
    ) -> Result<Self, String> {
        let mut scratch = rand_pcg::Pcg64::new(0, 0);
        let mut agent = Agent::new(config, &mut scratch, device);
        agent.online = load_network(agent.online, online)?;
        agent.acting = agent.online.valid();
        agent.target = agent.acting.clone();
        Ok(agent)
    }

    /// Hard copy of the online weights into the target network.
    pub fn sync_target(&mut self) {
        self.target = self.acting.clone();
    }

    /// Re-applies pruning masks (see [`QNetwork::apply_masks`]) to the online network.
    pub fn apply_masks(&mut self, masks: &[Option<Tensor<1>>]) {
        self.online = self.online.clone().apply_masks(masks);
        self.acting = self.online.valid();
    }

    /// Replaces parameters of the online network and zeroes Adam moments (see [`Surgery`]).
    /// The target network is left alone (it catches up at its next sync).
    pub fn operate(&mut self, surgery: &Surgery) {
        if !surgery.values.is_empty() {
            self.online = self.online.clone().with_parameters(&surgery.values);
            self.acting = self.online.valid();
        }
        for (&param, entries) in &surgery.zero_moments {
            self.optimizer.zero_moments(param, entries.as_deref());
        }
    }

    /// The optimizer (for inspection).
    pub fn optimizer(&self) -> &Adam {
        &self.optimizer
    }

    /// Serialized online network, target network and optimizer state.
    pub fn save(&self) -> Result<AgentState, String> {
        let record = |m: &QNetwork| {
            m.clone()
                .into_record()
                .into_bytes()
                .map(|b| b.to_vec())
                .map_err(|e| e.to_string())
        };
        Ok(AgentState {
            online: record(&self.online)?,
            target: record(&self.target)?,
            optimizer: self.optimizer.to_bytes(),
        })
    }

    /// An agent restored from [`save`](Self::save)d state.
    pub fn load(config: AgentConfig, state: &AgentState, device: &Device) -> Result<Self, String> {
        let mut scratch = rand_pcg::Pcg64::new(0, 0);
        let mut agent = Agent::new(config, &mut scratch, device);
        agent.online = load_network(agent.online, &state.online)?;
        agent.target = load_network(agent.target, &state.target)?;
        agent.acting = agent.online.valid();
        agent.optimizer = Adam::from_bytes(&state.optimizer, device)?;
        Ok(agent)
    }
}

impl Prunable for Agent {
    fn parameters(&self) -> &dyn ParameterSet {
        &self.acting
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn apply_masks(&mut self, masks: &[Option<Tensor<1>>]) {
        Agent::apply_masks(self, masks);
    }

    fn operate(&mut self, surgery: &Surgery) {
        Agent::operate(self, surgery);
    }
}

/// Index of the largest value, ties to the lowest (as `argmax`).
fn argmax(q: &[f32]) -> usize {
    (0..q.len()).fold(0, |best, a| if q[a] > q[best] { a } else { best })
}

/// `[channels, height, width]` of an image input (the augmentation needs images; the kinds
/// that augment accept image environments only).
fn image_shape(input: &[usize]) -> [usize; 3] {
    match input {
        [c, h, w] => [*c, *h, *w],
        other => panic!("image augmentation needs [c, h, w] inputs, got {other:?}"),
    }
}

/// [`FullRainbow::per_sample_loss`] with the agent's action count and device.
fn full_loss(
    f: &FullRainbow,
    out: Tensor<2>,
    next_target: &[f32],
    next_online: Option<&[f32]>,
    batch: &Batch,
    agent: &Agent,
) -> Tensor<1> {
    f.per_sample_loss(
        out,
        next_target,
        next_online,
        batch,
        agent.config.num_actions,
        &agent.device,
    )
}

/// A network's weights from serialized record bytes (as written by [`Agent::save`]).
pub fn load_network(net: QNetwork, bytes: &[u8]) -> Result<QNetwork, String> {
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| e.to_string())?;
    net.try_load_record(record).map_err(|e| e.to_string())
}

/// Serialized agent (see [`Agent::save`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgentState {
    pub online: Vec<u8>,
    pub target: Vec<u8>,
    pub optimizer: Vec<u8>,
}
