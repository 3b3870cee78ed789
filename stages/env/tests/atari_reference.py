"""ale-py with Dopamine's AtariPreprocessing, for prunus-env's Atari tests and benchmark.

    roms                                    prints the directory of ale-py's bundled ROMs
    raw GAME SEED FRAMES                    binary: per frame (after reset_game, then after each
                                            act): reward i32 LE, game-over byte, lives byte, the
                                            210x160 grayscale screen; actions are the full set,
                                            drawn from numpy's RandomState(SEED + 1000003)
    trace GAME SEED STEPS FULL STICKY       binary: per agent step (and one record after each
                                            reset): reward i32 LE, terminal byte, lives byte,
                                            the 84x84 observation; actions uniform over the
                                            action set, same policy stream
    bench GAME SECONDS MODE                 JSON steps per second; MODE raw: ale.act per frame,
                                            MODE dopamine: preprocessed agent steps

Sticky actions are off in raw and trace unless STICKY > 0; ALE's seed is SEED, set before the
ROM loads, and the environment is reset with reset_game (as Dopamine's gym environment does).
The preprocessing below restates Dopamine's `atari_lib.AtariPreprocessing` step and reset.
"""

import json
import os
import struct
import sys
import time

import cv2
import numpy as np
from ale_py import ALEInterface, LoggerMode, roms

POLICY_SEED_OFFSET = 1000003
FRAME_SKIP = 4


def rom_dir():
    return os.path.dirname(roms.get_rom_path("pong"))


def make(game, seed, sticky):
    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.setFloat("repeat_action_probability", sticky)
    ale.setInt("random_seed", seed)
    ale.loadROM(os.path.join(rom_dir(), game + ".bin"))
    ale.reset_game()
    return ale


class Dopamine:
    """Frame skip 4 with rewards summed, max over the last two frames, 84x84 INTER_AREA."""

    def __init__(self, ale):
        self.ale = ale
        self.screens = [np.empty((210, 160), np.uint8), np.empty((210, 160), np.uint8)]

    def observation(self):
        np.maximum(self.screens[0], self.screens[1], out=self.screens[0])
        return cv2.resize(self.screens[0], (84, 84), interpolation=cv2.INTER_AREA)

    def reset(self):
        self.ale.reset_game()
        return self.after_reset()

    def after_reset(self):
        self.ale.getScreenGrayscale(self.screens[0])
        self.screens[1].fill(0)
        return self.observation()

    def step(self, action):
        reward, game_over = 0, False
        for t in range(FRAME_SKIP):
            reward += self.ale.act(action)
            game_over = self.ale.game_over()
            if game_over:
                break
            elif t >= FRAME_SKIP - 2:
                self.ale.getScreenGrayscale(self.screens[t - (FRAME_SKIP - 2)])
        return self.observation(), reward, game_over


def record(out, reward, terminal, lives, pixels):
    out.write(struct.pack("<iBB", int(reward), int(terminal), int(lives)) + pixels.tobytes())


def raw(game, seed, frames):
    ale = make(game, seed, 0.0)
    policy = np.random.RandomState(seed + POLICY_SEED_OFFSET)
    out = sys.stdout.buffer
    record(out, 0, False, ale.lives(), ale.getScreenGrayscale())
    for _ in range(frames):
        reward = ale.act(ale.getLegalActionSet()[policy.randint(18)])
        over = ale.game_over()
        record(out, reward, over, ale.lives(), ale.getScreenGrayscale())
        if over:
            ale.reset_game()
            record(out, 0, False, ale.lives(), ale.getScreenGrayscale())


def trace(game, seed, steps, full, sticky):
    ale = make(game, seed, sticky)
    actions = ale.getLegalActionSet() if full else ale.getMinimalActionSet()
    env = Dopamine(ale)
    policy = np.random.RandomState(seed + POLICY_SEED_OFFSET)
    out = sys.stdout.buffer
    record(out, 0, False, ale.lives(), env.after_reset())
    for _ in range(steps):
        obs, reward, terminal = env.step(actions[policy.randint(len(actions))])
        record(out, reward, terminal, ale.lives(), obs)
        if terminal:
            obs = env.reset()
            record(out, 0, False, ale.lives(), obs)


def bench(game, seconds, mode):
    ale = make(game, 0, 0.25)
    actions = ale.getMinimalActionSet()
    policy = np.random.RandomState(POLICY_SEED_OFFSET)
    env = Dopamine(ale)
    env.after_reset()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            a = actions[policy.randint(len(actions))]
            if mode == "raw":
                ale.act(a)
                if ale.game_over():
                    ale.reset_game()
            else:
                _, _, terminal = env.step(a)
                if terminal:
                    env.reset()
        n += 1000
    json.dump({"steps_per_second": n / (time.perf_counter() - start)}, sys.stdout)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "roms":
        print(rom_dir())
    elif mode == "raw":
        raw(args[0], int(args[1]), int(args[2]))
    elif mode == "trace":
        trace(args[0], int(args[1]), int(args[2]), args[3] == "1", float(args[4]))
    elif mode == "bench":
        bench(args[0], float(args[1]), args[2])
    else:
        sys.exit(f"unknown mode {mode}")
