//! Classic control (Gymnasium's `CartPole-v1` and `Acrobot-v1`): tiny, fast environments for
//! agent tests that must learn within CI minutes.

mod acrobot;
mod cartpole;

pub use acrobot::Acrobot;
pub use cartpole::CartPole;
