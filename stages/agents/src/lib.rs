//! Agents on burn: networks, replay, DQN and Rainbow.
