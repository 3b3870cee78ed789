"""Random-policy returns of the MinAtar reference implementation, for prunus-stats'
MinAtar normalization (`stages/stats/src/normalize.rs`).

    python -m venv /tmp/minatar && /tmp/minatar/bin/pip install minatar==1.0.15
    /tmp/minatar/bin/python stages/stats/scripts/minatar_random.py 1000

prints, per game: mean undiscounted return, its standard error, episodes. The environment
uses MinAtar's defaults (sticky actions 0.1, difficulty ramping), seed 0; the policy picks
one of the 6 actions uniformly (numpy RandomState(1)).
"""
import sys

import numpy as np
from minatar import Environment

GAMES = ["asterix", "breakout", "freeway", "seaquest", "space_invaders"]


def main(episodes):
    for game in GAMES:
        env = Environment(game)
        env.seed(0)
        policy = np.random.RandomState(1)
        returns = []
        for _ in range(episodes):
            env.reset()
            done, total = False, 0.0
            while not done:
                reward, done = env.act(policy.randint(6))
                total += reward
            returns.append(total)
        returns = np.asarray(returns)
        sem = returns.std(ddof=1) / np.sqrt(len(returns))
        print(f"{game} {returns.mean():.4f} {sem:.4f} {len(returns)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
