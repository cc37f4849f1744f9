"""Helpers shared by the benchmark files."""


def epoch_benchmark(benchmark, model, train, rounds=5, **fit_kwargs):
    """Time one training epoch of ``model`` (already warmed up: compiled, parameters built)
    and record ms/epoch and ratings/s in the benchmark's extra_info."""
    def one_epoch():
        model.fit(train, epochs=1, verbose=0, progress=False, **fit_kwargs)
    one_epoch()  # compile (or load from cache) and build parameters
    benchmark.pedantic(one_epoch, rounds=rounds, iterations=1, warmup_rounds=1)
    median = benchmark.stats.stats.median
    benchmark.extra_info["ratings"] = len(train)
    benchmark.extra_info["ms_per_epoch"] = round(1000 * median, 2)
    benchmark.extra_info["ratings_per_s"] = round(len(train) / median)
    return median
