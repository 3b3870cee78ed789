//! Gradual magnitude pruning: the Zhu & Gupta schedule, ERK allocation, magnitude masks.
