"""rliable (PyPI) as the reference for prunus-stats' tests and benchmark.

Reads a JSON list of requests on stdin and writes a JSON list of results on stdout; each
result carries the wall-clock seconds rliable took. Requests (scores are rliable's
(runs x tasks) or (runs x tasks x points) nested lists):
  {"op": "aggregate", "scores": M, "reps": R}             -> {metric: [estimate, low, high]}
  {"op": "profile", "scores": M, "taus": [...], "reps": R} -> {"estimate": [...], "low": [...], "high": [...]}
  {"op": "improvement", "x": M, "y": M, "reps": R}         -> {"poi": [estimate, low, high]}
  {"op": "curve", "scores": M3, "reps": R}                 -> {"estimate": [...], "low": [...], "high": [...]}
"""
import json
import sys
import time

import numpy as np
import scipy.stats
from rliable import library as rly
from rliable import metrics


def interval(point, ci):
    return [float(point[0]), float(ci[0][0]), float(ci[1][0])]


def run(request):
    op, reps = request["op"], request["reps"]
    if op == "aggregate":
        scores = np.asarray(request["scores"], dtype=np.float64)
        funcs = {
            "iqm": metrics.aggregate_iqm,
            "mean": metrics.aggregate_mean,
            "median": metrics.aggregate_median,
            "optimality_gap": metrics.aggregate_optimality_gap,
        }
        out = {}
        for name, f in funcs.items():
            point, ci = rly.get_interval_estimates(
                {"x": scores}, lambda s, f=f: np.array([f(s)]), reps=reps)
            out[name] = interval(point["x"], ci["x"])
        return out
    if op == "profile":
        scores = np.asarray(request["scores"], dtype=np.float64)
        taus = np.asarray(request["taus"], dtype=np.float64)
        profiles, cis = rly.create_performance_profile(
            {"x": scores}, taus, use_score_distribution=request.get("runs", True), reps=reps)
        return {"estimate": profiles["x"].tolist(), "low": cis["x"][0].tolist(),
                "high": cis["x"][1].tolist()}
    if op == "improvement":
        x = np.asarray(request["x"], dtype=np.float64)
        y = np.asarray(request["y"], dtype=np.float64)
        point, ci = rly.get_interval_estimates(
            {"xy": [x, y]}, lambda a, b: np.array([metrics.probability_of_improvement(a, b)]),
            reps=reps)
        return {"poi": interval(point["xy"], ci["xy"])}
    if op == "curve":
        scores = np.asarray(request["scores"], dtype=np.float64)
        points = scores.shape[-1]
        # IQM at every point in one vectorised call (faster than rliable's colab, which loops
        # over points with metrics.aggregate_iqm).
        iqm = lambda s: scipy.stats.trim_mean(s.reshape(-1, points), 0.25, axis=0)
        point, ci = rly.get_interval_estimates({"x": scores}, iqm, reps=reps)
        return {"estimate": point["x"].tolist(), "low": ci["x"][0].tolist(),
                "high": ci["x"][1].tolist()}
    raise ValueError(f"unknown op {op}")


def main():
    np.random.seed(0)  # rliable draws its resampling indices from numpy's global RNG
    results = []
    for request in json.load(sys.stdin):
        start = time.perf_counter()
        result = run(request)
        result["seconds"] = time.perf_counter() - start
        results.append(result)
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
