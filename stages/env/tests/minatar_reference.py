"""Runs the reference MinAtar package for prunus-env's equivalence tests and benchmark.

    trace GAME SEED STEPS MINIMAL   binary records, one per reset or step: action byte (255 after
                                    a reset), reward byte, terminal byte, then the observation as
                                    channel-major [c][y][x] 0/1 bytes
    stats GAME SEED EPISODES        JSON: per-episode returns, lengths and mean per-channel
                                    occupancy (active cells per step) under a random policy
    bench GAME SECONDS              JSON: random-policy steps per second (act + state)

The environment is seeded with SEED and reset without reseeding between episodes; the random
policy draws from numpy's RandomState(SEED + 1000003), so prunus can replay the same actions.
"""

import json
import sys
import time

import numpy as np
from minatar import Environment

POLICY_SEED_OFFSET = 1000003


def make(game, seed):
    env = Environment(game)
    env.seed(seed)
    env.reset()
    return env


def frame(env):
    return np.ascontiguousarray(np.transpose(env.state(), (2, 0, 1)), dtype=np.uint8)


def trace(game, seed, steps, minimal):
    env = make(game, seed)
    actions = env.minimal_action_set() if minimal else list(range(env.num_actions()))
    policy = np.random.RandomState(seed + POLICY_SEED_OFFSET)
    out = sys.stdout.buffer
    out.write(bytes([255, 0, 0]) + frame(env).tobytes())
    for _ in range(steps):
        a = policy.randint(len(actions))
        reward, terminal = env.act(actions[a])
        out.write(bytes([a, int(reward), int(terminal)]) + frame(env).tobytes())
        if terminal:
            env.reset()
            out.write(bytes([255, 0, 0]) + frame(env).tobytes())


def stats(game, seed, episodes):
    env = make(game, seed)
    policy = np.random.RandomState(seed + POLICY_SEED_OFFSET)
    returns, lengths, occupancy = [], [], []
    for _ in range(episodes):
        ret, length, occ, terminal = 0, 0, 0, False
        while not terminal:
            reward, terminal = env.act(policy.randint(env.num_actions()))
            ret += reward
            length += 1
            occ = occ + env.state().sum(axis=(0, 1))
        returns.append(int(ret))
        lengths.append(length)
        occupancy.append((occ / length).tolist())
        env.reset()
    json.dump({"returns": returns, "lengths": lengths, "occupancy": occupancy}, sys.stdout)


def bench(game, seconds):
    env = make(game, 0)
    policy = np.random.RandomState(POLICY_SEED_OFFSET)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            _, terminal = env.act(policy.randint(6))
            env.state()
            if terminal:
                env.reset()
        n += 1000
    json.dump({"steps_per_second": n / (time.perf_counter() - start)}, sys.stdout)


if __name__ == "__main__":
    mode, game = sys.argv[1], sys.argv[2]
    if mode == "trace":
        trace(game, int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1")
    elif mode == "stats":
        stats(game, int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "bench":
        bench(game, float(sys.argv[3]))
    else:
        sys.exit(f"unknown mode {mode}")
