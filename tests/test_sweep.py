"""``sme sweep`` on a real Dask LocalCluster with two worker processes (no mocks).

The reference ("serial path") is ``sme report``'s :func:`sme.report.build_report`, run point
by point in this process; the sweep must give the same per-layer rows and totals for every
point, with a worker killed mid-sweep too, and a resumed sweep must compile nothing twice
(counted on the workers).
"""

import os
import signal
import time

import numpy as np
import pytest

from sme import report
from sme.workloads.importers import save_npz
from sme.workloads.networks import Layer, Network
from sme import cli, sweep

distributed = pytest.importorskip("dask.distributed")

LAYERS = 6
SPEC = {"name": "t", "networks": ["mobilenet_v2"], "layers": LAYERS,
        "grid": {"xbar": [64, 128], "ou": ["9x8", "16x8"]},
        "points": [{"xbar": 128, "ou": "40x8"}]}      # invalid: ou_rows at most 32
TASKS = 4 * LAYERS          # valid points x layers
TIMING = ("seconds", "seconds_row", "seconds_segment", "seconds_span", "seconds_baselines",
          "seconds_quantize")


@pytest.fixture(scope="module")
def client():
    with sweep.local_cluster(2) as cl, distributed.Client(cl) as c:
        yield c


@pytest.fixture(scope="module")
def serial():
    """The serial path: build_report for every valid point, one after the other."""
    pl = sweep.plan(SPEC)
    reps = {}
    for p in pl.valid:
        net, w, src = pl.networks[p.network]
        reps[p.index] = report.build_report(net, w, src, p.cfg, seed=pl.seed,
                                            scale=p.options["scale"])
    return reps


def _compiles(client) -> int:
    return sum(client.run(lambda: __import__("sme.sweep").sweep.COMPILES).values())


def _settled_compiles(client) -> int:
    """Worker compile count once no cancelled task is still finishing on a worker."""
    last, t0 = _compiles(client), time.monotonic()
    while time.monotonic() - t0 < 10:
        time.sleep(0.3)
        now = _compiles(client)
        if now == last and not any(client.processing().values()):
            return now
        last = now
    return last


def check_equal_serial(res, serial):
    """Every valid point: the same layer rows (timings aside) and the same table metrics."""
    ok = {r["point"] for r in res.rows if r["status"] == "ok"}
    assert ok == set(serial), {r["point"]: r["error"] for r in res.rows if r["error"]}
    for i, rep in serial.items():
        got = [r for r in res.layers if r["point"] == i]
        assert len(got) == len(rep["layers"])
        for g, want in zip(got, rep["layers"]):
            for k, v in want.items():
                if k not in TIMING:
                    assert g[k] == v, (i, want["layer"], k)
        for r in (r for r in res.rows if r["point"] == i):
            s = r["scheme"]
            assert r["crossbars"] == rep["totals"][f"xbars_{s}"]
            assert r["index_bits"] == rep["totals"].get(f"index_bits_{s}", 0)
            if s not in report.TIMED:            # the floor has no time figures
                assert r["cycles"] is r["latency"] is r["speedup_vs_isaac"] is None
                assert r["energy_uj"] is r["area_mm2"] is r["latency_ms"] is None
                continue
            assert r["cycles"] == sum(lr[f"cycles_{s}"] * max(1, lr["pixels"])
                                      for lr in rep["layers"])
            assert r["latency"] == rep["latency"][s]["latency"]
            assert r["speedup_vs_isaac"] == rep["ratios"]["speedup_vs_isaac"].get(s)
            pp = rep["ppa"]["schemes"].get(s)
            assert r["energy_uj"] == (pp and pp["energy_uj"])
            assert r["area_mm2"] == (pp and pp["area_mm2"])
            assert r["latency_ms"] == (pp and pp["latency_sequential_ms"])


def test_sweep_equals_serial_and_reports_invalid_point(client, serial, tmp_path):
    pl = sweep.plan(SPEC)
    assert [p.index for p in pl.invalid] == [4]
    res = sweep.run_sweep(pl, client, cache=tmp_path / "cache")
    check_equal_serial(res, serial)
    bad = [r for r in res.rows if r["point"] == 4]
    assert len(bad) == len(pl.schemes)
    assert all(r["status"] == "invalid" and r["crossbars"] is None for r in bad)
    assert bad[0]["error"] == "ou_rows must be at most 32, not 40"
    assert bad[0]["ou_rows"] == 40 and bad[0]["xbar_cols"] == 128
    assert res.stats["computed"] == res.stats["tasks"] == TASKS
    out = sweep.write_results(res, tmp_path / "out")
    names = {p.name for p in out}
    assert {"results.parquet", "results.csv", "layers.parquet", "pareto_cycles.png",
            "pareto_index_bits.png", "pareto_energy.png", "summary.txt"} <= names
    import pyarrow.parquet as pq
    table = pq.read_table(tmp_path / "out" / "results.parquet").to_pylist()
    assert table == res.rows
    assert "invalid point 4 [mobilenet_v2 xbar=128 ou=40x8]: ou_rows must be at most 32" in \
        (tmp_path / "out" / "summary.txt").read_text()


class Stop(Exception):
    pass


def test_resumed_sweep_compiles_only_what_is_missing(client, serial, tmp_path):
    pl = sweep.plan(SPEC)
    cache = tmp_path / "cache"

    def interrupt(done, total):
        if done == 10:
            raise Stop

    with pytest.raises(Stop):
        sweep.run_sweep(pl, client, cache=cache, on_result=interrupt)
    finished = len(list(cache.glob("*/*.json")))
    assert finished == 10
    before = _settled_compiles(client)
    res = sweep.run_sweep(pl, client, cache=cache)
    assert _settled_compiles(client) - before == TASKS - finished
    assert res.stats["cached"] == finished and res.stats["computed"] == TASKS - finished
    check_equal_serial(res, serial)
    before = _settled_compiles(client)
    again = sweep.run_sweep(pl, client, cache=cache)
    assert _settled_compiles(client) == before          # zero compiles on a re-run
    assert again.stats["computed"] == 0 and again.stats["cached"] == TASKS
    assert again.rows == res.rows


def test_killed_worker_is_survived(client, serial):
    pl = sweep.plan(SPEC)
    killed = []

    def kill(done, total):
        if killed:
            return
        busy = [w for w, keys in client.processing().items() if keys]
        if not busy:
            return
        pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    res = sweep.run_sweep(pl, client, cache=None, on_result=kill)
    print(f"killed worker pid {killed}; tasks submitted again: {res.stats['resubmitted']}")
    assert killed, "no worker was busy to kill"
    check_equal_serial(res, serial)
    assert res.stats["failed"] == 0
    client.wait_for_workers(2, timeout=30)           # the nanny restarted it
    assert killed[0] not in client.run(os.getpid).values()


def test_failed_point_is_recorded_and_others_complete(client, tmp_path):
    net = Network("n", (Layer("a", 8, 16, 3, 3, 1, 1, 4, 4), Layer("fc", 16, 10, kind="fc")))
    rng = np.random.default_rng(0)
    good = {lyr.name: rng.normal(size=lyr.weight_shape) for lyr in net.layers}
    bad = {k: v.copy() for k, v in good.items()}
    bad["fc"][3, 3] = np.nan
    save_npz(tmp_path / "good.npz", net, good)
    save_npz(tmp_path / "bad.npz", net, bad)
    spec = {"networks": [str(tmp_path / "good.npz"), str(tmp_path / "bad.npz")],
            "grid": {"xbar": [16, 32], "ou": ["4x4"]}, "schemes": ["row", "isaac"]}
    res = sweep.run_sweep(sweep.plan(spec), client, cache=tmp_path / "cache")
    status = {(r["network"], r["label"], r["scheme"]): (r["status"], r["error"])
              for r in res.rows}
    for x in (16, 32):
        assert status[("good", f"xbar={x} ou=4x4", "row")] == ("ok", None)
        st, err = status[("bad", f"xbar={x} ou=4x4", "isaac")]
        assert st == "failed" and err == ("layer fc: ValueError: cannot quantize NaN or "
                                          "infinite values")
    assert res.stats["failed"] == 2                    # one layer, two configs
    # the failure is not cached: a re-run tries again, the good points come from the cache
    again = sweep.run_sweep(sweep.plan(spec), client, cache=tmp_path / "cache")
    assert again.stats["failed"] == 2 and again.stats["computed"] == 0


def test_cli_on_an_existing_scheduler(client, tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('name = "cli"\nnetworks = ["resnet50"]\nlayers = 2\n'
                    '[grid]\nxbar = [128]\n')
    argv = ["sweep", str(spec), "--grid", "ou=9x8,8x8", "--scheduler", client.scheduler.address,
            "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"), "--quiet"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "2 points (0 invalid)" in out and "4 layer compiles needed" in out
    assert (tmp_path / "out" / "cli" / "results.csv").read_text().count("\n") == \
        1 + 2 * len(report.SCHEMES)
    assert cli.main(argv) == 0
    assert "4 cached, 0 computed" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--grid", "xbar"], "--grid wants KEY=V1,V2"),
    (["--grid", "xbar_row=64"], "unknown sweep key(s) 'xbar_row'"),
    (["--grid", "ou=40x8"], "no valid point to run"),
    (["--network", "alexnet"], "network 'alexnet' is neither a built-in network"),
    (["nosuch.toml"], "sweep spec 'nosuch.toml' does not exist"),
])
def test_cli_bad_input(argv, message, capsys, tmp_path):
    assert cli.main(["sweep", *argv, "--dry-run", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_spec_parsing(tmp_path):
    assert sweep.parse_grid(["xbar=64,128x64", "adc_bits=3,null", "reorder=false"]) == {
        "xbar": [64, "128x64"], "adc_bits": [3, None], "reorder": [False]}
    (tmp_path / "bad.toml").write_text("[grid\n")
    with pytest.raises(sweep.SpecError, match="not valid TOML"):
        sweep.load_spec(tmp_path / "bad.toml")
    pl = sweep.plan({"networks": ["resnet50"], "layers": 1,
                     "grid": {"xbar": ["256x128", "12x"], "scale": ["layer", "tensor"]}})
    errs = [p.error for p in pl.points]
    assert pl.points[0].cfg.xbar_rows == 256 and pl.points[0].cfg.xbar_cols == 128
    assert pl.points[0].options["scale"] == "layer" and errs[0] is None
    assert "scale must be one of channel, layer, not 'tensor'" in errs[1]
    assert errs[2].startswith("xbar must be N or \"RxC\"")
    with pytest.raises(sweep.SpecError, match="metric 'fidelity' needs sme.infer, which "
                                              "sme.sweep does not use yet"):
        sweep.plan({"metrics": ["crossbars", "fidelity"]})
    with pytest.raises(ValueError, match="nosuch"):
        sweep.plan({"tech": "nosuch"})
    with pytest.raises(sweep.SpecError, match="periphery must be 'auto' or 'isaac'"):
        sweep.plan({"periphery": "rtl"})
    with pytest.raises(sweep.SpecError, match="unknown spec key"):
        sweep.plan({"gird": {}})


def test_pareto_front():
    pts = [(10, 5), (4, 9), (6, 6), (10, 4), (12, 1), (6, 7)]
    assert sweep.pareto(pts) == [1, 2, 3, 4]


@pytest.mark.parametrize("name", ["small", "paper_grid"])
def test_shipped_specs_plan(name):
    from pathlib import Path
    pl = sweep.plan(sweep.load_spec(Path(sweep.__file__).parent / "sweeps" / f"{name}.toml"))
    assert pl.valid and all(p.cfg is not None for p in pl.valid)
    assert [p.label for p in pl.invalid] == (["xbar=128 ou=9x12"] if name == "small" else [])
