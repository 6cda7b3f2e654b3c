"""Real clusters on loopback for tests/integration/test_clusters.py: a Spark standalone master and worker
(started with the `spark-class` launcher the pyspark package ships) and a two-node Ray cluster (`ray start
--head` and a second `ray start --address`). Every process is started in its own session and stopped by
that session's id; nothing here stops processes it did not start (no `ray stop`, which would)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 240.0  # seconds; the machine is small and shared


def free_port(avoid: range = range(10002, 22000)) -> int:
    """A free TCP port on loopback outside `avoid` (Ray's default worker port range)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port


def wait_for(check: Callable[[], bool], what: str, timeout: float = READY_TIMEOUT,
             procs: tuple[subprocess.Popen, ...] = ()) -> None:
    """Poll `check` until it is true (readiness polling, not a fixed sleep); fail if a process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"{what}: {dead[0].args[0]} exited with {dead[0].returncode}")
        time.sleep(0.5)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f}s")


def start(cmd: list[str], log: Path, env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
    fh = open(log, "wb")  # noqa: SIM115 (closed in stop)
    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
    proc.log_file = fh  # type: ignore[attr-defined]
    return proc


def stop(proc: subprocess.Popen, grace: float = 60.0) -> None:
    """SIGTERM to the process group we created for `proc`, SIGKILL if it outlives `grace`."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers left in the group
    except ProcessLookupError:
        pass
    proc.wait()
    proc.log_file.close()  # type: ignore[attr-defined]


def base_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"SPARK_LOCAL_IP": "127.0.0.1", "RAY_USAGE_STATS_ENABLED": "0", "NO_ALBUMENTATIONS_UPDATE": "1",
                "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp), "PYSPARK_PYTHON": sys.executable,
                "PYSPARK_DRIVER_PYTHON": sys.executable, "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
                # a loopback test cluster: no token auth (Ray turns it on when ~/.ray/auth_token exists)
                "RAY_AUTH_MODE": "disabled", "CURATE_PROGRESS": "json"})
    return env


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def _master_state(ui_port: int) -> dict:
    """The master's JSON status. http.client, not urllib: a local download run installs curate's guarded
    urllib opener in this process, which refuses loopback addresses."""
    conn = http.client.HTTPConnection("127.0.0.1", ui_port, timeout=5)
    try:
        conn.request("GET", "/json/")
        return json.loads(conn.getresponse().read())
    except (OSError, ValueError):
        return {}
    finally:
        conn.close()


@contextmanager
def spark_standalone(tmp: Path) -> Iterator[tuple[str, Callable[[], dict]]]:
    """(master URL, a function returning the master's JSON state) while a master and one worker run."""
    env = base_env(tmp)
    spark_class = str(spark_home() / "bin" / "spark-class")
    port, ui = free_port(), free_port()
    master = start([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                    "--port", str(port), "--webui-port", str(ui)], tmp / "spark-master.log", env)
    procs = [master]
    try:
        wait_for(lambda: _master_state(ui).get("status") == "ALIVE", "Spark master", procs=(master,))
        url = f"spark://127.0.0.1:{port}"
        worker = start([spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                        "--cores", "2", "--memory", "2g", "--webui-port", str(free_port()),
                        "--work-dir", str(tmp / "spark-work")], tmp / "spark-worker.log", env)
        procs.append(worker)
        wait_for(lambda: _master_state(ui).get("aliveworkers") == 1, "Spark worker", procs=(master, worker))
        yield url, lambda: _master_state(ui)
    finally:
        for proc in reversed(procs):
            stop(proc, grace=30)


def spark_submit(master: str, script: Path, args: list[str], tmp: Path, log: Path,
                 py_files: Path | None = None) -> subprocess.CompletedProcess:
    """spark-submit in client mode; the driver and the executors run this venv's Python (PYSPARK_PYTHON) for the
    stack (pyspark, pyarrow, img2dataset), and curate itself comes from the wheel in `--py-files`, which Spark puts
    ahead of site-packages on the driver's and every executor's path."""
    cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", master,
           "--conf", "spark.executor.memory=1g", "--conf", "spark.driver.memory=1g",
           "--conf", "spark.ui.enabled=false", *(["--py-files", str(py_files)] if py_files else []),
           str(script), *args]
    with open(log, "wb") as fh:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=fh, env=base_env(tmp), cwd=tmp, timeout=900)


def _alive_nodes(address: str, env: dict[str, str]) -> int:
    code = (f"import ray; ray.init(address={address!r}, log_to_driver=False, configure_logging=False); "
            "print(sum(1 for n in ray.nodes() if n['Alive']))")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=120, text=True)
        return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else 0
    except (subprocess.TimeoutExpired, ValueError):
        return 0


def _dashboard_version(port: int) -> dict:
    """The Ray dashboard's /api/version, or {} while it is not up (http.client: see _master_state)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/api/version")
        response = conn.getresponse()
        return json.loads(response.read()) if response.status == 200 else {}
    except (OSError, ValueError):
        return {}
    finally:
        conn.close()


@contextmanager
def ray_two_nodes(tmp: Path, session_dir: Path) -> Iterator[tuple[str, str]]:
    """(GCS address, job API address) of a head node (1 CPU, dashboard and job server on a free loopback
    port) and a second node (1 CPU, resource `second_node`) on this host. `session_dir` must be short: Ray's
    Unix socket paths live under it."""
    env = base_env(tmp)
    ray = str(VENV_BIN / "ray")
    port, dashboard = free_port(), free_port()
    common = ["--block", "--num-cpus", "1", "--object-store-memory", str(300 * 2 ** 20),
              "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
    head = start([ray, "start", "--head", "--port", str(port), "--include-dashboard", "true",
                  "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
                  "--temp-dir", str(session_dir), "--min-worker-port", "22000", "--max-worker-port", "22499",
                  "--dashboard-agent-listen-port", str(free_port()), *common], tmp / "ray-head.log", env)
    procs = [head]
    address = f"127.0.0.1:{port}"
    try:
        wait_for(lambda: "block forever" in (tmp / "ray-head.log").read_text(errors="replace"), "Ray head",
                 procs=(head,))
        wait_for(lambda: bool(_dashboard_version(dashboard).get("ray_version")), "Ray dashboard", procs=(head,))
        second = start([ray, "start", "--address", address, "--resources", '{"second_node": 1}',
                        "--min-worker-port", "22500", "--max-worker-port", "22999",
                        "--dashboard-agent-listen-port", str(free_port()), *common], tmp / "ray-node2.log", env)
        procs.append(second)
        wait_for(lambda: "block forever" in (tmp / "ray-node2.log").read_text(errors="replace"), "Ray node 2",
                 procs=(head, second))
        wait_for(lambda: _alive_nodes(address, env) == 2, "Ray cluster with 2 nodes", procs=(head, second))
        yield address, f"http://127.0.0.1:{dashboard}"
    finally:
        for proc in reversed(procs):
            stop(proc, grace=60)


def ray_job_submit(api: str, working_dir: Path, entrypoint: list[str], runtime_env: dict, tmp: Path, log: Path,
                   submission_id: str) -> tuple[int, dict]:
    """`ray job submit` through the job API (blocks and tails the job's logs into `log`): (the submit command's
    exit status, the job's record from the job API's GET /api/jobs/ID, the call behind `ray job status`)."""
    ray = str(VENV_BIN / "ray")
    env = base_env(tmp)
    env.pop("RAY_ADDRESS", None)
    cmd = [ray, "job", "submit", "--address", api, "--submission-id", submission_id,
           "--working-dir", str(working_dir), "--runtime-env-json", json.dumps(runtime_env), "--", *entrypoint]
    with open(log, "wb") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=tmp, timeout=900).returncode
    host, port = api.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", f"/api/jobs/{submission_id}")
        return rc, json.loads(conn.getresponse().read())
    finally:
        conn.close()


def ray_job_logs(api: str, submission_id: str, tmp: Path) -> str:
    """The job's whole driver log from the job API (`ray job logs`)."""
    env = base_env(tmp)
    out = subprocess.run([str(VENV_BIN / "ray"), "job", "logs", "--address", api, submission_id],
                         capture_output=True, text=True, env=env, cwd=tmp, timeout=120)
    return out.stdout


WHEEL_IGNORE = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".ruff_cache",
                                      ".pytest_cache", "node_modules")


def build_wheel(dest: Path) -> Path:
    """curate's wheel, the way an operator builds it (`pip wheel --no-deps`), into `dest` (reused if already
    there). Built from a copy of the checkout, so no build/ folder is left in it."""
    wheels = sorted(dest.glob("curate-*.whl"))
    if wheels:
        return wheels[-1]
    src = dest / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=WHEEL_IGNORE)
    out = subprocess.run([str(VENV_BIN / "pip"), "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                          str(dest), str(src)], capture_output=True, text=True, timeout=600)
    shutil.rmtree(src, ignore_errors=True)
    if out.returncode != 0:
        raise RuntimeError(f"pip wheel failed: {out.stderr[-2000:]}")
    return sorted(dest.glob("curate-*.whl"))[-1]
