"""The install manifests under ``config/``: what ``kubectl apply -k config/default`` creates.

No cluster here, so these tests check what a cluster would: every object
validates against the Kubernetes 1.30 schemas (strict: an unknown field is an
error, as ``kubectl apply --validate=strict``); the kustomization renders
(``kubectl kustomize``, skipped with the reason where kubectl is not
installed) to the CRD, RBAC and the controller; the Deployment
meets the restricted Pod Security Standard and passes flags the controller
really accepts; and RBAC grants exactly the calls ``disvc.controller.kube``
can make, no more and no less.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from disvc.testing.fixtures import kserve_crd_or_skip

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
KUBERNETES_VERSION = "1.30"
SYSTEM_NAMESPACE = "disvc-system"
DISVC_CRD_NAME = "distributedinferenceservices.serving.kserve.io"
SAMPLES = CONFIG / "samples"

Obj = dict[str, Any]
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
LEADER_ELECTION_GROUP_RESOURCES = {("coordination.k8s.io", "leases")}
METRICS_PORT = 8443
METRICS_CERT_SECRET = "disvc-metrics-server-cert"


KUBECTL = shutil.which("kubectl")


@functools.cache
def _kustomize_output(directory: Path) -> str:
    assert KUBECTL is not None
    done = subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"kubectl kustomize {rel(directory)} failed:\n{done.stderr}"
    return done.stdout


def render(directory: Path) -> list[Obj]:
    """The objects ``kubectl kustomize <directory>`` renders (kustomize v5, built into kubectl)."""
    if KUBECTL is None:
        pytest.skip("kubectl is not installed: the kustomizations render with `kubectl kustomize`")
    return [doc for doc in yaml.load_all(_kustomize_output(directory), Loader=Loader) if doc is not None]


def manifest_files() -> list[Path]:
    return sorted(
        path
        for path in CONFIG.rglob("*.yaml")
        if path.name != "kustomization.yaml"
    )


def kustomization_dirs() -> list[Path]:
    return sorted(path.parent for path in CONFIG.rglob("kustomization.yaml"))


def load_one(path: Path) -> Obj:
    with path.open(encoding="utf-8") as stream:
        docs = [doc for doc in yaml.load_all(stream, Loader=Loader) if doc is not None]
    assert len(docs) == 1, f"{path.relative_to(REPO)} holds {len(docs)} objects; one object per file"
    doc = docs[0]
    assert isinstance(doc, dict)
    return doc


def by_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [obj for obj in by_kind(objects, kind) if name is None or obj["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.fixture(scope="module")
def rendered_default() -> list[Obj]:
    objects: list[Obj] = render(CONFIG / "default")
    return objects


@pytest.fixture(scope="module")
def controller_objects() -> list[Obj]:
    """RBAC, the Deployment and its metrics Service: config/default without the CRD."""
    objects: list[Obj] = render(CONFIG / "rbac") + render(CONFIG / "manager")
    return objects + [load_one(CONFIG / "default" / "metrics_service.yaml")]


@pytest.fixture(scope="module")
def deployment(controller_objects: list[Obj]) -> Obj:
    return one(controller_objects, "Deployment", "disvc-controller-manager")


@pytest.fixture(scope="module")
def manager_container(deployment: Obj) -> Obj:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return one([dict(c, kind="Container", metadata={"name": c["name"]}) for c in containers], "Container", "manager")


# -- every file ---------------------------------------------------------------


@pytest.mark.parametrize("path", manifest_files(), ids=rel)
def test_every_manifest_file_holds_exactly_one_named_object(path: Path) -> None:
    obj = load_one(path)
    assert obj.get("apiVersion") and obj.get("kind"), "not a Kubernetes object"
    assert obj.get("metadata", {}).get("name"), "object has no metadata.name"


@pytest.mark.parametrize("directory", kustomization_dirs(), ids=rel)
def test_every_kustomization_renders(directory: Path) -> None:
    objects = render(directory)
    assert objects, f"{rel(directory)} renders no objects"
    keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), f"{rel(directory)} renders an object twice"


def test_every_manifest_file_is_rendered_by_a_kustomization() -> None:
    # A manifest that no kustomization lists is never installed: a new file
    # forgotten in kustomization.yaml would silently drop out of the release.
    rendered = {(o["kind"], o["metadata"]["name"]) for d in kustomization_dirs() for o in render(d)}
    missing = [
        rel(path) for path in manifest_files()
        if (load_one(path)["kind"], load_one(path)["metadata"]["name"]) not in rendered
    ]
    assert not missing, f"rendered by no kustomization.yaml: {missing}"


def schema_checked_files() -> list[Path]:
    # Every built-in kind we ship; the samples are DISVCs and the monitor a
    # ServiceMonitor, which have no schema in kubernetes-validate.
    return [
        path
        for path in manifest_files()
        if path.parent.name in {"rbac", "manager", "default", "network-policy"}
    ]


@pytest.mark.parametrize("path", schema_checked_files(), ids=rel)
def test_manifest_validates_against_the_kubernetes_schema(path: Path) -> None:
    kubernetes_validate.validate(load_one(path), KUBERNETES_VERSION, strict=True)


def test_rendered_default_validates_against_the_kubernetes_schema(rendered_default: list[Obj]) -> None:
    # After the namespace and label transforms: what is actually applied.
    for obj in rendered_default:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


# -- the default kustomization --------------------------------------------------


def test_default_installs_crd_rbac_and_controller(rendered_default: list[Obj]) -> None:
    kinds = {(o["kind"], o["metadata"]["name"]) for o in rendered_default}
    assert ("CustomResourceDefinition", DISVC_CRD_NAME) in kinds
    assert ("Namespace", SYSTEM_NAMESPACE) in kinds
    assert ("ServiceAccount", "disvc-controller-manager") in kinds
    assert ("ClusterRole", "disvc-manager-role") in kinds
    assert ("Deployment", "disvc-controller-manager") in kinds
    for kind in ("ClusterRoleBinding", "Role", "RoleBinding", "Service"):
        assert by_kind(rendered_default, kind), f"no {kind} in config/default"


def test_default_puts_every_namespaced_object_in_the_system_namespace(rendered_default: list[Obj]) -> None:
    for obj in rendered_default:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_SCOPED:
            assert namespace is None, f"cluster-scoped {obj['kind']} has a namespace"
        else:
            assert namespace == SYSTEM_NAMESPACE, f"{obj['kind']} {obj['metadata']['name']} in {namespace}"


def test_default_labels_every_object_as_part_of_disvc(rendered_default: list[Obj]) -> None:
    for obj in rendered_default:
        assert obj["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "disvc", obj["metadata"]["name"]


def test_bindings_bind_the_controllers_service_account_to_roles_that_exist(
    controller_objects: list[Obj], deployment: Obj
) -> None:
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    one(controller_objects, "ServiceAccount", account)
    for binding_kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        bindings = by_kind(controller_objects, binding_kind)
        assert bindings
        for binding in bindings:
            assert binding["roleRef"]["kind"] == role_kind
            role = one(controller_objects, role_kind, binding["roleRef"]["name"])
            if role_kind == "Role":
                assert role["metadata"]["namespace"] == binding["metadata"]["namespace"]
            assert {"kind": "ServiceAccount", "name": account, "namespace": SYSTEM_NAMESPACE} in binding["subjects"]


def test_leader_election_role_is_in_the_namespace_the_lease_lives_in(controller_objects: list[Obj], deployment: Obj) -> None:
    from disvc.controller import options

    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    parsed = options.parse(args)
    assert parsed.leader_elect
    # Without --leader-election-namespace the Lease goes to the pod's own namespace.
    lease_namespace = parsed.leader_election_namespace or deployment["metadata"]["namespace"]
    role = one(controller_objects, "Role")
    assert role["metadata"]["namespace"] == lease_namespace


# -- RBAC: exactly what the code calls ----------------------------------------------


Grant = tuple[str, str, str]
"""(API group, resource[/subresource], verb), as ``kube.ApiCall``."""


def grants(role: Obj) -> set[Grant]:
    result: set[Grant] = set()
    for rule in role.get("rules") or []:
        assert not rule.get("nonResourceURLs"), "the controller calls no non-resource URL"
        assert not rule.get("resourceNames"), "grants are per resource type"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    result.add((group, resource, verb))
    return result


def rbac_roles() -> tuple[Obj, Obj]:
    """The controller's own roles (the metrics reader is for scrapers)."""
    return load_one(CONFIG / "rbac" / "role.yaml"), load_one(CONFIG / "rbac" / "leader_election_role.yaml")


def api_calls() -> set[Grant]:
    from disvc.controller import kube

    return {(call.group, call.resource, call.verb) for call in kube.API_CALLS}


def test_rbac_has_no_wildcards_and_no_secrets() -> None:
    for role in rbac_roles():
        for group, resource, verb in grants(role):
            assert "*" not in (group, resource, verb), f"wildcard in {role['metadata']['name']}"
            assert resource.split("/")[0] != "secrets", "the controller never reads Secrets"


def test_cluster_role_and_leader_role_grant_exactly_the_calls_the_controller_makes() -> None:
    cluster_role, leader_role = rbac_roles()
    granted = grants(cluster_role) | grants(leader_role)
    calls = api_calls()
    assert not calls - granted, f"the controller calls these without permission: {sorted(calls - granted)}"
    assert not granted - calls, f"granted but never called: {sorted(granted - calls)}"


def test_leases_are_granted_only_in_the_controllers_namespace() -> None:
    cluster_role, leader_role = rbac_roles()
    assert leader_role["kind"] == "Role"
    assert not {(g, r) for g, r, _ in grants(cluster_role)} & LEADER_ELECTION_GROUP_RESOURCES
    assert {(g, r) for g, r, _ in grants(leader_role)} <= LEADER_ELECTION_GROUP_RESOURCES | {("", "events")}


def test_every_child_the_controller_applies_may_also_be_created() -> None:
    # Writes are server-side apply (a PATCH). When the object does not exist
    # yet the API server creates it and checks RBAC "create" as well
    # (apiserver endpoints/handlers/patch.go), so patch without create fails
    # with 403 on the first child of every DISVC on a real cluster.
    calls = api_calls()
    applied = {(g, r) for g, r, v in calls if v == "patch" and "/" not in r}
    missing = sorted(f"{g or 'core'}/{r}" for g, r in applied if (g, r, "create") not in calls)
    assert not missing, f"kube.API_CALLS lets the controller apply but not create: {missing}"


# -- the controller Deployment -----------------------------------------------------


def test_deployment_runs_the_image_with_flags_the_controller_accepts(manager_container: Obj) -> None:
    from disvc.controller import options

    assert manager_container["image"] == "disvc-controller:latest"
    assert "command" not in manager_container, "the image's ENTRYPOINT starts the controller"
    parsed = options.parse(manager_container["args"])  # exits (SystemExit) on an unknown flag
    assert parsed.leader_elect
    assert parsed.metrics_bind_address is not None and parsed.metrics_bind_address.port == METRICS_PORT
    assert parsed.metrics_secure, "the manifests serve /metrics only to tokens allowed to read it"
    assert parsed.health_probe_bind_address is not None and parsed.health_probe_bind_address.port == 8081


def container_port(container: Obj, name_or_number: str | int) -> int:
    for port in container.get("ports", []):
        if name_or_number in (port.get("name"), port["containerPort"]):
            return int(port["containerPort"])
    raise AssertionError(f"container declares no port {name_or_number!r}")


def test_container_ports_are_the_ports_the_controller_listens_on(manager_container: Obj) -> None:
    from disvc.controller import options

    parsed = options.parse(manager_container["args"])
    assert parsed.metrics_bind_address is not None and parsed.health_probe_bind_address is not None
    assert container_port(manager_container, "https") == parsed.metrics_bind_address.port
    assert container_port(manager_container, "health") == parsed.health_probe_bind_address.port


def test_probes_hit_healthz_and_readyz_on_the_health_port(manager_container: Obj) -> None:
    from disvc.controller import options

    parsed = options.parse(manager_container["args"])
    assert parsed.health_probe_bind_address is not None
    for probe_name, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        probe = manager_container[probe_name]["httpGet"]
        assert probe["path"] == path
        assert container_port(manager_container, probe["port"]) == parsed.health_probe_bind_address.port


def test_pod_meets_the_restricted_pod_security_standard(deployment: Obj, manager_container: Obj) -> None:
    pod = deployment["spec"]["template"]["spec"]
    pod_context = pod.get("securityContext", {})
    context = manager_container.get("securityContext", {})
    assert pod_context.get("runAsNonRoot") is True
    assert pod_context.get("runAsUser") == 65532
    assert pod_context.get("seccompProfile", {}).get("type") == "RuntimeDefault"
    assert context.get("allowPrivilegeEscalation") is False
    assert context.get("readOnlyRootFilesystem") is True
    assert context.get("capabilities", {}).get("drop") == ["ALL"]
    assert not context.get("capabilities", {}).get("add")
    assert context.get("runAsUser", pod_context["runAsUser"]) != 0
    assert not context.get("privileged")
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")


def test_container_has_resource_requests_within_limits(manager_container: Obj) -> None:
    resources = manager_container["resources"]
    assert parse_quantity(resources["requests"]["cpu"]) <= parse_quantity(resources["limits"]["cpu"])
    assert parse_quantity(resources["requests"]["memory"]) <= parse_quantity(resources["limits"]["memory"])


def parse_quantity(value: str) -> float:
    suffixes = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(suffixes.items(), key=lambda item: -len(item[0])):
        if str(value).endswith(suffix):
            return float(str(value)[: -len(suffix)]) * factor
    return float(value)


def test_shutdown_grace_outlasts_the_controllers_graceful_shutdown(deployment: Obj, manager_container: Obj) -> None:
    from disvc.controller import options

    parsed = options.parse(manager_container["args"])
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > parsed.graceful_shutdown_timeout, "the kubelet would kill in-flight reconciles"


def test_read_only_root_leaves_tmp_writable(deployment: Obj, manager_container: Obj) -> None:
    mounts = {m["mountPath"]: m["name"] for m in manager_container.get("volumeMounts", [])}
    assert "/tmp" in mounts
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"].get("volumes", [])}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_deployment_selector_selects_its_own_pods(deployment: Obj) -> None:
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


# -- metrics Service and ServiceMonitor --------------------------------------------


def test_metrics_service_reaches_the_controllers_metrics_port(controller_objects: list[Obj], deployment: Obj) -> None:
    service = one(controller_objects, "Service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container_port(container, port["targetPort"]) == METRICS_PORT


def test_service_monitor_scrapes_the_metrics_service(controller_objects: list[Obj]) -> None:
    service = one(controller_objects, "Service")
    monitors = render(CONFIG / "prometheus")
    monitor = one(monitors, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == SYSTEM_NAMESPACE
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert SYSTEM_NAMESPACE in monitor["spec"]["namespaceSelector"]["matchNames"]
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint.get("path", "/metrics") == "/metrics"


def test_service_monitor_scrapes_over_https_with_its_service_account_token() -> None:
    (monitor,) = render(CONFIG / "prometheus")
    text = (CONFIG / "prometheus" / "monitor.yaml").read_text()
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["scheme"] == "https"
        assert endpoint.get("bearerTokenFile") == "/var/run/secrets/kubernetes.io/serviceaccount/token" or (
            endpoint.get("authorization", {}).get("credentials")
        ), "a scrape without a token is answered 401"
        tls = endpoint.get("tlsConfig", {})
        if tls.get("insecureSkipVerify"):
            # Skipping verification must come with the reason, next to it.
            before = text.split("insecureSkipVerify")[0].splitlines()[-3:]
            assert any(line.strip().startswith("#") for line in before), "insecureSkipVerify without a comment why"
        else:
            assert tls.get("ca") or tls.get("caFile"), "verify the serving certificate against a CA"


def test_metrics_reader_role_grants_get_on_metrics_and_nothing_else() -> None:
    role = load_one(CONFIG / "rbac" / "metrics_reader_role.yaml")
    assert role["kind"] == "ClusterRole"
    assert role["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    bound = [b["roleRef"]["name"] for b in by_kind(render(CONFIG / "default"), "ClusterRoleBinding")]
    assert role["metadata"]["name"] not in bound, "config/ binds no scraper; the user binds their Prometheus"


def test_controller_may_create_reviews_for_the_secure_metrics_endpoint() -> None:
    cluster_role, _ = rbac_roles()
    reviews = {(g, r, v) for g, r, v in grants(cluster_role) if g.startswith(("authentication.", "authorization."))}
    assert reviews == {
        ("authentication.k8s.io", "tokenreviews", "create"),
        ("authorization.k8s.io", "subjectaccessreviews", "create"),
    }


def test_metrics_certificate_comes_from_an_optional_tls_secret(deployment: Obj, manager_container: Obj) -> None:
    from disvc.controller import options, tls

    parsed = options.parse(manager_container["args"])
    assert parsed.metrics_cert_dir
    mounts = {m["mountPath"]: m for m in manager_container.get("volumeMounts", [])}
    mount = mounts[parsed.metrics_cert_dir]
    assert mount.get("readOnly") is True
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    secret = volumes[mount["name"]]["secret"]
    assert secret["secretName"] == METRICS_CERT_SECRET
    # Optional: the pod starts (self-signed) before cert-manager has issued it.
    assert secret.get("optional") is True
    # No items remapping: the Secret's kubernetes.io/tls keys are the file names the controller reads.
    assert "items" not in secret
    assert (tls.CERT_FILE, tls.KEY_FILE) == ("tls.crt", "tls.key")


def test_network_policy_admits_metrics_only_from_labelled_namespaces(deployment: Obj, manager_container: Obj) -> None:
    (policy,) = render(CONFIG / "network-policy")
    assert policy["kind"] == "NetworkPolicy"
    assert policy["metadata"]["namespace"] == SYSTEM_NAMESPACE
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    metrics_port = container_port(manager_container, "https")
    health_port = container_port(manager_container, "health")
    rules_for = {
        port["port"]: rule for rule in policy["spec"]["ingress"] for port in rule["ports"]
    }
    metrics_rule = rules_for[metrics_port]
    assert metrics_rule["from"] == [{"namespaceSelector": {"matchLabels": {"metrics": "enabled"}}}]
    assert not rules_for[health_port].get("from"), "the kubelet's probes must still reach the pod"
    assert set(rules_for) == {metrics_port, health_port}


# -- samples -------------------------------------------------------------------------


def sample_files() -> list[Path]:
    return sorted(SAMPLES.glob("serving_v1alpha1_distributedinferenceservice*.yaml"))


def isvc_template(disvc: Obj) -> Obj:
    spec = disvc["spec"]
    template = spec.get("inferenceService", spec.get("inferenservice"))
    assert isinstance(template, dict)
    return template


@pytest.fixture(scope="module")
def isvc_schema() -> Obj:
    with kserve_crd_or_skip().open(encoding="utf-8") as stream:
        crd = yaml.load(stream, Loader=Loader)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    schema: Obj = version["schema"]["openAPIV3Schema"]
    return schema


@pytest.fixture(scope="module")
def disvc_schema() -> Obj:
    crd = one(render(CONFIG / "crd"), "CustomResourceDefinition", DISVC_CRD_NAME)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema: Obj = version["schema"]["openAPIV3Schema"]
    return schema


def pruned_fields(value: Any, schema: Obj, path: str = "") -> Iterator[str]:
    """Fields the API server would silently drop (not in a structural schema)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                yield from pruned_fields(item, properties[key], f"{path}.{key}")
            elif isinstance(additional, dict):
                yield from pruned_fields(item, additional, f"{path}.{key}")
            elif properties is not None and path != ".metadata":
                yield f"{path}.{key}"
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from pruned_fields(item, schema["items"], f"{path}[{index}]")


def test_samples_cover_rest_grpc_and_scale_out() -> None:
    samples = {path.name: load_one(path) for path in sample_files()}
    rest = samples["serving_v1alpha1_distributedinferenceservice.yaml"]
    grpc = samples["serving_v1alpha1_distributedinferenceservice_grpc.yaml"]
    scaled = samples["serving_v1alpha1_distributedinferenceservice_replicas3.yaml"]
    assert rest["spec"]["inferenservice"]["predictor"]["model"]["modelFormat"] == {"name": "sklearn"}, (
        "the REST sample is the seed's PoC 1 manifest, with its `inferenservice` spelling"
    )
    ports = isvc_template(grpc)["predictor"]["model"]["ports"]
    assert "h2c" in {port.get("name") for port in ports}
    assert scaled["spec"]["replicas"] == 3
    names = [obj["metadata"]["name"] for obj in samples.values()]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("path", sample_files(), ids=rel)
def test_sample_isvc_template_is_a_valid_kserve_inferenceservice_spec(path: Path, isvc_schema: Obj) -> None:
    template = isvc_template(load_one(path))
    # No check_schema: the KServe CRD is trusted, and checking it takes seconds.
    jsonschema.Draft7Validator(isvc_schema["properties"]["spec"]).validate(template)
    assert not list(pruned_fields(template, isvc_schema["properties"]["spec"], ".spec"))


@pytest.mark.parametrize("path", sample_files(), ids=rel)
def test_sample_validates_against_the_disvc_crd(path: Path, disvc_schema: Obj) -> None:
    sample = load_one(path)
    jsonschema.Draft7Validator(disvc_schema).validate(sample)
    dropped = list(pruned_fields(sample, disvc_schema))
    assert not dropped, f"the API server would drop {dropped}"
