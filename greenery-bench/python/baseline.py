"""Python's originals, measured the way greenery-bench measures greenery: one line
per figure, `name value unit`, each the median of several rounds.

Run by `greenery-bench python` (or directly: `python3 baseline.py [N]`). The
greenlet figures need the `greenlet` package (`pip install greenlet`); without
it they are skipped with a note on stderr.
"""

import statistics
import sys
import time

ROUNDS = 7


def median_ns(run, n):
    """Median nanoseconds per iteration of `run(n)` over ROUNDS rounds."""
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        run(n)
        samples.append((time.perf_counter() - start) / n * 1e9)
    return statistics.median(samples)


def generator_roundtrip(n):
    def gen():
        x = yield
        while True:
            x = yield x + 1

    g = gen()
    next(g)
    send = g.send
    total = 0
    for i in range(n):
        total += send(i)
    assert total == n * (n + 1) // 2


def generator_create(n):
    def one(x):
        yield x + 1

    for i in range(n):
        g = one(i)
        next(g)
        g.close()


def greenlet_roundtrip(n):
    import greenlet

    main = greenlet.getcurrent()

    def pong(x):
        while True:
            x = main.switch(x + 1)

    g = greenlet.greenlet(pong)
    switch = g.switch
    total = 0
    for i in range(n):
        total += switch(i)
    assert total == n * (n + 1) // 2


def greenlet_create(n):
    import greenlet

    def body(x):
        return x + 1

    for i in range(n):
        greenlet.greenlet(body).switch(i)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    print(f"python_generator_roundtrip_ns {median_ns(generator_roundtrip, n):.2f} ns")
    print(f"python_generator_create_ns {median_ns(generator_create, max(n // 4, 1)):.2f} ns")
    try:
        import greenlet  # noqa: F401
    except ImportError:
        print("# python greenlet figures skipped: `pip install greenlet` to get them", file=sys.stderr)
        return
    print(f"python_greenlet_switch_roundtrip_ns {median_ns(greenlet_roundtrip, n):.2f} ns")
    print(f"python_greenlet_create_ns {median_ns(greenlet_create, max(n // 4, 1)):.2f} ns")


if __name__ == "__main__":
    main()
