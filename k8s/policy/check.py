#!/usr/bin/env python3
"""Offline check of the Kubernetes deployment (k8s/): renders every kustomization, validates
every object against the Kubernetes API schema, and enforces the deployment's policy.

    python3 k8s/policy/check.py              # render, validate, enforce; non-zero on a violation
    python3 k8s/policy/check.py --self-test  # prove that each rule can fail

Needs `kubectl` (its built-in kustomize) or `kustomize`, PyYAML, and kubernetes-validate
(`pip install kubernetes-validate`; it carries the schemas, so nothing is fetched).

Every target is rendered from a temporary copy of k8s/, never from the working tree's
credentials: an overlay that reads `secrets.env` gets one written there by its
`generate-secrets.sh` (which is thereby tested too) or copied from its `secret.example.env`.

The rules (each violation names the target, the object and the rule):

  schema               every object is valid for Kubernetes KUBERNETES_VERSION (strict: unknown
                       fields are errors)
  probes               every container has a liveness and a readiness probe; the roles'
                       are HTTP GET /healthz and /readyz on their port "http"
  resources            every container requests and limits both cpu and memory
  security-context     every pod: non-root, seccomp RuntimeDefault, no privilege escalation,
                       capabilities drop ALL, not privileged, no host namespaces, read-only root
                       filesystem (a third-party pod may opt out of the last one with the
                       annotation observatory.dev/writable-root-filesystem: "<why>"); the roles
                       also run as UID 10001
  image                every image has a tag or a digest, never `latest`; the roles all run
                       the one image IMAGE
  secrets-in-env       credentials only through secretKeyRef: an env variable whose name looks
                       secret (PASSWORD, SECRET, TOKEN, ...) or is a server URL must come from a
                       Secret; no value, argument or ConfigMap entry holds a URL with a password
                       (scheme://user:password@host)
  secret-sources       no Secret manifest is committed under k8s/; the env files secret
                       generators read are git-ignored
  role-wiring          each role's container passes its role as args (no command: the image's
                       entrypoint), listens on 0.0.0.0:<its port> and names that port "http"
  replicas             gateway, processor and read-model run at least 2 replicas
  pdb                  each role has a PodDisruptionBudget that selects its pods and still
                       allows one eviction
  hpa                  the processor has an autoscaling/v2 HorizontalPodAutoscaler, min >= 2
  termination-grace    the processor's terminationGracePeriodSeconds exceeds its
                       OBSERVATORY_SHUTDOWN_GRACE_SECS by at least GRACE_MARGIN_SECS
  prometheus-discovery what k8s/observability/prometheus-k8s.yml discovers exists: the
                       Services its SRV names resolve (headless, not-ready pods published, the
                       named port reaching the role's "http" port) or the pod labels its
                       Kubernetes selectors name; its Alertmanager where one is deployed
  network-policy       default deny for ingress and egress, DNS egress, and each role's flows
                       exactly as designed (egress ports, ingress on its own port only, the
                       internal roles' ingress only from named peers); no rule open to
                       0.0.0.0/0 or to every port
  stateful-volumes     every StatefulSet keeps its data on volumeClaimTemplates it mounts
  server-config        where RabbitMQ and Redis are deployed: quorum queues by default,
                       Redis with appendonly yes
  observability-files  where Prometheus, Alertmanager or Grafana are deployed: their
                       ConfigMaps hold exactly the files of k8s/observability/ (config, every
                       rule file, every Grafana dashboard JSON)
  namespace            an overlay puts every namespaced object into a Namespace it defines,
                       with Pod Security Admission enforcing "restricted"
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("PyYAML is missing: pip install pyyaml")
try:
    import kubernetes_validate
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("kubernetes-validate is missing: pip install kubernetes-validate")

KUBERNETES_VERSION = "1.30.0"
ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
TARGETS = ["base", "overlays/local", "overlays/production"]
IMAGE = "ghcr.io/observatory/observatory"
ROLE_UID = 10001
GRACE_MARGIN_SECS = 15
DEFAULT_SHUTDOWN_GRACE_SECS = 30  # services/processor/src/config.rs

# The roles, their HTTP port, listen-address variable, least replicas, and the server ports
# each must reach (DESIGN.md §4): RabbitMQ 5672, PostgreSQL 5432, Redis 6379, MongoDB 27017,
# Alertmanager 9093.
ROLES = {
    "gateway": {"port": 3000, "addr_env": "OBSERVATORY_GATEWAY_ADDR", "min_replicas": 2,
                "egress": {5672}, "public": True},
    "processor": {"port": 9101, "addr_env": "OBSERVATORY_PROCESSOR_ADDR", "min_replicas": 2,
                  "egress": {5672, 5432}, "public": False},
    "metrics-engine": {"port": 9102, "addr_env": "OBSERVATORY_METRICS_ENGINE_ADDR",
                       "min_replicas": 1, "egress": {5672, 6379, 27017}, "public": False},
    "read-model": {"port": 8080, "addr_env": "OBSERVATORY_READ_MODEL_ADDR", "min_replicas": 2,
                   "egress": {5432, 6379, 27017, 5672, 9093}, "public": True},
}
DNS_PORT = 53
SERVER_URL_ENVS = {
    "OBSERVATORY_RABBITMQ_URL",
    "OBSERVATORY_POSTGRES_URL",
    "OBSERVATORY_REDIS_URL",
    "OBSERVATORY_MONGODB_URL",
}
SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|_PASS$|_PASS_|SECRET|TOKEN|CREDENTIAL|API_?KEY|PRIVATE_?KEY|_AUTH$)", re.I)
CREDENTIAL_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]*:[^/\s@'\"]+@", re.I)
WRITABLE_ROOT_ANNOTATION = "observatory.dev/writable-root-filesystem"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
NAMESPACED_EXCEPT = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
                     "StorageClass", "CustomResourceDefinition", "PriorityClass"}

RULES = {
    "schema": f"valid for Kubernetes {KUBERNETES_VERSION}, strict",
    "probes": "liveness + readiness on every container; roles: GET /healthz, /readyz on http",
    "resources": "cpu and memory requests and limits on every container",
    "security-context": "non-root, seccomp, no escalation, drop ALL, read-only root; roles UID 10001",
    "image": f"tagged or digested, never latest; roles run {IMAGE}",
    "secrets-in-env": "credentials only via secretKeyRef; no URL with a password anywhere",
    "secret-sources": "no committed Secret manifests; generator env files git-ignored",
    "role-wiring": "role as args, entrypoint kept, 0.0.0.0:<port>, port named http",
    "replicas": "gateway, processor, read-model >= 2",
    "pdb": "a PodDisruptionBudget per role that allows one eviction",
    "hpa": "autoscaling/v2 HPA for the processor, minReplicas >= 2",
    "termination-grace": f"processor grace period >= shutdown grace + {GRACE_MARGIN_SECS} s",
    "prometheus-discovery": "what prometheus-k8s.yml discovers exists and reaches port http",
    "network-policy": "default deny, DNS, exactly the designed flows, nothing open-ended",
    "stateful-volumes": "StatefulSets keep data on mounted volumeClaimTemplates",
    "server-config": "RabbitMQ quorum queues by default, Redis appendonly yes",
    "observability-files": "Prometheus/Alertmanager/Grafana ConfigMaps hold k8s/observability/",
    "namespace": "overlays: own Namespace, PSA restricted, every object in it",
}


@dataclass(frozen=True, order=True)
class Violation:
    target: str
    obj: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"  [{self.rule}] {self.target}: {self.obj}: {self.message}"


def ref(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    name = meta.get("name", "?")
    return f"{obj.get('kind', '?')}/{ns + '/' if ns else ''}{name}"


@dataclass
class Context:
    """One rendered target: its objects and where it came from."""

    target: str
    objects: list[dict]
    is_overlay: bool
    violations: list[Violation] = field(default_factory=list)

    def fail(self, obj: dict | str, rule: str, message: str) -> None:
        name = obj if isinstance(obj, str) else ref(obj)
        self.violations.append(Violation(self.target, name, rule, message))

    def of_kind(self, *kinds: str) -> list[dict]:
        return [o for o in self.objects if o.get("kind") in kinds]

    def find(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        for o in self.objects:
            meta = o.get("metadata") or {}
            if o.get("kind") == kind and meta.get("name") == name and (
                    namespace is None or meta.get("namespace") == namespace):
                return o
        return None


# ---------------------------------------------------------------------------------------
# Helpers over workloads


def workloads(ctx: Context) -> list[dict]:
    return ctx.of_kind(*WORKLOAD_KINDS)


def pod_spec(workload: dict) -> dict:
    return ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}


def pod_labels(workload: dict) -> dict:
    return (((workload.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
        "labels") or {}


def pod_annotations(workload: dict) -> dict:
    return (((workload.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
        "annotations") or {}


def containers(workload: dict, init: bool = True) -> list[dict]:
    spec = pod_spec(workload)
    found = list(spec.get("containers") or [])
    if init:
        found += list(spec.get("initContainers") or [])
    return found


def role_of(workload: dict) -> str | None:
    """The role a workload runs: by its labels, or by running the observatory image."""
    labels = pod_labels(workload)
    name = labels.get("app.kubernetes.io/name")
    if name in ROLES and labels.get("app.kubernetes.io/part-of") == "observatory":
        return name
    return None


def runs_observatory_image(workload: dict) -> bool:
    return any(str(c.get("image", "")).split("@")[0].rsplit(":", 1)[0] == IMAGE
               for c in containers(workload))


def namespace_of(obj: dict) -> str | None:
    return (obj.get("metadata") or {}).get("namespace")


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) against labels; {} matches all."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def config_maps_by_name(ctx: Context, namespace: str | None) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in ctx.of_kind("ConfigMap")
            if namespace_of(o) == namespace}


def env_value(ctx: Context, workload: dict, container: dict, name: str) -> str | None:
    """A variable as the container sees it: its env entry, else an envFrom ConfigMap's."""
    for env in container.get("env") or []:
        if env.get("name") == name and "value" in env:
            return str(env["value"])
    maps = config_maps_by_name(ctx, namespace_of(workload))
    for source in container.get("envFrom") or []:
        cm_ref = source.get("configMapRef")
        if cm_ref and cm_ref.get("name") in maps:
            data = maps[cm_ref["name"]].get("data") or {}
            if name in data:
                return str(data[name])
    return None


def mounted_config_maps(workload: dict) -> dict[str, str]:
    """mountPath -> ConfigMap name, for every container of a workload."""
    by_volume = {}
    for volume in pod_spec(workload).get("volumes") or []:
        if "configMap" in volume:
            by_volume[volume["name"]] = volume["configMap"].get("name")
    mounts = {}
    for container in containers(workload):
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") in by_volume:
                mounts[mount["mountPath"]] = by_volume[mount["name"]]
    return mounts


# ---------------------------------------------------------------------------------------
# The rules


def check_schema(ctx: Context) -> None:
    for obj in ctx.objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(p) for p in error.path)
            ctx.fail(obj, "schema", f"{error.message} (at /{path})")
        except kubernetes_validate.SchemaNotFoundError as error:
            ctx.fail(obj, "schema", f"no schema for {obj.get('apiVersion')} "
                                    f"{obj.get('kind')} in {KUBERNETES_VERSION}: {error}")


def check_probes(ctx: Context) -> None:
    for workload in workloads(ctx):
        role = role_of(workload)
        for container in containers(workload, init=False):
            where = f"container {container.get('name')}"
            for kind in ("livenessProbe", "readinessProbe"):
                if not container.get(kind):
                    ctx.fail(workload, "probes", f"{where} has no {kind}")
            if role:
                for kind, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                    get = (container.get(kind) or {}).get("httpGet") or {}
                    if get.get("path") != path or get.get("port") not in (
                            "http", ROLES[role]["port"]):
                        ctx.fail(workload, "probes",
                                 f"{where}: {kind} must be HTTP GET {path} on port http")


def check_resources(ctx: Context) -> None:
    for workload in workloads(ctx):
        for container in containers(workload):
            resources = container.get("resources") or {}
            for section in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if not (resources.get(section) or {}).get(resource):
                        ctx.fail(workload, "resources",
                                 f"container {container.get('name')} has no "
                                 f"{section}.{resource}")


def check_security_context(ctx: Context) -> None:
    for workload in workloads(ctx):
        role = role_of(workload)
        spec = pod_spec(workload)
        pod = spec.get("securityContext") or {}
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(host):
                ctx.fail(workload, "security-context", f"{host} is set")
        writable_ok = (not role and not runs_observatory_image(workload)
                       and bool(pod_annotations(workload).get(WRITABLE_ROOT_ANNOTATION)))
        for container in containers(workload):
            where = f"container {container.get('name')}"
            sc = container.get("securityContext") or {}

            def effective(key: str):
                return sc.get(key, pod.get(key))

            if effective("runAsNonRoot") is not True:
                ctx.fail(workload, "security-context", f"{where}: runAsNonRoot is not true")
            if effective("runAsUser") == 0:
                ctx.fail(workload, "security-context", f"{where}: runAsUser is 0")
            seccomp = (effective("seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                ctx.fail(workload, "security-context",
                         f"{where}: seccompProfile is {seccomp or 'unset'}, not RuntimeDefault")
            if sc.get("allowPrivilegeEscalation") is not False:
                ctx.fail(workload, "security-context",
                         f"{where}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                ctx.fail(workload, "security-context", f"{where}: privileged")
            drop = [str(c).upper() for c in ((sc.get("capabilities") or {}).get("drop") or [])]
            if "ALL" not in drop:
                ctx.fail(workload, "security-context", f"{where}: capabilities do not drop ALL")
            if (sc.get("capabilities") or {}).get("add"):
                ctx.fail(workload, "security-context", f"{where}: adds capabilities")
            if sc.get("readOnlyRootFilesystem") is not True and not writable_ok:
                ctx.fail(workload, "security-context",
                         f"{where}: readOnlyRootFilesystem is not true")
            if role and effective("runAsUser") != ROLE_UID:
                ctx.fail(workload, "security-context",
                         f"{where}: runAsUser is {effective('runAsUser')}, not {ROLE_UID}")


def image_problem(image: str) -> str | None:
    if not image:
        return "has no image"
    if "@" in image:
        digest = image.split("@", 1)[1]
        return None if re.fullmatch(r"sha256:[0-9a-f]{64}", digest) else f"bad digest {digest}"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image} has no tag (means latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image {image} uses the tag latest"
    return None


def check_images(ctx: Context) -> None:
    for workload in workloads(ctx):
        role = role_of(workload)
        for container in containers(workload):
            image = str(container.get("image", ""))
            problem = image_problem(image)
            if problem:
                ctx.fail(workload, "image", f"container {container.get('name')}: {problem}")
            if role and image.split("@")[0].rsplit(":", 1)[0] != IMAGE:
                ctx.fail(workload, "image",
                         f"container {container.get('name')}: role {role} runs {image}, "
                         f"not {IMAGE}")


def check_secrets_in_env(ctx: Context) -> None:
    for workload in workloads(ctx):
        for container in containers(workload):
            where = f"container {container.get('name')}"
            for env in container.get("env") or []:
                name = str(env.get("name", ""))
                from_secret = bool((env.get("valueFrom") or {}).get("secretKeyRef"))
                if (SECRET_NAME.search(name) or name in SERVER_URL_ENVS) and not from_secret:
                    ctx.fail(workload, "secrets-in-env",
                             f"{where}: {name} must come from a Secret (valueFrom.secretKeyRef)")
                if "value" in env and CREDENTIAL_URL.search(str(env["value"])):
                    ctx.fail(workload, "secrets-in-env",
                             f"{where}: {name} holds a URL with a password in plain text")
            for arg in list(container.get("command") or []) + list(container.get("args") or []):
                if CREDENTIAL_URL.search(str(arg)):
                    ctx.fail(workload, "secrets-in-env",
                             f"{where}: an argument holds a URL with a password")
            maps = config_maps_by_name(ctx, namespace_of(workload))
            for source in container.get("envFrom") or []:
                cm_ref = (source.get("configMapRef") or {}).get("name")
                for key in ((maps.get(cm_ref) or {}).get("data") or {}):
                    if SECRET_NAME.search(key) or key in SERVER_URL_ENVS:
                        ctx.fail(workload, "secrets-in-env",
                                 f"{where}: {key} comes from ConfigMap {cm_ref}, not a Secret")
    for cm in ctx.of_kind("ConfigMap"):
        for key, value in (cm.get("data") or {}).items():
            if CREDENTIAL_URL.search(str(value)):
                ctx.fail(cm, "secrets-in-env", f"{key} holds a URL with a password")


def check_secret_sources(sources: Path, label: str) -> list[Violation]:
    """No Secret manifests under k8s/ (only generators), and generator inputs git-ignored."""
    found = []
    for path in sorted(sources.rglob("*")):
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
            continue
        rel = path.relative_to(sources.parent)
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError:
            continue  # not a manifest (e.g. a template); kustomize reports real ones
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") == "Secret":
                found.append(Violation(label, f"{rel}", "secret-sources",
                                       "a Secret manifest is committed: use a secretGenerator "
                                       "reading a git-ignored env file"))
        if path.name in ("kustomization.yaml", "kustomization.yml"):
            kust = yaml.safe_load(path.read_text()) or {}
            for generator in kust.get("secretGenerator") or []:
                for entry in list(generator.get("envs") or []) + list(generator.get("files") or []):
                    source = path.parent / str(entry).split("=", 1)[-1]
                    if not git_ignored(source):
                        found.append(Violation(label, f"{rel}", "secret-sources",
                                               f"{source.relative_to(sources.parent)} (read by "
                                               f"secretGenerator {generator.get('name')}) is "
                                               "not git-ignored"))
    return found


def git_ignored(path: Path) -> bool:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", str(path)],
                              capture_output=True, check=False)
    except FileNotFoundError:
        return True  # no git here: nothing to commit it with either
    if done.returncode == 128:  # not a repository (e.g. an exported tree)
        return True
    return done.returncode == 0


def check_role_wiring(ctx: Context) -> None:
    for workload in workloads(ctx):
        role = role_of(workload)
        if not role:
            if runs_observatory_image(workload):
                ctx.fail(workload, "role-wiring", "runs the observatory image without the "
                                                  "labels of a role")
            continue
        spec = ROLES[role]
        main = containers(workload, init=False)
        if len(main) != 1:
            ctx.fail(workload, "role-wiring", f"{len(main)} containers, expected one")
            continue
        container = main[0]
        if container.get("command"):
            ctx.fail(workload, "role-wiring", "overrides the image's entrypoint (command)")
        args = [str(a) for a in container.get("args") or []]
        if not args or args[0] != role:
            ctx.fail(workload, "role-wiring", f"args {args} do not start with the role {role}")
        addr = env_value(ctx, workload, container, spec["addr_env"])
        if addr != f"0.0.0.0:{spec['port']}":
            ctx.fail(workload, "role-wiring",
                     f"{spec['addr_env']} is {addr!r}, not '0.0.0.0:{spec['port']}' (the "
                     "default listens on loopback, unreachable from outside the pod)")
        ports = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
        if ports.get("http") != spec["port"]:
            ctx.fail(workload, "role-wiring",
                     f"no container port named http = {spec['port']} (found {ports})")


def role_workloads(ctx: Context) -> dict[str, dict]:
    found = {}
    for workload in workloads(ctx):
        role = role_of(workload)
        if role:
            found[role] = workload
    return found


def check_replicas_pdb_hpa(ctx: Context) -> None:
    roles = role_workloads(ctx)
    for role in ROLES:
        if role not in roles:
            ctx.fail(f"role {role}", "replicas", "no workload runs this role")
    for role, workload in roles.items():
        replicas = (workload.get("spec") or {}).get("replicas", 1)
        if replicas < ROLES[role]["min_replicas"]:
            ctx.fail(workload, "replicas",
                     f"replicas {replicas} < {ROLES[role]['min_replicas']}")
        labels = pod_labels(workload)
        budgets = [p for p in ctx.of_kind("PodDisruptionBudget")
                   if namespace_of(p) == namespace_of(workload)
                   and selector_matches((p.get("spec") or {}).get("selector"), labels)]
        if not budgets:
            ctx.fail(workload, "pdb", "no PodDisruptionBudget selects its pods")
        for budget in budgets:
            spec = budget.get("spec") or {}
            min_available = spec.get("minAvailable")
            if isinstance(min_available, int) and min_available >= replicas:
                ctx.fail(budget, "pdb", f"minAvailable {min_available} >= replicas {replicas}: "
                                        "no pod can ever be evicted")
            if spec.get("maxUnavailable") in (0, "0%"):
                ctx.fail(budget, "pdb", "maxUnavailable 0: no pod can ever be evicted")
    processor = roles.get("processor")
    if processor is not None:
        hpas = [h for h in ctx.of_kind("HorizontalPodAutoscaler")
                if namespace_of(h) == namespace_of(processor)
                and ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("kind") == processor[
                    "kind"]
                and ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("name")
                == processor["metadata"]["name"]]
        if not hpas:
            ctx.fail(processor, "hpa", "no HorizontalPodAutoscaler targets the processor")
        for hpa in hpas:
            if hpa.get("apiVersion") != "autoscaling/v2":
                ctx.fail(hpa, "hpa", f"apiVersion {hpa.get('apiVersion')}, not autoscaling/v2")
            if (hpa.get("spec") or {}).get("minReplicas", 1) < 2:
                ctx.fail(hpa, "hpa", "minReplicas < 2")


def check_termination_grace(ctx: Context) -> None:
    processor = role_workloads(ctx).get("processor")
    if processor is None:
        return
    main = containers(processor, init=False)
    raw = env_value(ctx, processor, main[0], "OBSERVATORY_SHUTDOWN_GRACE_SECS") if main else None
    try:
        grace = int(raw) if raw is not None else DEFAULT_SHUTDOWN_GRACE_SECS
    except ValueError:
        ctx.fail(processor, "termination-grace",
                 f"OBSERVATORY_SHUTDOWN_GRACE_SECS is not a number: {raw!r}")
        return
    period = pod_spec(processor).get("terminationGracePeriodSeconds", 30)
    if period < grace + GRACE_MARGIN_SECS:
        ctx.fail(processor, "termination-grace",
                 f"terminationGracePeriodSeconds {period} < shutdown grace {grace} + "
                 f"{GRACE_MARGIN_SECS}: the kubelet would kill jobs still finishing")


def check_prometheus_discovery(ctx: Context, prometheus_config: dict) -> None:
    roles = role_workloads(ctx)
    for job in prometheus_config.get("scrape_configs") or []:
        role = job.get("job_name")
        if role not in ROLES or role not in roles:
            continue
        workload = roles[role]
        labels = pod_labels(workload)
        port = ROLES[role]["port"]
        what = f"scrape job {role}"
        for sd in job.get("dns_sd_configs") or []:
            for name in sd.get("names") or []:
                match = re.fullmatch(r"_([^.]+)\._(tcp|udp)\.([a-z0-9-]+)(\..*)?", name)
                if (sd.get("type") or "SRV") != "SRV" or not match:
                    ctx.fail(what, "prometheus-discovery", f"cannot check DNS name {name}")
                    continue
                port_name, service_name = match.group(1), match.group(3)
                service = ctx.find("Service", service_name, namespace_of(workload))
                if service is None:
                    ctx.fail(what, "prometheus-discovery",
                             f"resolves {name}, but there is no Service {service_name}")
                    continue
                spec = service.get("spec") or {}
                if spec.get("clusterIP") != "None":
                    ctx.fail(service, "prometheus-discovery",
                             "not headless: SRV records would name the Service, not each pod")
                if spec.get("publishNotReadyAddresses") is not True:
                    ctx.fail(service, "prometheus-discovery",
                             "publishNotReadyAddresses is not true: unready pods go unscraped")
                if not selector_matches({"matchLabels": spec.get("selector") or {}}, labels) \
                        or not spec.get("selector"):
                    ctx.fail(service, "prometheus-discovery",
                             f"its selector does not select the {role} pods")
                named = [p for p in spec.get("ports") or [] if p.get("name") == port_name]
                if not named:
                    ctx.fail(service, "prometheus-discovery", f"has no port named {port_name}")
                for p in named:
                    if p.get("targetPort") not in ("http", port) or p.get("port") != port:
                        ctx.fail(service, "prometheus-discovery",
                                 f"port {port_name} must be {port} with targetPort http")
        for sd in job.get("kubernetes_sd_configs") or []:
            for selector in sd.get("selectors") or []:
                wanted = dict(pair.split("=", 1) for pair in
                              str(selector.get("label", "")).split(",") if "=" in pair)
                if any(labels.get(k) != v for k, v in wanted.items()):
                    ctx.fail(workload, "prometheus-discovery",
                             f"pod labels do not match the selector {selector.get('label')}")
    if ctx.find("Deployment", "alertmanager") or ctx.find("StatefulSet", "alertmanager"):
        for alerting in (prometheus_config.get("alerting") or {}).get("alertmanagers") or []:
            for static in alerting.get("static_configs") or []:
                for target in static.get("targets") or []:
                    host, _, port_text = str(target).partition(":")
                    service = ctx.find("Service", host.split(".")[0])
                    ports = [p.get("port") for p in
                             ((service or {}).get("spec") or {}).get("ports") or []]
                    if service is None or int(port_text or 80) not in ports:
                        ctx.fail("Prometheus alerting", "prometheus-discovery",
                                 f"sends alerts to {target}, which no Service serves")


def policies_selecting(ctx: Context, workload: dict) -> list[dict]:
    labels = pod_labels(workload)
    return [p for p in ctx.of_kind("NetworkPolicy")
            if namespace_of(p) == namespace_of(workload)
            and selector_matches((p.get("spec") or {}).get("podSelector"), labels)]


def policy_types(policy: dict) -> set[str]:
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    if types:
        return set(types)
    return {"Ingress"} | ({"Egress"} if "egress" in spec else set())


def rule_ports(rule: dict) -> set[int | str]:
    return {p.get("port") for p in rule.get("ports") or []}


def check_network_policies(ctx: Context) -> None:
    policies = ctx.of_kind("NetworkPolicy")
    deny = [p for p in policies if (p.get("spec") or {}).get("podSelector") == {}
            and policy_types(p) == {"Ingress", "Egress"}
            and not (p["spec"].get("ingress") or p["spec"].get("egress"))]
    if not deny:
        ctx.fail("NetworkPolicy", "network-policy",
                 "no default-deny policy (podSelector {}, Ingress and Egress, no rules)")
    dns = [p for p in policies if (p.get("spec") or {}).get("podSelector") == {}
           and any(DNS_PORT in rule_ports(r) and r.get("to")
                   for r in p["spec"].get("egress") or [])]
    if not dns:
        ctx.fail("NetworkPolicy", "network-policy", "no policy lets every pod reach DNS")
    for policy in policies:
        spec = policy.get("spec") or {}
        for direction, peers in (("ingress", "from"), ("egress", "to")):
            for rule in spec.get(direction) or []:
                for peer in rule.get(peers) or []:
                    cidr = (peer.get("ipBlock") or {}).get("cidr")
                    if cidr in ("0.0.0.0/0", "::/0"):
                        ctx.fail(policy, "network-policy", f"{direction} open to {cidr}")
                if direction == "egress" and (not rule.get("to") or not rule.get("ports")):
                    ctx.fail(policy, "network-policy",
                             "an egress rule without destinations or ports allows too much")
    # Every workload is covered in both directions (the default deny does that), and each role
    # gets exactly its designed flows.
    for role, workload in role_workloads(ctx).items():
        selecting = policies_selecting(ctx, workload)
        egress = set()
        ingress = set()
        for policy in selecting:
            spec = policy.get("spec") or {}
            for rule in spec.get("egress") or []:
                egress |= rule_ports(rule)
            for rule in spec.get("ingress") or []:
                ports = rule_ports(rule)
                if not ports:
                    ctx.fail(policy, "network-policy", "an ingress rule without ports")
                ingress |= ports
                if not ROLES[role]["public"] and not rule.get("from"):
                    ctx.fail(policy, "network-policy",
                             f"{role} accepts connections from anywhere; only Prometheus "
                             "needs it")
        egress.discard(DNS_PORT)
        wanted = ROLES[role]["egress"]
        if egress != wanted:
            ctx.fail(workload, "network-policy",
                     f"egress ports {sorted(map(str, egress))}, designed "
                     f"{sorted(map(str, wanted))}")
        if ingress - {ROLES[role]["port"], "http"}:
            ctx.fail(workload, "network-policy",
                     f"ingress on ports {sorted(map(str, ingress))}, only "
                     f"{ROLES[role]['port']} is served")
        if not ingress:
            ctx.fail(workload, "network-policy", "no ingress at all: not even Prometheus "
                                                 "could scrape it")


def check_stateful_volumes(ctx: Context) -> None:
    for sts in ctx.of_kind("StatefulSet"):
        claims = [c.get("metadata", {}).get("name")
                  for c in (sts.get("spec") or {}).get("volumeClaimTemplates") or []]
        if not claims:
            ctx.fail(sts, "stateful-volumes", "no volumeClaimTemplates: data dies with the pod")
            continue
        mounted = {m.get("name") for c in containers(sts) for m in c.get("volumeMounts") or []}
        for claim in claims:
            if claim not in mounted:
                ctx.fail(sts, "stateful-volumes", f"volume claim {claim} is not mounted")


def config_text(ctx: Context, workload: dict) -> str:
    maps = config_maps_by_name(ctx, namespace_of(workload))
    text = []
    for name in mounted_config_maps(workload).values():
        text += [str(v) for v in ((maps.get(name) or {}).get("data") or {}).values()]
    return "\n".join(text)


def config_lines(text: str) -> set[str]:
    return {" ".join(line.split("#", 1)[0].split()) for line in text.splitlines()}


def check_server_config(ctx: Context) -> None:
    rabbitmq = ctx.find("StatefulSet", "rabbitmq")
    if rabbitmq is not None and "default_queue_type = quorum" not in config_lines(
            config_text(ctx, rabbitmq)):
        ctx.fail(rabbitmq, "server-config", "its configuration lacks default_queue_type = quorum")
    redis = ctx.find("StatefulSet", "redis")
    if redis is not None and "appendonly yes" not in config_lines(config_text(ctx, redis)):
        ctx.fail(redis, "server-config", "its configuration lacks appendonly yes")


def check_observability_files(ctx: Context, observability: Path) -> None:
    def mounted_data(workload: dict, path_prefix: str) -> dict[str, str]:
        maps = config_maps_by_name(ctx, namespace_of(workload))
        data = {}
        for mount_path, name in mounted_config_maps(workload).items():
            if mount_path.startswith(path_prefix):
                data.update((maps.get(name) or {}).get("data") or {})
        return data

    prometheus = ctx.find("StatefulSet", "prometheus") or ctx.find("Deployment", "prometheus")
    if prometheus is not None:
        rules = {p.name: p.read_text() for p in sorted((observability / "rules").glob("*.yml"))}
        mounted = mounted_data(prometheus, "/etc/prometheus/rules")
        for name in sorted(set(rules) - set(mounted)):
            ctx.fail(prometheus, "observability-files",
                     f"rules/{name} is not deployed: add it to the prometheus-rules generator")
        for name in sorted(set(rules) & set(mounted)):
            if rules[name] != mounted[name]:
                ctx.fail(prometheus, "observability-files", f"rules/{name} differs from the "
                                                            "deployed copy")
        config = mounted_data(prometheus, "/etc/prometheus/prometheus.yml").get("prometheus.yml")
        if config != (observability / "prometheus-k8s.yml").read_text():
            ctx.fail(prometheus, "observability-files",
                     "/etc/prometheus/prometheus.yml is not k8s/observability/prometheus-k8s.yml")
    alertmanager = ctx.find("Deployment", "alertmanager") or ctx.find("StatefulSet",
                                                                      "alertmanager")
    source = observability / "alertmanager.yml"
    if alertmanager is not None and source.exists():
        deployed = mounted_data(alertmanager, "/etc/alertmanager").get("alertmanager.yml")
        if deployed != source.read_text():
            ctx.fail(alertmanager, "observability-files",
                     "alertmanager.yml is not k8s/observability/alertmanager.yml")
    grafana = ctx.find("Deployment", "grafana") or ctx.find("StatefulSet", "grafana")
    if grafana is not None:
        dashboards = sorted((observability / "grafana").rglob("*.json")) \
            if (observability / "grafana").is_dir() else []
        deployed = mounted_data(grafana, "/etc/grafana/dashboards")
        for path in dashboards:
            if deployed.get(path.name) != path.read_text():
                ctx.fail(grafana, "observability-files",
                         f"{path.relative_to(observability.parent)} is not deployed: generate "
                         "the grafana-dashboards ConfigMap from it (overlays/local, TODO)")


def check_namespace(ctx: Context) -> None:
    if not ctx.is_overlay:
        return
    namespaces = ctx.of_kind("Namespace")
    names = {n["metadata"]["name"] for n in namespaces}
    if not namespaces:
        ctx.fail("Namespace", "namespace", "the overlay defines no Namespace")
    for ns in namespaces:
        labels = ns["metadata"].get("labels") or {}
        if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
            ctx.fail(ns, "namespace", "Pod Security Admission does not enforce restricted")
    for obj in ctx.objects:
        if obj.get("kind") not in NAMESPACED_EXCEPT and namespace_of(obj) not in names:
            ctx.fail(obj, "namespace", f"not in a Namespace of the overlay ({sorted(names)})")


def run_rules(ctx: Context, prometheus_config: dict, observability: Path,
              schema: bool = True) -> list[Violation]:
    if schema:
        check_schema(ctx)
    check_probes(ctx)
    check_resources(ctx)
    check_security_context(ctx)
    check_images(ctx)
    check_secrets_in_env(ctx)
    check_role_wiring(ctx)
    check_replicas_pdb_hpa(ctx)
    check_termination_grace(ctx)
    check_prometheus_discovery(ctx, prometheus_config)
    check_network_policies(ctx)
    check_stateful_volumes(ctx)
    check_server_config(ctx)
    check_observability_files(ctx, observability)
    check_namespace(ctx)
    return sorted(set(ctx.violations))


# ---------------------------------------------------------------------------------------
# Rendering


def kustomize_command() -> list[str]:
    kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone"]
    kustomize = shutil.which("kustomize")
    if kustomize:
        return [kustomize, "build", "--load-restrictor", "LoadRestrictionsNone"]
    sys.exit("neither kubectl nor kustomize is on PATH")


def prepare_copy(workdir: Path) -> Path:
    """k8s/ copied without any secrets.env; each overlay's secrets.env written fresh."""
    copy_root = workdir / "k8s"
    shutil.copytree(K8S, copy_root,
                    ignore=shutil.ignore_patterns("secrets.env", "secrets.env.tmp.*",
                                                  "__pycache__"))
    for kustomization in copy_root.rglob("kustomization.yaml"):
        kust = yaml.safe_load(kustomization.read_text()) or {}
        needs = {str(e) for g in kust.get("secretGenerator") or [] for e in g.get("envs") or []}
        if "secrets.env" not in needs:
            continue
        folder = kustomization.parent
        generator = folder / "generate-secrets.sh"
        if generator.exists():
            subprocess.run(["sh", str(generator)], check=True, capture_output=True)
        elif (folder / "secret.example.env").exists():
            shutil.copy(folder / "secret.example.env", folder / "secrets.env")
        else:
            sys.exit(f"{folder.relative_to(workdir)} reads secrets.env but has neither "
                     "generate-secrets.sh nor secret.example.env")
        if not (folder / "secrets.env").exists():
            sys.exit(f"{generator.relative_to(workdir)} did not write secrets.env")
    return copy_root


def render(copy_root: Path, target: str) -> list[dict]:
    done = subprocess.run(kustomize_command() + [str(copy_root / target)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"kustomize failed for {target}:\n{done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def load_prometheus_config(observability: Path) -> dict:
    path = observability / "prometheus-k8s.yml"
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def check_all() -> int:
    observability = K8S / "observability"
    prometheus_config = load_prometheus_config(observability)
    violations: list[Violation] = []
    command = kustomize_command()
    print(f"Kubernetes {KUBERNETES_VERSION} (strict schemas, kubernetes-validate "
          f"{kubernetes_validate.__version__}); rendering with "
          f"{' '.join([Path(command[0]).name] + command[1:])}")
    with tempfile.TemporaryDirectory(prefix="observatory-k8s-") as workdir:
        copy_root = prepare_copy(Path(workdir))
        for target in TARGETS:
            try:
                objects = render(copy_root, target)
            except RuntimeError as error:
                violations.append(Violation(target, "kustomization", "schema", str(error)))
                print(f"\n{target}: does not render")
                continue
            ctx = Context(target, objects, is_overlay=target.startswith("overlays/"))
            found = run_rules(ctx, prometheus_config, observability)
            violations += found
            kinds = Counter(o.get("kind") for o in objects)
            listing = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
            print(f"\n{target}: {len(objects)} objects validated ({listing}); "
                  f"{len(workloads(ctx))} workloads, "
                  f"{sum(len(containers(w)) for w in workloads(ctx))} containers checked; "
                  f"{len(found)} violations")
    violations += check_secret_sources(K8S, "k8s/")
    print(f"\nRules ({len(RULES)}):")
    for name, description in RULES.items():
        count = sum(1 for v in violations if v.rule == name)
        print(f"  {'FAIL' if count else 'ok  '} {name:21} {description}"
              + (f"  ({count})" if count else ""))
    if violations:
        print(f"\n{len(violations)} violations:")
        for violation in sorted(set(violations)):
            print(violation)
        return 1
    print("\nNo violations.")
    return 0


# ---------------------------------------------------------------------------------------
# Self-test: each rule is shown able to fail.

BROKEN_MANIFESTS = {
    # A third-party Deployment that is fine except for its missing probes.
    "no-probes": ("probes", "Deployment/observatory/broken-no-probes", """
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken-no-probes, namespace: observatory}
spec:
  replicas: 1
  selector: {matchLabels: {app.kubernetes.io/name: broken-no-probes}}
  template:
    metadata: {labels: {app.kubernetes.io/name: broken-no-probes}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: app
          image: example.org/app:1.2.3
          resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 100m, memory: 64Mi}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
"""),
    # The same with probes, but on the tag latest.
    "latest": ("image", "Deployment/observatory/broken-latest", """
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken-latest, namespace: observatory}
spec:
  replicas: 1
  selector: {matchLabels: {app.kubernetes.io/name: broken-latest}}
  template:
    metadata: {labels: {app.kubernetes.io/name: broken-latest}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: app
          image: example.org/app:latest
          livenessProbe: {tcpSocket: {port: 8080}}
          readinessProbe: {tcpSocket: {port: 8080}}
          resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 100m, memory: 64Mi}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
"""),
    # The same, correct image, but a password in plain text.
    "plaintext-password": ("secrets-in-env", "Deployment/observatory/broken-password", """
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken-password, namespace: observatory}
spec:
  replicas: 1
  selector: {matchLabels: {app.kubernetes.io/name: broken-password}}
  template:
    metadata: {labels: {app.kubernetes.io/name: broken-password}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: app
          image: example.org/app:1.2.3
          env:
            - {name: DATABASE_PASSWORD, value: hunter2}
          livenessProbe: {tcpSocket: {port: 8080}}
          readinessProbe: {tcpSocket: {port: 8080}}
          resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 100m, memory: 64Mi}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
"""),
}


def _container(objs: list[dict], kind: str, name: str) -> dict:
    for o in objs:
        if o.get("kind") == kind and o["metadata"]["name"] == name:
            return pod_spec(o)["containers"][0]
    raise KeyError(f"{kind}/{name}")


def _workload(objs: list[dict], kind: str, name: str) -> dict:
    for o in objs:
        if o.get("kind") == kind and o["metadata"]["name"] == name:
            return o
    raise KeyError(f"{kind}/{name}")


def _drop(objs: list[dict], kind: str, name: str) -> None:
    objs[:] = [o for o in objs if not (o.get("kind") == kind and o["metadata"]["name"] == name)]


def _env(container: dict, name: str) -> dict:
    return next(e for e in container["env"] if e["name"] == name)


def _mutations() -> dict[str, tuple[str, str, object]]:
    """name -> (rule, object expected in the violation, function mutating the objects)."""
    ns = "observatory"

    def no_readiness(o):
        del _container(o, "Deployment", "gateway")["readinessProbe"]

    def wrong_liveness_path(o):
        _container(o, "Deployment", "processor")["livenessProbe"]["httpGet"]["path"] = "/"

    def untagged(o):
        _container(o, "StatefulSet", "redis")["image"] = "redis"

    def role_latest(o):
        _container(o, "Deployment", "processor")["image"] = f"{IMAGE}:latest"

    def url_in_value(o):
        env = _env(_container(o, "Deployment", "gateway"), "OBSERVATORY_RABBITMQ_URL")
        env.pop("valueFrom")
        env["value"] = "amqp://observatory:hunter2@rabbitmq:5672/%2f"

    def url_in_config_map(o):
        cm = next(c for c in o if c["kind"] == "ConfigMap"
                  and c["metadata"]["name"].startswith("observatory-config"))
        cm["data"]["OBSERVATORY_EXTRA"] = "postgres://u:hunter2@db/x"

    def no_limits(o):
        del _container(o, "StatefulSet", "mongodb")["resources"]["limits"]

    def escalation(o):
        _container(o, "StatefulSet", "postgresql")["securityContext"][
            "allowPrivilegeEscalation"] = True

    def keeps_capabilities(o):
        del _container(o, "Deployment", "grafana")["securityContext"]["capabilities"]

    def writable_root(o):
        _container(o, "Deployment", "read-model")["securityContext"][
            "readOnlyRootFilesystem"] = False

    def root_user(o):
        w = _workload(o, "Deployment", "metrics-engine")
        pod_spec(w)["securityContext"]["runAsUser"] = 0
        del pod_spec(w)["containers"][0]["securityContext"]["runAsUser"]

    def one_replica(o):
        _workload(o, "Deployment", "read-model")["spec"]["replicas"] = 1

    def no_pdb(o):
        _drop(o, "PodDisruptionBudget", "gateway")

    def blocking_pdb(o):
        next(p for p in o if p["kind"] == "PodDisruptionBudget"
             and p["metadata"]["name"] == "processor")["spec"]["minAvailable"] = 2

    def no_hpa(o):
        _drop(o, "HorizontalPodAutoscaler", "processor")

    def short_grace(o):
        pod_spec(_workload(o, "Deployment", "processor"))["terminationGracePeriodSeconds"] = 30

    def loopback(o):
        _env(_container(o, "Deployment", "gateway"), "OBSERVATORY_GATEWAY_ADDR")["value"] = \
            "127.0.0.1:3000"

    def wrong_role(o):
        _container(o, "Deployment", "metrics-engine")["args"] = ["processor"]

    def not_headless(o):
        service = _workload(o, "Service", "read-model-metrics")
        del service["spec"]["clusterIP"]

    def no_metrics_service(o):
        _drop(o, "Service", "processor-metrics")

    def open_egress(o):
        policy = _workload(o, "NetworkPolicy", "processor")
        del policy["spec"]["egress"][0]["ports"]

    def extra_egress(o):
        policy = _workload(o, "NetworkPolicy", "gateway")
        policy["spec"]["egress"].append({"to": [{"podSelector": {"matchLabels": {
            "app.kubernetes.io/name": "postgresql"}}}], "ports": [{"protocol": "TCP",
                                                                     "port": 5432}]})

    def open_ingress(o):
        policy = _workload(o, "NetworkPolicy", "metrics-engine")
        del policy["spec"]["ingress"][0]["from"]

    def no_default_deny(o):
        _drop(o, "NetworkPolicy", "default-deny-all")

    def no_claims(o):
        del _workload(o, "StatefulSet", "postgresql")["spec"]["volumeClaimTemplates"]

    def classic_queues(o):
        cm = next(c for c in o if c["kind"] == "ConfigMap"
                  and c["metadata"]["name"].startswith("rabbitmq-config"))
        key = next(iter(cm["data"]))
        cm["data"][key] = cm["data"][key].replace("default_queue_type = quorum",
                                                  "default_queue_type = classic")

    def no_aof(o):
        cm = next(c for c in o if c["kind"] == "ConfigMap"
                  and c["metadata"]["name"].startswith("redis-config"))
        cm["data"]["redis.conf"] = cm["data"]["redis.conf"].replace("appendonly yes",
                                                                    "appendonly no")

    def missing_rule_file(o):
        cm = next(c for c in o if c["kind"] == "ConfigMap"
                  and c["metadata"]["name"].startswith("prometheus-rules"))
        cm["data"].pop(sorted(cm["data"])[0])

    def outside_namespace(o):
        _workload(o, "Deployment", "grafana")["metadata"]["namespace"] = "default"

    def unknown_field(o):
        _workload(o, "Deployment", "gateway")["spec"]["replica"] = 2

    return {
        "gateway without readiness probe": ("probes", f"Deployment/{ns}/gateway", no_readiness),
        "processor liveness on /": ("probes", f"Deployment/{ns}/processor", wrong_liveness_path),
        "untagged image": ("image", f"StatefulSet/{ns}/redis", untagged),
        "role on latest": ("image", f"Deployment/{ns}/processor", role_latest),
        "URL with password as a value": ("secrets-in-env", f"Deployment/{ns}/gateway",
                                         url_in_value),
        "URL with password in a ConfigMap": ("secrets-in-env", "ConfigMap", url_in_config_map),
        "no limits": ("resources", f"StatefulSet/{ns}/mongodb", no_limits),
        "privilege escalation": ("security-context", f"StatefulSet/{ns}/postgresql",
                                 escalation),
        "capabilities kept": ("security-context", f"Deployment/{ns}/grafana",
                              keeps_capabilities),
        "writable root filesystem": ("security-context", f"Deployment/{ns}/read-model",
                                     writable_root),
        "root user": ("security-context", f"Deployment/{ns}/metrics-engine", root_user),
        "one read-model": ("replicas", f"Deployment/{ns}/read-model", one_replica),
        "no gateway PDB": ("pdb", f"Deployment/{ns}/gateway", no_pdb),
        "PDB blocking every eviction": ("pdb", f"PodDisruptionBudget/{ns}/processor",
                                        blocking_pdb),
        "no processor HPA": ("hpa", f"Deployment/{ns}/processor", no_hpa),
        "grace period too short": ("termination-grace", f"Deployment/{ns}/processor",
                                   short_grace),
        "listening on loopback": ("role-wiring", f"Deployment/{ns}/gateway", loopback),
        "wrong role": ("role-wiring", f"Deployment/{ns}/metrics-engine", wrong_role),
        "metrics Service not headless": ("prometheus-discovery",
                                         f"Service/{ns}/read-model-metrics", not_headless),
        "metrics Service missing": ("prometheus-discovery", "scrape job processor",
                                    no_metrics_service),
        "egress to every port": ("network-policy", f"NetworkPolicy/{ns}/processor",
                                 open_egress),
        "egress beyond the design": ("network-policy", f"Deployment/{ns}/gateway",
                                     extra_egress),
        "internal role open to all": ("network-policy", f"NetworkPolicy/{ns}/metrics-engine",
                                      open_ingress),
        "no default deny": ("network-policy", "NetworkPolicy", no_default_deny),
        "StatefulSet without volumes": ("stateful-volumes", f"StatefulSet/{ns}/postgresql",
                                        no_claims),
        "classic queues": ("server-config", f"StatefulSet/{ns}/rabbitmq", classic_queues),
        "Redis without AOF": ("server-config", f"StatefulSet/{ns}/redis", no_aof),
        "a rule file not deployed": ("observability-files", f"StatefulSet/{ns}/prometheus",
                                     missing_rule_file),
        "object outside the namespace": ("namespace", "Deployment/default/grafana",
                                         outside_namespace),
        "unknown field (strict schema)": ("schema", f"Deployment/{ns}/gateway", unknown_field),
    }


def self_test() -> int:
    observability = K8S / "observability"
    prometheus_config = load_prometheus_config(observability)
    failures = []
    with tempfile.TemporaryDirectory(prefix="observatory-k8s-") as workdir:
        copy_root = prepare_copy(Path(workdir))
        local = render(copy_root, "overlays/local")

        def violations(objects: list[dict], schema: bool = False) -> set[tuple[str, str]]:
            ctx = Context("overlays/local", objects, is_overlay=True)
            return {(v.rule, v.obj) for v in run_rules(ctx, prometheus_config, observability,
                                                       schema=schema)}

        baseline = violations(copy.deepcopy(local), schema=True)
        if baseline:
            failures.append(f"the unmodified local overlay is not clean: {sorted(baseline)}")
        cases = []
        for name, (rule, obj, text) in BROKEN_MANIFESTS.items():
            cases.append((f"broken manifest: {name}", rule, obj,
                          lambda o, text=text: o.append(yaml.safe_load(text)),
                          rule == "schema"))
        for name, (rule, obj, mutate) in _mutations().items():
            cases.append((name, rule, obj, mutate, rule == "schema"))
        for name, rule, obj, mutate, schema in cases:
            objects = copy.deepcopy(local)
            mutate(objects)
            new = violations(objects, schema=schema) - baseline
            caught = any(r == rule and (o == obj or o.startswith(obj + "/")) for r, o in new)
            status = "caught" if caught else "MISSED"
            print(f"  {status:7} {name:40} -> [{rule}] {obj}")
            if not caught:
                failures.append(f"{name}: expected [{rule}] on {obj}, got {sorted(new)}")
        # A committed Secret manifest, and a generator reading a file git does not ignore.
        secret_dir = Path(workdir) / "secret-sources" / "k8s"
        (secret_dir / "overlays" / "x").mkdir(parents=True)
        (secret_dir / "overlays" / "x" / "secret.yaml").write_text(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {PASSWORD: x}\n")
        found = check_secret_sources(secret_dir, "self-test")
        caught = any(v.rule == "secret-sources" for v in found)
        print(f"  {'caught' if caught else 'MISSED':7} {'committed Secret manifest':40} "
              "-> [secret-sources]")
        if not caught:
            failures.append("a committed Secret manifest was not caught")
        total = len(cases) + 1
    rules_shown = {c[1] for c in cases} | {"secret-sources"}
    untested = sorted(set(RULES) - rules_shown)
    if untested:
        failures.append(f"rules without a failing case: {untested}")
    if failures:
        print(f"\nSelf-test FAILED ({len(failures)} of {total}):")
        for failure in failures:
            print(f"  {failure}")
        return 1
    print(f"\nSelf-test passed: {total} broken inputs, each caught by its rule; every one of "
          f"the {len(RULES)} rules shown able to fail.")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--self-test", action="store_true",
                        help="feed deliberately broken manifests and check each is caught")
    args = parser.parse_args()
    return self_test() if args.self_test else check_all()


if __name__ == "__main__":
    sys.exit(main())
