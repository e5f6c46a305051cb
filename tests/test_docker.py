"""Static checks of the cluster files in docker/: lint, parse, and the structure users rely on.

No Docker engine or Kubernetes is needed: Dockerfiles go through hadolint, YAML through
yamllint (settings in docker/.yamllint) and PyYAML, the Ray launcher config through Ray's own
schema, and the manifests are checked for the pieces a GPU sweep needs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DOCKER = Path(__file__).resolve().parent.parent / "docker"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile*"))
YAML_FILES = sorted([*DOCKER.glob("*.yaml"), *DOCKER.glob("*.yml")])


def _load(name: str) -> dict[str, Any]:
    """The single YAML document in docker/NAME."""
    docs = list(yaml.safe_load_all((DOCKER / name).read_text()))
    assert len(docs) == 1, f"{name}: expected one YAML document, found {len(docs)}"
    return docs[0]


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which(tool)
    assert exe, f"{tool} is not on PATH; install the test extras: pip install -e .[test]"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)


def test_the_expected_files_exist() -> None:
    names = {p.name for p in DOCKERFILES} | {p.name for p in YAML_FILES}
    expected = {
        "Dockerfile.cpu",
        "Dockerfile.gpu",
        "Dockerfile.mlflow",
        "ray-cluster.yaml",
        "kuberay-raycluster.yaml",
        "mlflow-compose.yaml",
        "mlflow-k8s.yaml",
        "gpu-sharing.yaml",
    }
    assert expected <= names, f"missing from docker/: {sorted(expected - names)}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    # Default failure threshold (info): any finding fails, ignores are inline with a reason.
    result = _run("hadolint", "--no-color", str(dockerfile))
    assert result.returncode == 0, f"hadolint {dockerfile.name}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_runs_as_a_non_root_user(dockerfile: Path) -> None:
    users = [
        line.split(None, 1)[1].strip()
        for line in dockerfile.read_text().splitlines()
        if line.upper().startswith("USER ")
    ]
    assert users, f"{dockerfile.name}: no USER instruction, the image would run as root"
    assert users[-1].split(":")[0] not in {"0", "root"}, f"{dockerfile.name}: last USER is root"


@pytest.mark.parametrize("extra", ["cpu", "gpu"])
def test_cluster_images_install_zoobench_with_the_matching_tensorflow(extra: str) -> None:
    text = (DOCKER / f"Dockerfile.{extra}").read_text()
    tensorflow = {"cpu": '"tensorflow-cpu==', "gpu": '"tensorflow[and-cuda]=='}[extra]
    assert tensorflow in text
    assert f'"/src[{extra}]"' in text, f"Dockerfile.{extra} must install zoobench's [{extra}] extra"
    assert "-r /tmp/requirements-cluster.txt" in text


def test_cluster_pins_are_exact_and_match_this_environment() -> None:
    """The images pin Ray and MLflow to the versions the tests run with: a driver and the
    cluster it joins must run the same Ray."""
    import mlflow
    import ray

    pins = {}
    for line in (DOCKER / "requirements-cluster.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert "==" in line, f"requirements-cluster.txt: {line!r} is not pinned with =="
            name, version = line.split("==")
            pins[name.split("[")[0].lower()] = version
    assert pins["ray"] == ray.__version__
    assert pins["mlflow"] == mlflow.__version__


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_yaml_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path.name}: no YAML document"
    assert all(isinstance(d, dict) for d in docs), f"{path.name}: a document is not a mapping"


def test_yaml_passes_yamllint() -> None:
    result = _run("yamllint", "--strict", "-f", "parsable", "-c", str(DOCKER / ".yamllint"),
                  str(DOCKER))
    assert result.returncode == 0, f"yamllint docker/:\n{result.stdout}{result.stderr}"


def test_kuberay_cluster_has_a_cpu_head_and_a_gpu_worker_group() -> None:
    cluster = _load("kuberay-raycluster.yaml")
    assert cluster["apiVersion"] == "ray.io/v1"
    assert cluster["kind"] == "RayCluster"
    spec = cluster["spec"]
    assert spec["authOptions"]["mode"] == "token"

    head = spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["image"].endswith("-cpu")
    assert "nvidia.com/gpu" not in head.get("resources", {}).get("limits", {})

    gpu_groups = [
        group
        for group in spec["workerGroupSpecs"]
        if "nvidia.com/gpu" in group["template"]["spec"]["containers"][0]["resources"]["limits"]
    ]
    assert gpu_groups, "no worker group requests nvidia.com/gpu"
    for group in gpu_groups:
        container = group["template"]["spec"]["containers"][0]
        n_gpus = container["resources"]["limits"]["nvidia.com/gpu"]
        assert int(n_gpus) >= 1
        # Ray must be told the same count the pod is given.
        assert float(group["rayStartParams"]["num-gpus"]) == float(n_gpus)
        assert container["image"].endswith("-gpu")
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]

    for container in [head] + [g["template"]["spec"]["containers"][0] for g in gpu_groups]:
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["MLFLOW_TRACKING_URI"].startswith("http"), container["name"]


def test_mlflow_compose_serves_artifacts_from_a_database_backed_server() -> None:
    compose = _load("mlflow-compose.yaml")
    services = compose["services"]
    command = services["mlflow"]["command"]
    assert command[:2] == ["mlflow", "server"]
    assert "--serve-artifacts" in command
    options = dict(arg.split("=", 1) for arg in command[2:] if "=" in arg)
    # The driver the image installs, named: SQLAlchemy 2.1 reads a bare postgresql:// as
    # psycopg 3, which it does not have.
    assert options["--backend-store-uri"].startswith("postgresql+psycopg2://")
    assert options["--artifacts-destination"]
    # The server waits for a healthy database rather than racing it at start.
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]
    assert services["mlflow"]["build"]["dockerfile"] == "docker/Dockerfile.mlflow"


def test_ray_launcher_config_passes_rays_schema() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _load("ray-cluster.yaml")
    validate_config(prepare_config(config))  # raises on any schema error


def test_ray_launcher_config_has_head_and_gpu_workers_in_the_images() -> None:
    config = _load("ray-cluster.yaml")
    node_types = config["available_node_types"]
    assert config["head_node_type"] in node_types
    workers = [name for name in node_types if name != config["head_node_type"]]
    assert any("gpu" in name for name in workers)

    docker = config["docker"]
    assert docker["head_image"].endswith("-cpu")
    assert docker["worker_image"].endswith("-gpu")
    run_options = " ".join(docker["run_options"])
    assert "RAY_AUTH_MODE=token" in run_options
    assert "MLFLOW_TRACKING_URI=http" in run_options

    head_start = " ".join(config["head_start_ray_commands"])
    worker_start = " ".join(config["worker_start_ray_commands"])
    assert "ray start --head" in head_start
    assert "ray start --address=$RAY_HEAD_IP:" in worker_start
    # The token is shipped to every node, where Ray looks for it.
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"


def test_gpu_sharing_spec_is_a_valid_gpu_sweep() -> None:
    """docker/gpu-sharing.yaml (README, "Measuring GPU sharing") passes zoobench's checks."""
    from bench.spec.model import load_spec

    spec = load_spec(DOCKER / "gpu-sharing.yaml")
    assert spec.gpu == 1.0  # the docs' loop rewrites it to 0.5 and 0.25
    assert spec.samples * spec.cells == 8
    assert spec.mixed_precision == "bfloat16"
    assert spec.xla is True


def test_mlflow_on_kubernetes_is_the_server_kuberay_logs_to() -> None:
    docs = {d["kind"]: d for d in yaml.safe_load_all((DOCKER / "mlflow-k8s.yaml").read_text())}
    assert set(docs) == {"ServiceAccount", "Deployment", "Service"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["args"][:2] == ["mlflow", "server"]
    assert "--serve-artifacts" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    # The database URI (with its password) comes from a Secret, not the manifest.
    assert env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"]["key"] == "uri"
    assert env["MLFLOW_ARTIFACTS_DESTINATION"]["value"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"

    service = docs["Service"]
    port = service["spec"]["ports"][0]["port"]
    address = (f"http://{service['metadata']['name']}.{service['metadata']['namespace']}"
               f".svc.cluster.local:{port}")
    cluster = _load("kuberay-raycluster.yaml")["spec"]
    pods = [cluster["headGroupSpec"]] + cluster["workerGroupSpecs"]
    for group in pods:
        for ray_container in group["template"]["spec"]["containers"]:
            uris = [e["value"] for e in ray_container["env"] if e["name"] == "MLFLOW_TRACKING_URI"]
            assert uris == [address], ray_container["name"]
    hosts = env["MLFLOW_SERVER_ALLOWED_HOSTS"]["value"].split(",")
    assert f"{address.split('//')[1].split(':')[0]}:*" in hosts


# ---- Only the sweep's users reach MLflow (issue 26)


def _compose_port_host(mapping: str) -> str:
    """The host interface a compose ``ports`` entry binds ("" when it binds every one)."""
    field = r"(\$\{[^}]*\}|[^:$]+)"  # a ${VAR:-default} or a plain value
    match = re.fullmatch(rf"(?:{field}:)?{field}:{field}", mapping)
    assert match, mapping
    return match.group(1) or ""


def test_mlflow_compose_asks_for_a_user_and_binds_one_interface() -> None:
    compose = _load("mlflow-compose.yaml")
    services = compose["services"]
    mlflow = services["mlflow"]
    assert "--app-name=basic-auth" in mlflow["command"]
    options = dict(arg.split("=", 1) for arg in mlflow["command"][2:] if "=" in arg)
    # No password on the command line (ps, docker inspect): libpq gets PGPASSWORD instead.
    userinfo = options["--backend-store-uri"].split("://", 1)[1].split("@", 1)[0]
    assert ":" not in userinfo and "PASSWORD" not in options["--backend-store-uri"]
    hosts = [_compose_port_host(p) for p in mlflow["ports"]]
    assert hosts == ["${MLFLOW_BIND:-127.0.0.1}"], "publish on one interface, not 0.0.0.0"
    assert "ports" not in services["postgres"]  # the database: compose network only
    # Every password is a secret file; none is a default or in the environment.
    assert set(mlflow["secrets"]) == {"postgres_password", "mlflow_admin_password",
                                      "mlflow_flask_secret_key"}
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == \
        "/run/secrets/postgres_password"
    for name, secret in compose["secrets"].items():
        assert secret["file"].startswith("${ZOOBENCH_SECRETS:?"), name
    env = mlflow["environment"]
    assert not any("PASSWORD" in key or "SECRET" in key for key in env)


def test_mlflow_on_kubernetes_asks_for_a_user_and_stays_in_the_cluster() -> None:
    docs = {d["kind"]: d for d in yaml.safe_load_all((DOCKER / "mlflow-k8s.yaml").read_text())}
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert "--app-name=basic-auth" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    for name in ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY",
                 "MLFLOW_AUTH_DATABASE_URI", "MLFLOW_BACKEND_STORE_URI"):
        assert "secretKeyRef" in env[name]["valueFrom"], name
        assert "value" not in env[name], name
    service = docs["Service"]["spec"]
    assert service.get("type", "ClusterIP") == "ClusterIP"
    assert all("nodePort" not in port for port in service["ports"])
    # The probes' path is one the auth app leaves open.
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"


def test_ray_pods_authenticate_to_mlflow_from_a_secret() -> None:
    cluster = _load("kuberay-raycluster.yaml")["spec"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        for container in group["template"]["spec"]["containers"]:
            env = {e["name"]: e for e in container["env"]}
            for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
                assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-client", name
    launcher = _load("ray-cluster.yaml")
    run_options = launcher["docker"]["run_options"]
    assert not any("MLFLOW_TRACKING_PASSWORD" in option for option in run_options)
    [env_file] = [o.split(None, 1)[1] for o in run_options if o.startswith("--env-file")]
    mount = env_file.removeprefix("/tmp/ray_tmp_mount/" + launcher["cluster_name"])
    assert mount in launcher["file_mounts"]  # the launcher copies it to that host path


def test_no_password_is_written_in_the_cluster_files() -> None:
    for path in [*YAML_FILES, *DOCKERFILES]:
        text = path.read_text()
        assert "password1234" not in text, path.name
        for line in text.splitlines():
            code = line.split("#", 1)[0]
            assert not re.search(r"(?i)password\s*[=:]\s*['\"]?\w{4,}", code), (path.name, line)


def test_mlflow_entrypoint_reads_secret_files_into_the_environment(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "postgres_password").write_text("pg-s3cret")
    (secrets / "mlflow_admin_password").write_text("admin-s3cret")
    (secrets / "mlflow_flask_secret_key").write_text("flask-key")
    (secrets / "mlflow_auth_database_uri").write_text("postgresql://u:p%40ss@db/auth")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MLFLOW_SECRETS_DIR": str(secrets),
           "MLFLOW_FLASK_SERVER_SECRET_KEY": "from-env-wins"}
    done = subprocess.run(["sh", str(DOCKER / "mlflow-entrypoint.sh"), "env"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    seen = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert seen["PGPASSWORD"] == "pg-s3cret"
    assert seen["MLFLOW_AUTH_ADMIN_PASSWORD"] == "admin-s3cret"
    assert seen["MLFLOW_FLASK_SERVER_SECRET_KEY"] == "from-env-wins"
    ini = Path(seen["MLFLOW_AUTH_CONFIG_PATH"])
    assert ini.stat().st_mode & 0o077 == 0  # only the server's user reads it
    import configparser

    config = configparser.ConfigParser()
    config.read(ini)
    # What MLflow's auth app reads (configparser with interpolation: '%' doubled).
    assert config["mlflow"]["database_uri"] == "postgresql://u:p%40ss@db/auth"
    assert config["mlflow"]["default_permission"] == "READ"
    assert "admin_password" not in config["mlflow"]
