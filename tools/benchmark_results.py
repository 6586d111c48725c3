"""tools/benchmark.py's results read back: each entry's rates, the ratios against an earlier --output, and
the input pipelines' headroom over the fastest stage."""

import math

HEADROOM = 5  # each input pipeline should deliver this many times what the fastest stage consumes


def rates(entry):
    return {k: v for k, v in entry.items() if k.endswith("images_per_second")}


def compare(results, baseline):
    """{result: {rate: new / old}} for every rate both runs measured."""
    ratios = {}
    for key, entry in results.items():
        old = baseline.get("results", {}).get(key)
        if old is None and key.endswith(":float32"):  # a report from before --precisions: float32 only
            old = baseline.get("results", {}).get(key[: -len(":float32")])
        if old is None:
            continue
        ratios[key] = {rate: value / old[rate] for rate, value in rates(entry).items()
                       if old.get(rate) and math.isfinite(old[rate])}
    return ratios


def print_comparison(results, baseline, ratios, path):
    print(f"compared with {path}:", flush=True)
    for key, entry in ratios.items():
        for rate, ratio in entry.items():
            old, new = results[key][rate] / ratio, results[key][rate]
            print(f"  {key:<16} {rate:<26} {old:12.1f} -> {new:12.1f}  x{ratio:.2f}", flush=True)


def headroom(results):
    """How many times the images per second of the fastest stage each input pipeline delivers (cached, as
    training reads it): {"fastest_stage", "stage_images_per_second", "pipelines": {name: ratio}, "minimum",
    "target"}; None without both stages and pipelines."""
    stages = {k: v["images_per_second"] for k, v in results.items() if not k.startswith("pipeline:")}
    pipelines = {k: v["images_per_second"] for k, v in results.items() if k.startswith("pipeline:")}
    if not stages or not pipelines:
        return None
    fastest = max(stages, key=stages.get)
    ratios = {k: rate / stages[fastest] for k, rate in pipelines.items()}
    return {"fastest_stage": fastest, "stage_images_per_second": stages[fastest], "pipelines": ratios,
            "minimum": min(ratios.values()), "target": HEADROOM}
