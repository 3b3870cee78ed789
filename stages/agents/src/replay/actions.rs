//! Action storage of the replay buffer: one byte per transition for discrete actions (every
//! environment today, at most 256 actions), `dims` floats for continuous ones.
//!
//! Serialized (inside the resume checkpoint, with bincode) exactly as the `Vec<u8>` a discrete
//! buffer used to be: a `u64` length, then the bytes. A continuous buffer writes a length word
//! with its top bit set (no real length has it) carrying `dims`, then the value count and the
//! `f32`s. The format is bincode's, as everything in the resume checkpoint.

use prunus_env::Action;
use serde::de::{Error as _, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Marks a continuous buffer's first word.
const CONTINUOUS: u64 = 1 << 63;

/// The actions of every slot.
#[derive(Clone, Debug, PartialEq)]
pub enum Actions {
    Discrete(Vec<u8>),
    Continuous { dims: usize, values: Vec<f32> },
}

impl Actions {
    /// Writes `action` at `slot`, appending when `append` (the buffer is still filling).
    pub fn put(&mut self, slot: usize, append: bool, action: Action<'_>) {
        match (self, action) {
            (Actions::Discrete(v), Action::Discrete(a)) => {
                let a = u8::try_from(a).expect("action index fits in u8");
                if append {
                    v.push(a);
                } else {
                    v[slot] = a;
                }
            }
            (Actions::Continuous { dims, values }, Action::Continuous(a)) => {
                assert_eq!(a.len(), *dims, "continuous action of the wrong dimension");
                if append {
                    values.extend_from_slice(a);
                } else {
                    values[slot * *dims..(slot + 1) * *dims].copy_from_slice(a);
                }
            }
            _ => panic!("action kind does not match the replay's action storage"),
        }
    }

    /// Writes the stand-in action (0, or zeros) of an episode's final frame, which starts no transition.
    /// Reserves room for `n` more slots.
    pub fn reserve(&mut self, n: usize) {
        match self {
            Actions::Discrete(v) => v.reserve(n),
            Actions::Continuous { dims, values } => values.reserve(n * *dims),
        }
    }

    pub fn put_none(&mut self, slot: usize, append: bool) {
        match self {
            Actions::Discrete(_) => self.put(slot, append, Action::Discrete(0)),
            Actions::Continuous { dims, .. } => {
                let zeros = vec![0.0; *dims];
                self.put(slot, append, Action::Continuous(&zeros));
            }
        }
    }

    /// The discrete action at `slot` (`None` for continuous storage).
    pub fn discrete(&self, slot: usize) -> Option<usize> {
        match self {
            Actions::Discrete(v) => Some(v[slot] as usize),
            Actions::Continuous { .. } => None,
        }
    }

    /// The continuous action at `slot` (`None` for discrete storage).
    pub fn continuous(&self, slot: usize) -> Option<&[f32]> {
        match self {
            Actions::Discrete(_) => None,
            Actions::Continuous { dims, values } => Some(&values[slot * dims..(slot + 1) * dims]),
        }
    }
}

impl Serialize for Actions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Actions::Discrete(v) => {
                let mut t = serializer.serialize_tuple(1 + v.len())?;
                t.serialize_element(&(v.len() as u64))?;
                for b in v {
                    t.serialize_element(b)?;
                }
                t.end()
            }
            Actions::Continuous { dims, values } => {
                let mut t = serializer.serialize_tuple(2 + values.len())?;
                t.serialize_element(&(CONTINUOUS | *dims as u64))?;
                t.serialize_element(&(values.len() as u64))?;
                for x in values {
                    t.serialize_element(x)?;
                }
                t.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Actions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Words;
        impl<'de> Visitor<'de> for Words {
            type Value = Actions;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("replay actions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Actions, A::Error> {
                let head: u64 = element(&mut seq)?;
                if head & CONTINUOUS == 0 {
                    let v = (0..head)
                        .map(|_| element(&mut seq))
                        .collect::<Result<_, _>>()?;
                    return Ok(Actions::Discrete(v));
                }
                let n: u64 = element(&mut seq)?;
                let values = (0..n)
                    .map(|_| element(&mut seq))
                    .collect::<Result<_, _>>()?;
                Ok(Actions::Continuous {
                    dims: (head & !CONTINUOUS) as usize,
                    values,
                })
            }
        }
        deserializer.deserialize_tuple(usize::MAX, Words)
    }
}

fn element<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(seq: &mut A) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| A::Error::custom("truncated replay actions"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discrete_actions_serialize_as_a_byte_vector() {
        let actions = Actions::Discrete(vec![0, 5, 255, 1]);
        let bytes = bincode::serialize(&actions).unwrap();
        assert_eq!(bytes, bincode::serialize(&vec![0u8, 5, 255, 1]).unwrap());
        assert_eq!(bincode::deserialize::<Actions>(&bytes).unwrap(), actions);
    }

    #[test]
    fn continuous_actions_round_trip() {
        let mut actions = Actions::Continuous {
            dims: 2,
            values: Vec::new(),
        };
        actions.put(0, true, Action::Continuous(&[0.5, -1.0]));
        actions.put(1, true, Action::Continuous(&[2.0, 3.0]));
        actions.put(0, false, Action::Continuous(&[0.25, 0.0]));
        let bytes = bincode::serialize(&actions).unwrap();
        let back: Actions = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back, actions);
        assert_eq!(back.continuous(1), Some(&[2.0, 3.0][..]));
        assert_eq!(back.discrete(0), None);
    }
}
